"""`Custom`: your own function of one or more layers' activations, as an objective."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from ..objective import Objective, Term
from ..taps import LayerLike, find_tap


class Custom(Objective):
    """Maximise your own function of one or more layers' activations.

    The function runs inside the compiled step, once per step on all crops: write it with
    TensorFlow (or `keras.ops`) operations on a batch of B crops. Arrays passed as keyword
    arguments enter the step as tensors, one row per image, so rendering other targets with
    the same function and shapes does not retrace. A `Custom` objective combines with the
    others by `+`, `-` and scalars.

    Args:
        model: The Keras model to explain.
        layers: One layer (name, path, index, layer object or symbolic tensor, as for `Neuron`)
            or a list of them; their activations are the function's positional arguments.
        function: `function(*activations, **arguments) -> values`: each activation is a batch
            (B, ...) of one layer's outputs on B crops, each argument a batch (B, ...) whose
            row b belongs to the image of crop b; it returns the value of each crop, (B,).
            Define it once, outside loops: another function object compiles another step.
        positional: True when the value depends on where features sit in the crop (one
            position, a layout); `maco` then keeps the crops inside the image.
        **arguments: Arrays with one row per image (N, ...), or a single row (1, ...) shared by
            all; N images are rendered.

    Example:
    >>> def centre_minus_rest(activation, channel):
    ...     picked = tf.gather(activation, channel, axis=-1, batch_dims=1)  # (B, H, W)
    ...     centre = picked[:, picked.shape[1] // 2, picked.shape[2] // 2]
    ...     return centre - tf.reduce_mean(picked, axis=(1, 2))
    >>> objective = Custom(model, "block4_conv3", centre_minus_rest, positional=True, channel=[12, 50])
    """

    def __init__(
        self,
        model: keras.Model,
        layers: LayerLike | Sequence[LayerLike],
        function: Callable[..., tf.Tensor],
        positional: bool = False,
        **arguments,
    ):
        if not callable(function):
            raise TypeError(f"`function` must be callable, received {type(function).__name__}.")
        if not isinstance(positional, (bool, np.bool_)):
            raise TypeError(f"`positional` must be True or False, received {positional!r}.")
        several = isinstance(layers, (list, tuple))
        if several and not layers:
            raise ValueError("`layers` is empty: a Custom objective reads at least one layer.")
        taps = tuple(find_tap(model, layer) for layer in (layers if several else [layers]))
        if len({tap.key for tap in taps}) != len(taps):
            raise ValueError(f"`layers` names a layer twice: {[tap.key for tap in taps]}.")
        rows = {name: _argument_rows(name, value) for name, value in arguments.items()}
        sizes = {len(value) for value in rows.values()} - {1}
        if len(sizes) > 1:
            raise ValueError(
                "The arguments of a Custom objective must have the same number of rows (one per "
                f"image), or one row; received { ({name: len(value) for name, value in rows.items()}) }."
            )
        name = getattr(function, "__name__", type(function).__name__)
        text = f"Custom({name}, {', '.join(tap.key for tap in taps)})"
        term = Term(Custom, taps, rows, tuple(rows), text, static=(function, bool(positional)))
        super().__init__(model, (term,))

    @staticmethod
    def reduce(activations, arguments, static):
        function, _ = static
        batch_size, crops = tf.shape(activations[0])[0], tf.shape(activations[0])[1]
        flat = [tf.reshape(a, [-1, *a.shape[2:]]) for a in activations]
        rows = {name: tf.repeat(v, crops, axis=0) for name, v in arguments.items() if name != "coefficient"}
        values = tf.cast(function(*flat, **rows), tf.float32)
        return tf.reshape(values, [batch_size, crops])

    @classmethod
    def check(cls, term, shapes, input_size):
        function, _ = term.static
        activations = [tf.zeros((2, *shape[1:])) for shape in shapes]
        rows = {name: np.repeat(value[:1], 2, axis=0) for name, value in term.arguments.items()}
        try:
            values = function(*activations, **rows)
            shape = tuple(tf.convert_to_tensor(values).shape)
        except Exception as error:
            described = ", ".join(f"{tap.key} {tuple(s)}" for tap, s in zip(term.taps, shapes, strict=True))
            raise ValueError(
                f"{term.text} fails on a batch of 2 crops of size {input_size} (activations: "
                f"{described}): {type(error).__name__}: {error}"
            ) from error
        if shape != (2,):
            raise ValueError(
                f"{term.text} must return one value per crop, shape (B,); on a batch of 2 crops it "
                f"returned shape {shape}. Reduce over the other axes (e.g. tf.reduce_mean)."
            )

    @classmethod
    def layout(cls, term):
        return f"{term.text} is positional" if term.static[1] else None


def _argument_rows(name: str, value) -> np.ndarray:
    try:
        rows = np.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(f"Argument `{name}` must be an array, received {type(value).__name__}.") from None
    if rows.ndim == 0 or len(rows) == 0:
        raise ValueError(
            f"Argument `{name}` must have one row per image (N, ...), received shape {rows.shape}."
        )
    if not (np.issubdtype(rows.dtype, np.number) or rows.dtype == bool):
        raise ValueError(f"Argument `{name}` must hold numbers, received dtype {rows.dtype}.")
    if np.issubdtype(rows.dtype, np.floating):
        rows = rows.astype(np.float32)
    elif np.issubdtype(rows.dtype, np.integer):
        rows = rows.astype(np.int32)
    return rows
