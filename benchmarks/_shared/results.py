"""Where the benchmarks write: benchmarks/results/ and the documentation's pictures."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
# Each part of a report in its own file, so a rerun computes only what is missing.
PARTS = RESULTS / "parts"
TUNING_LOG = RESULTS / "tuning.jsonl"
# The documentation's pictures that some benchmarks draw.
DOC_IMAGES = ROOT / "docs" / "images"
