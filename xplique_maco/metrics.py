"""Judging visualisations: target confidence, transferability, plausibility, spectrum statistics,
and the sanity check `path_similarity` (with its natural image pools `random_crops` and `offline_photos`)."""

from __future__ import annotations

from ._evaluation.metrics import (
    fine_detail,
    plausibility,
    spectrum_statistics,
    target_confidence,
    transferability,
)
from ._evaluation.photos import offline_photos, random_crops
from ._evaluation.sanity import PathSimilarity, path_similarity

__all__ = [
    "target_confidence",
    "transferability",
    "plausibility",
    "spectrum_statistics",
    "fine_detail",
    "path_similarity",
    "PathSimilarity",
    "random_crops",
    "offline_photos",
]
