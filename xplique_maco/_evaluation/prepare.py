"""Model inputs from images: the value range mapped to the model's, the size resized to its input."""

from __future__ import annotations

import keras
import tensorflow as tf

from .._config import checks, defaults


def preparer(values_range, model_values_range, input_size):
    """Checks the shared arguments, then gives `prepare(images, model)`: the model's inputs.

    `prepare` rescales images to the model's value range and resizes them (with antialiasing)
    to `input_size`, else the model's input size, else the library's default size.
    """
    low, high = checks.values_range(values_range)
    target_low, target_high = checks.values_range(model_values_range, "model_values_range")
    if input_size is not None:
        input_size = checks.pair_of_ints("input_size", input_size)

    def prepare(images, model: keras.Model) -> tf.Tensor:
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape.rank != 4:
            raise ValueError(f"`images` must be a batch (N, H, W, C), received shape {tuple(images.shape)}.")
        images = (images - low) / (high - low) * (target_high - target_low) + target_low
        size = input_size
        if size is None:
            size = tuple(model.inputs[0].shape[1:3])
            size = (defaults.INPUT_SIZE,) * 2 if None in size else size
        return tf.image.resize(images, size, method="bilinear", antialias=True)

    return prepare
