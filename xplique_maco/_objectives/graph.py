"""The graph of a functional or Sequential model, read from its symbolic tensors: its layer calls."""

from __future__ import annotations

import weakref

import keras

from .._config.backend import require_tensorflow

require_tensorflow()  # every objective and rendering comes through this module

_GRAPHS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def node_of(tensor):
    """The layer call (node) that computed a symbolic tensor; None for a model input."""
    operation, node_index, _ = tensor._keras_history
    return None if operation is None else operation._inbound_nodes[node_index]


def has_graph(model) -> bool:
    """Whether `model` is a functional or Sequential model whose layers can be read (not subclassed)."""
    try:
        return isinstance(model, keras.Model) and bool(model.inputs) and bool(model.outputs)
    except (AttributeError, ValueError):
        return False


def graph_nodes(model: keras.Model) -> list:
    """The nodes (layer calls) of a functional or Sequential model, inputs first."""
    outputs = tuple(id(tensor) for tensor in model.outputs)
    cached = _GRAPHS.get(model)
    if cached is not None and cached[0] == outputs:  # Sequential.add() makes new outputs
        return cached[1]
    inputs = {id(tensor) for tensor in model.inputs}
    ordered, seen = [], set()
    stack = [(node_of(tensor), False) for tensor in reversed(model.outputs)]
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
                stack.append((node_of(tensor), False))
    nodes = [node for node in ordered if not isinstance(node.operation, keras.layers.InputLayer)]
    _GRAPHS[model] = (outputs, nodes)
    return nodes


def operation_calls(model: keras.Model) -> dict:
    """Operation -> the nodes calling it inside `model`, in the order the calls were made."""
    calls: dict = {}
    for node in graph_nodes(model):
        calls.setdefault(node.operation, []).append(node)
    return {op: sorted(nodes, key=op._inbound_nodes.index) for op, nodes in calls.items()}


def call_key(name: str, call: int, count: int) -> str:
    """How call `call` of a layer called `count` times is named: `name`, or `name@call`."""
    return name if count == 1 else f"{name}@{call}"


def occurrences(model: keras.Model, match, prefix: tuple = (), keys: tuple = ()) -> list:
    """(route, keys) of every node in the tree of nested models for which `match(node)` holds."""
    found = []
    for operation, nodes in operation_calls(model).items():
        for call, node in enumerate(nodes):
            key = (*keys, call_key(operation.name, call, len(nodes)))
            if match(node):
                found.append(((*prefix, node), key))
            if has_graph(operation):
                found += occurrences(operation, match, (*prefix, node), key)
    return found


def ancestors(tensors: list, stop: set) -> set:
    """Ids of the nodes the tensors depend on, up to the tensors in `stop`."""
    seen, stack = set(), [node_of(t) for t in tensors if id(t) not in stop]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack += [node_of(t) for t in node.input_tensors if id(t) not in stop]
    return seen
