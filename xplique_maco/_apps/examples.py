"""Dataset examples: the crops of the user's images that drive each unit most, shown beside its
feature visualisation (as OpenAI Microscope shows them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._api.evaluate import every_value
from .._config import checks
from .._config.image_folders import Summary, image_files, read_image
from .._evaluation.photos import random_crops
from .._outputs.plots import save_jpeg

EXAMPLES = "examples"


def example_pool(images, channels: int, size: tuple[int, int], values_range, per_image: int, seed: int):
    """Random crops of `images` (a folder, read recursively, or an array (N, H, W, C) in
    `values_range`), resized to `size`, in `values_range`; and what reading the files met."""
    low, high = values_range
    summary = Summary()
    if isinstance(images, (str, Path)):
        photos = [
            photo
            for path in image_files(images)
            if (photo := read_image(path, channels, summary)) is not None
        ]
        if not photos:
            raise ValueError(f"No image below {images} could be read.")
    else:
        array = np.asarray(images, np.float32)
        if array.ndim != 4 or array.shape[-1] != channels or len(array) == 0:
            raise ValueError(
                f"`images` must be a folder or an array (N, H, W, {channels}) in `values_range`, "
                f"received shape {array.shape}."
            )
        photos = list(np.clip((array - low) / (high - low), 0.0, 1.0))
    per_image = checks.positive_int("examples_per_image", per_image)
    crops = random_crops(photos, count=per_image * len(photos), size=size, seed=seed, scale=(0.2, 0.8))
    return low + crops * (high - low), summary


def top_examples(objective, pool: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """For each item of `objective`, the positions in `pool` of its `count` best crops (N, count),
    best first, and their values."""
    values = every_value(objective, pool)  # (crops, items)
    best = np.argsort(-values, axis=0, kind="stable")[:count].T
    return best, np.take_along_axis(values.T, best, axis=1)


def write_examples(output: Path, stem: str, crops: np.ndarray, values_range) -> list[str]:
    """Writes a unit's example crops as small JPEGs; returns their names in the folder."""
    names = [f"{EXAMPLES}/{stem}_{number}.jpg" for number in range(len(crops))]
    for name, crop in zip(names, crops, strict=True):
        save_jpeg(Path(output) / name, crop, values_range)
    return names
