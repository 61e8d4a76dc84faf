"""Shape inference: one pass over the graph in topological order (like torch.fx ShapeProp).

Each node gets ``shape`` (per sample). A node whose rule fails gets ``shape=None`` and a
diagnostic; nodes downstream of it are skipped, so one mistake gives one error, and
independent mistakes are all reported.
"""

from __future__ import annotations

from archlang.diagnostics import Diagnostic, Note
from archlang.graph.model import Graph, Node
from archlang.graph.shape_text import format_shape
from archlang.ops import MERGE_OPS, Op, ShapeError
from archlang.ops.records import RECORDS
from archlang.ops.shape_rules import permuted_layout

# A group with 100,000 branches of the wrong shape is one error, not 100,000 notes; and one
# run reports at most as many shape errors as lowering does (lower.MAX_REPORTED_ERRORS).
MAX_BRANCH_NOTES = 8
MAX_SHAPE_ERRORS = 20


def infer_shapes(graph: Graph, input_shape: tuple[int, ...] | None = None) -> list[Diagnostic]:
    """Set ``shape`` on every node; return the shape errors found (empty when all is well)."""
    nodes = graph.nodes
    if input_shape is not None:
        inp = nodes[graph.input]
        inp.attrs = {**inp.attrs, "shape": tuple(input_shape)}
        graph.input_shape = tuple(input_shape)
    problems: list[Diagnostic] = []
    for nid in graph.topological():
        problem = shape_node(nodes, nid, graph.scopes)
        if problem is not None and len(problems) < MAX_SHAPE_ERRORS:
            problems.append(problem)  # (past the cap: keep inferring, later nodes need shapes)
    return problems


def shape_node(nodes: dict[str, Node], nid: str, scopes: dict | None = None) -> Diagnostic | None:
    """Set ``shape`` on one node whose inputs have theirs (None when an input has none);
    the diagnostic of its shape rule's error, if any. Lowering calls it too, for the nodes
    before a block that reads its input's shape (``in_channels``). ``scopes`` (the graph's)
    let a merge error's notes point at the user's call of a block defined elsewhere."""
    data = nodes[nid]
    in_shapes = [nodes[src].shape for src in data.inputs]
    if any(s is None for s in in_shapes):
        data.shape = None
        return None
    try:
        data.shape = _infer(nodes, data, in_shapes)
    except ShapeError as err:
        data.shape = None
        notes = tuple(Note(n) for n in err.notes)
        if data.op in MERGE_OPS:
            inputs = data.inputs
            notes = tuple(
                Note(
                    f"branch {i + 1} ends at `{src}` with {format_shape(nodes[src].shape)}",
                    _span_in(scopes or {}, nodes[src], data.span),
                )
                for i, src in enumerate(inputs[:MAX_BRANCH_NOTES])
            )
            if len(inputs) > MAX_BRANCH_NOTES:
                notes += (Note(f"and {len(inputs) - MAX_BRANCH_NOTES:,} more branches"),)
        else:
            notes += (Note(f"its input is {format_shape(in_shapes[0])} (from `{data.inputs[0]}`)"),)
        return Diagnostic(
            code=err.code, message=f"{err.message} at `{nid}`", span=data.span, help=err.help, notes=notes
        )
    return None


def _infer(nodes, data: Node, in_shapes: list) -> tuple:
    """The node's shape; sets ``channels_last`` on a node whose output is an H×W×C tensor
    (after ``permute((0, 2, 3, 1))``, kept by elementwise ops, layernorm and linear)."""
    op, attrs = data.op, data.attrs
    layouts = [nodes[src].channels_last for src in data.inputs]
    last = any(layouts)
    if last:
        record = RECORDS[op]
        rule = record.channels_last
        if rule is None and getattr(record.shape, "layout_free", False):
            rule = record.shape
        if rule is None:
            raise ShapeError(
                "E407",
                f"{op.value} needs a channels-first C×H×W tensor; its input is channels-last (H×W×C)",
                help="put `permute((0, 3, 1, 2))` before it (channels-first again)",
            )
        if not all(layouts):
            raise ShapeError("E407", f"{op.value} inputs mix channels-last and channels-first tensors")
    else:
        rule = RECORDS[op].shape
    shape = rule(attrs, in_shapes)
    if op is Op.PERMUTE:
        last = permuted_layout(attrs["dims"], last)
        if last is None:
            raise ShapeError(
                "E407",
                f"permute{attrs['dims']} moves the channels between the spatial dims",
                help="keep the channels first (C×H×W) or last (H×W×C)",
            )
    elif op is Op.FLATTEN or len(shape) == 1:
        last = False  # a vector has no layout (a channels-last map's spatial mean)
    data.channels_last = bool(last)
    return shape


def _span_in(scopes: dict, node: Node, near) -> object:
    """Where ``node`` shows in the file of ``near``: a node made inside a block defined
    elsewhere (the prelude's ``stacked3x3``, an imported library) is pointed at through the
    innermost call of that block in the user's file, not at a line of the other file."""
    span = node.span
    if span is None or near is None or span.file == near.file:
        return span
    for end in range(len(node.path) - 1, 0, -1):
        scope = scopes.get("/".join(node.path[:end]))
        if scope is not None and scope.span.file == near.file:
            return scope.span
    return span
