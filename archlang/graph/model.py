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
``exprs``  attribute -> the expression over network parameters it came from, for the
           attributes a parameter reaches (:mod:`archlang.graph.symbolic`)
=========  =====================================================================

``graph.graph`` holds ``network``, ``params``, ``input``, ``output``, ``aux_outputs``
(name -> node id, in declaration order), ``outputs_type``, ``scopes`` (path id ->
:class:`ScopeInfo`), ``input_shape``, ``templates`` (block name -> IR) and
``structural_params`` (the network parameters that choose structure, see
:mod:`archlang.lower.symbolic`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from archlang.diagnostics import Span


@dataclass(frozen=True)
class ScopeInfo:
    """A named grouping of nodes: a block instance, a named branch, a conv unit, an aux head."""

    path: tuple[str, ...]
    kind: str  # "block" | "branch" | "unit" | "group"
    span: Span
    template: str | None = None
    args: dict = field(default_factory=dict)
    aux: str | None = None
    exprs: dict = field(default_factory=dict)  # arg -> its expression over network parameters

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
