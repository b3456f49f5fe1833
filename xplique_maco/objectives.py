"""Objectives: what to maximise inside a Keras model, and their algebra."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace

import keras
import numpy as np
import tensorflow as tf

from ._model import (
    LayerLike,
    Tap,
    feature_model,
    find_tap,
    image_input_shape,
    position_tied,
    warn_if_squashed,
)

__all__ = ["Objective", "Neuron", "Channel", "Layer", "Direction", "Inversion", "evaluate_terms"]

_EPSILON = 1e-6
# Directions weight the dot product by the cosine, floored (as in Lucid and Xplique) so that
# activations pointing away from the direction still get a gradient towards it.
_COSINE_FLOOR = 0.1
_BATCHED = ("index", "vector", "target")  # arguments that lead with the batch axis


@dataclass(frozen=True)
class _Term:
    """One weighted reduction of one layer's output.

    `kind` and `layer` are static (they shape the compiled graph); everything in `arguments`
    and the coefficient enters the graph as a tensor, so changing them does not retrace.
    """

    kind: str
    tap: Tap
    coefficient: float
    arguments: dict  # name -> np.ndarray; "index" and "vector" lead with the batch axis
    text: str

    @property
    def layer(self) -> str:
        return self.tap.key

    @property
    def rank(self) -> int:
        return len(self.tap.shape)

    @property
    def batch_size(self) -> int:
        for name in _BATCHED:
            if name in self.arguments:
                return len(self.arguments[name])
        return 1

    @property
    def signature(self) -> tuple:
        return (self.kind, self.layer, self.rank)

    def broadcast(self, batch_size: int) -> _Term:
        arguments = dict(self.arguments)
        for name in _BATCHED:
            if name in arguments and len(arguments[name]) != batch_size:
                arguments[name] = np.repeat(arguments[name], batch_size, axis=0)
        return replace(self, arguments=arguments)


class Objective:
    """A weighted sum of reductions of layer outputs; each batch item gives one image.

    Build objectives with `Neuron`, `Channel`, `Layer`, `Direction` or `Inversion` and combine them with
    `+`, `-`, unary `-`, and multiplication or division by a scalar. A batch of size 1
    broadcasts against a batch of size N.

    Example:
    >>> objective = Channel(model, "conv2", 3) + 0.5 * Layer(model, "conv1")
    >>> objective
    Channel(conv2, 3) + 0.5 * Layer(conv1)
    """

    def __init__(self, model: keras.Model, terms: tuple[_Term, ...]):
        self.model = model
        self.terms = tuple(terms)

    @property
    def batch_size(self) -> int:
        """Number of images this objective asks for."""
        return max(term.batch_size for term in self.terms)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """The distinct layers the objective reads, in order of first use (paths for nested ones)."""
        return tuple(tap.key for tap in self.taps)

    @property
    def taps(self) -> tuple[Tap, ...]:
        """The distinct layer calls the objective reads, in order of first use."""
        return tuple({term.tap.key: term.tap for term in self.terms}.values())

    @property
    def fixed_layout(self) -> str | None:
        """Why this objective needs one fixed layout of the image, or None if it does not.

        An `Inversion` compares positions with a reference; a `Neuron` of a convolutional or
        token layer reads one position; a layer read after a Flatten (a Flatten -> Dense head)
        weighs every position of the image with its own weights. Crops that wrap around the
        periodic image would average such an objective over every shift of the image (a
        `Neuron` would become a weak `Channel`), so `maco` keeps the crops inside the image
        for them.
        """
        for term in self.terms:
            if term.kind == "inversion":
                return f"{term.text} compares positions with its reference"
            if term.kind == "neuron" and term.rank > 2:
                return f"{term.text} reads one position of {term.layer!r}"
            tied = position_tied(term.tap)
            if tied is not None:
                return f"{term.text} reads positions through {tied!r}"
        return None

    @property
    def signature(self) -> tuple:
        """What shapes the compiled graph: kinds and layers of the terms, not their targets."""
        return tuple(term.signature for term in self.terms)

    def arguments(self, items: np.ndarray | None = None) -> list[dict[str, np.ndarray]]:
        """Per-term tensors (targets and coefficients), broadcast to the batch size.

        Args:
            items: Optional batch positions to keep (in this order, repeats allowed).
        """
        batch_size = self.batch_size
        result = []
        for term in self.terms:
            arguments = dict(term.broadcast(batch_size).arguments)
            if items is not None:
                for name in _BATCHED:
                    if name in arguments:
                        arguments[name] = arguments[name][items]
            arguments["coefficient"] = np.float32(term.coefficient)
            result.append(arguments)
        return result

    def __add__(self, other: Objective) -> Objective:
        if isinstance(other, numbers.Number) and other == 0:
            return self  # lets sum() start from 0
        if not isinstance(other, Objective):
            raise TypeError(
                f"Objectives add to objectives only (or to 0, for sum()), received {type(other).__name__}."
            )
        if other.model is not self.model:
            raise ValueError(
                "Cannot combine objectives built on different models "
                f"({self.model.name!r} and {other.model.name!r}); all terms of an objective "
                "must read the same model."
            )
        sizes = {self.batch_size, other.batch_size}
        if len(sizes - {1}) > 1:
            raise ValueError(
                f"Cannot combine objectives with batch sizes {self.batch_size} and "
                f"{other.batch_size}: sizes must be equal, or one of them 1 (it is broadcast). "
                f"Left: {self!r}. Right: {other!r}."
            )
        return Objective(self.model, self.terms + other.terms)

    __radd__ = __add__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Objective) -> Objective:
        if not isinstance(other, Objective):
            raise TypeError(f"Objectives subtract objectives only, received {type(other).__name__}.")
        return self + (-other)

    def __mul__(self, factor: float) -> Objective:
        if not isinstance(factor, numbers.Real) or isinstance(factor, bool):
            if isinstance(factor, Objective):
                raise TypeError("Objectives can be multiplied by a scalar only, not by another objective.")
            raise TypeError(
                f"Objectives can be multiplied by a real number only, received {type(factor).__name__}."
            )
        if not np.isfinite(factor):
            raise ValueError(f"Cannot multiply an objective by {factor}: the factor must be finite.")
        terms = tuple(replace(t, coefficient=t.coefficient * float(factor)) for t in self.terms)
        return Objective(self.model, terms)

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> Objective:
        if not isinstance(divisor, numbers.Real) or isinstance(divisor, bool):
            raise TypeError(
                f"Objectives can be divided by a real number only, received {type(divisor).__name__}."
            )
        if divisor == 0:
            raise ZeroDivisionError("Cannot divide an objective by zero.")
        return self * (1.0 / float(divisor))

    def __repr__(self) -> str:
        parts = []
        for position, term in enumerate(self.terms):
            sign = "-" if term.coefficient < 0 else "+"
            size = abs(term.coefficient)
            scaled = term.text if size == 1 else f"{size:g} * {term.text}"
            if position == 0:
                parts.append(("-" if sign == "-" else "") + scaled)
            else:
                parts.append(f" {sign} {scaled}")
        return "".join(parts)


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

    def __init__(self, model: keras.Model, layer: LayerLike, index, position=None):
        tap = find_tap(model, layer)
        warn_if_squashed(tap)
        shape = tap.shape
        indices = _as_indices(index, shape[-1], tap.key)
        where = _as_position(position, shape, tap.key)
        shown = "" if position is None else f", position={tuple(where.tolist())}"
        term = _Term(
            kind="neuron",
            tap=tap,
            coefficient=1.0,
            arguments={"index": indices, "position": where},
            text=f"Neuron({tap.key}, {_format_index(indices)}{shown})",
        )
        super().__init__(model, (term,))


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

    def __init__(self, model: keras.Model, layer: LayerLike, index):
        tap = find_tap(model, layer)
        warn_if_squashed(tap)
        shape = tap.shape
        indices = _as_indices(index, shape[-1], tap.key)
        term = _Term(
            kind="channel",
            tap=tap,
            coefficient=1.0,
            arguments={"index": indices},
            text=f"Channel({tap.key}, {_format_index(indices)})",
        )
        super().__init__(model, (term,))


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
        term = _Term(
            kind="layer",
            tap=tap,
            coefficient=1.0,
            arguments={},
            text=f"Layer({tap.key})",
        )
        super().__init__(model, (term,))


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

    def __init__(self, model: keras.Model, layer: LayerLike, vectors, cossim_power: float = 2.0):
        tap = find_tap(model, layer)
        warn_if_squashed(tap)
        shape = tap.shape
        try:
            directions = np.asarray(vectors, dtype=np.float64)  # float64: huge vectors must not overflow
        except (TypeError, ValueError):
            raise ValueError(
                f"Direction vectors must be numbers, received {type(vectors).__name__}."
            ) from None
        if directions.ndim == 1:
            directions = directions[None]
        units = shape[-1]
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
        term = _Term(
            kind="direction",
            tap=tap,
            coefficient=1.0,
            arguments={
                "vector": (directions / norms).astype(np.float32),
                "power": np.float32(cossim_power),
            },
            text=f"Direction({tap.key}{count})",
        )
        super().__init__(model, (term,))


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
        term = _Term(
            kind="inversion",
            tap=tap,
            coefficient=1.0,
            arguments={"target": target},
            text=f"Inversion({tap.key}{count})",
        )
        super().__init__(model, (term,))


# ---- evaluation inside the compiled graph: pure functions of tensors ----


def _at_position(activation: tf.Tensor, position: tf.Tensor) -> tf.Tensor:
    """Picks one position from (N, K, *positions, D); -1 entries mean the centre."""
    spatial = tf.shape(activation)[2:-1]
    position = tf.where(position < 0, spatial // 2, position)
    rank = activation.shape.rank
    if rank == 4:
        return activation[:, :, position[0], :]
    return activation[:, :, position[0], position[1], :]


def _pick_unit(activation: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """(N, K, D) with per-item indices (N,) -> (N, K)."""
    return tf.gather(activation, index[:, None], axis=2, batch_dims=1)[..., 0]


def _neuron(activation, arguments):
    if activation.shape.rank > 3:
        activation = _at_position(activation, arguments["position"])
    return _pick_unit(activation, arguments["index"])


def _channel(activation, arguments):
    if activation.shape.rank > 3:
        activation = tf.reduce_mean(activation, axis=list(range(2, activation.shape.rank - 1)))
    return _pick_unit(activation, arguments["index"])


def _layer(activation, arguments):
    return tf.reduce_mean(tf.square(activation), axis=list(range(2, activation.shape.rank)))


def _direction(activation, arguments):
    vector = arguments["vector"]  # (N, D), unit norm
    broadcast_shape = [tf.shape(vector)[0]] + [1] * (activation.shape.rank - 2) + [-1]
    vector = tf.reshape(vector, broadcast_shape)
    dot = tf.reduce_sum(activation * vector, axis=-1)
    cosine = dot / (tf.norm(activation, axis=-1) + _EPSILON)
    weighted = dot * tf.pow(tf.clip_by_value(cosine, _COSINE_FLOOR, 1.0), arguments["power"])
    return tf.reduce_mean(weighted, axis=list(range(2, weighted.shape.rank)))


def _inversion(activation, arguments):
    """Cosine similarity of each input's whole activation with its item's reference."""
    axes = list(range(2, activation.shape.rank))
    target = tf.expand_dims(tf.cast(arguments["target"], activation.dtype), 1)
    dot = tf.reduce_sum(activation * target, axis=axes)
    norms = tf.sqrt(
        tf.reduce_sum(tf.square(activation), axis=axes) * tf.reduce_sum(tf.square(target), axis=axes)
    )
    return dot / (norms + _EPSILON)


_REDUCERS = {
    "neuron": _neuron,
    "channel": _channel,
    "layer": _layer,
    "direction": _direction,
    "inversion": _inversion,
}


def evaluate_terms(signature: tuple, activations: dict, arguments: list, batch_size: int) -> tf.Tensor:
    """Objective values (N, K) for activations of N * K inputs, K consecutive ones per item.

    Args:
        signature: `Objective.signature`.
        activations: Layer name -> activation tensor with N * K leading rows.
        arguments: `Objective.arguments()` as tensors.
        batch_size: N.

    Returns:
        A (N, K) tensor: each item's objective on each of its K inputs.
    """
    total = 0.0
    for (kind, layer, _rank), term_arguments in zip(signature, arguments, strict=True):
        activation = tf.cast(activations[layer], tf.float32)
        shape = tf.concat([[batch_size, -1], tf.shape(activation)[1:]], axis=0)
        activation = tf.reshape(activation, shape)
        value = _REDUCERS[kind](activation, term_arguments)
        total = total + term_arguments["coefficient"] * value
    return total
