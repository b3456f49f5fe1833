"""`evaluate`: an objective's value on model inputs, without crops or noise."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from .._objectives.coerce import objective_from
from .._objectives.extractor import feature_model, features
from .._objectives.inputs import model_inputs
from .._objectives.objective import Objective, term_values
from .._objectives.taps import defined_inputs, not_an_image


def evaluate(objective: Objective, inputs) -> np.ndarray:
    """The objective's value for each batch item on model inputs, without crops or noise.

    Args:
        objective: An objective with batch size N (or an Xplique objective, see `from_xplique`).
        inputs: (N, H, W, C) or (N * K, H, W, C) images at the model's input size; with K
            inputs per item, values are averaged over them. For a model with several inputs, a
            dict with every input by name (`{"image": images, "meta": rows}`): the other inputs
            have as many rows as the images, or one row for all of them.

    Returns:
        A numpy array (N,) of objective values.

    Example:
    >>> evaluate(Neuron(model, -1, [3, 5]), images)  # images (2, 32, 32, 3)
    """
    objective = objective_from(objective)
    batch_size = objective.batch_size
    if isinstance(inputs, Mapping):
        image, images, others = _by_name(objective, inputs)
        extractor = feature_model(objective.model, objective.taps, image=image)
    else:
        images, others = tf.convert_to_tensor(inputs, tf.float32), []
        extractor = feature_model(objective.model, objective.taps)
    if images.shape.rank != 4 or images.shape[0] % batch_size:
        raise ValueError(
            f"`inputs` must be (N * K, H, W, C) with N = {batch_size} the objective's batch size; "
            f"received shape {tuple(images.shape)}."
        )
    outputs = features(extractor, images, others)
    activations = dict(zip(objective.layer_names, outputs, strict=True))
    arguments = tf.nest.map_structure(tf.convert_to_tensor, objective.arguments())
    values = term_values(objective.signature, activations, arguments, batch_size)
    return tf.reduce_mean(values, axis=1).numpy()


def _by_name(objective: Objective, inputs: Mapping) -> tuple[int, tf.Tensor, list[tf.Tensor]]:
    """Every input of the model from a dict by name: the position of the image input (the first
    image-shaped one), its images (float32), and the other inputs' rows for each image, checked
    as `maco`'s `inputs` are."""
    model = objective.model
    tensors = defined_inputs(model)
    names = [tensor.name for tensor in tensors]
    if sorted(inputs) != sorted(names):
        raise ValueError(
            f"`inputs` as a dict must hold every input of model {model.name!r} by name, {names}; "
            f"received {sorted(inputs)}."
        )
    image = next((i for i, tensor in enumerate(tensors) if not_an_image(model, tensor) is None), 0)
    images = tf.convert_to_tensor(inputs[names[image]], tf.float32)
    count = int(images.shape[0]) if images.shape.rank else 1
    others = {name: value for name, value in inputs.items() if name != names[image]}
    fixed = model_inputs(model, others, count)
    return fixed.image, images, [tf.convert_to_tensor(rows) for rows in fixed.rows(np.arange(count))]


# Floats of tiled activations per call of the objective's reduction: bounds the memory of `every_value`.
_TILED_FLOATS = 1 << 25


def every_value(objective: Objective, inputs: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Every item's value on every input: (n inputs, N items), without crops or noise.

    Each batch of inputs goes through the feature model once; each item's reduction then reads
    the batch's activations (tiled for a chunk of items at a time, so the memory stays bounded).
    """
    objective = objective_from(objective)
    extractor = feature_model(objective.model, objective.taps)
    items = objective.batch_size
    rows = []
    for start in range(0, len(inputs), batch_size):
        batch = tf.convert_to_tensor(inputs[start : start + batch_size], tf.float32)
        outputs = extractor(batch, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        size = sum(int(np.prod(output.shape)) for output in outputs)
        chunk = max(1, min(items, _TILED_FLOATS // max(size, 1)))
        columns = []
        for first in range(0, items, chunk):
            picked = np.arange(first, min(first + chunk, items))
            # Item i reads every input of the batch: rows i * B .. i * B + B - 1 of the tiled outputs.
            tiled = {
                key: tf.tile(output, [len(picked)] + [1] * (output.shape.rank - 1))
                for key, output in zip(objective.layer_names, outputs, strict=True)
            }
            arguments = tf.nest.map_structure(tf.convert_to_tensor, objective.arguments(picked))
            columns.append(term_values(objective.signature, tiled, arguments, len(picked)).numpy().T)
        rows.append(np.concatenate(columns, axis=1))
    return np.concatenate(rows)
