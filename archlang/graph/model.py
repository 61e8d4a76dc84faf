"""The lowered network: a :class:`Graph` of :class:`Node` records, one per primitive op.

Node ids are hierarchy paths joined by ``/`` (``inception4a/branch2/0/conv``). A node's
fields:

=================  ======================================================="""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from archlang.diagnostics import Span

if TYPE_CHECKING:
    import networkx as nx

    from archlang.ops import Op


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
    # a block instance of several inputs (`block Up() from x, skip`): the nodes it reads, in
    # order; empty: the one value before it
    inputs: tuple[str, ...] = ()
    output: str | None = None  # a block instance's value (the last of its body)
    when: tuple = ()  # the conditions over boolean network parameters it exists under (see Node)

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


@dataclass(slots=True)
class Node:
    """One primitive op of the lowered network (see the module docstring for the fields)."""

    id: str
    op: Op
    attrs: dict
    inputs: tuple[str, ...]
    path: tuple[str, ...]
    span: Span | None = None
    aux: str | None = None
    init: dict | None = None
    shape: tuple | None = None
    channels_last: bool = False
    exprs: dict[str, object] = field(default_factory=dict)
    # the conditions over boolean network parameters (symbolic expressions, all must hold)
    # under which the node exists: `if aux_logits { ... }` in the network body gives
    # (("param", "aux_logits"),); empty: always
    when: tuple = ()


@dataclass(frozen=True)
class Alternative:
    """The structure an ``if`` on boolean network parameters did not build, lowered in the
    same compile (for a back end that writes the choice into its code: ``if
    self.transform_input:``). Its nodes and scopes are not the graph's: the graph is the
    network the parameters give; these are what the other values of the flags give.

    ``entry``: the value before the ``if``; ``taken`` / ``other``: the value after it in the
    graph / in this structure (``entry`` for a branch that adds nothing to the main path);
    ``anchor``: how many of the graph's nodes were made before the ``if`` (where these
    would stand in creation order)."""

    when: tuple
    nodes: tuple[Node, ...]
    scopes: tuple[ScopeInfo, ...]
    entry: str | None
    taken: str | None
    other: str | None
    anchor: int
    aux_outputs: tuple[tuple[str, str], ...] = ()
    outputs_type: OutputsType | None = None
    returns: tuple[tuple[str, str], ...] = ()  # its `outputs dict(...)`, as Graph.returns


@dataclass
class Graph:
    """The lowered network (as torch.fx's ``Graph``): nodes in topological order plus what
    the network declares around them."""

    nodes: dict[str, Node] = field(default_factory=dict)
    network: str = ""
    params: dict = field(default_factory=dict)
    input: str | None = None
    output: str | None = None
    aux_outputs: dict[str, str] = field(default_factory=dict)
    outputs_type: OutputsType | None = None
    # `outputs dict(...)`: (key, node id) of every value returned, in training and eval;
    # empty: the network returns `output` (and its aux heads, in training)
    returns: tuple[tuple[str, str], ...] = ()
    scopes: dict[str, ScopeInfo] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None
    file: str | None = None
    structural_params: frozenset[str] = frozenset()  # parameters an `if`, loop or name reads
    # boolean parameters read only by `if` tests in the network body whose other structure
    # is in ``alternatives`` (a back end can write the choice as code)
    symbolic_flags: frozenset[str] = frozenset()
    alternatives: tuple[Alternative, ...] = ()
    outputs_when: tuple = ()  # the conditions under which ``outputs_type`` / ``returns`` were declared
    # back ends' graphs only: the alternatives' nodes are in ``nodes`` (see the torch back
    # end's conditions.with_alternatives), and their `outputs dict(...)` as (conditions, returns)
    holds_alternatives: bool = False
    other_returns: tuple = ()
    warnings: tuple = ()  # diagnostics that do not stop the compile (a value never read)
    # node id -> the nodes reading it, each once, in creation order (torch.fx's ``users``);
    # derived from the nodes' inputs as they are added.
    _users: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nodes, self.nodes = self.nodes, {}
        for node in nodes.values():
            self.add_node(node)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, nid: object) -> bool:
        return nid in self.nodes

    def __iter__(self) -> Iterator[str]:
        """Node ids in topological order."""
        return iter(self.nodes)

    def add_node(self, node: Node) -> Node:
        """Append ``node``; its inputs should be nodes added before it (:func:`verify` checks)."""
        if node.id in self.nodes:
            raise ValueError(f"node `{node.id}` is already in the graph")
        self.nodes[node.id] = node
        self._users.setdefault(node.id, [])
        for src in dict.fromkeys(node.inputs):
            self._users.setdefault(src, []).append(node.id)
        return node

    def predecessors(self, nid: str) -> list[str]:
        """The nodes ``nid`` reads, each once, in input order."""
        return list(dict.fromkeys(self.nodes[nid].inputs))

    def successors(self, nid: str) -> list[str]:
        """The nodes that read ``nid``, each once, in creation order."""
        return list(self._users.get(nid, ()))

    def topological(self) -> list[str]:
        """Node ids in creation order, which lowering guarantees is topological."""
        return list(self.nodes)

    def to_networkx(self) -> nx.DiGraph:
        """A networkx DiGraph of the same nodes (each with its record as ``node``) and
        edges, built on each call: for graph algorithms, not for reading node data."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from((nid, {"node": node}) for nid, node in self.nodes.items())
        g.add_edges_from((src, nid) for nid, node in self.nodes.items() for src in node.inputs)
        return g
