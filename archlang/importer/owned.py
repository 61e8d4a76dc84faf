"""Functional ops on a module's own state: ``F.batch_norm(x, self.running_mean, ...,
self.weight, self.bias)`` in timm's ``BatchNormAct2d``, ``F.layer_norm(x, ..., self.weight,
self.bias)`` in ``LayerNorm2d``, ``F.conv2d(x, self.weight, self.bias, ...)`` in
``Conv2dSame``.

Such a call is the layer of the module ``M`` it runs in when every tensor argument it takes
besides the input is ``M``'s own attribute of the parameter's name (``weight`` is
``M.weight``, ``running_mean`` is ``M.running_mean``): the op's state then has ``M``'s
state_dict keys, so the spec's layer is labelled ``M`` and ``M`` itself stops being a scope
(its other ops, an activation, sit beside that layer). The in-place update of ``M``'s
``num_batches_tracked`` in training mode is the layer's own bookkeeping, not an op.
"""

from __future__ import annotations

import inspect

import torch.fx as fx


def _module_path(node: fx.Node) -> str | None:
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else None


def owner(node: fx.Node, stub) -> str | None:
    """The path of the module whose own state the call ``node`` reads, or None."""
    path = _module_path(node)
    if not path or node.op != "call_function":
        return None
    try:
        bound = inspect.signature(stub).bind_partial(*node.args, **node.kwargs)
    except TypeError:
        return None
    names = list(bound.arguments)
    state = {name: v for name, v in bound.arguments.items() if name != names[0] and isinstance(v, fx.Node)}
    if not state or not all(v.op == "get_attr" and v.target == f"{path}.{name}" for name, v in state.items()):
        return None
    return path


def owners(graph: fx.Graph, functions: dict) -> set[str]:
    """The modules some call in ``graph`` is the layer of."""
    found = set()
    for node in graph.nodes:
        stub = functions.get(node.target) if node.op == "call_function" else None
        path = owner(node, stub) if stub is not None else None
        if path is not None:
            found.add(path)
    return found


def state_values(node: fx.Node, module) -> tuple[tuple, dict]:
    """``node``'s arguments with its state read off ``module`` (the tensors, for their shapes)."""

    def value(a: fx.Node):
        if a.op != "get_attr":
            return a
        out = module
        for part in a.target.split("."):
            out = getattr(out, part)
        return out

    return fx.node.map_arg((node.args, node.kwargs), value)


def bookkeeping(node: fx.Node, owned: set[str]) -> bool:
    """``M.num_batches_tracked.add_(1)`` (an in-place update, read by nothing) of an owned ``M``."""
    if node.op != "call_method" or not node.target.endswith("_") or node.users:
        return False
    target = node.args[0] if node.args else None
    return (
        isinstance(target, fx.Node)
        and target.op == "get_attr"
        and target.target.rpartition(".")[0] in owned
        and target.target.rpartition(".")[2] == "num_batches_tracked"
    )
