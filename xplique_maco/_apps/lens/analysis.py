"""One class's concepts, before rendering: crops, activations, factorisation, importance, top crops."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

import keras
import numpy as np

from . import concepts, importance


@dataclass
class Stopwatch:
    """Seconds spent in each phase of a lens, summed over its classes."""

    seconds: Counter = field(default_factory=Counter)

    @contextmanager
    def phase(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


@dataclass(frozen=True)
class LensSettings:
    """How concepts are found (see `lens` for what each means)."""

    layer: str
    nb_concepts: int
    crops_per_image: int
    crop_size: tuple[float, float]
    top_crops: int
    nb_designs: int
    batch_size: int
    seed: int


@dataclass(frozen=True)
class ClassAnalysis:
    """A class's concepts, sorted by importance (most important first).

    Attributes:
        index: The class's index in the model's output.
        label: Its label.
        vectors: (K, C) the concepts: directions in the layer's channels.
        importance: (K,) each concept's Sobol total index on the class logit.
        crops: (K, top, h, w, C) the crops that hold each concept most, in the images' value range.
        crop_scores: (K, top) how much of the concept each of those crops holds.
        nb_images: The images of the class that were read.
        nb_crops: The crops the concepts were found in.
    """

    index: int
    label: str
    vectors: np.ndarray
    importance: np.ndarray
    crops: np.ndarray
    crop_scores: np.ndarray
    nb_images: int
    nb_crops: int

    @property
    def share(self) -> np.ndarray:
        """Each concept's share of the total importance (sums to 1, or 0 when nothing matters)."""
        total = float(self.importance.sum())
        return self.importance / total if total > 0 else np.zeros_like(self.importance)


def analyse_class(
    index: int,
    label: str,
    images: list[np.ndarray],
    extractor: keras.Model,
    head: keras.Model,
    input_size: tuple[int, int],
    settings: LensSettings,
    stopwatch: Stopwatch,
) -> ClassAnalysis:
    """The concepts of one class in its images (float32 (H, W, C) in the model's value range)."""
    seed = settings.seed + index  # each class its own crops, the same whatever the other classes
    with stopwatch.phase("crops and activations"):
        crops = concepts.random_crops(images, settings.crops_per_image, input_size, settings.crop_size, seed)
        check_enough(len(crops.pixels), settings.nb_concepts, label)
        spatial = concepts.activations(extractor, crops.pixels, settings.batch_size)
        concepts.check_non_negative(spatial, settings.layer)
        whole = concepts.activations(
            extractor, concepts.whole_images(images, input_size), settings.batch_size
        )
    with stopwatch.phase("factorisation"):
        found = concepts.factorise(spatial.mean(axis=(1, 2)), settings.nb_concepts, seed)
        per_position = concepts.coefficients_of(whole, found.vectors)
    with stopwatch.phase("importance"):
        indices = importance.total_indices(
            head, per_position, found.vectors, index, settings.nb_designs, seed
        )
    order = np.argsort(-indices, kind="stable")
    top = np.argsort(-found.coefficients, axis=0, kind="stable")[: settings.top_crops].T  # (K, top)
    top = top[order]
    return ClassAnalysis(
        index=index,
        label=label,
        vectors=found.vectors[order],
        importance=indices[order],
        crops=crops.pixels[top],
        crop_scores=np.take_along_axis(found.coefficients[:, order].T, top, axis=1),
        nb_images=len(images),
        nb_crops=len(crops.pixels),
    )


def check_enough(nb_crops: int, nb_concepts: int, label: str) -> None:
    """Refuses to factorise fewer crops than concepts."""
    if nb_crops < nb_concepts:
        raise ValueError(
            f"Class {label!r} gives {nb_crops} crops for {nb_concepts} concepts: each concept needs crops "
            "to be found in. Raise `crops_per_image`, add images, or ask for fewer concepts."
        )
