"""One keras.Model that outputs every layer an objective reads, each computed once."""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from .objectives import Objective, evaluate_terms

__all__ = ["feature_model", "image_input_shape", "evaluate"]

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def image_input_shape(model: keras.Model) -> tuple:
    """The model's single image input shape (None, H, W, C), checked.

    Raises:
        ValueError: if the model has several inputs, or an input that is not an image
            (rank 4, channels last, known number of channels).
    """
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            f"Model {model.name!r} has no defined input. Build it on a keras.Input "
            "(e.g. keras.Sequential([keras.Input((224, 224, 3)), ...]))."
        )
    if len(inputs) != 1:
        raise ValueError(
            f"Model {model.name!r} has {len(inputs)} inputs; MACO needs a model with a single "
            "image input (None, H, W, C). Wrap it in a keras.Model that fixes the other inputs."
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 4 or shape[-1] is None:
        raise ValueError(
            f"Model {model.name!r} takes input of shape {shape}, which is not an image. "
            "Accepted: (None, H, W, C), channels last, with C known (H and W may be None)."
        )
    dtype = str(getattr(inputs[0], "dtype", "float32"))
    if not dtype.startswith(("float", "bfloat")):
        raise ValueError(
            f"Model {model.name!r} takes {dtype} input; MACO optimises images by gradient and "
            "needs a floating-point input. Wrap the model in one that takes float32 and casts."
        )
    height, width, channels = shape[1:]
    if channels > 4 and height is not None and height <= 4:
        raise ValueError(
            f"Model {model.name!r} input {shape} looks channels-first; MACO needs channels-last "
            "(None, H, W, C) input."
        )
    return shape


def feature_model(model: keras.Model, layer_names: tuple[str, ...]) -> keras.Model:
    """A cached keras.Model mapping the model's input to the outputs of `layer_names`.

    Args:
        model: The model to explain.
        layer_names: Distinct layer names, in the order of the outputs.

    Returns:
        A keras.Model with one output per name.
    """
    image_input_shape(model)
    per_model = _CACHE.setdefault(model, {})
    if layer_names not in per_model:
        outputs = [model.get_layer(name).output for name in layer_names]
        per_model[layer_names] = keras.Model(model.inputs[0], outputs, name=f"{model.name}_features")
    return per_model[layer_names]


def evaluate(objective: Objective, inputs) -> np.ndarray:
    """The objective's value for each batch item on model inputs, without crops or noise.

    Args:
        objective: An objective with batch size N.
        inputs: (N, H, W, C) or (N * K, H, W, C) images at the model's input size; with K
            inputs per item, values are averaged over them.

    Returns:
        A numpy array (N,) of objective values.

    Example:
    >>> evaluate(Neuron(model, -1, [3, 5]), images)  # images (2, 32, 32, 3)
    """
    inputs = tf.convert_to_tensor(inputs, tf.float32)
    batch_size = objective.batch_size
    if inputs.shape.rank != 4 or inputs.shape[0] % batch_size:
        raise ValueError(
            f"`inputs` must be (N * K, H, W, C) with N = {batch_size} the objective's batch size; "
            f"received shape {tuple(inputs.shape)}."
        )
    extractor = feature_model(objective.model, objective.layer_names)
    outputs = extractor(inputs, training=False)
    if len(objective.layer_names) == 1:
        outputs = [outputs] if not isinstance(outputs, (list, tuple)) else outputs
    activations = dict(zip(objective.layer_names, outputs, strict=True))
    arguments = tf.nest.map_structure(tf.convert_to_tensor, objective.arguments())
    values = evaluate_terms(objective.signature, activations, arguments, batch_size)
    return tf.reduce_mean(values, axis=1).numpy()
