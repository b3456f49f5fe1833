"""The kinds that read units: `Neuron` (one position), `Channel` (all positions), `Layer` (all units)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..objective import Objective, Term
from ..paths import warn_if_squashed
from ..taps import LayerLike, find_tap


def _as_indices(index, units: int | None, layer_name: str) -> np.ndarray:
    values = np.atleast_1d(np.asarray(index))
    if values.ndim != 1 or values.size == 0 or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"`index` must be an int or a non-empty list of ints, received {index!r}.")
    if units is not None and ((values < 0) | (values >= units)).any():
        bad = values[(values < 0) | (values >= units)]
        raise ValueError(
            f"Index {bad.tolist()} out of range for layer {layer_name!r} with {units} units "
            f"(accepted: 0 to {units - 1})."
        )
    return values.astype(np.int32)


def _as_position(position, shape: tuple, layer_name: str) -> np.ndarray:
    """A static position, or -1 entries meaning 'the centre', resolved inside the graph."""
    rank = len(shape)
    spatial = shape[1:-1]
    if rank == 2:
        if position is not None:
            raise ValueError(
                f"Layer {layer_name!r} is dense (shape {shape}); it has no positions, "
                "so `position` must be None."
            )
        return np.zeros((0,), np.int32)
    if position is None:
        return np.full((rank - 2,), -1, np.int32)
    values = np.atleast_1d(np.asarray(position))
    expected = "an int (token index)" if rank == 3 else "a (row, column) pair"
    if values.shape != (rank - 2,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"`position` for layer {layer_name!r} with shape {shape} must be {expected}, "
            f"received {position!r}."
        )
    for value, size in zip(values, spatial, strict=True):
        if value < 0 or (size is not None and value >= size):
            raise ValueError(
                f"Position {tuple(values.tolist())} is outside layer {layer_name!r} whose "
                f"positions span {spatial}."
            )
    return values.astype(np.int32)


def _format_index(indices: np.ndarray) -> str:
    if len(indices) == 1:
        return str(int(indices[0]))
    shown = ", ".join(str(int(i)) for i in indices[:6])
    return f"[{shown}{', ...' if len(indices) > 6 else ''}]"


def _pick_unit(activation: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """(N, K, D) with per-item indices (N,) -> (N, K)."""
    return tf.gather(activation, index[:, None], axis=2, batch_dims=1)[..., 0]


def _positions_axes(activation: tf.Tensor) -> list[int]:
    """The axes of (N, K, *positions, D) that hold positions."""
    return list(range(2, activation.shape.rank - 1))


class Neuron(Objective):
    """Maximise one unit of a layer at one position: one image per index.

    Args:
        model: The Keras model to explain (one image input, channels last).
        layer: Layer name, path into a nested model (`"base/block_6_expand"`), index in
            `model.layers` (negative allowed), layer object or symbolic tensor of the model.
        index: Unit (channel) index, or a list of indices for a batch (one image each).
        position: For convolutional outputs a (row, column) pair, for token outputs a token
            index. Defaults to the centre. Must be None for dense outputs.

    Example:
    >>> objective = Neuron(model, -1, [1, 94, 130])  # three logits, three images
    """

    batched = ("index",)

    def __init__(self, model: keras.Model, layer: LayerLike, index, position=None):
        tap = find_tap(model, layer)
        warn_if_squashed(tap)
        indices = _as_indices(index, tap.shape[-1], tap.key)
        where = _as_position(position, tap.shape, tap.key)
        shown = "" if position is None else f", position={tuple(where.tolist())}"
        text = f"Neuron({tap.key}, {_format_index(indices)}{shown})"
        arguments = {"index": indices, "position": where}
        super().__init__(model, (Term(Neuron, (tap,), arguments, self.batched, text),))

    @staticmethod
    def reduce(activations, arguments, static):
        (activation,) = activations
        if activation.shape.rank > 3:
            spatial = tf.shape(activation)[2:-1]
            position = tf.where(arguments["position"] < 0, spatial // 2, arguments["position"])
            if activation.shape.rank == 4:
                activation = activation[:, :, position[0], :]
            else:
                activation = activation[:, :, position[0], position[1], :]
        return _pick_unit(activation, arguments["index"])

    @classmethod
    def check(cls, term, shapes, input_size):
        position = term.arguments["position"]
        if (position < 0).all():
            return
        spatial = shapes[0][1:-1]
        if any(p >= size for p, size in zip(position, spatial, strict=True)):
            raise ValueError(
                f"Position {tuple(position.tolist())} is outside layer {term.taps[0].key!r}, whose "
                f"positions span {spatial} for crops of size {input_size}."
            )

    @classmethod
    def layout(cls, term):
        if len(term.taps[0].shape) > 2:
            return f"{term.text} reads one position of {term.taps[0].key!r}"
        return None


class Channel(Objective):
    """Maximise the mean of one channel over all positions (or the unit of a dense layer).

    Args:
        model: The Keras model to explain.
        layer: Layer name, path into a nested model, index in `model.layers`, layer object
            or symbolic tensor (as for `Neuron`).
        index: Channel index, or a list of indices for a batch (one image each).

    Example:
    >>> objective = Channel(model, "block4_conv3", 12)
    """

    batched = ("index",)

    def __init__(self, model: keras.Model, layer: LayerLike, index):
        tap = find_tap(model, layer)
        warn_if_squashed(tap)
        indices = _as_indices(index, tap.shape[-1], tap.key)
        text = f"Channel({tap.key}, {_format_index(indices)})"
        super().__init__(model, (Term(Channel, (tap,), {"index": indices}, self.batched, text),))

    @staticmethod
    def reduce(activations, arguments, static):
        (activation,) = activations
        if activation.shape.rank > 3:
            activation = tf.reduce_mean(activation, axis=_positions_axes(activation))
        return _pick_unit(activation, arguments["index"])


class Layer(Objective):
    """Maximise the mean squared activation of a whole layer (DeepDream-like).

    Args:
        model: The Keras model to explain.
        layer: Layer name, path into a nested model, index in `model.layers`, layer object
            or symbolic tensor (as for `Neuron`).

    Example:
    >>> objective = Layer(model, "block5_conv3")
    """

    def __init__(self, model: keras.Model, layer: LayerLike):
        tap = find_tap(model, layer)
        warn_if_squashed(tap)
        super().__init__(model, (Term(Layer, (tap,), {}, self.batched, f"Layer({tap.key})"),))

    @staticmethod
    def reduce(activations, arguments, static):
        (activation,) = activations
        return tf.reduce_mean(tf.square(activation), axis=list(range(2, activation.shape.rank)))
