"""Shape inference: one pass over the graph in topological order (like torch.fx ShapeProp).

Each node gets ``shape`` (per sample). A node whose rule fails gets ``shape=None`` and a
diagnostic; nodes downstream of it are skipped, so one mistake gives one error, and
independent mistakes are all reported.
"""

from __future__ import annotations

import networkx as nx

from .diagnostics import Diagnostic, Note
from .graph import topological
from .op_shapes import SHAPE_RULES
from .ops import Op, ShapeError
from .shape_format import format_shape

# A group with 100,000 branches of the wrong shape is one error, not 100,000 notes; and one
# run reports at most as many shape errors as lowering does (lower.MAX_REPORTED_ERRORS).
MAX_BRANCH_NOTES = 8
MAX_SHAPE_ERRORS = 20


def infer_shapes(graph: nx.DiGraph, input_shape: tuple[int, ...] | None = None) -> list[Diagnostic]:
    """Set ``shape`` on every node; return the shape errors found (empty when all is well)."""
    nodes = graph.nodes
    if input_shape is not None:
        inp = nodes[graph.graph["input"]]
        inp["attrs"] = {**inp["attrs"], "shape": tuple(input_shape)}
        graph.graph["input_shape"] = tuple(input_shape)
    problems: list[Diagnostic] = []
    for nid in topological(graph):
        data = nodes[nid]
        in_shapes = [nodes[src]["shape"] for src in data["inputs"]]
        if any(s is None for s in in_shapes):
            data["shape"] = None
            continue
        try:
            data["shape"] = SHAPE_RULES[data["op"]](data["attrs"], in_shapes)
        except ShapeError as err:
            data["shape"] = None
            notes = tuple(Note(n) for n in err.notes)
            if data["op"] in (Op.CONCAT, Op.ADD):
                inputs = data["inputs"]
                notes = tuple(
                    Note(f"branch {i + 1} ends at `{src}` with {format_shape(nodes[src]['shape'])}", nodes[src]["span"])
                    for i, src in enumerate(inputs[:MAX_BRANCH_NOTES])
                )
                if len(inputs) > MAX_BRANCH_NOTES:
                    notes += (Note(f"and {len(inputs) - MAX_BRANCH_NOTES:,} more branches"),)
            else:
                notes += (Note(f"its input is {format_shape(in_shapes[0])} (from `{data['inputs'][0]}`)"),)
            if len(problems) >= MAX_SHAPE_ERRORS:
                continue  # keep inferring (later nodes need shapes) but stop collecting
            problems.append(
                Diagnostic(
                    code=err.code, message=f"{err.message} at `{nid}`", span=data["span"], help=err.help, notes=notes
                )
            )
    return problems
