"""The tensors each module call passes, for modules called with several (torch.fx).

``nn_module_stack`` says which module call an op ran in, not what the call was given. A
module whose forward takes several tensors (``Up.forward(self, x, skip)``) becomes a block
``from x, skip``: :func:`record` keeps, per call (the key ``nn_module_stack`` uses:
``up1``, ``fuse@1`` for a second call), the graph nodes passed, in the forward's order, with
the names of the parameters they bind to (a list ``children`` gives ``children_0``, ...).
"""

from __future__ import annotations

import inspect

import torch.fx as fx


def record(tracer: fx.Tracer, m, args, kwargs, into: dict) -> str | None:
    """Keep the tensors passed to this call of ``m``; returns the call's key (None for a
    leaf, whose op reads its input anyway)."""
    try:
        name = tracer.path_of_module(m)
    except NameError:  # a module outside the hierarchy: fx refuses it itself
        return None
    if tracer.is_leaf_module(m, name):
        return None
    n = tracer.num_calls.get(name, 0)
    key = f"{name}@{n}" if n else name
    try:
        bound = inspect.signature(m.forward).bind(*args, **kwargs).arguments.items()
    except (TypeError, ValueError):
        bound = [(f"x{k}", a) for k, a in enumerate(args)] + list(kwargs.items())
    passed: list[tuple[fx.Node, str]] = []
    for param, value in bound:
        nodes = _proxied(value)
        if len(nodes) == 1:
            passed.append((nodes[0], param))
        else:
            passed.extend((node, f"{param}_{k}") for k, node in enumerate(nodes))
    into[key] = passed
    return key


def returned(key: str | None, value, into: dict) -> None:
    """Keep the tensors a call returned: one its caller drops is still computed (a block
    returns it), so it is no dead layer."""
    if key is not None:
        into[key] = _proxied(value)


def _proxied(value) -> list[fx.Node]:
    """The graph nodes in ``value`` (a proxy, or a list / tuple / dict holding some)."""
    nodes: list[fx.Node] = []
    fx.node.map_aggregate(value, lambda a: nodes.append(a.node) if isinstance(a, fx.Proxy) else None)
    return nodes
