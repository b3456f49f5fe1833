"""`Inversion`: feature inversion, the cosine similarity of a layer's activations with a reference's."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..extractor import feature_model
from ..objective import EPSILON, Objective, Term
from ..taps import LayerLike, find_tap, image_input_shape


class Inversion(Objective):
    """Feature inversion: make the image's activations at a layer match a reference image's.

    The value is the cosine similarity between the layer's whole activation (all positions and
    channels) on a crop of the generated image and on the reference image; 1 is a perfect
    match. What the rendered image keeps shows what the layer keeps of the reference; what it
    loses (exact colours, positions, textures) the layer threw away. Positions are compared
    one by one, so render at the model's input size with crops covering almost the whole
    image, e.g. `maco(objective, image_shape=(224, 224), crop_size=(0.9, 1.0))`.

    Args:
        model: The Keras model to explain.
        layer: Layer name, path into a nested model, index in `model.layers`, layer object
            or symbolic tensor (as for `Neuron`).
        image: The reference: one image (H, W, C) or a batch (N, H, W, C), one rendered image
            each, at the size the model will see (`model_input_size` in `maco`) and in the
            model's input value range (the `values_range` you pass to `maco`).

    Example:
    >>> objective = Inversion(model, "block4_conv3", photo)  # photo (224, 224, 3) in [0, 1]
    >>> images, _ = maco(objective, image_shape=(224, 224), crop_size=(0.9, 1.0))
    """

    batched = ("target",)

    def __init__(self, model: keras.Model, layer: LayerLike, image):
        tap = find_tap(model, layer)
        input_shape = image_input_shape(model)
        try:
            reference = np.asarray(image, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError(
                f"`image` must be an array of numbers, received {type(image).__name__}."
            ) from None
        if reference.ndim == 3:
            reference = reference[None]
        height, width, channels = input_shape[1:]
        if not (
            reference.ndim == 4
            and len(reference) > 0
            and height in (None, reference.shape[1])
            and width in (None, reference.shape[2])
            and reference.shape[3] == channels
        ):
            size = f"{height or 'H'}, {width or 'W'}, {channels}"
            raise ValueError(
                f"The reference `image` for model {model.name!r} must have shape ({size}) or "
                f"(N, {size}), the model's input (H, W free where the model takes any size); "
                f"received shape {np.shape(image)}."
            )
        if not np.isfinite(reference).all():
            raise ValueError("The reference `image` must be finite (no NaN or inf).")
        target = feature_model(model, (tap,)).predict_on_batch(reference)
        target = np.asarray(target[0] if isinstance(target, list) else target, np.float32)
        if not np.isfinite(target).all() or not np.abs(target).reshape(len(target), -1).max(axis=1).all():
            raise ValueError(
                f"Layer {tap.key!r} gives an all-zero or non-finite activation on the reference "
                "image: there is nothing to invert. Check the image's value range, or pick another layer."
            )
        count = "" if len(target) == 1 else f", {len(target)} images"
        text = f"Inversion({tap.key}{count})"
        super().__init__(model, (Term(Inversion, (tap,), {"target": target}, self.batched, text),))

    @staticmethod
    def reduce(activations, arguments, static):
        """Cosine similarity of each input's whole activation with its item's reference."""
        (activation,) = activations
        axes = list(range(2, activation.shape.rank))
        target = tf.expand_dims(tf.cast(arguments["target"], activation.dtype), 1)
        dot = tf.reduce_sum(activation * target, axis=axes)
        norms = tf.reduce_sum(tf.square(activation), axis=axes) * tf.reduce_sum(tf.square(target), axis=axes)
        return dot / (tf.sqrt(norms) + EPSILON)

    @classmethod
    def check(cls, term, shapes, input_size):
        target = term.arguments["target"]
        if tuple(target.shape[1:]) != tuple(shapes[0][1:]):
            raise ValueError(
                f"The inversion reference's activation at layer {term.taps[0].key!r} has shape "
                f"{tuple(target.shape[1:])}, but crops of size {input_size} give "
                f"{tuple(shapes[0][1:])}: set `model_input_size` to the reference image's size."
            )

    @classmethod
    def layout(cls, term):
        return f"{term.text} compares positions with its reference"
