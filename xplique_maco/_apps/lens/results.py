"""What a lens gives: `Lens`, the classes of one call by class index, and each class's `ClassConcepts`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..._config.image_folders import Summary


@dataclass(frozen=True)
class ClassConcepts:
    """A class's concepts, most important first, with their MACO images.

    Attributes:
        index, label: The class (its index in the model's output) and its label.
        vectors: (K, C) the concepts: directions in the layer's channels.
        importance: (K,) each concept's Sobol total index on the class logit.
        share: (K,) its share of the concepts' total importance.
        crops: (K, top, h, w, C) the crops of the class's images that hold each concept most.
        images, transparencies: (K, H, W, C) and (K, H, W, 1): each concept rendered by MACO
            along its direction (`Direction`), with its transparency.
        image, transparency: The class logit rendered by MACO.
        values: (K,) each concept's objective (its `Direction`) at the last step.
        value: The class logit at the last step of its rendering.
        crop_scores: (K, top) how much of the concept each of its top crops holds.
        nb_images, nb_crops: The images read and the crops the concepts were found in.
    """

    index: int
    label: str
    vectors: np.ndarray
    importance: np.ndarray
    share: np.ndarray
    crops: np.ndarray
    images: np.ndarray
    transparencies: np.ndarray
    image: np.ndarray
    transparency: np.ndarray
    values: np.ndarray
    value: float
    crop_scores: np.ndarray
    nb_images: int
    nb_crops: int


@dataclass(frozen=True)
class Lens:
    """The classes a call of `lens` analysed, by class index (`lens[281]`), where they were found,
    what reading the images met (`summary`) and the seconds each phase took (`seconds`: reading the
    images, crops and activations, factorisation, importance, rendering, writing)."""

    layer: str
    classes: dict[int, ClassConcepts]
    summary: Summary
    output: Path | None
    seconds: dict[str, float]

    def __getitem__(self, index: int) -> ClassConcepts:
        return self.classes[index]

    def __iter__(self) -> Iterator[ClassConcepts]:
        return iter(self.classes.values())

    def __len__(self) -> int:
        return len(self.classes)
