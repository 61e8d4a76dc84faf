"""Refusals of the trace that need a look at the module itself (E720-E724): lazy modules,
weights shared by two calls, reading sizes, ``nn.Softmax`` on a map's last dim, and state
the forward never touches (whose keys the spec could not hold). :mod:`.trace` calls these
where it meets the case; each returns (or raises) a located :class:`SpecError`."""

from __future__ import annotations

import torch.fx as fx

from . import opmap
from .structure import problem


def lazy(sub, target: str):
    """E720 for an uninitialised ``nn.Lazy*`` module (its sizes are not known yet)."""
    uninitialised = getattr(sub, "has_uninitialized_params", None)
    if uninitialised is not None and uninitialised():
        raise problem(
            "E720",
            f"{target} ({opmap.public_name(type(sub))}): an uninitialised lazy module (its sizes are unknown)",
            "run the model once on an input before importing it: lazy modules then become ordinary ones",
        )


def shared(target: str, cls: str, uses: list[str]):
    """E724: the module ``target`` with weights is called from each of ``uses``."""
    return problem(
        "E724",
        f"{target} ({cls}) is called {len(uses)} times (from {' and from '.join(dict.fromkeys(uses))}): "
        "archlang layers cannot share weights",
        "give each use its own module (a copy of the weights); a module without weights may be reused",
    )


def reads_size(where: str, what: str):
    """E723: ``x.size()`` / ``x.shape`` / ``x.dim()`` in the forward."""
    return problem(
        "E723",
        f"{where}: the forward reads a tensor's size (`{what}`): archlang layers have static shapes",
        "write `torch.flatten(x, 1)` for `x.view(x.size(0), -1)`; a size computed from the input has no spec",
    )


def softmax_dim(sub, target: str, ndim: int | None) -> None:
    """``nn.Softmax(dim=-1)`` is archlang's ``softmax`` on a vector only."""
    if ndim is not None and ndim != 2 and sub.dim % ndim != 1:
        raise problem(
            "E722",
            f"{target} ({opmap.public_name(type(sub))}): softmax over dim={sub.dim} of a {ndim}-d tensor "
            "(archlang's softmax runs over the channels)",
        )


def unused_state(module, graph: fx.Graph) -> None:
    """E724 for a parameter or persistent buffer no op of the forward owns: the spec has no
    layer for it, so its state_dict would lack the key."""
    leaves = {n.target for n in graph.nodes if n.op == "call_module"}
    attrs = {n.target for n in graph.nodes if n.op == "get_attr"}
    state = module.state_dict(keep_vars=True)
    used = {id(v) for k, v in state.items() if k.rpartition(".")[0] in leaves or k in attrs}
    for key, value in state.items():
        if id(value) in used:
            continue
        raise problem(
            "E724",
            f"the state_dict key `{key}` is not used by the forward: the spec would have no layer for it",
            "the spec's layers are what the forward runs: remove the unused module, parameter or buffer "
            "(or register a buffer with persistent=False)",
        )
