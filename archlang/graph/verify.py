"""The structural verifier of a lowered graph: its failures are compiler bugs (E900), not user errors."""

from __future__ import annotations

import networkx as nx

from archlang.diagnostics import Diagnostic

from .model import node_id


def verify(graph: nx.DiGraph) -> list[Diagnostic]:
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
    for nid, data in graph.nodes(data=True):
        if node_id(data["path"]) != nid:
            bug(f"node `{nid}` has path {data['path']}", data.get("span"))
        for src in data["inputs"]:
            if src not in seen:
                bug(f"`{nid}` reads `{src}`, which is not defined before it", data.get("span"))
        expected_preds = set(data["inputs"])
        if set(graph.predecessors(nid)) != expected_preds:
            bug(f"edges into `{nid}` disagree with its inputs", data.get("span"))
        seen.add(nid)
    # Every node reads only nodes listed before it and its edges are exactly its inputs,
    # so node order is a topological order and the graph is acyclic: no separate check.
    for key in ("input", "output"):
        if graph.graph.get(key) not in graph:
            bug(f"the graph's {key} node is missing")
    for name, nid in graph.graph.get("aux_outputs", {}).items():
        if nid not in graph:
            bug(f"aux output `{name}` points at a missing node")
    return problems
