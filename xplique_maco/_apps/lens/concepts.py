"""The concepts of one class (CRAFT's recipe): random crops of its images, the layer's non-negative
activations per crop, and their non-negative factorisation (scikit-learn's NMF) into concepts."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

# Activations this far below zero (relative to the largest) are rounding, not a layer without ReLU.
_NEGATIVE_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Crops:
    """Random square crops of a class's images, resized to the model's input.

    Attributes:
        pixels: (n, h, w, C) float32 crops in the images' value range.
        sources: (n,) the image each crop comes from.
        boxes: (n, 4) (top, left, side, side) of each crop in its image, in pixels.
    """

    pixels: np.ndarray
    sources: np.ndarray
    boxes: np.ndarray


def random_crops(
    images: list[np.ndarray], per_image: int, size: tuple[int, int], crop_range, seed: int
) -> Crops:
    """`per_image` square crops of each image, their side uniform in `crop_range` (fractions of the
    image's shorter side), resized with antialiasing to `size`; the same seed gives the same crops."""
    rng = np.random.default_rng(seed)
    pixels, sources, boxes = [], [], []
    for number, image in enumerate(images):
        height, width = image.shape[:2]
        for _ in range(per_image):
            side = max(2, int(round(rng.uniform(*crop_range) * min(height, width))))
            top, left = int(rng.integers(height - side + 1)), int(rng.integers(width - side + 1))
            crop = image[top : top + side, left : left + side]
            pixels.append(tf.image.resize(crop, size, method="bilinear", antialias=True).numpy())
            sources.append(number)
            boxes.append((top, left, side, side))
    return Crops(np.stack(pixels).astype(np.float32), np.array(sources), np.array(boxes))


def whole_images(images: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Each image as the model sees it whole: its centred crop of the model's aspect ratio, resized
    (antialiased) to `size`."""
    resized = []
    for image in images:
        height, width = image.shape[:2]
        scale = min(height / size[0], width / size[1])
        crop_height, crop_width = max(1, round(scale * size[0])), max(1, round(scale * size[1]))
        top, left = (height - crop_height) // 2, (width - crop_width) // 2
        crop = image[top : top + crop_height, left : left + crop_width]
        resized.append(tf.image.resize(crop, size, method="bilinear", antialias=True).numpy())
    return np.stack(resized).astype(np.float32)


def activations(extractor: keras.Model, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The extractor's output (N, h, w, C) on model inputs, batch by batch, as float32."""
    forward = _compiled(extractor)
    parts = [
        forward(tf.constant(inputs[start : start + batch_size])).numpy()
        for start in range(0, len(inputs), batch_size)
    ]
    return np.concatenate(parts).astype(np.float32)


_FORWARD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(extractor: keras.Model):
    """The extractor's forward pass as a graph, built once per extractor (an eager call of a large
    model dispatches every layer from Python)."""
    if extractor not in _FORWARD:
        _FORWARD[extractor] = tf.function(
            lambda inputs: extractor(inputs, training=False), reduce_retracing=True
        )
    return _FORWARD[extractor]


def check_non_negative(values: np.ndarray, layer: str) -> None:
    """Refuses activations with negative values: NMF factorises non-negative ones only."""
    lowest, highest = float(values.min()), float(np.abs(values).max())
    if lowest < -_NEGATIVE_TOLERANCE * max(highest, 1e-12):
        raise ValueError(
            f"Layer {layer!r} has negative activations (as low as {lowest:.3g}): concepts are a "
            "non-negative factorisation of the activations, so the layer must be non-negative, as the "
            "output of a ReLU is. Choose a layer after a ReLU (the default, the last spatial layer "
            "before the pooling, usually is), or an activation layer of the block you want."
        )


@dataclass(frozen=True)
class Factorisation:
    """Activations A (n, C) ~ U W: `vectors` W (K, C) are the concepts (directions in the layer's
    channels), `coefficients` U (n, K) how much of each a crop holds."""

    vectors: np.ndarray
    coefficients: np.ndarray


def factorise(pooled: np.ndarray, nb_concepts: int, seed: int) -> Factorisation:
    """scikit-learn's NMF of crops' activations averaged over positions (n, C) into `nb_concepts`."""
    from sklearn.decomposition import NMF

    model = NMF(n_components=nb_concepts, init="nndsvda", max_iter=500, random_state=seed)
    coefficients = model.fit_transform(np.maximum(pooled, 0.0).astype(np.float64))
    return Factorisation(model.components_.astype(np.float32), coefficients.astype(np.float32))


def coefficients_of(values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """How much of each concept (K, C) the activation vectors (..., C) hold: U >= 0 minimising
    |A - U W| with W fixed (scikit-learn's NMF with fixed components)."""
    from sklearn.decomposition import non_negative_factorization

    flat = np.maximum(values.reshape(-1, values.shape[-1]), 0.0).astype(np.float64)
    coefficients, _, _ = non_negative_factorization(
        flat,
        H=vectors.astype(np.float64),
        n_components=len(vectors),
        init="custom",
        update_H=False,
        max_iter=500,
    )
    return coefficients.reshape(*values.shape[:-1], len(vectors)).astype(np.float32)
