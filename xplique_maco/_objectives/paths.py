"""What lies on the path from the image to a tap (a Flatten that ties it to positions) and at its
end (a softmax or a sigmoid, which weakens what it squashes)."""

from __future__ import annotations

import warnings

import keras

from .graph import has_graph, node_of
from .taps import Tap


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
        stack += [node_of(t) for t in node.input_tensors if id(t) not in stop]
    return found


def position_tied(tap: Tap) -> str | None:
    """The layer that ties the tap to positions in the image (a Flatten before a Dense head), if any.

    Such a tap reads each position of the image with its own weights, so it has one layout
    to find; crops that wrap around a periodic image would average it over every shift.
    """

    def search(nodes: list, stop: set, prefix: str) -> str | None:
        for node in _upstream(nodes, stop):
            operation = node.operation
            if has_graph(operation):
                found = search(
                    [node_of(t) for t in operation.outputs],
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
        start = [node] if level == len(tap.route) - 1 else [node_of(t) for t in node.input_tensors]
        found = search(start, stop, "".join(f"{key.split('@')[0]}/" for key in keys[:level]))
        if found:
            return found
    return None


# ---- what a tap's layer ends in ----

_SQUASHING = ("softmax", "sigmoid")


def _last_call(node, key: str) -> tuple:
    """The call that computes a node's output, looking inside nested models, with its path."""
    operation = node.operation
    if has_graph(operation) and len(operation.outputs) == 1:
        inner = node_of(operation.outputs[0])
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
        parents = [node_of(t) for t in node.input_tensors]
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
