"""``--block NAME``: one block template drawn alone, the way the Inception papers draw modules.

The previous layer sits at the bottom, the parallel branches side by side in their concat
order, "Filter concatenation" on top; a conv unit (conv + BN + ReLU) is one box labelled
``1x1 conv, 64``. Drawn from the template's first instance in the graph (so channel counts
are that instance's), or the one chosen with ``NAME@PATH``. A concat whose only reader is another concat is drawn merged into
it (concatenation is associative): Figure 7 of the v3 paper feeds the 1x3 and 3x1 outputs
straight into the module's filter concatenation.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from archlang.diagnostics import Diagnostic, SpecError
from archlang.ops import MERGE_OPS, Op

from .style import (
    CATEGORY,
    OTHER,
    add_legend,
    cost_text,
    dot_text,
    fmt_shape,
    html_label,
    node_style,
    op_label,
    port,
)
from .views import _main_node, dot_id

DEFAULT_BASE_LABEL = "Previous layer"
DEFAULT_CONCAT_LABEL = "Filter concatenation"
BOX_WIDTH = 1.45  # inches per branch for the full-width bottom and top boxes


def block_instances(graph, template: str) -> list:
    """Every block scope instantiating ``template``, in the order the network creates them."""
    scopes = graph.scopes
    found: dict[str, object] = {}
    for data in graph.nodes.values():
        path = data.path
        for depth in range(1, len(path)):
            sid = "/".join(path[:depth])
            scope = scopes.get(sid)
            if scope is not None and scope.kind == "block" and scope.template == template:
                found.setdefault(sid, scope)
    return list(found.values())


def choose_instance(graph, block: str, templates=()):
    """``NAME`` (its first instance) or ``NAME@PATH`` (the instance at that scope path, e.g.
    ``BasicBlock@layer2/0``): the block scope to draw, and every instance of the template.
    ``templates``: the block names the spec defines (for the message when ``NAME`` has no
    instance)."""
    template, _, path = block.partition("@")
    instances = block_instances(graph, template)
    if not instances:
        scopes = graph.scopes
        drawn = sorted({s.template for s in scopes.values() if s.kind == "block"})
        close = difflib.get_close_matches(template, drawn, n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        if template in templates:
            message = f"block `{template}` has no instance of its own in this network (nothing to draw)"
        else:
            message = f"no block template named `{template}` in this network"
        raise SpecError(
            Diagnostic(
                code="E113", message=message, help=f"{hint}blocks instantiated here: {', '.join(drawn) or 'none'}"
            )
        )
    if not path:
        return instances[0], instances
    for scope in instances:
        if scope.id == path:
            return scope, instances
    ids = [s.id for s in instances]
    close = difflib.get_close_matches(path, ids, n=1)
    raise SpecError(
        Diagnostic(
            code="E113",
            message=f"block `{template}` has no instance `{path}`",
            help=(f"did you mean `{close[0]}`? " if close else "") + f"instances: {', '.join(ids)}",
        )
    )


def _drawing(graph, scope) -> tuple:
    """What the module figure of ``scope`` shows, with the instance's own path taken out:
    two instances with equal drawings draw the same figure."""
    boxes, external = _boxes(graph, scope)
    boxes = _inline_concats(graph, boxes)
    prefix = scope.id + "/"

    def rel(key: str) -> str:
        if key.startswith("base:"):
            return f"base{external.index(key[5:])}"
        return key[len(prefix) :] if key.startswith(prefix) else key

    return tuple(
        (rel(k), op_label(graph.nodes[_main_node(graph, b.nodes)]), tuple(map(rel, b.inputs))) for k, b in boxes.items()
    )


def instance_note(graph, scope, instances, template: str) -> str | None:
    """Says which instance is drawn when the others would be drawn differently."""
    drawing = _drawing(graph, scope)
    if all(_drawing(graph, s) == drawing for s in instances if s is not scope):
        return None
    ids = [s.id for s in instances]
    shown = ", ".join(ids[:8]) + (f", ... ({len(ids)} in all)" if len(ids) > 8 else "")
    return (
        f"the {len(ids)} instances of `{template}` differ; drawing the first, `{scope.id}` "
        f"(choose one with --block {template}@PATH; instances: {shown})"
    )


@dataclass
class Box:
    key: str
    nodes: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # box keys in the order the block reads them


def _boxes(graph, scope) -> tuple[dict[str, Box], list[str]]:
    """Boxes of the block (units collapsed) and the outside nodes it reads, in order."""
    scopes = graph.scopes
    depth = len(scope.path)
    boxes: dict[str, Box] = {}
    box_of: dict[str, str] = {}
    external: list[str] = []
    for nid, data in graph.nodes.items():
        path = data.path
        if path[:depth] != scope.path:
            continue
        key = nid
        for d in range(depth + 1, len(path)):
            sid = "/".join(path[:d])
            if sid in scopes and scopes[sid].kind == "unit":
                key = sid
                break
        box = boxes.setdefault(key, Box(key))
        box.nodes.append(nid)
        box_of[nid] = key
        for src in data.inputs:
            if src not in box_of:
                if src not in external:
                    external.append(src)
                source = "base:" + src
            else:
                source = box_of[src]
            if source != key and source not in box.inputs:
                box.inputs.append(source)
    return boxes, external


def _inline_concats(graph, boxes: dict[str, Box]) -> dict[str, Box]:
    """Drop a concat read only by another concat; its inputs take its place, in order."""
    readers: dict[str, list[str]] = {}
    for box in boxes.values():
        for src in box.inputs:
            readers.setdefault(src, []).append(box.key)

    def is_concat(key):
        return key in boxes and len(boxes[key].nodes) == 1 and graph.nodes[key].op is Op.CONCAT

    def inlined(key) -> bool:
        r = readers.get(key, [])
        return is_concat(key) and len(r) == 1 and is_concat(r[0])

    def expand(key) -> list[str]:
        return [s for src in boxes[key].inputs for s in expand(src)] if inlined(key) else [key]

    out = {}
    for key, box in boxes.items():
        if inlined(key):
            continue
        inputs = [s for src in box.inputs for s in expand(src)] if is_concat(key) else box.inputs
        out[key] = Box(key, box.nodes, inputs)
    return out


def module_view(graph, dot, opts: dict) -> None:
    """Draw ``opts["block_name"]`` (``NAME`` or ``NAME@PATH``) into ``dot``. When ``NAME``
    alone picks the first of instances that differ, a note saying so is appended to
    ``opts["notes"]`` (a list, if the caller gives one: the CLI prints them on stderr)."""
    scope, instances = choose_instance(graph, opts["block_name"], opts.get("_templates", ()))
    notes = opts.get("notes")
    if isinstance(notes, list) and "@" not in opts["block_name"]:
        note = instance_note(graph, scope, instances, opts["block_name"])
        if note:
            notes.append(note)
    boxes, external = _boxes(graph, scope)
    boxes = _inline_concats(graph, boxes)
    output = list(boxes)[-1]
    top = boxes[output]
    width_pt = BOX_WIDTH * 72 * max(len(top.inputs), 1)  # the full-width boxes, in points
    rankdir = opts.get("rankdir") or "BT"
    used = {OTHER}

    # The previous layer: one output port per reader, so the branches fan out across it.
    readers = {f"base:{src}": [k for k, b in boxes.items() if f"base:{src}" in b.inputs] for src in external}
    base_label = opts.get("base_label") or DEFAULT_BASE_LABEL
    for base, keys in readers.items():
        lines = [("b", base_label)]
        if opts.get("edge_shapes"):
            lines.append(("small", fmt_shape(graph.nodes[base[5:]].shape)))
        label = html_label(lines, len(keys), rankdir, prefix="o", port_width=int(width_pt / max(len(keys), 1)))
        dot.node(dot_id(base), label=label, **node_style(OTHER))
    for key, box in boxes.items():
        main = graph.nodes[_main_node(graph, box.nodes)]
        category = CATEGORY[main.op]
        used.add(category)
        merge = main.op in MERGE_OPS and len(box.nodes) == 1
        if key == output and main.op is Op.CONCAT:
            lines = [("b", opts.get("concat_label") or DEFAULT_CONCAT_LABEL)]
            port_width = int(width_pt / len(box.inputs))
        else:
            lines, port_width = [("", op_label(main))], 0
        if opts.get("costs") and category is not OTHER:
            lines.append(("small", cost_text(opts["_analysis"], box.nodes)))
        # A merge gets one input port per input, in order (see diagram_views.merge_port).
        label = html_label(lines, len(box.inputs) if merge else 0, rankdir, port_width=port_width)
        dot.node(
            dot_id(key),
            label=label,
            tooltip=dot_text(key),
            **node_style(category),
            **({"ordering": "in"} if merge else {}),
        )
    # The last layer of every branch on one rank, just under the concatenation, as the
    # papers draw it.
    if len(top.inputs) > 1:
        with dot.subgraph() as same:
            same.attr(rank="same")
            for src in top.inputs:
                if not src.startswith("base:"):
                    same.node(dot_id(src))
    for key, box in boxes.items():
        merge = graph.nodes[box.nodes[0]].op in MERGE_OPS and len(box.nodes) == 1
        for slot, src in enumerate(box.inputs):
            attrs = {}
            if opts.get("edge_shapes") and not src.startswith("base:"):
                attrs["label"] = fmt_shape(graph.nodes[boxes[src].nodes[-1]].shape)
            tail = port(dot_id(src), readers[src].index(key), rankdir, "o") if src in readers else dot_id(src)
            head = port(dot_id(key), slot, rankdir) if merge else dot_id(key)
            dot.edge(tail, head, **attrs)
    if opts.get("legend", False):
        add_legend(dot, used)
