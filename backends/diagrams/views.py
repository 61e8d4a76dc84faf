"""The whole-network diagram views: ``blocks`` (one node per top-level item) and ``layers``.

Both read only the lowered graph (node data and ``graph.scopes``) and add nodes
and edges in the graph's creation order, which is topological and fixed by the spec, so
the same spec always gives the same DOT text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from archlang.analysis.grouping import stage_label
from archlang.ops import MERGE_OPS, Op

from .style import (
    AUX_EDGE,
    BLOCK,
    CATEGORY,
    NORM,
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

_SAFE = re.compile(r"[A-Za-z0-9_]")
MAX_ID = 200


def dot_id(path_id: str) -> str:
    """A DOT id from a node or scope id: '/' becomes '.', other unusual characters -XX-.

    '.' and '-' are always escaped in names, so the mapping is one-to-one: different nodes
    never share an id. Over ``MAX_ID`` characters the tail becomes a hash of the whole id.
    """
    if len(path_id) > MAX_ID:
        digest = hashlib.sha256(path_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        return dot_id(path_id[: MAX_ID // 2]) + "--" + digest
    out = []
    for ch in path_id:
        if _SAFE.match(ch):
            out.append(ch)
        elif ch == "/":
            out.append(".")
        else:
            out.append(f"-{ord(ch):x}-")
    return "".join(out)


def edge_attrs(graph, src: str, dst: str, opts: dict) -> dict:
    """Dashed and labelled where a training-only aux head leaves the main path."""
    attrs = {}
    aux_start = graph.nodes[dst].aux is not None and graph.nodes[src].aux is None
    labels = []
    if aux_start:
        attrs.update(AUX_EDGE)
        labels.append(AUX_EDGE["label"])
    if opts.get("edge_shapes"):
        labels.append(fmt_shape(graph.nodes[src].shape))
    if labels:
        attrs["label"] = dot_text("\n".join(labels))
    return attrs


def _cost_lines(graph, nids, opts) -> list[tuple[str, str]]:
    return [("small", cost_text(opts["_analysis"], nids))] if opts.get("costs") else []


def _main_node(graph, nids):
    """The node that names a unit: its first conv or linear (else its first node)."""
    for nid in nids:
        if graph.nodes[nid].op in (Op.CONV2D, Op.LINEAR):
            return nid
    return nids[0]


# ---- blocks view ---------------------------------------------------------------------


@dataclass
class Item:
    """One node of the blocks view: a depth-1 scope or a top-level node (or a run of blocks)."""

    key: str
    nodes: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # item keys, in first-use order
    names: list[str] = field(default_factory=list)  # more than one after collapsing


def _items(graph) -> dict[str, Item]:
    items: dict[str, Item] = {}
    item_of = {}
    for nid, data in graph.nodes.items():
        key = data.path[0]
        item = items.setdefault(key, Item(key, names=[key]))
        item.nodes.append(nid)
        item_of[nid] = key
        for src in data.inputs:
            if item_of[src] != key and item_of[src] not in item.inputs:
                item.inputs.append(item_of[src])
    return items


def _output_node(graph, nodes: list[str]) -> str:
    """The last node of a group that feeds something outside it (else its last node)."""
    inside = set(nodes)
    for nid in reversed(nodes):
        if any(s not in inside for s in graph.successors(nid)):
            return nid
    return nodes[-1]


def _consumers(items: dict[str, Item]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {k: [] for k in items}
    for item in items.values():
        for src in item.inputs:
            out[src].append(item.key)
    return out


_CLOSE = object()


def _value_key(value) -> tuple:
    """A flat, comparable form of an argument value, built without recursion: a value can
    nest lists far deeper than Python's recursion limit (``const a1 = [a0]`` 6,000 times),
    where ``repr`` raises ``RecursionError``."""
    out: list = []
    stack = [value]
    while stack:
        item = stack.pop()
        if item is _CLOSE:
            out.append(")")
        elif isinstance(item, (list, tuple)):
            out.append("[" if isinstance(item, list) else "(")
            stack.append(_CLOSE)
            stack.extend(reversed(item))
        else:
            out.append((type(item).__name__, repr(item)))
    return tuple(out)


def _collapse(graph, items: dict[str, Item]) -> dict[str, Item]:
    """Merge runs of chained block instances with the same template and arguments."""
    scopes = graph.scopes
    consumers = _consumers(items)

    def signature(key):
        scope = scopes.get(key)
        if scope is None or scope.kind != "block" or scope.aux is not None:
            return None
        return scope.template, tuple((k, _value_key(v)) for k, v in sorted(scope.args.items()))

    merged: dict[str, Item] = {}
    rename = {}
    last = None
    for key, item in items.items():
        sig = signature(key)
        if (
            last is not None
            and sig is not None
            and sig == signature(last.names[-1])
            and item.inputs == [last.names[-1]]
            and consumers[last.names[-1]] == [key]
        ):
            last.nodes.extend(item.nodes)
            last.names.append(key)
            rename[key] = last.key
            continue
        last = Item(key, list(item.nodes), [rename.get(k, k) for k in item.inputs], [key])
        merged[key] = last
    return merged


def _item_label(graph, item: Item, opts) -> tuple[list[tuple[str, str]], object]:
    scopes = graph.scopes
    scope = scopes.get(item.key)
    out = _output_node(graph, item.nodes)
    shape = fmt_shape(graph.nodes[out].shape)
    if scope is None:  # a top-level primitive op
        data = graph.nodes[item.nodes[0]]
        kind = op_label(data)
        lines = [("b", item.key), ("", kind)] if kind != item.key else [("b", kind)]
        return lines + [("small", shape)], CATEGORY[data.op]
    if scope.kind == "block":
        if len(item.names) > 1:
            names = ", ".join(item.names) if len(item.names) <= 4 else f"{item.names[0]} … {item.names[-1]}"
            return [("b", names), ("", f"{scope.template} × {len(item.names)}"), ("small", shape)], BLOCK
        return [("b", item.key), ("", scope.template), ("small", shape)], BLOCK
    if scope.kind == "unit":
        main = graph.nodes[_main_node(graph, item.nodes)]
        return [("b", item.key), ("", op_label(main)), ("small", shape)], CATEGORY[main.op]
    return [("b", item.key), ("", stage_label(graph, item.key, item.nodes) or scope.kind), ("small", shape)], BLOCK


def blocks_view(graph, dot, opts: dict) -> None:
    items = _items(graph)
    if opts.get("collapse", True):
        items = _collapse(graph, items)
    used = set()
    for item in items.values():
        lines, category = _item_label(graph, item, opts)
        aux = graph.nodes[item.nodes[0]].aux is not None
        used.add(category)
        dot.node(
            dot_id(item.key),
            label=html_label(lines + _cost_lines(graph, item.nodes, opts)),
            tooltip=dot_text(", ".join(item.names)),
            **node_style(category, aux),
        )
    for item in items.values():
        for src in item.inputs:
            src_out = _output_node(graph, items[src].nodes)
            # The first node of `item` that reads from `src`, for the aux/shape attributes.
            dst = next(n for n in item.nodes if any(i in items[src].nodes for i in graph.nodes[n].inputs))
            dot.edge(dot_id(src), dot_id(item.key), **edge_attrs(graph, src_out, dst, opts))
    if opts.get("legend", True):
        add_legend(dot, used)


# ---- layers view ---------------------------------------------------------------------


def _auto_name(name: str, op: Op) -> bool:
    """Names the compiler made up (`avgpool`, `concat_2`, `0`) add nothing to a label."""
    return name.isdigit() or re.fullmatch(rf"{op.value}(_\d+)?", name) is not None


def _scope_tree(graph) -> dict[str, list[tuple[str, str]]]:
    """scope id ('' for the network) -> its children ('scope'|'node', id) in creation order."""
    scopes = graph.scopes
    children: dict[str, list[tuple[str, str]]] = {"": []}
    for nid, data in graph.nodes.items():
        parent = ""
        path = data.path
        for depth in range(1, len(path)):
            sid = "/".join(path[:depth])
            if sid not in scopes:
                continue
            if sid not in children:
                children[sid] = []
                children[parent].append(("scope", sid))
            parent = sid
        children[parent].append(("node", nid))
    return children


def _cluster_attrs(scope) -> dict:
    name = scope.path[-1]
    if scope.kind == "block":
        label, style, color = f"{name} · {scope.template}", "rounded", "#4d4d4d"
    elif scope.kind == "unit":
        label, style, color = name, "rounded,dotted", "#888888"
    else:
        label, style, color = name, "rounded,dashed", "#888888"
    if scope.aux is not None:
        label, style = f"{label} (aux, train only)", "rounded,dashed"
    return {"label": dot_text(label), "style": style, "color": color, "fontsize": "10", "labeljust": "l"}


def merge_port(graph, dst: str, slot: int, rankdir: str) -> str:
    """``dst`` as an edge head; into a concat/add, the port of input number ``slot``.

    The merge node's label has one empty cell per input, left to right (see
    ``html_label(ports=...)``); aiming each edge at its own cell makes dot's crossing
    minimisation keep the branches in concat order. ``ordering=in`` alone does not, once
    branches sit in separate clusters (dot orders whole clusters then).
    """
    data = graph.nodes[dst]
    if data.op not in MERGE_OPS:
        return dot_id(dst)
    return port(dot_id(dst), slot, rankdir)


def layers_view(graph, dot, opts: dict) -> None:
    scopes = graph.scopes
    children = _scope_tree(graph)
    used = set()
    rankdir = opts.get("rankdir") or "TB"
    # newrank: rank the whole graph at once rather than cluster by cluster, which keeps
    # parallel branches in their ports' order.
    dot.attr("graph", newrank="true")

    def emit(target, parent: str):
        for kind, ident in children[parent]:
            if kind == "scope":
                with target.subgraph(name="cluster_" + dot_id(ident)) as sub:
                    sub.attr(**_cluster_attrs(scopes[ident]))
                    emit(sub, ident)
                continue
            data = graph.nodes[ident]
            category = CATEGORY[data.op]
            used.add(category)
            lines = [("", op_label(data)), ("small", fmt_shape(data.shape))]
            name = data.path[-1]
            if (parent == "" or scopes[parent].kind != "unit") and not _auto_name(name, data.op):
                lines.insert(0, ("b", name))
            if opts.get("costs") and category in (CATEGORY[Op.CONV2D], CATEGORY[Op.LINEAR], NORM):
                lines += _cost_lines(graph, [ident], opts)
            merge = data.op in MERGE_OPS
            target.node(
                dot_id(ident),
                label=html_label(lines, len(data.inputs) if merge else 0, rankdir),
                tooltip=dot_text(ident),
                **node_style(category, data.aux is not None),
                **({"ordering": "in"} if merge else {}),
            )

    emit(dot, "")
    # Edges after every node (a node named inside a cluster's body would join it), grouped
    # by target in input order.
    for nid, data in graph.nodes.items():
        for slot, src in enumerate(data.inputs):
            dot.edge(dot_id(src), merge_port(graph, nid, slot, rankdir), **edge_attrs(graph, src, nid, opts))
    if opts.get("legend", True):
        add_legend(dot, used | {OTHER})
