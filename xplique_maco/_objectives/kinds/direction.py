"""`Direction`: the activation along a direction of a layer's channels, weighted by the cosine."""

from __future__ import annotations

import numbers

import keras
import numpy as np
import tensorflow as tf

from ..objective import EPSILON, Objective, Term
from ..paths import warn_if_squashed
from ..taps import LayerLike, find_tap

# Directions weight the dot product by the cosine, floored (as in Lucid and Xplique) so that
# activations pointing away from the direction still get a gradient towards it.
_COSINE_FLOOR = 0.1


class Direction(Objective):
    """Maximise the activation along a direction, weighted by cosine similarity to it.

    At each position the value is `dot(a, v) * max(cos(a, v), 0.1) ** cossim_power` with `v`
    the unit direction; positions are averaged. The floor keeps a gradient towards `v` where
    the activations point away from it, so any signed direction (a concept vector, a logit
    direction) climbs. A 2-D array of directions makes a batch.

    Args:
        model: The Keras model to explain.
        layer: Layer name, path into a nested model, index in `model.layers`, layer object
            or symbolic tensor (as for `Neuron`).
        vectors: One direction of shape (D,) or a batch of directions of shape (N, D), with D
            the layer's number of channels.
        cossim_power: How strongly to favour activations aligned with the direction
            (0 gives the plain dot product).

    Example:
    >>> objective = Direction(model, "block4_conv3", concept_vectors)  # one image per concept
    """

    batched = ("vector",)

    def __init__(self, model: keras.Model, layer: LayerLike, vectors, cossim_power: float = 2.0):
        tap = find_tap(model, layer)
        warn_if_squashed(tap)
        try:
            directions = np.asarray(vectors, dtype=np.float64)  # float64: huge vectors must not overflow
        except (TypeError, ValueError):
            raise ValueError(
                f"Direction vectors must be numbers, received {type(vectors).__name__}."
            ) from None
        if directions.ndim == 1:
            directions = directions[None]
        units = tap.shape[-1]
        if (
            directions.ndim != 2
            or directions.shape[0] == 0
            or (units is not None and directions.shape[1] != units)
        ):
            raise ValueError(
                f"Direction vectors for layer {tap.key!r} must have shape ({units},) or "
                f"(N, {units}); received shape {np.shape(vectors)}."
            )
        if not np.isfinite(directions).all():
            raise ValueError("Direction vectors must be finite (no NaN or inf).")
        norms = np.linalg.norm(directions, axis=1, keepdims=True)
        if (norms == 0).any():
            raise ValueError("Direction vectors must be non-zero.")
        if not isinstance(cossim_power, numbers.Real) or not np.isfinite(cossim_power) or cossim_power < 0:
            raise ValueError(f"`cossim_power` must be a finite number >= 0, received {cossim_power!r}.")
        count = "" if len(directions) == 1 else f", {len(directions)} directions"
        arguments = {"vector": (directions / norms).astype(np.float32), "power": np.float32(cossim_power)}
        text = f"Direction({tap.key}{count})"
        super().__init__(model, (Term(Direction, (tap,), arguments, self.batched, text),))

    @staticmethod
    def reduce(activations, arguments, static):
        (activation,) = activations
        vector = arguments["vector"]  # (N, D), unit norm
        vector = tf.reshape(vector, [tf.shape(vector)[0]] + [1] * (activation.shape.rank - 2) + [-1])
        dot = tf.reduce_sum(activation * vector, axis=-1)
        cosine = dot / (tf.norm(activation, axis=-1) + EPSILON)
        weighted = dot * tf.pow(tf.clip_by_value(cosine, _COSINE_FLOOR, 1.0), arguments["power"])
        return tf.reduce_mean(weighted, axis=list(range(2, weighted.shape.rank)))
