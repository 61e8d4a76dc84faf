"""The analyses as separate passes over the graph in topological order.

Each pass reads one per-op table (``params.PARAMS``, ``compute.MACS``, ...) and returns a
list aligned with the topological order; :func:`run_passes` assembles them into
:class:`NodeCost` objects. Everything is O(nodes + edges).
"""

from __future__ import annotations

import math

from archlang.graph.model import Graph

from .compute import ALL_OPS, FLOPS, MACS
from .memory import dtype_bytes, peak_live
from .params import BUFFERS, PARAMS
from .receptive import RF_RULES
from .results import Analysis, NodeCost, Totals


class _View:
    """The per-node facts every pass needs, gathered once: op, attrs, input shapes, shape."""

    __slots__ = ("ids", "ops", "attrs", "inputs", "in_shapes", "shapes", "aux")

    def __init__(self, graph: Graph):
        self.ids = graph.topological()
        nodes = graph.nodes
        data = [nodes[nid] for nid in self.ids]
        self.ops = [d.op for d in data]
        self.attrs = [d.attrs for d in data]
        self.inputs = [d.inputs for d in data]
        self.shapes = [tuple(d.shape) for d in data]
        self.aux = [d.aux for d in data]
        self.in_shapes = [[tuple(nodes[src].shape) for src in d.inputs] for d in data]


def table_pass(view: _View, table: dict) -> list[int]:
    """A count per node from a table of ``(attrs, input shapes, output shape) -> int`` rules."""
    return [table[op](a, ins, out) for op, a, ins, out in zip(view.ops, view.attrs, view.in_shapes, view.shapes)]


def rf_pass(view: _View) -> list:
    """Receptive fields, composed in topological order from the inputs' fields."""
    index = {}
    out = []
    for i, (nid, op, a, srcs, ins) in enumerate(zip(view.ids, view.ops, view.attrs, view.inputs, view.in_shapes)):
        rf = RF_RULES[op](a, [out[index[s]] for s in srcs], srcs, ins)
        index[nid] = i
        out.append(rf)
    return out


def run_passes(graph: Graph, dtype: str = "float32", batch: int = 1) -> Analysis:
    return _run_passes(graph, dtype, batch)


def _run_passes(graph: Graph, dtype: str, batch: int) -> Analysis:
    if batch < 1:
        raise ValueError(f"batch must be positive, got {batch}")
    width = dtype_bytes(dtype)
    view = _View(graph)
    params = table_pass(view, PARAMS)
    buffers = table_pass(view, BUFFERS)
    macs = table_pass(view, MACS)
    flops = table_pass(view, FLOPS)
    all_ops = table_pass(view, ALL_OPS)
    elements = [math.prod(s) for s in view.shapes]
    rfs = rf_pass(view)

    scale = batch * width
    nodes = {}
    for nid, op, shape, aux, p, b, m, f, o, n, rf in zip(
        view.ids, view.ops, view.shapes, view.aux, params, buffers, macs, flops, all_ops, elements, rfs
    ):
        nodes[nid] = NodeCost(nid, op, shape, aux, p, b, m, f, o, n, n * scale, rf)

    main = [c for c in nodes.values() if c.aux is None]
    aux_names = list(graph.aux_outputs)
    aux_totals = {name: Totals.of(c for c in nodes.values() if c.aux == name) for name in aux_names}

    order = [c.id for c in main]
    ops = {c.id: c.op for c in main}
    inputs = {nid: srcs for nid, srcs, aux in zip(view.ids, view.inputs, view.aux) if aux is None}
    nbytes = {c.id: c.out_bytes for c in main}
    peak, at = peak_live(order, ops, inputs, nbytes, {graph.output})
    return Analysis(
        graph=graph,
        nodes=nodes,
        totals=Totals.of(main),
        aux_totals=aux_totals,
        peak_activation_bytes=peak,
        peak_at=at,
        dtype=dtype,
        batch=batch,
        input_shape=tuple(graph.input_shape or ()),
    )
