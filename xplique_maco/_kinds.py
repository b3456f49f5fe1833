"""The kinds of objectives, one class each: what they read, how they reduce it, what they check."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from ._model import LayerLike, feature_model, find_tap, image_input_shape, warn_if_squashed
from ._objective import Objective, Term

_EPSILON = 1e-6
# Directions weight the dot product by the cosine, floored (as in Lucid and Xplique) so that
# activations pointing away from the direction still get a gradient towards it.
_COSINE_FLOOR = 0.1


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
        cosine = dot / (tf.norm(activation, axis=-1) + _EPSILON)
        weighted = dot * tf.pow(tf.clip_by_value(cosine, _COSINE_FLOOR, 1.0), arguments["power"])
        return tf.reduce_mean(weighted, axis=list(range(2, weighted.shape.rank)))


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
        return dot / (tf.sqrt(norms) + _EPSILON)

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
