"""Activation memory: bytes per node output, and the peak of live activations at inference.

A node's output is live from the step that produces it to the step of its last consumer
(graph outputs: to the end). Views allocate nothing: their storage is their input's, which
stays live as long as any view of it is used (table ``ALIASES``). The estimate runs the
inference path (aux heads excluded) in topological order, one node at a time, and counts
the output being written together with everything still live; in-place ReLU, allocator
caching and workspace buffers are not modelled, so it is an estimate of what the
activations themselves need.
"""

from __future__ import annotations

from ..ops import Op
from ..ops.records import RECORDS

DTYPE_BYTES: dict[str, int] = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

# True where the op's output shares its input's storage (a view, or the identity at
# inference): the records' ``view`` field.
ALIASES: dict[Op, bool] = {op: r.view for op, r in RECORDS.items()}


def dtype_bytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}") from None


def peak_live(order: list[str], ops: dict, inputs: dict, nbytes: dict, outputs: set[str]) -> tuple[int, str | None]:
    """Peak of live activation bytes over ``order`` (ids of the nodes that run), and the node
    during which it happens. ``ops``/``inputs``/``nbytes`` map id to op, input ids, output bytes."""
    step = {nid: i for i, nid in enumerate(order)}
    root = {}
    last = {}
    for i, nid in enumerate(order):
        root[nid] = root[inputs[nid][0]] if ALIASES[ops[nid]] else nid
        last.setdefault(root[nid], i)
        for src in inputs[nid]:
            r = root[src]
            if last[r] < i:
                last[r] = i
    end = len(order) - 1
    for nid in outputs:
        if nid in root:
            last[root[nid]] = end
    delta = [0] * (len(order) + 1)
    for r, stop in last.items():
        delta[step[r]] += nbytes[r]
        delta[stop + 1] -= nbytes[r]
    peak, at, live = 0, None, 0
    for i, nid in enumerate(order):
        live += delta[i]
        if live > peak:
            peak, at = live, nid
    return peak, at
