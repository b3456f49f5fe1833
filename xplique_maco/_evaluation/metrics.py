"""Judging visualisations: target confidence, transferability, plausibility, spectrum statistics, path similarity."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from .._config import checks
from .prepare import preparer

__all__ = ["target_confidence", "transferability", "plausibility", "spectrum_statistics", "fine_detail"]

_LUMA = np.array([0.299, 0.587, 0.114])


def _class_indices(classes, count: int) -> np.ndarray:
    indices = np.asarray(classes)
    if indices.shape != (count,) or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"`classes` must hold one class index per image ({count}), received {classes!r}.")
    return indices


def target_confidence(
    model: keras.Model,
    images,
    classes: Sequence[int],
    values_range=(0.0, 1.0),
    model_values_range=(0.0, 1.0),
    input_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Softmax probability of each image's target class under `model` (which outputs logits).

    Args:
        model: A classifier giving logits.
        images: (N, H, W, C) visualisations in `values_range`.
        classes: The target class of each image.
        values_range: Range of `images`.
        model_values_range: Range the model expects.
        input_size: Size images are resized to; defaults to the model's input size, or 224 x 224
            when the model accepts any size.

    Returns:
        (N,) probabilities.

    Example:
    >>> target_confidence(model, images, [967, 1])
    """
    prepare = preparer(values_range, model_values_range, input_size)
    indices = _class_indices(classes, len(images))
    logits = model(prepare(images, model), training=False)
    probabilities = tf.nn.softmax(tf.cast(logits, tf.float32)).numpy()
    return probabilities[np.arange(len(indices)), indices]


def transferability(
    images,
    classes: Sequence[int],
    judges: dict[str, keras.Model],
    values_range=(0.0, 1.0),
    model_values_range=(0.0, 1.0),
    input_size: tuple[int, int] | None = None,
) -> dict[str, dict[str, float]]:
    """How often OTHER models classify the visualisations as their target class.

    Args:
        images: (N, H, W, C) visualisations made on some source model.
        classes: Target class of each image.
        judges: Name -> classifier giving logits over the same classes.

    Returns:
        {judge name: {"top1": rate, "top5": rate}} with rates in [0, 1].

    Example:
    >>> transferability(images, classes, {"mobilenet_v2": zoo.mobilenet_v2()})
    """
    prepare = preparer(values_range, model_values_range, input_size)
    indices = _class_indices(classes, len(images))
    results = {}
    for name, judge in judges.items():
        logits = judge(prepare(images, judge), training=False)
        ranking = np.argsort(-np.asarray(logits), axis=1)
        results[name] = {
            "top1": float(np.mean(ranking[:, 0] == indices)),
            "top5": float(np.mean([index in row[:5] for index, row in zip(indices, ranking, strict=True)])),
        }
    return results


def plausibility(
    features: keras.Model,
    images,
    classes: Sequence[int],
    real_images,
    real_classes: Sequence[int],
    values_range=(0.0, 1.0),
    model_values_range=(0.0, 1.0),
    input_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """How close each visualisation is to real images of its class, relative to other classes.

    In the feature space of `features` (e.g. a classifier's pooled penultimate layer), the
    score is the mean cosine similarity to real images of the target class minus the mean
    cosine similarity to real images of the other classes: above 0, the visualisation looks
    more like its class than like the rest, to that model.

    Args:
        features: A model giving one feature vector (or map, averaged) per image.
        images: (N, H, W, C) visualisations.
        classes: Target class of each visualisation.
        real_images: (M, H', W', C) real photos, in the same `values_range`.
        real_classes: Class of each photo; every target class needs at least one photo, and at
            least one photo of another class must exist.

    Returns:
        (N,) scores in [-2, 2].
    """
    prepare = preparer(values_range, model_values_range, input_size)
    indices = _class_indices(classes, len(images))
    real_indices = _class_indices(real_classes, len(real_images))
    missing = sorted(set(indices.tolist()) - set(real_indices.tolist()))
    if missing:
        raise ValueError(
            f"No real image of classes {missing}: plausibility needs at least one per target class."
        )
    if any(np.all(real_indices == target) for target in indices):
        raise ValueError("Plausibility needs real images of at least one other class.")

    def embed(batch):
        output = features(prepare(batch, features), training=False)
        output = tf.reshape(tf.cast(output, tf.float32), (output.shape[0], -1, output.shape[-1]))
        return tf.math.l2_normalize(tf.reduce_mean(output, axis=1), axis=-1).numpy()

    similarity = embed(images) @ embed(real_images).T
    scores = []
    for row, target in zip(similarity, indices, strict=True):
        same, other = row[real_indices == target], row[real_indices != target]
        scores.append(same.mean() - other.mean())
    return np.array(scores)


def spectrum_statistics(images, values_range=(0.0, 1.0)) -> dict[str, np.ndarray]:
    """Log-log slope of the radial amplitude spectrum and share of energy above half Nyquist.

    Both are computed on the luma (0.299 R + 0.587 G + 0.114 B; a single channel as is), mean
    removed, times a 2-D Hann window, at native resolution. The share is the sum of |F|^2 at
    radial frequencies above 0.25 cycles per pixel over the sum at all non-zero frequencies.
    The slope fits log amplitude, averaged in one-bin-wide rings, against log frequency
    between 2 bins and 0.5 cycles per pixel. Photos: slopes near -1 to -1.5, shares of a few %.

    Args:
        images: (N, H, W, C) or (H, W, C) images.
        values_range: Their value range (the statistics are scale-free; it only sets units).

    Returns:
        {"slope": (N,), "high_frequency_share": (N,)}.

    Example:
    >>> spectrum_statistics(images)["high_frequency_share"]
    """
    batch = np.asarray(images.numpy() if isinstance(images, tf.Tensor) else images, dtype=np.float64)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3):
        raise ValueError(f"`images` must be (N, H, W, C) with C in (1, 3), received shape {batch.shape}.")
    low, high = checks.values_range(values_range)
    batch = (batch - low) / (high - low)
    luma = batch[..., 0] if batch.shape[-1] == 1 else batch @ _LUMA
    height, width = luma.shape[1:]
    window = np.hanning(height)[:, None] * np.hanning(width)[None, :]
    radius = np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.fftfreq(width)[None, :] ** 2)
    rings = np.round(radius * max(height, width)).astype(int)
    slopes, shares = [], []
    for plane in luma:
        power = np.abs(np.fft.fft2((plane - plane.mean()) * window)) ** 2
        nonzero = radius > 0
        shares.append(power[radius > 0.25].sum() / power[nonzero].sum())
        amplitude = np.sqrt(power)
        ring_ids = np.arange(2, max(height, width) // 2 + 1)
        ring_means = np.array([amplitude[rings == ring].mean() for ring in ring_ids])
        frequencies = ring_ids / max(height, width)
        slopes.append(np.polyfit(np.log(frequencies), np.log(ring_means + 1e-12), 1)[0])
    return {"slope": np.array(slopes), "high_frequency_share": np.array(shares)}


def fine_detail(images, values_range=(0.0, 1.0), sigma: float = 1.0) -> np.ndarray:
    """The kurtosis of each image's finest band: does its finest detail look like a photo's edges
    or like noise?

    The finest band is the luma (as in `spectrum_statistics`) minus its Gaussian blur of `sigma`
    pixels (reflected at the borders). A photo's finest detail is sparse edges, so the band's
    values are heavy-tailed (a kurtosis well above 3); noise with random phases is Gaussian
    (3). The energy per frequency (`spectrum_statistics`) cannot tell the two apart.

    Args:
        images: (N, H, W, C) or (H, W, C) images, C in (1, 3).
        values_range: Their value range (the kurtosis is scale-free; it only sets units).
        sigma: The blur's standard deviation, in pixels.

    Returns:
        (N,) Pearson kurtosis (3 for Gaussian values).

    Example:
    >>> np.median(fine_detail(images))  # photos: well above 3; noise: 3
    """
    batch = np.asarray(images.numpy() if isinstance(images, tf.Tensor) else images, dtype=np.float64)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3):
        raise ValueError(f"`images` must be (N, H, W, C) with C in (1, 3), received shape {batch.shape}.")
    sigma = checks.number("sigma", sigma, minimum=0.1)
    low, high = checks.values_range(values_range)
    batch = (batch - low) / (high - low)
    luma = batch[..., 0] if batch.shape[-1] == 1 else batch @ _LUMA
    band = luma - _gaussian_blur(luma, sigma)
    centred = band - band.mean(axis=(1, 2), keepdims=True)
    variance = (centred**2).mean(axis=(1, 2))
    return (centred**4).mean(axis=(1, 2)) / np.maximum(variance, 1e-30) ** 2


def _gaussian_blur(planes: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (N, H, W) planes, borders reflected."""
    reach = int(np.ceil(4 * sigma))
    offsets = np.arange(-reach, reach + 1)
    weights = np.exp(-(offsets**2) / (2 * sigma**2))
    weights /= weights.sum()
    for axis in (1, 2):
        padding = [(0, 0)] * 3
        padding[axis] = (reach, reach)
        padded = np.pad(planes, padding, mode="reflect")
        size = planes.shape[axis]
        planes = sum(
            weight * np.take(padded, np.arange(start, start + size), axis=axis)
            for start, weight in enumerate(weights)
        )
    return planes
