"""A sanity check of visualisations: does the network process them as it processes natural images of the unit?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .._config import checks
from .._objectives.coerce import objective_from
from .._objectives.extractor import feature_model
from .._objectives.graph import ancestors, has_graph, occurrences
from .._objectives.objective import Objective, term_values
from .._objectives.taps import Tap, find_tap, image_input_shape
from .prepare import preparer

# Layer outputs a default spread is chosen from: what a block hands on, not its linear parts.
_NONLINEAR = ("ReLU", "Activation", "Add", "LeakyReLU", "ELU", "PReLU", "Softmax")
# How far outside `values_range` images may stray before they are refused (a share of the range).
_RANGE_TOLERANCE = 1e-3
# The smallest spread (in rank-correlation units) a layer's figures are divided by: where the top
# natural images agree almost exactly (a first layer seeing similar colours), a tiny difference
# would otherwise count as thousands of spreads.
_MIN_SPREAD = 1e-3


@dataclass(frozen=True)
class PathSimilarity:
    """What `path_similarity` measured: for each visualisation and each layer, how natural its path is.

    Attributes:
        layers: The layers compared, as paths in the model (`"efficientnet_lite0/block3a_activation"`).
        similarity: (N, L) cosine similarity of each visualisation's pooled, standardised activation
            to the mean of its unit's top natural images, per layer.
        natural_mean: (N, L) the same similarity for the top natural images themselves, each
            compared to the mean of the others (leave one out), averaged.
        natural_std: (N, L) the spread (standard deviation) of those natural similarities.
        z: (N, L) `(similarity - natural_mean) / max(natural_std, 0.001)`: how many natural
            spreads the visualisation lies below (negative) or above the unit's own natural images.
        pool_mean: (N, L) the similarity of the other natural images (not in the top) to the mean
            of the top ones, averaged: how alike any photo is at that layer.
        relative: (N, L) `(similarity - pool_mean) / max(natural_mean - pool_mean, 0.001)`: 1 when the
            visualisation is as alike as the unit's own top images are to each other, 0 when no more
            alike than any natural image, below 0 when less.
        percentile: (N, L) the share of top natural images less similar than the visualisation.
        score: (N,) the median of `relative` over the layers (descriptive).
        worst: (N,) the lowest `z` over the layers: the layer where the visualisation is least
            like the unit's own natural images.
        flagged: (N,) `worst < threshold`: at some layer the network processes the visualisation
            far outside the way it processes the natural images that drive the unit most.
        threshold: The threshold of `flagged`.
        top_indices: (N, top) the natural images that drive each unit most, best first.
        unit_values: (N,) the objective on each visualisation.
        natural_values: (N, top) the objective on its top natural images.
    """

    layers: tuple[str, ...]
    similarity: np.ndarray
    natural_mean: np.ndarray
    natural_std: np.ndarray
    z: np.ndarray
    pool_mean: np.ndarray
    relative: np.ndarray
    percentile: np.ndarray
    score: np.ndarray
    worst: np.ndarray
    flagged: np.ndarray
    threshold: float
    top_indices: np.ndarray
    unit_values: np.ndarray
    natural_values: np.ndarray

    def __str__(self) -> str:
        width = max(20, *(len(name) for name in self.layers))
        header = f"{'z (natural spreads)':<{width}}  " + "  ".join(
            f"image {i:<3}" for i in range(len(self.score))
        )
        rows = [header]
        for position, name in enumerate(self.layers):
            rows.append(f"{name:<{width}}  " + "  ".join(f"{r:+9.2f}" for r in self.z[:, position]))
        rows.append(f"{'lowest':<{width}}  " + "  ".join(f"{s:+9.2f}" for s in self.worst))
        verdicts = ("FLAGGED" if flag else "ok" for flag in self.flagged)
        rows.append(f"{f'< {self.threshold:g}':<{width}}  " + "  ".join(f"{v:>9}" for v in verdicts))
        return "\n".join(rows)


# ---- the layers to compare ----


def _upstream_nodes(model, tap: Tap) -> list:
    """(route, keys) of every layer call the tap depends on, nested models opened, image first."""
    owner, keys, found = model, tap.key.split("/"), []
    for level, node in enumerate(tap.route):
        upstream = ancestors(list(node.input_tensors), {id(t) for t in owner.inputs})
        for route, path in occurrences(owner, lambda _: True, tap.route[:level], tuple(keys[:level])):
            if id(route[level]) in upstream:
                found.append((route, path))
        owner = node.operation
    if has_graph(owner):  # the tap is a nested model's output: all of it leads there
        found += occurrences(owner, lambda _: True, tap.route, tuple(keys))
    return found


def _default_layers(objective: Objective, count: int) -> list[Tap]:
    """`count` layers spread evenly along the path from the image to the objective's first layer.

    The candidates are the convolutional (rank 4) outputs the layer depends on, nested models
    opened; nonlinear ones (activations, residual additions) are preferred when there are any.
    """
    model, tap = objective.model, objective.taps[0]
    candidates = []
    for route, path in _upstream_nodes(model, tap):
        node = route[-1]
        if has_graph(node.operation) or len(node.outputs) != 1 or len(node.outputs[0].shape) != 4:
            continue
        candidates.append(("/".join(path), type(node.operation).__name__ in _NONLINEAR))
    if not candidates:
        raise ValueError(
            f"No convolutional layer leads to {tap.key!r} in model {model.name!r}, so there is no "
            "path to compare; pass `layers` explicitly."
        )
    pool = [key for key, nonlinear in candidates if nonlinear] or [key for key, _ in candidates]
    picks = np.unique(np.round(np.linspace(0, len(pool) - 1, min(count, len(pool)))).astype(int))
    return [find_tap(model, pool[i]) for i in picks]


def _layer_taps(objective: Objective, layers) -> list[Tap]:
    if isinstance(layers, (bool, np.bool_)):
        raise ValueError(f"`layers` must be a number of layers or a list of layers, received {layers!r}.")
    if isinstance(layers, (int, np.integer)):
        return _default_layers(objective, checks.positive_int("layers", layers))
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or len(layers) == 0:
        raise ValueError(
            "`layers` must be a positive int (that many layers spread along the path to the unit) or "
            f"a non-empty list of layer names, paths, indices or layers, received {layers!r}."
        )
    taps = list({tap.key: tap for tap in (find_tap(objective.model, layer) for layer in layers)}.values())
    return taps


# ---- checks of the images ----


def _images(name: str, images, channels: int, low: float, high: float) -> np.ndarray:
    array = np.asarray(images.numpy() if isinstance(images, tf.Tensor) else images, np.float32)
    if array.ndim != 4 or array.shape[-1] != channels or 0 in array.shape:
        raise ValueError(
            f"`{name}` must be a batch (N, H, W, {channels}) matching the model's {channels} input "
            f"channels, received shape {array.shape}."
        )
    tolerance = _RANGE_TOLERANCE * (high - low)
    if not np.isfinite(array).all() or array.min() < low - tolerance or array.max() > high + tolerance:
        raise ValueError(
            f"`{name}` must lie in values_range ({low:g}, {high:g}); its values span "
            f"[{np.nanmin(array):.3g}, {np.nanmax(array):.3g}]. Pass the range they are in as `values_range`."
        )
    return array


# ---- the measurement ----


def _pooled(activation: tf.Tensor) -> np.ndarray:
    """(N, ..., C) -> (N, C): the mean over positions."""
    activation = tf.cast(activation, tf.float32)
    if activation.shape.rank > 2:
        activation = tf.reduce_mean(activation, axis=list(range(1, activation.shape.rank - 1)))
    return activation.numpy().astype(np.float64)


def _run(objective: Objective, model, layer_taps, prepare, images, batch_size: int):
    """Pooled activations per layer (M, C_l) and the objective of every item on every image (N_obj, M)."""
    taps = (*objective.taps, *[tap for tap in layer_taps if tap.key not in objective.layer_names])
    features = feature_model(model, taps)
    arguments = [
        tf.nest.map_structure(tf.convert_to_tensor, objective.arguments(np.array([item])))
        for item in range(objective.batch_size)
    ]
    pooled, values = {tap.key: [] for tap in layer_taps}, []
    for start in range(0, len(images), batch_size):
        outputs = features(prepare(images[start : start + batch_size], model), training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        outputs = dict(zip([tap.key for tap in taps], outputs, strict=True))
        for key in pooled:
            pooled[key].append(_pooled(outputs[key]))
        reads = {key: outputs[key] for key in objective.layer_names}
        values.append([term_values(objective.signature, reads, item, 1).numpy()[0] for item in arguments])
    return {key: np.concatenate(parts) for key, parts in pooled.items()}, np.concatenate(values, axis=1)


def _ranks(vectors: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, ties averaged, centred and scaled to unit length."""
    order = np.argsort(vectors, axis=-1, kind="stable")
    ranks = np.empty_like(vectors)
    np.put_along_axis(ranks, order, np.arange(vectors.shape[-1], dtype=float) * np.ones_like(vectors), -1)
    for row in np.ndindex(vectors.shape[:-1]):  # ties (e.g. channels at 0 after a ReLU) share a rank
        values, inverse = np.unique(vectors[row], return_inverse=True)
        if len(values) < vectors.shape[-1]:
            sums = np.bincount(inverse, ranks[row])
            ranks[row] = (sums / np.bincount(inverse))[inverse]
    ranks = ranks - ranks.mean(axis=-1, keepdims=True)
    return ranks / np.maximum(np.linalg.norm(ranks, axis=-1, keepdims=True), 1e-12)


def _layer_figures(natural: np.ndarray, visualisation: np.ndarray, top: np.ndarray) -> tuple:
    """A visualisation's rank correlation with its top natural images at one layer, and the references.

    The first is Spearman's correlation between the visualisation's pooled channels and the mean of
    the top images'; the second holds each top image's correlation with the mean of the others; the
    third each other natural image's correlation with the mean of the top images.
    """
    chosen = natural[top]
    similarity = float(_ranks(visualisation) @ _ranks(chosen.mean(axis=0)))
    others = (chosen.sum(axis=0)[None] - chosen) / (len(top) - 1)
    leave_one_out = np.sum(_ranks(chosen) * _ranks(others), axis=-1)
    rest = np.setdiff1d(np.arange(len(natural)), top)
    pool = _ranks(natural[rest]) @ _ranks(chosen.mean(axis=0)) if len(rest) else np.zeros(1)
    return similarity, leave_one_out, pool


def path_similarity(
    objective: Objective,
    visualizations,
    natural_images,
    layers: int | Sequence = 6,
    top: int = 16,
    threshold: float = -25.0,
    values_range: tuple[float, float] = (0.0, 1.0),
    model_values_range: tuple[float, float] = (0.0, 1.0),
    input_size: tuple[int, int] | None = None,
    batch_size: int = 32,
) -> PathSimilarity:
    """Whether the network processes each visualisation as it processes natural images of its unit.

    After Geirhos et al. (ICML 2024, "Don't trust your eyes"): a visualisation can be made to show
    anything, but one that explains the unit is processed, layer by layer, like the natural images
    that activate it. The natural images are scored by `objective` and the `top` best kept for each
    item. At each layer, activations are averaged over positions; the visualisation's similarity is
    Spearman's rank correlation of its channels with the mean of the top natural images'. Two
    references put it on one scale at every layer: the top images themselves (each one's
    correlation with the mean of the others) and the rest of the natural images (their correlation
    with the mean of the top ones). `relative` is 1 when the visualisation is as alike as the unit's
    own images, 0 when no more alike than any natural image; `z` counts the top images' spreads.
    An image is `flagged` when its lowest `z` over the layers is below `threshold`.

    The default threshold was set on one demonstration (the documentation's sanity page, with
    the figures it gave): honest visualisations stayed above it and a planted high-frequency
    pattern fell far below. It is not a calibrated test: read the per-layer `z` of the units you
    doubt against those of units you trust, on the same model.

    Args:
        objective: What the visualisations maximise; batch size N (one item per visualisation) or 1
            (the same unit for all).
        visualizations: (N, H, W, C) images in `values_range`.
        natural_images: (M, H', W', C) natural images in `values_range`, M >= `top` (e.g.
            `random_crops(offline_photos())`).
        layers: How many layers to spread along the path from the image to the objective's layer
            (activations and residual sums, nested models opened), or a list of layers (names,
            paths, indices or layer objects).
        top: How many natural images drive each unit (at least 3).
        threshold: `flagged` means a lowest `z` below this.
        values_range: Range of both image batches.
        model_values_range: Range the model expects.
        input_size: Size both batches are resized to (antialiased); defaults to the model's input
            size, or 224 x 224 for models that take any size.
        batch_size: Images per model call.

    Returns:
        A `PathSimilarity`; `print` it for a table of `z` per layer and image.

    Example:
    >>> pool = random_crops(offline_photos(), count=256, seed=0)
    >>> result = path_similarity(Neuron(model, -1, [967, 281]), images, pool)
    >>> result.flagged
    array([False,  True])
    """
    objective = objective_from(objective)
    low, high = checks.values_range(values_range)
    prepare = preparer(values_range, model_values_range, input_size)
    top = checks.positive_int("top", top)
    threshold = checks.number("threshold", threshold)
    batch_size = checks.positive_int("batch_size", batch_size)
    model = objective.model
    visualizations, natural_images = _checked_images(objective, visualizations, natural_images, low, high)
    layer_taps = _layer_taps(objective, layers)
    _check_top(top, len(natural_images))
    natural, natural_scores = _run(objective, model, layer_taps, prepare, natural_images, batch_size)
    seen, seen_scores = _run(objective, model, layer_taps, prepare, visualizations, batch_size)
    count = len(visualizations)
    items = np.arange(count) if objective.batch_size == count else np.zeros(count, int)
    chosen = np.argsort(-natural_scores, axis=1, kind="stable")[:, :top]
    figures = _figures(natural, seen, chosen, items, layer_taps)
    similarity, natural_mean, natural_std, percentile, pool_mean = figures
    z = (similarity - natural_mean) / np.maximum(natural_std, _MIN_SPREAD)
    relative = (similarity - pool_mean) / np.maximum(natural_mean - pool_mean, _MIN_SPREAD)
    score = np.median(relative, axis=1)
    worst = z.min(axis=1)
    return PathSimilarity(
        layers=tuple(tap.key for tap in layer_taps),
        similarity=similarity,
        natural_mean=natural_mean,
        natural_std=natural_std,
        z=z,
        pool_mean=pool_mean,
        relative=relative,
        percentile=percentile,
        score=score,
        worst=worst,
        flagged=worst < threshold,
        threshold=threshold,
        top_indices=chosen[items],
        unit_values=seen_scores[items, np.arange(count)],
        natural_values=np.take_along_axis(natural_scores, chosen, axis=1)[items],
    )


def _checked_images(objective: Objective, visualizations, natural_images, low, high) -> tuple:
    """Both batches as float arrays of the model's channels within the range, checked against the
    objective's batch size."""
    channels = image_input_shape(objective.model)[-1]
    visualizations = _images("visualizations", visualizations, channels, low, high)
    natural_images = _images("natural_images", natural_images, channels, low, high)
    if objective.batch_size not in (1, len(visualizations)):
        raise ValueError(
            f"The objective has batch size {objective.batch_size}, but {len(visualizations)} "
            "visualizations were passed: give one item per visualisation, or one for all."
        )
    return visualizations, natural_images


def _check_top(top: int, count: int) -> None:
    if not 3 <= top <= count:
        raise ValueError(
            f"`top` must be at least 3 and at most the number of natural images ({count}), received {top}."
        )


def _figures(natural: dict, seen: dict, chosen: np.ndarray, items: np.ndarray, layer_taps) -> tuple:
    """Per visualisation and layer (N, L): the similarity to its unit's top natural images, the
    mean and spread of theirs, the share of them below it, and the pool's mean similarity."""
    shape = (len(items), len(layer_taps))
    similarity, natural_mean, natural_std = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    percentile, pool_mean = np.zeros(shape), np.zeros(shape)
    for image, item in enumerate(items):
        for position, tap in enumerate(layer_taps):
            value, others, rest = _layer_figures(natural[tap.key], seen[tap.key][image], chosen[item])
            similarity[image, position] = value
            pool_mean[image, position] = rest.mean()
            natural_mean[image, position] = others.mean()
            natural_std[image, position] = others.std(ddof=1)
            percentile[image, position] = np.mean(others < value)
    return similarity, natural_mean, natural_std, percentile, pool_mean
