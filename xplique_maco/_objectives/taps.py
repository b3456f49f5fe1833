"""Where objectives read: one call of one layer of the model passed in, nested models included."""

from __future__ import annotations

import difflib
import numbers
from dataclasses import dataclass

import keras
import numpy as np

from .graph import call_key, has_graph, node_of, occurrences, operation_calls

# What `layer` may be in an objective: a name or path, an index, a layer, or a symbolic tensor.
LayerLike = str | int | keras.layers.Layer | keras.KerasTensor
_SUPPORTED_RANKS = {2: "dense (N, D)", 3: "tokens (N, T, D)", 4: "convolutional (N, H, W, C)"}


@dataclass(frozen=True, eq=False)
class Tap:
    """One output of one layer call inside a model: what an objective term reads.

    Attributes:
        key: How the call is named from the outer model: `"conv2"`, a path through nested
            models `"mobilenetv2_1.00_224/block_6_expand"`, with `@k` where a layer is called
            several times in one model (`"shared@1"`).
        layer: The layer (or nested model) called.
        shape: The output shape of that call.
        route: The graph nodes from the outer model down to the call, one per nesting level.
    """

    key: str
    layer: keras.layers.Layer
    shape: tuple
    route: tuple


def defined_inputs(model: keras.Model) -> list:
    """The model's symbolic inputs, or a clear error when it has none (a model never built)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model, received {type(model).__name__}.")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            f"Model {model.name!r} has no defined input. Build it on a keras.Input "
            "(e.g. keras.Sequential([keras.Input((224, 224, 3)), ...]))."
        )
    return list(inputs)


def not_an_image(model: keras.Model, tensor) -> str | None:
    """Why the input `tensor` of `model` cannot be the image MACO optimises, or None when it can
    (rank 4, channels last, known channels, floating point)."""
    shape = tuple(tensor.shape)
    name = getattr(tensor, "name", "input")
    if len(shape) != 4 or shape[-1] is None:
        return (
            f"Model {model.name!r} takes input {name!r} of shape {shape}, which is not an image. "
            "Accepted: (None, H, W, C), channels last, with C known (H and W may be None)."
        )
    dtype = str(getattr(tensor, "dtype", "float32"))
    if not dtype.startswith(("float", "bfloat")):
        return (
            f"Model {model.name!r} takes {dtype} input {name!r}; MACO optimises images by gradient and "
            "needs a floating-point input. Wrap the model in one that takes float32 and casts."
        )
    height, width, channels = shape[1:]
    if channels > 4 and height is not None and height <= 4:
        return (
            f"Model {model.name!r} input {shape} looks channels-first; MACO needs channels-last "
            f"(None, H, W, C) input. Wrap it in a model that takes channels-last images: "
            f"inputs = keras.Input({(width, channels, height)}); "
            "model = keras.Model(inputs, original(keras.layers.Permute((3, 1, 2))(inputs)))."
        )
    return None


def image_input_shape(model: keras.Model) -> tuple:
    """The model's single image input shape (None, H, W, C), checked.

    Raises:
        ValueError: if the model has several inputs, or an input that is not an image
            (rank 4, channels last, known number of channels).
    """
    inputs = defined_inputs(model)
    if len(inputs) != 1:
        names = ", ".join(repr(tensor.name) for tensor in inputs)
        raise ValueError(
            f"Model {model.name!r} has {len(inputs)} inputs ({names}); this needs a model with a "
            "single image input (None, H, W, C). `maco` and `fourier` fix the other inputs with "
            "`inputs={name: array}`, and `evaluate` takes every input by name; elsewhere, wrap the "
            "model in a keras.Model that fixes the other inputs."
        )
    problem = not_an_image(model, inputs[0])
    if problem:
        raise ValueError(problem)
    return tuple(inputs[0].shape)


def check_has_image_input(model: keras.Model) -> None:
    """Checks that `model` has an input an objective's image can enter: its only input, checked as
    `image_input_shape` does, or with several inputs at least one image-shaped one (which one the
    image is, and the other inputs' values, are given when rendering)."""
    inputs = defined_inputs(model)
    if len(inputs) == 1:
        image_input_shape(model)
        return
    problems = [not_an_image(model, tensor) for tensor in inputs]
    if all(problems):
        raise ValueError(
            f"None of the {len(inputs)} inputs of model {model.name!r} is an image MACO can optimise: "
            + " ".join(problems)
        )


def _choose_call(model: keras.Model, operation, call: int | None, prefix: list[str]):
    """The node of `operation` in `model` (its `call`-th one), refusing ambiguity."""
    nodes = operation_calls(model)[operation]
    if call is None and len(nodes) > 1:
        choices = " or ".join(repr("/".join([*prefix, f"{operation.name}@{k}"])) for k in range(len(nodes)))
        raise ValueError(
            f"Layer {operation.name!r} is called {len(nodes)} times inside model {model.name!r}, so "
            f"which of its outputs to read is ambiguous. Choose a call (numbered in the order the "
            f"calls were made): layer={choices}, or pass the symbolic tensor that call returned."
        )
    call = 0 if call is None else call
    if not 0 <= call < len(nodes):
        raise ValueError(
            f"Layer {operation.name!r} is called {len(nodes)} time(s) inside model {model.name!r}; "
            f"call {call} does not exist (accepted: 0 to {len(nodes) - 1})."
        )
    return nodes[call], call_key(operation.name, call, len(nodes))


def _by_path(model: keras.Model, text: str) -> tuple[tuple, list[str]]:
    route, keys, current = [], [], model
    segments = text.split("/")
    for position, segment in enumerate(segments):
        by_name = {operation.name: operation for operation in operation_calls(current)}
        name, at, number = segment.rpartition("@")
        if segment in by_name or not (at and number.isdigit() and name in by_name):
            name, call = segment, None
        else:
            call = int(number)
        if name not in by_name:
            raise ValueError(_not_found(current, model, name, text, keys))
        operation = by_name[name]
        node, key = _choose_call(current, operation, call, keys)
        route.append(node)
        keys.append(key)
        if position < len(segments) - 1:
            if not has_graph(operation):
                raise ValueError(
                    f"Layer {text!r}: {operation.name!r} in model {current.name!r} is not a functional or "
                    f"Sequential model, so the layers inside it cannot be read (a subclassed model "
                    f"has no graph). Target its output, {'/'.join(keys)!r}, or build it functionally."
                )
            current = operation
    return tuple(route), keys


def _not_found(current: keras.Model, outer: keras.Model, name: str, text: str, prefix: list[str]) -> str:
    """Where the layer is if it is nested deeper; else the closest names, as full paths that work."""
    names = [operation.name for operation in operation_calls(current)]
    nested = ["/".join(keys) for _, keys in occurrences(current, lambda node: node.operation.name == name)]
    where = f"model {current.name!r}" + ("" if current is outer else f" (inside {outer.name!r})")
    full = ["/".join([*prefix, path]) for path in nested]
    if nested:
        owners = sorted({path.rsplit("/", 1)[0] for path in full})
        return (
            f"Layer {text!r} is not a layer of {where}: it is inside the nested model "
            f"{' and '.join(repr(o) for o in owners)}. Reach it by its path, "
            f"layer={' or '.join(repr(p) for p in full)}, or pass the layer object."
        )
    deeper = {"/".join(keys): keys[-1] for _, keys in occurrences(current, lambda node: True)}
    close = difflib.get_close_matches(name, list(dict.fromkeys([*names, *deeper.values()])), n=3)
    paths = sorted((p for p, last in deeper.items() if last in close), key=lambda p: close.index(deeper[p]))
    hint = f" Did you mean {' or '.join(repr('/'.join([*prefix, p])) for p in paths[:3])}?" if close else ""
    listed = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return f"Layer {text!r} not found in {where}.{hint} Its layers: {listed}."


def _by_object(model: keras.Model, target) -> tuple[tuple, list[str]]:
    if keras.backend.is_keras_tensor(target):
        wanted = node_of(target)
        found = occurrences(model, lambda node: node is wanted)
        what = "This symbolic tensor"
    else:
        found = occurrences(model, lambda node: node.operation is target)
        what = f"Layer {target.name!r}"
    if not found:
        raise ValueError(
            f"{what} is not computed inside model {model.name!r} (nor inside the models nested in it)."
        )
    if len(found) > 1:
        paths = " or ".join(repr("/".join(keys)) for _, keys in found)
        raise ValueError(
            f"{what} is called {len(found)} times inside model {model.name!r}, so which of its outputs "
            f"to read is ambiguous. Choose one call by its path: layer={paths}."
        )
    route, keys = found[0]
    return route, list(keys)


def find_tap(model: keras.Model, layer) -> Tap:
    """Finds what `layer` names in `model`, checked: a name, a path, an index, a layer or a tensor.

    Args:
        model: The model passed in by the user.
        layer: A layer name; a path through nested models `"base/block_6_expand"` (with `@k`
            to pick the k-th call of a layer called several times in one model); an index into
            `model.layers` (negative allowed); a layer object; or the symbolic tensor a layer
            call returned while the model was built.

    Returns:
        The `Tap`, with the output shape checked to be dense, tokens or convolutional.
    """
    check_has_image_input(model)
    if isinstance(layer, (bool, np.bool_)):
        raise TypeError(f"`layer` must be a layer name, index, layer or tensor, received {layer!r}.")
    if isinstance(layer, str):
        route, keys = _by_path(model, layer)
    elif isinstance(layer, numbers.Integral):
        layers = model.layers
        if not -len(layers) <= layer < len(layers):
            raise ValueError(
                f"Layer index {layer} is out of range for model {model.name!r} with {len(layers)} "
                f"layers (accepted: {-len(layers)} to {len(layers) - 1}). Note: in Keras 3, "
                "Sequential.layers has no InputLayer while a functional model's does."
            )
        chosen = layers[int(layer)]
        if chosen not in operation_calls(model):
            raise ValueError(
                f"Layer index {layer} of model {model.name!r} is {chosen.name!r}, which computes nothing "
                "from the image (an InputLayer, or a layer the model's outputs do not use)."
            )
        node, key = _choose_call(model, chosen, None, [])
        route, keys = (node,), [key]
    elif isinstance(layer, keras.layers.Layer) or keras.backend.is_keras_tensor(layer):
        route, keys = _by_object(model, layer)
    else:
        raise TypeError(
            "`layer` must be a layer name or path (str), an index (int), a keras layer or a symbolic "
            f"tensor of the model, received {layer!r} of type {type(layer).__name__}."
        )
    key = "/".join(keys)
    node = route[-1]
    if len(node.outputs) != 1:
        raise ValueError(
            f"Layer {key!r} has {len(node.outputs)} outputs; objectives need a layer with one output."
        )
    shape = tuple(node.outputs[0].shape)
    if len(shape) not in _SUPPORTED_RANKS:
        accepted = "; ".join(f"rank {rank}: {text}" for rank, text in _SUPPORTED_RANKS.items())
        raise ValueError(
            f"Layer {key!r} outputs shape {shape} (rank {len(shape)}), which is not "
            f"supported. Accepted: {accepted}."
        )
    return Tap(key=key, layer=node.operation, shape=shape, route=route)
