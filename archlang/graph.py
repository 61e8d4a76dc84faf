"""The lowered network: a networkx DiGraph of primitive ops, plus its structural verifier.

Node ids are hierarchy paths joined by ``/`` (``inception4a/branch2/0/conv``). Node data:

=========  =====================================================================
``op``     :class:`archlang.ops.Op`
``attrs``  the op's checked, normalised arguments (padding resolved to a pair)
``inputs`` ordered tuple of input node ids (concat order is branch order)
``path``   tuple of names from the network down to this node
``span``   the :class:`Span` of the statement that created it
``aux``    name of the auxiliary head the node belongs to, or ``None``
``init``   ``{"scheme": ..., "std": ...}`` for conv/linear weights, else ``None``
``shape``  per-sample output shape, set by the shape pass (``None`` if it failed)
=========  =====================================================================

``graph.graph`` holds ``network``, ``params``, ``input``, ``output``, ``aux_outputs``
(name -> node id, in declaration order), ``outputs_type``, ``scopes`` (path id ->
:class:`ScopeInfo`), ``input_shape`` and ``templates`` (block name -> IR).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from .diagnostics import Diagnostic, Span


@dataclass(frozen=True)
class ScopeInfo:
    """A named grouping of nodes: a block instance, a named branch, a conv unit, an aux head."""

    path: tuple[str, ...]
    kind: str  # "block" | "branch" | "unit" | "group"
    span: Span
    template: str | None = None
    args: dict = field(default_factory=dict)
    aux: str | None = None

    @property
    def id(self) -> str:
        return "/".join(self.path)


@dataclass(frozen=True)
class OutputsType:
    """``outputs GoogLeNetOutputs(logits, aux_logits2 = aux2, ...)``."""

    name: str
    fields: tuple[tuple[str, str | None], ...]  # (field, aux name or None for the main output)


def node_id(path: tuple[str, ...]) -> str:
    return "/".join(path)


def topological(graph: nx.DiGraph) -> list[str]:
    """Nodes in creation order, which lowering guarantees is topological."""
    return list(graph.nodes)


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
