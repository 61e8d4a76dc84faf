"""Multi-head self-attention over the positions of a map, read as one op.

A forward that packs each head's queries, keys and values into the channels of one map
(CPUBone's ``ConvAttention``, after a 1x1 conv) attends with a run of reshapes::

    qkv = x.reshape(N, heads, C // heads, h * w).permute(0, 1, 3, 2)
    q, k, v = qkv.chunk(3, dim=3)
    out = F.scaled_dot_product_attention(q, k, v)
    out = out.permute(0, 1, 3, 2).reshape(N, C // 3, h, w)

None of those tensors is a map archlang has a shape for, but the run as a whole is a
function of ``x`` alone: :func:`fold` replaces it in the traced graph by one call of
:func:`qkv_attention` (the same ops, in the same order, so the same bits), which the
``attention`` op's record maps. Any other use of the pieces leaves the graph as it was
(and the importer refuses the reshape, located).
"""

from __future__ import annotations

import operator

import torch
import torch.fx as fx
import torch.nn.functional as F


def qkv_attention(x: torch.Tensor, heads: int) -> torch.Tensor:
    """The folded run (the ``attention`` op's helper in a generated file is the same code)."""
    n, c, h, w = x.shape
    qkv = x.reshape(n, heads, c // heads, h * w).permute(0, 1, 3, 2)
    q, k, v = qkv.chunk(3, dim=3)
    out = F.scaled_dot_product_attention(q, k, v)
    return out.permute(0, 1, 3, 2).reshape(n, c // 3, h, w)


def _method(node, *names: str) -> bool:
    return isinstance(node, fx.Node) and node.op == "call_method" and node.target in names


def _dims(node: fx.Node) -> tuple:
    dims = node.args[1:]
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return tuple(dims)


def _swap_last(node) -> bool:
    """``t.permute(0, 1, 3, 2)`` of a 4-d ``t``, read by one node."""
    return _method(node, "permute") and not node.kwargs and _dims(node) in ((0, 1, 3, 2), (0, 1, -1, -2))


def _sole_user(node: fx.Node, user: fx.Node) -> bool:
    return list(node.users) == [user]


def _match(sdpa: fx.Node, value) -> tuple | None:
    """``(x, heads, end, nodes)`` for the run around the attention call ``sdpa``."""
    if len(sdpa.args) != 3 or any(v not in (None, 0.0, False) for v in sdpa.kwargs.values()):
        return None
    items = sdpa.args
    if not all(isinstance(i, fx.Node) and i.op == "call_function" and i.target is operator.getitem for i in items):
        return None
    chunk = items[0].args[0]
    if [i.args for i in items] != [(chunk, 0), (chunk, 1), (chunk, 2)] or not _method(chunk, "chunk"):
        return None
    chunks = chunk.args[1] if len(chunk.args) > 1 else chunk.kwargs.get("chunks")
    dim = chunk.args[2] if len(chunk.args) > 2 else chunk.kwargs.get("dim")
    if chunks != 3 or dim not in (3, -1) or set(chunk.users) != set(items):
        return None
    swap_in = chunk.args[0]
    if not _swap_last(swap_in) or not _sole_user(swap_in, chunk):
        return None
    split = swap_in.args[0]
    if not _method(split, "reshape", "view") or split.kwargs or not _sole_user(split, swap_in):
        return None
    x = split.args[0]
    shape = getattr(value(x), "shape", None) if isinstance(x, fx.Node) else None
    if shape is None or len(shape) != 4 or len(sdpa.users) != 1:
        return None
    n, c, h, w = (int(s) for s in shape)
    heads = _dims(split)[1] if len(_dims(split)) == 4 else None
    if not isinstance(heads, int) or heads < 1 or c % (3 * heads) or _dims(split) != (n, heads, c // heads, h * w):
        return None
    swap_out = next(iter(sdpa.users))
    if not _swap_last(swap_out) or len(swap_out.users) != 1:
        return None
    end = next(iter(swap_out.users))
    if not _method(end, "reshape", "view") or end.kwargs or _dims(end) != (n, c // 3, h, w):
        return None
    return x, heads, end, [split, swap_in, chunk, *items, sdpa, swap_out]


def fold(graph: fx.Graph, value) -> None:
    """Replace each attention run of ``graph`` by a call of :func:`qkv_attention`
    (``value(node)``: the node's fake value, for the input's shape)."""
    for sdpa in [n for n in graph.nodes if n.op == "call_function" and n.target is F.scaled_dot_product_attention]:
        found = _match(sdpa, value)
        if found is None:
            continue
        x, heads, end, inner = found
        with graph.inserting_before(end):
            call = graph.call_function(qkv_attention, (x, heads))
        call.meta = {**end.meta, "nn_module_stack": sdpa.meta.get("nn_module_stack", {})}
        end.replace_all_uses_with(call)
        for node in [end, *reversed(inner)]:
            graph.erase_node(node)
