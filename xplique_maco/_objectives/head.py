"""The rest of a model after a tap (its head): a keras.Model from the tap's activation to the model's
output, for a tap that every path from the image to the output goes through; and the default such
tap of a classifier, the last spatial layer before its pooling."""

from __future__ import annotations

import keras

from .graph import graph_nodes, has_graph, node_of
from .taps import Tap, find_tap, image_input_shape


def head_model(model: keras.Model, tap: Tap) -> keras.Model:
    """A keras.Model mapping the tap's activation to the model's output, running the model's own
    layers (the same weights) after the tap.

    Raises:
        ValueError: when a path from the image to the output goes around the tap (a skip
            connection across it), or the model has several outputs.
    """
    owners = [model, *(node.operation for node in tap.route[:-1])]
    for owner in owners:
        if len(owner.outputs) != 1:
            raise ValueError(
                f"Model {owner.name!r} has {len(owner.outputs)} outputs; the rest of the network after "
                f"layer {tap.key!r} must end in one output (the logits)."
            )
    start = tap.route[-1].outputs[0]
    entry = keras.Input(tuple(start.shape[1:]), name=f"{tap.key.replace('/', '_')}_activation")
    activation = entry
    for level in range(len(tap.route) - 1, -1, -1):  # innermost model first
        activation = _rest(owners[level], tap.route[level], tap.key)(activation)
    return keras.Model(entry, activation, name=f"{model.name}_head")


def _rest(owner: keras.Model, node, key: str) -> keras.Model:
    """`owner`'s layers after `node`, re-called on a new input standing for `node`'s output."""
    start = node.outputs[0]
    entry = keras.Input(tuple(start.shape[1:]))
    replaced = {id(start): entry}
    for later in graph_nodes(owner):  # inputs first
        arguments = later.input_tensors
        reached = [id(tensor) in replaced for tensor in arguments]
        if later is node or not any(reached):
            continue
        if not all(reached):
            around = next(t for t, hit in zip(arguments, reached, strict=True) if not hit)
            source = node_of(around)
            what = "the image" if source is None else f"layer {source.operation.name!r}"
            raise ValueError(
                f"Layer {key!r} is not on every path from the image to the output: "
                f"{later.operation.name!r} also reads {what}, around it (a skip connection). Choose a "
                "layer that every path goes through, such as the last spatial layer before the pooling "
                "(the default)."
            )
        args, kwargs = later.arguments.fill_in({id(t): replaced[id(t)] for t in arguments})
        results = keras.tree.flatten(later.operation(*args, **kwargs))
        for original, result in zip(later.outputs, results, strict=False):
            replaced[id(original)] = result
    output = owner.outputs[0]
    if id(output) not in replaced:
        raise ValueError(f"The output of model {owner.name!r} does not depend on layer {key!r}.")
    return keras.Model(entry, replaced[id(output)], name=f"{owner.name}_after_{node.operation.name}")


def last_spatial_layer(model: keras.Model) -> Tap:
    """The last layer call of the model (nested models opened) whose output is spatial (N, H, W, C)
    and that every path to the output goes through: for a classifier, the activation its global
    pooling or its Flatten reads.

    Raises:
        ValueError: when no such layer exists, naming how to pass one.
    """
    image_input_shape(model)
    candidates = _spatial_calls(model, [])
    for key in reversed(candidates):
        tap = find_tap(model, key)
        try:
            head_model(model, tap)
        except ValueError:
            continue
        return tap
    raise ValueError(
        f"Model {model.name!r} has no spatial layer (N, H, W, C) that every path from the image to the "
        "output goes through; pass `layer`, a convolutional layer of the model."
    )


def _spatial_calls(model: keras.Model, prefix: list[str]) -> list[str]:
    """Paths of the calls with a spatial output, in the order they run, nested models opened."""
    found = []
    names = {}
    for node in graph_nodes(model):
        operation = node.operation
        names[operation] = names.get(operation, 0) + 1
        if names[operation] > 1:  # a layer called twice is not one tap: skip its calls
            continue
        path = [*prefix, operation.name]
        if has_graph(operation):
            found += _spatial_calls(operation, path)
        if len(node.outputs) == 1 and len(node.outputs[0].shape) == 4:
            found.append("/".join(path))
    return found
