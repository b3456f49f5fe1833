"""compare.py's parts as processes: its report and curves.py run each part in a fresh process,
which prints one JSON line."""

from __future__ import annotations

import sys
from pathlib import Path


def part_command(arguments: list[str]) -> list[str]:
    """The command line of one part of compare.py, printing its result as one JSON line."""
    return [sys.executable, "-m", "benchmarks.compare", *arguments, "--json"]


def quality_arguments(
    source: str, method: str, seed: int, classes: int, steps: int, images: Path
) -> list[str]:
    """compare.py's arguments for the quality of one method on one source model and seed, on the
    first `classes` benchmark classes; the images are kept in `images` (.npz)."""
    arguments = ["quality", "--model", source, "--method", method, "--images", str(images)]
    arguments += ["--first-seed", str(seed), "--seeds", "1"]
    return arguments + ["--classes", str(classes), "--steps", str(steps)]
