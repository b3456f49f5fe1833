"""The one keras.Model over every tap of an objective: each layer of the model runs once in it."""

from __future__ import annotations

import weakref

import keras

from .graph import ancestors, graph_nodes
from .taps import Tap, image_input_shape

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
    needed = ancestors(direct + [route[0].outputs[0] for route in routes if len(route) > 1], inputs)
    replaced: dict[int, object] = {}  # id(original tensor) -> the tensor computed instead
    inner: dict[int, list] = {}  # id(opened node) -> the tensors read inside it

    for node in graph_nodes(model):  # inputs first
        if id(node) not in needed:
            continue
        arguments = {id(t): replaced.get(id(t), t) for t in node.input_tensors}
        if id(node) in opened:
            nested = node.operation
            others = direct + [
                t for key in opened if key != id(node) for t in _by_id(routes, key).input_tensors
            ]
            keep = list(nested.outputs) if id(node) in ancestors(others, inputs) else []
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


def feature_model(model: keras.Model, taps: tuple[Tap, ...], image: int | None = None) -> keras.Model:
    """A cached keras.Model mapping the model's input to the output of each tap, in order.

    Args:
        model: The model the taps were found in.
        taps: Distinct taps.
        image: For a model with several inputs, the image input's position in `model.inputs`: the
            feature model then takes `[image, *the other inputs in the model's order]`. None: the
            model must have a single image input.

    Returns:
        A keras.Model with one output per tap; each layer of `model` runs once in it.
    """
    if image is None:
        image_input_shape(model)
        entry = model.inputs[0]
    else:
        entry = [model.inputs[image], *(t for i, t in enumerate(model.inputs) if i != image)]
        entry = entry[0] if len(entry) == 1 else entry
    per_model = _CACHE.setdefault(model, {})
    key = (tuple(tap.key for tap in taps), image or 0)
    if key not in per_model:
        outputs = _read(model, [tap.route for tap in taps])
        per_model[key] = keras.Model(entry, outputs, name=f"{model.name}_features")
    return per_model[key]


def features(extractor: keras.Model, images, others=()) -> list:
    """The extractor's outputs (always a list) on `images` and the other inputs' rows `others`."""
    outputs = extractor([images, *others] if others else images, training=False)
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def computes_in_float16(model: keras.Model) -> bool:
    """Whether a layer of `model`, or of a model nested in it, computes in float16 (mixed_float16)."""
    stack = [model]
    while stack:
        layer = stack.pop()
        if layer.compute_dtype == "float16":
            return True
        stack += getattr(layer, "layers", [])
    return False
