"""The structural verifier of a lowered graph: its failures are compiler bugs (E900), not user errors."""

from __future__ import annotations

from archlang.diagnostics import Diagnostic

from .model import Graph, node_id


def verify(graph: Graph) -> list[Diagnostic]:
    """Structural invariants of a lowered graph; failures are compiler bugs, not user errors."""
    problems = []

    def bug(message: str, span=None):
        problems.append(
            Diagnostic(
                code="E900",
                message=f"internal: {message}",
                span=span,
                help="this is a bug in archlang; please report it with the spec",
            )
        )

    seen = set()
    readers: dict[str, list[str]] = {}
    for nid, node in graph.nodes.items():
        if node.id != nid or node_id(node.path) != nid:
            bug(f"node `{nid}` has path {node.path}", node.span)
        for src in node.inputs:
            if src not in seen:
                bug(f"`{nid}` reads `{src}`, which is not defined before it", node.span)
        for src in dict.fromkeys(node.inputs):
            readers.setdefault(src, []).append(nid)
        seen.add(nid)
    for nid, node in graph.nodes.items():
        if graph.successors(nid) != readers.get(nid, []):
            bug(f"the readers of `{nid}` disagree with the nodes' inputs", node.span)
    # Every node reads only nodes listed before it, so node order is a topological order
    # and the graph is acyclic: no separate check.
    for key in ("input", "output"):
        if getattr(graph, key) not in graph:
            bug(f"the graph's {key} node is missing")
    for name, nid in graph.aux_outputs.items():
        if nid not in graph:
            bug(f"aux output `{name}` points at a missing node")
    return problems
