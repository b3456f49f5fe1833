"""Xplique's objects read into ours: its feature-visualisation objectives and CRAFT's concept banks.

Nothing here imports Xplique: its objects are recognised by the module of their type and read
by their attributes, so using xplique_maco never loads Xplique unless you pass one of its objects.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Sequence
from dataclasses import replace

import keras
import numpy as np
import tensorflow as tf

from .kinds.custom import Custom
from .kinds.direction import Direction
from .kinds.units import Channel, Layer, Neuron
from .objective import Objective
from .taps import LayerLike, find_tap

_OBJECTIVES_MODULE = "xplique.features_visualizations.objectives"
_CONSTRUCTORS = ("neuron", "channel", "layer", "direction")
# Xplique 2.0.2's `dot_cossim` floors the cosine at 0.1 before raising it to `cossim_pow`.
_XPLIQUE_COSINE_FLOOR = 0.1


def is_xplique(value) -> bool:
    """True for an object of one of Xplique's types (read from the module of its type)."""
    return type(value).__module__.split(".")[0] == "xplique"


# ---- the values of Xplique's constructors, as functions of one layer's activations ----
# Module-level functions: a Custom term's function is part of the compiled step's key, so every
# conversion shares them and another id or vector does not retrace.


def xplique_neuron(activation, unit):
    """One unit of the flattened activation (Xplique's flat neuron id), per crop."""
    flat = tf.reshape(activation, [tf.shape(activation)[0], -1])
    return tf.gather(flat, unit[:, None], axis=1, batch_dims=1)[:, 0]


def xplique_layer_mean(activation):
    """The mean activation of the whole layer (Xplique's `reducer="mean"`), per crop."""
    return tf.reduce_mean(activation, axis=list(range(1, activation.shape.rank)))


def xplique_direction(activation, vector, power):
    """Xplique's `dot_cossim` for each crop: dot product with the vector (broadcast over the
    positions) times the cosine of the whole activation with it, floored, to a power."""
    axes = list(range(1, activation.shape.rank))
    dot = tf.reduce_sum(activation * vector, axis=axes)
    cosine = tf.reduce_sum(tf.nn.l2_normalize(activation, axes) * tf.nn.l2_normalize(vector, axes), axes)
    return dot * tf.pow(tf.maximum(cosine, _XPLIQUE_COSINE_FLOOR), power)


def from_xplique(objective) -> Objective:
    """Our objective with the meaning of an Xplique `features_visualizations.Objective`.

    Each combination of Xplique's Cartesian product becomes one image of the batch, in
    Xplique's order (the last part varies fastest). Xplique's normalisations are kept: a
    channel or a dense neuron is divided by the layer's channel count, a neuron of a spatial
    layer (a flat id) by the layer's size, a layer is its mean squared (or, with
    `reducer="mean"`, plain) activation, a direction is `dot_cossim` per crop. The parts add up
    weighted by their multipliers.

    Args:
        objective: An `xplique.features_visualizations.Objective` built with `neuron`,
            `channel`, `layer` or `direction` and combined by `+`, `-` and `*`.

    Returns:
        An `xplique_maco.Objective` whose batch size is the number of Xplique combinations.

    Raises:
        ValueError: naming the part that uses something xplique_maco cannot express (a loss
            function of your own, a mask changed by hand), before any computation.

    Example:
    >>> from xplique.features_visualizations import Objective as XpliqueObjective
    >>> objective = from_xplique(XpliqueObjective.neuron(model, "logits", [1, 4]))
    >>> objective
    0.1 * Neuron(logits, [1, 4])
    """
    parts = _parts(objective)
    sizes = [len(masks) for _, _, masks, _, _ in parts]
    # itertools.product's order: combination i takes entry rows[k][i] of part k.
    rows = np.unravel_index(np.arange(int(np.prod(sizes))), sizes)
    total = None
    for number, (kind, tensor, masks, func, multiplier) in enumerate(parts):
        describe = _describer(objective, number, len(parts))
        converted = _convert_part(objective.model, kind, tensor, masks, func, describe)
        if sizes[number] > 1 and len(sizes) > 1:
            converted = _select(converted, rows[number])
        converted = converted * multiplier
        total = converted if total is None else total + converted
    return total


def _parts(objective) -> list[tuple]:
    """(constructor, layer tensor, masks, function, multiplier) per part, all checked."""
    missing = [
        name for name in ("model", "layers", "masks", "funcs", "multipliers") if not hasattr(objective, name)
    ]
    if missing:
        raise TypeError(
            f"{type(objective).__module__}.{type(objective).__name__} is not an Xplique "
            "feature-visualisation Objective (it has no "
            f"{', '.join(repr(m) for m in missing)}). Accepted: xplique.features_visualizations.Objective "
            "built with neuron, channel, layer or direction, or an xplique_maco Objective (for a "
            "fitted CRAFT object, `from_craft(craft)` gives its concepts as an objective)."
        )
    if not isinstance(objective.model, keras.Model):
        raise TypeError(
            f"The Xplique objective's model must be a keras.Model, received {type(objective.model).__name__}."
        )
    columns = (objective.layers, objective.masks, objective.funcs, objective.multipliers)
    if len({len(column) for column in columns}) != 1 or not columns[0]:
        raise ValueError(
            "The Xplique objective's layers, masks, funcs and multipliers must be non-empty lists of one "
            f"length; received lengths {[len(column) for column in columns]}."
        )
    parts = []
    for number, (tensor, masks, func, multiplier) in enumerate(zip(*columns, strict=True)):
        describe = _describer(objective, number, len(columns[0]))
        kind = _constructor(func)
        if kind is None:
            name = getattr(func, "__qualname__", type(func).__name__)
            module = getattr(func, "__module__", None)
            raise ValueError(
                f"{describe()} uses the function {name!r}"
                f"{f' of module {module!r}' if module else ''}, which xplique_maco cannot express. "
                "Accepted: the parts Xplique's Objective.neuron, channel, layer and direction build, "
                "combined by +, - and *. For a function of your own, write it as "
                "xplique_maco.Custom(model, layer, function)."
            )
        if (
            not isinstance(multiplier, numbers.Real)
            or isinstance(multiplier, bool)
            or not np.isfinite(multiplier)
        ):
            raise ValueError(f"{describe()} has the multiplier {multiplier!r}: it must be a finite number.")
        if kind == "direction":
            masks = list(masks) if isinstance(masks, (list, tuple)) else [masks]
        else:
            masks = np.asarray(masks)
        if len(masks) == 0:
            raise ValueError(f"{describe()} has no masks (no ids or vectors): there is nothing to maximise.")
        parts.append((kind, tensor, masks, func, float(multiplier)))
    return parts


def _describer(objective, number: int, count: int):
    """A function giving 'Part k of n of the Xplique objective ("its name")', for errors."""

    def describe() -> str:
        names = getattr(objective, "names", None)
        shown = ""
        try:
            entry = names[number]
            entry = [entry] if isinstance(entry, str) else list(entry)
            shown = f" ({', '.join(map(str, entry[:3]))}{', ...' if len(entry) > 3 else ''})"
        except (TypeError, IndexError, KeyError):
            pass
        return f"Part {number + 1} of {count} of the Xplique objective{shown}"

    return describe


def _constructor(func) -> str | None:
    """Which of Xplique's constructors made this loss function, or None for any other."""
    qualname = getattr(func, "__qualname__", "")
    if getattr(func, "__module__", None) != _OBJECTIVES_MODULE:
        return None
    for kind in _CONSTRUCTORS:
        if qualname == f"Objective.{kind}.<locals>.optim_func":
            return kind
    return None


def _closure(func, name: str):
    return inspect.getclosurevars(func).nonlocals.get(name)


def _convert_part(model, kind: str, tensor, masks, func, describe) -> Objective:
    tap = find_tap(model, tensor)
    layer, shape = tap.key, tap.shape[1:]
    if any(size is None for size in shape):
        raise ValueError(f"{describe()} reads layer {tap.key!r} of unknown shape {tap.shape}.")
    if kind == "direction":
        return _direction(model, tap, masks, _closure(func, "cossim_pow"), describe)
    if tuple(masks.shape[1:]) != tuple(shape):
        raise ValueError(
            f"{describe()} has masks of shape {masks.shape[1:]} for layer {tap.key!r} of shape {shape}."
        )
    flat = masks.reshape(len(masks), -1)
    if kind == "layer":
        if not (flat == 1).all():
            raise ValueError(
                f"{describe()} has a layer mask changed by hand, which xplique_maco cannot express."
            )
        power = _closure(func, "power")
        if power == 2.0:
            return Layer(model, layer)
        if power == 1.0:
            return Custom(model, layer, xplique_layer_mean)
        raise ValueError(f"{describe()} raises the layer to the power {power!r}; accepted: 2 or 1.")
    ones = flat == 1
    if not ((flat == 0) | ones).all():
        raise ValueError(f"{describe()} has masks that are not 0 or 1, which xplique_maco cannot express.")
    if kind == "neuron":
        if (ones.sum(axis=1) != 1).any():
            raise ValueError(f"{describe()} has masks that do not pick one neuron each.")
        units = ones.argmax(axis=1)
        if len(shape) == 1:
            return Neuron(model, layer, units) / shape[0]
        return Custom(model, layer, xplique_neuron, positional=True, unit=units) / int(np.prod(shape))
    channels = ones.reshape(len(masks), -1, shape[-1])
    picked = channels.all(axis=1)
    if (picked.sum(axis=1) != 1).any() or (channels.any(axis=1) != picked).any():
        raise ValueError(f"{describe()} has masks that do not pick one whole channel each.")
    return Channel(model, layer, picked.argmax(axis=1)) / shape[-1]


def _direction(model, tap, vectors, power, describe) -> Objective:
    shape = tap.shape[1:]
    try:
        vectors = [np.asarray(vector, np.float32) for vector in vectors]
        stacked = np.stack(vectors)
    except (TypeError, ValueError):
        raise ValueError(
            f"{describe()} has direction vectors that are not arrays of numbers of one shape."
        ) from None
    vector_shape = stacked.shape[1:]
    if len(vector_shape) > len(shape):
        raise ValueError(
            f"{describe()} has vectors of shape {vector_shape} for layer {tap.key!r} of shape {shape}."
        )
    # A vector of the channels only is read at every position (a (1, 1, C) vector to Xplique).
    stacked = stacked.reshape(len(stacked), *(1,) * (len(shape) - len(vector_shape)), *vector_shape)
    try:
        np.broadcast_shapes(stacked.shape[1:], shape)
    except ValueError:
        raise ValueError(
            f"{describe()} has vectors of shape {vector_shape}, which do not broadcast against layer "
            f"{tap.key!r} of shape {shape}."
        ) from None
    if not np.isfinite(stacked).all() or not np.abs(stacked).reshape(len(stacked), -1).max(axis=1).all():
        raise ValueError(f"{describe()} has a direction vector that is zero or not finite.")
    if not isinstance(power, numbers.Real) or not np.isfinite(power):
        raise ValueError(f"{describe()} has `cossim_pow` {power!r}: it must be a finite number.")
    return Custom(model, tap.key, xplique_direction, vector=stacked, power=np.array([power], np.float32))


def _select(objective: Objective, rows: np.ndarray) -> Objective:
    """The objective with its batched arguments taken at `rows` (Xplique's product order); those of
    one row (a Custom term's shared arguments) broadcast as they are."""
    terms = tuple(
        replace(
            term,
            arguments={
                name: value[rows] if name in term.batched and len(value) > 1 else value
                for name, value in term.arguments.items()
            },
        )
        for term in objective.terms
    )
    return Objective(objective.model, terms)


# ---- CRAFT ----


def from_craft(
    craft,
    model: keras.Model | None = None,
    layer: LayerLike | None = None,
    concepts: Sequence[int] | None = None,
    cossim_power: float = 2.0,
) -> Direction:
    """One `Direction` per concept of a fitted Xplique CRAFT: its whole concept bank in one batch.

    CRAFT (`xplique.concepts.CraftTf`) factorises a layer's activations on crops of real photos
    into concepts: each row of its concept bank `W` is a direction in that layer's channels.
    `maco` of the result renders every concept, one image each, in one call.

    Args:
        craft: A fitted `xplique.concepts.CraftTf` (after `craft.fit(...)`).
        model: The model to render with. None: CRAFT's `input_to_latent_model` (the image to
            the concept layer), which is all a direction needs.
        layer: The layer of `model` CRAFT's concepts live in. None: the output of CRAFT's
            `input_to_latent_model`, found in `model`.
        concepts: Which concepts (rows of the bank), in this order. None: all of them.
        cossim_power: As in `Direction`.

    Returns:
        A `Direction` objective with one batch item per concept.

    Example:
    >>> craft = CraftTf(latent_model, head, number_of_concepts=6, patch_size=64)
    >>> craft.fit(photos, class_id=285)
    >>> images, transparencies = maco(from_craft(craft))  # one image per concept
    """
    if not hasattr(craft, "factorization") or not hasattr(craft, "input_to_latent_model"):
        raise TypeError(
            "`craft` must be a fitted Xplique CRAFT object (xplique.concepts.CraftTf), received "
            f"{type(craft).__name__}."
        )
    if craft.factorization is None:
        raise ValueError("This CRAFT object is not fitted yet: call `craft.fit(inputs, class_id)` first.")
    bank = np.asarray(craft.factorization.concept_bank_w, np.float32)
    if concepts is not None:
        chosen = np.atleast_1d(np.asarray(concepts))
        if chosen.ndim != 1 or not np.issubdtype(chosen.dtype, np.integer) or chosen.size == 0:
            raise ValueError(
                f"`concepts` must be a non-empty list of concept indices, received {concepts!r}."
            )
        if ((chosen < 0) | (chosen >= len(bank))).any():
            raise ValueError(
                f"`concepts` {chosen.tolist()} out of range for a bank of {len(bank)} concepts "
                f"(accepted: 0 to {len(bank) - 1})."
            )
        bank = bank[chosen]
    latent = craft.input_to_latent_model
    if model is None:
        if not isinstance(latent, keras.Model):
            raise TypeError(
                "CRAFT's `input_to_latent_model` is not a keras.Model: pass the `model` to render with "
                "and the `layer` of the concepts."
            )
        model = latent
    if layer is None:
        outputs = getattr(latent, "outputs", None)
        if not outputs or len(outputs) != 1:
            raise ValueError(
                "Pass `layer`: CRAFT's `input_to_latent_model` has no single output to find it by."
            )
        try:
            layer = find_tap(model, outputs[0]).key
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"The output of CRAFT's `input_to_latent_model` is not a layer of model {model.name!r} "
                f"({error}); pass the `layer` of `model` the concepts live in."
            ) from None
    return Direction(model, layer, bank, cossim_power=cossim_power)
