"""Where objectives read: one call of one layer of the model passed in, nested models included."""

from __future__ import annotations

import difflib
import numbers
import warnings
import weakref
from dataclasses import dataclass

import keras
import numpy as np

from ._backend import require_tensorflow

require_tensorflow()  # every objective and rendering comes through this module

# What `layer` may be in an objective: a name or path, an index, a layer, or a symbolic tensor.
LayerLike = str | int | keras.layers.Layer | keras.KerasTensor
_SUPPORTED_RANKS = {2: "dense (N, D)", 3: "tokens (N, T, D)", 4: "convolutional (N, H, W, C)"}
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


def image_input_shape(model: keras.Model) -> tuple:
    """The model's single image input shape (None, H, W, C), checked.

    Raises:
        ValueError: if the model has several inputs, or an input that is not an image
            (rank 4, channels last, known number of channels).
    """
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


# ---- the graph of a functional model, read from its symbolic tensors ----

_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _node_of(tensor):
    operation, node_index, _ = tensor._keras_history
    return None if operation is None else operation._inbound_nodes[node_index]


def _has_graph(model) -> bool:
    try:
        return isinstance(model, keras.Model) and bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False


def _graph(model: keras.Model) -> list:
    """The nodes (layer calls) of a functional or Sequential model, inputs first."""
    outputs = tuple(id(tensor) for tensor in model.outputs)
    cached = _GRAPHS.get(model)
    if cached is not None and cached[0] == outputs:  # Sequential.add() makes new outputs
        return cached[1]
    inputs = {id(tensor) for tensor in model.inputs}
    ordered, seen = [], set()
    stack = [(_node_of(tensor), False) for tensor in reversed(model.outputs)]
    while stack:  # iterative post-order: deep models must not hit the recursion limit
        node, expanded = stack.pop()
        if node is None or id(node) in seen:
            continue
        if expanded:
            seen.add(id(node))
            ordered.append(node)
            continue
        stack.append((node, True))
        for tensor in reversed(node.input_tensors):
            if id(tensor) not in inputs:
                stack.append((_node_of(tensor), False))
    nodes = [node for node in ordered if not isinstance(node.operation, keras.layers.InputLayer)]
    _GRAPHS[model] = (outputs, nodes)
    return nodes


def _calls(model: keras.Model) -> dict:
    """Operation -> the nodes calling it inside `model`, in the order the calls were made."""
    calls: dict = {}
    for node in _graph(model):
        calls.setdefault(node.operation, []).append(node)
    return {op: sorted(nodes, key=op._inbound_nodes.index) for op, nodes in calls.items()}


def _call_key(name: str, call: int, count: int) -> str:
    return name if count == 1 else f"{name}@{call}"


def _choose_call(model: keras.Model, operation, call: int | None, prefix: list[str]):
    """The node of `operation` in `model` (its `call`-th one), refusing ambiguity."""
    nodes = _calls(model)[operation]
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
    return nodes[call], _call_key(operation.name, call, len(nodes))


def _by_path(model: keras.Model, text: str) -> tuple[tuple, list[str]]:
    route, keys, current = [], [], model
    segments = text.split("/")
    for position, segment in enumerate(segments):
        by_name = {operation.name: operation for operation in _calls(current)}
        name, at, number = segment.rpartition("@")
        if segment in by_name or not (at and number.isdigit() and name in by_name):
            name, call = segment, None
        else:
            call = int(number)
        if name not in by_name:
            raise ValueError(_not_found(current, model, name, text))
        operation = by_name[name]
        node, key = _choose_call(current, operation, call, keys)
        route.append(node)
        keys.append(key)
        if position < len(segments) - 1:
            if not _has_graph(operation):
                raise ValueError(
                    f"Layer {text!r}: {operation.name!r} in model {current.name!r} is not a functional or "
                    f"Sequential model, so the layers inside it cannot be read (a subclassed model "
                    f"has no graph). Target its output, {'/'.join(keys)!r}, or build it functionally."
                )
            current = operation
    return tuple(route), keys


def _occurrences(model: keras.Model, match, prefix: tuple = (), keys: tuple = ()) -> list:
    """(route, keys) of every node in the tree of nested models for which `match(node)` holds."""
    found = []
    for operation, nodes in _calls(model).items():
        for call, node in enumerate(nodes):
            key = (*keys, _call_key(operation.name, call, len(nodes)))
            if match(node):
                found.append(((*prefix, node), key))
            if _has_graph(operation):
                found += _occurrences(operation, match, (*prefix, node), key)
    return found


def _not_found(current: keras.Model, outer: keras.Model, name: str, text: str) -> str:
    names = [operation.name for operation in _calls(current)]
    nested = ["/".join(keys) for _, keys in _occurrences(current, lambda node: node.operation.name == name)]
    where = f"model {current.name!r}" + ("" if current is outer else f" (inside {outer.name!r})")
    if nested:
        owners = sorted({path.rsplit("/", 1)[0] for path in nested})
        return (
            f"Layer {text!r} is not a layer of {where}: it is inside the nested model "
            f"{' and '.join(repr(o) for o in owners)}. Reach it by its path, "
            f"layer={' or '.join(repr(p) for p in nested)}, or pass the layer object."
        )
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" Did you mean {' or '.join(repr(n) for n in close)}?" if close else ""
    listed = ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40 else "")
    return f"Layer {text!r} not found in {where}.{hint} Available layers: {listed}."


def _by_object(model: keras.Model, target) -> tuple[tuple, list[str]]:
    if keras.backend.is_keras_tensor(target):
        wanted = _node_of(target)
        found = _occurrences(model, lambda node: node is wanted)
        what = "This symbolic tensor"
    else:
        found = _occurrences(model, lambda node: node.operation is target)
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
    image_input_shape(model)
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
        if chosen not in _calls(model):
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


# ---- what lies between the image and a tap ----


def _flattens_positions(node) -> bool:
    """A Flatten or Reshape that folds positions (rows, columns or tokens) into the feature axis."""
    if not isinstance(node.operation, (keras.layers.Flatten, keras.layers.Reshape)):
        return False
    before, after = node.input_tensors[0].shape, node.outputs[0].shape
    has_positions = len(before) >= 3 and any(size != 1 for size in before[1:-1])
    return has_positions and (len(after) == 2 or after[-1] != before[-1])


def _upstream(nodes: list, stop: set) -> list:
    """The nodes that `nodes` depend on, themselves included, up to the tensors in `stop`."""
    found, seen, stack = [], set(), list(nodes)
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        found.append(node)
        stack += [_node_of(t) for t in node.input_tensors if id(t) not in stop]
    return found


def position_tied(tap: Tap) -> str | None:
    """The layer that ties the tap to positions in the image (a Flatten before a Dense head), if any.

    Such a tap reads each position of the image with its own weights, so it has one layout
    to find; crops that wrap around a periodic image would average it over every shift.
    """

    def search(nodes: list, stop: set, prefix: str) -> str | None:
        for node in _upstream(nodes, stop):
            operation = node.operation
            if _has_graph(operation):
                found = search(
                    [_node_of(t) for t in operation.outputs],
                    {id(t) for t in operation.inputs},
                    f"{prefix}{operation.name}/",
                )
                if found:
                    return found
            elif _flattens_positions(node):
                return prefix + operation.name
        return None

    # Innermost level first: up from the tap to its model's inputs, then level by level outwards.
    models = [None, *(node.operation for node in tap.route[:-1])]
    keys = tap.key.split("/")
    for level in range(len(tap.route) - 1, -1, -1):
        node, owner = tap.route[level], models[level]
        stop = set() if owner is None else {id(t) for t in owner.inputs}
        start = [node] if level == len(tap.route) - 1 else [_node_of(t) for t in node.input_tensors]
        found = search(start, stop, "".join(f"{key.split('@')[0]}/" for key in keys[:level]))
        if found:
            return found
    return None


# ---- what a tap's layer ends in ----

_SQUASHING = ("softmax", "sigmoid")


def _last_call(node, key: str) -> tuple:
    """The call that computes a node's output, looking inside nested models, with its path."""
    operation = node.operation
    if _has_graph(operation) and len(operation.outputs) == 1:
        inner = _node_of(operation.outputs[0])
        if inner is not None:
            return _last_call(inner, f"{key}/{inner.operation.name}")
    return node, key


def warn_if_squashed(tap: Tap) -> None:
    """Warns when the tap reads the output of a softmax or a sigmoid, and says how to read logits."""
    node, key = _last_call(tap.route[-1], tap.key)
    operation = node.operation
    activation = getattr(operation, "activation", None)
    squashing = getattr(activation, "__name__", None) or type(operation).__name__.lower()
    if squashing not in _SQUASHING:
        return
    if isinstance(operation, (keras.layers.Activation, keras.layers.Softmax)) or activation is None:
        parents = [_node_of(t) for t in node.input_tensors]
        before = parents[0].operation.name if len(parents) == 1 and parents[0] is not None else None
        where = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
        how = "target the layer before it" + (f", {where + before!r}" if before else "")
    else:
        how = (
            f"rebuild the model with no activation on {key!r} and load the same weights, e.g. "
            "keras.applications.<Model>(..., classifier_activation=None), or Dense(..., activation=None)"
        )
    why = (
        "a probability rises as much by pushing the other classes down as by raising this one, and "
        "its gradient vanishes as it nears 1"
        if squashing == "softmax"
        else "its gradient vanishes as it nears 0 or 1"
    )
    inside = "" if key == tap.key else f" (at {key!r})"
    warnings.warn(
        f"Layer {tap.key!r} ends in a {squashing}{inside}: {why}, so the images come out weak. "
        f"Target the logits instead: {how}.",
        UserWarning,
        stacklevel=3,
    )


# ---- the one keras.Model over every tap of an objective ----


def _ancestors(tensors: list, stop: set) -> set:
    """Ids of the nodes the tensors depend on, up to the tensors in `stop`."""
    seen, stack = set(), [_node_of(t) for t in tensors if id(t) not in stop]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack += [_node_of(t) for t in node.input_tensors if id(t) not in stop]
    return seen


def _read(model: keras.Model, routes: list[tuple]) -> list:
    """Symbolic tensors in `model`'s graph for each route (of nodes starting in this graph).

    A route into a nested model opens that call: a keras.Model over the nested model's own
    graph, outputting what is read inside it (and its outputs, when something read later in
    this graph needs them), is called in its place. Layers after an opened call that lead to
    a read tensor are called again on the new tensors, so no layer is computed twice.
    """
    inputs = {id(t) for t in model.inputs}
    opened: dict[int, list[tuple]] = {}
    for route in routes:
        if len(route) > 1:
            opened.setdefault(id(route[0]), []).append(route[1:])
    direct = [route[0].outputs[0] for route in routes if len(route) == 1]
    needed = _ancestors(direct + [route[0].outputs[0] for route in routes if len(route) > 1], inputs)
    replaced: dict[int, object] = {}  # id(original tensor) -> the tensor computed instead
    inner: dict[int, list] = {}  # id(opened node) -> the tensors read inside it

    for node in _graph(model):  # inputs first
        if id(node) not in needed:
            continue
        arguments = {id(t): replaced.get(id(t), t) for t in node.input_tensors}
        if id(node) in opened:
            nested = node.operation
            others = direct + [
                t for key in opened if key != id(node) for t in _by_id(routes, key).input_tensors
            ]
            keep = list(nested.outputs) if id(node) in _ancestors(others, inputs) else []
            reads = _read(nested, opened[id(node)])
            entry = nested.inputs[0] if len(nested.inputs) == 1 else nested.inputs
            opening = keras.Model(entry, keep + reads, name=f"{nested.name}_opened")
        elif any(arguments[id(t)] is not t for t in node.input_tensors):
            opening, keep = node.operation, node.outputs
        else:
            continue
        args, kwargs = node.arguments.fill_in(arguments)
        results = keras.tree.flatten(opening(*args, **kwargs))
        for original, result in zip(node.outputs, results[: len(keep)], strict=False):
            replaced[id(original)] = result
        inner[id(node)] = results[len(keep) :]

    result = []
    for route in routes:
        if len(route) == 1:
            result.append(replaced.get(id(route[0].outputs[0]), route[0].outputs[0]))
        else:
            result.append(inner[id(route[0])][opened[id(route[0])].index(route[1:])])
    return result


def _by_id(routes: list[tuple], key: int):
    return next(route[0] for route in routes if id(route[0]) == key)


def feature_model(model: keras.Model, taps: tuple[Tap, ...]) -> keras.Model:
    """A cached keras.Model mapping the model's input to the output of each tap, in order.

    Args:
        model: The model the taps were found in.
        taps: Distinct taps.

    Returns:
        A keras.Model with one output per tap; each layer of `model` runs once in it.
    """
    image_input_shape(model)
    per_model = _CACHE.setdefault(model, {})
    key = tuple(tap.key for tap in taps)
    if key not in per_model:
        outputs = _read(model, [tap.route for tap in taps])
        per_model[key] = keras.Model(model.inputs[0], outputs, name=f"{model.name}_features")
    return per_model[key]


def computes_in_float16(model: keras.Model) -> bool:
    """Whether a layer of `model`, or of a model nested in it, computes in float16 (mixed_float16)."""
    stack = [model]
    while stack:
        layer = stack.pop()
        if layer.compute_dtype == "float16":
            return True
        stack += getattr(layer, "layers", [])
    return False
