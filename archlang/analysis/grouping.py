"""Collapse per-node results into rows at a hierarchy depth (``archc --report --depth N``).

Depth ``N`` groups every node under the first ``N`` names of its path: depth 1 gives one
row per top-level layer, conv unit or block instance (as the papers' tables do); a node
whose path is shorter than ``N`` is its own row. ``None`` keeps one row per node. Groups
appear in the order of their first node, and the nodes of one group need not be adjacent
(a group is the set of nodes under a path).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ops import MERGE_OPS, Op
from .results import Analysis, NodeCost, Totals


@dataclass(frozen=True)
class Group:
    id: str  # the common path ("" for depth 0: the whole inference path)
    label: str  # what it is: the op, the block template, the conv unit's style, "branch"
    nodes: tuple[NodeCost, ...]
    aux: str | None

    @property
    def output(self) -> NodeCost:
        """The group's last node in topological order (its output for a block)."""
        return self.nodes[-1]

    @property
    def totals(self) -> Totals:
        return Totals.of(self.nodes)


_OP_NAMES = {op: op.value for op in Op}  # Enum.value is a slow descriptor; reports call this per row


def _label(analysis: Analysis, gid: str, members: list[NodeCost]) -> str:
    if len(members) == 1 and members[0].id == gid:
        return _OP_NAMES[members[0].op]
    scope = analysis.graph.scopes.get(gid)
    if scope is None:
        return analysis.network if gid == "" else "group"
    if scope.kind == "block":
        return scope.template or "block"
    if scope.kind == "unit":
        return scope.args.get("style") or "unit"
    if scope.kind == "group":  # what it merges: `concat of 4`, `add of 2`
        merge = next((m for m in members if m.op in MERGE_OPS and m.id.rpartition("/")[0] == gid), None)
        if merge is not None:
            return f"{_OP_NAMES[merge.op]} of {len(analysis.graph.nodes[merge.id].inputs)}"
    return stage_label(analysis.graph, gid, [m.id for m in members]) or scope.kind


MAX_RUNS = 3  # a sequence told as more runs than this is just a "branch"


def stage_label(graph, gid: str, node_ids) -> str | None:
    """What a labelled sequence is, as the papers' figures say it: its direct children as
    runs of the same block, unit or op (ResNet's ``layer1``: ``3 × Bottleneck``; a stage
    with a downsampling block first: ``DownBlock, 2 × Block``); ``None`` past
    :data:`MAX_RUNS` runs, or when the scope is no sequence."""
    scope = graph.scopes.get(gid)
    if scope is None or scope.kind != "branch":
        return None
    depth = len(scope.path)
    children: dict[str, str] = {}
    for nid in node_ids:
        path = graph.nodes[nid].path
        if len(path) <= depth or path[:depth] != scope.path:
            continue
        child = "/".join(path[: depth + 1])
        if child not in children:
            children[child] = _child_label(graph, child, nid)
    runs: list[list] = []
    for label in children.values():
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    if not runs or len(runs) > MAX_RUNS:
        return None
    return ", ".join(label if count == 1 else f"{count} × {label}" for label, count in runs)


def _child_label(graph, child: str, nid: str) -> str:
    scope = graph.scopes.get(child)
    if scope is None:
        return _OP_NAMES[graph.nodes[nid].op]
    if scope.kind == "block":
        return scope.template or "block"
    if scope.kind == "unit":
        return scope.args.get("style") or "unit"
    return scope.kind


def group_nodes(analysis: Analysis, depth: int | None, aux: str | None = None) -> list[Group]:
    """Rows for the inference path (``aux=None``) or for one aux head."""
    members: dict[str, list[NodeCost]] = {}
    graph = analysis.graph
    for cost in analysis.nodes.values():
        if cost.aux != aux:
            continue
        path = graph.nodes[cost.id].path
        if depth == 0:
            gid = aux or ""  # the whole inference path, or the whole aux head
        else:
            gid = cost.id if depth is None or len(path) <= depth else "/".join(path[:depth])
        members.setdefault(gid, []).append(cost)
    return [Group(gid, _label(analysis, gid, nodes), tuple(nodes), aux) for gid, nodes in members.items()]
