"""`evaluate`: an objective's value on model inputs, without crops or noise."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .._objectives.coerce import objective_from
from .._objectives.extractor import feature_model
from .._objectives.objective import Objective, term_values


def evaluate(objective: Objective, inputs) -> np.ndarray:
    """The objective's value for each batch item on model inputs, without crops or noise.

    Args:
        objective: An objective with batch size N (or an Xplique objective, see `from_xplique`).
        inputs: (N, H, W, C) or (N * K, H, W, C) images at the model's input size; with K
            inputs per item, values are averaged over them.

    Returns:
        A numpy array (N,) of objective values.

    Example:
    >>> evaluate(Neuron(model, -1, [3, 5]), images)  # images (2, 32, 32, 3)
    """
    objective = objective_from(objective)
    inputs = tf.convert_to_tensor(inputs, tf.float32)
    batch_size = objective.batch_size
    if inputs.shape.rank != 4 or inputs.shape[0] % batch_size:
        raise ValueError(
            f"`inputs` must be (N * K, H, W, C) with N = {batch_size} the objective's batch size; "
            f"received shape {tuple(inputs.shape)}."
        )
    outputs = feature_model(objective.model, objective.taps)(inputs, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    activations = dict(zip(objective.layer_names, outputs, strict=True))
    arguments = tf.nest.map_structure(tf.convert_to_tensor, objective.arguments())
    values = term_values(objective.signature, activations, arguments, batch_size)
    return tf.reduce_mean(values, axis=1).numpy()
