"""What every lint rule needs to know about a compiled network, computed once.

The rules reason about the *main path*: the representations every input-to-output path
passes through (the dominators of the output, aux heads excluded). Inside an Inception
block no single branch is on it, only the block's input and its concat output, which is
exactly the granularity at which the paper's principles talk about "the representation".
The main path is cut into *stages*, maximal runs at one effective stride (grid level).

Receptive fields and MACs come from :mod:`archlang.analysis` (no torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

import networkx as nx

from archlang.graph.model import Graph, Node
from archlang.ops.param_counts import conv_weight_count

from ..analysis import run_passes
from ..diagnostics import Span
from ..ops import GROUP_OPS, Op
from ..ops.records import RECORDS


class Role(str, Enum):
    SOURCE = "source"
    CONV = "conv"
    POOL = "pool"  # a spatial window without weights
    GLOBAL = "global"  # collapses the grid (adaptive pooling, spatial_mean, flatten, linear)
    POINTWISE = "pointwise"  # keeps the representation's shape and position
    MERGE = "merge"
    # raises the grid (upsampling, transposed convolution, pixel shuffle): the rules, written
    # for the downsampling path of a classifier, leave it alone
    UPSAMPLE = "upsample"


# How each op takes part in the representation: the op records' ``role``.
OP_ROLE: dict[Op, Role] = {op: Role(r.role) for op, r in RECORDS.items()}


def conv_macs(cin: int, cout: int, kernel: tuple[int, int], out_hw: tuple[int, int], groups: int = 1) -> int:
    """Multiply-accumulates of one conv (the project's MAC convention, bias not counted)."""
    return conv_weight_count(cin, cout, kernel, groups) * out_hw[0] * out_hw[1]


def is_spatial(shape) -> bool:
    """A feature map with more than one position (the classifier stage has none)."""
    return shape is not None and len(shape) == 3 and shape[1] * shape[2] > 1


@dataclass
class Stage:
    """A run of main-path representations at one effective stride."""

    stride: tuple[int, int]  # effective stride (jump) on H and W, in input pixels
    nodes: list[str] = field(default_factory=list)


class LintView:
    def __init__(self, compiled, analysis=None):
        """``analysis``: the network's :func:`run_passes` result if the caller has it (the
        rules use only receptive fields and MACs, which no dtype or batch changes)."""
        self.compiled = compiled
        self.graph: Graph = compiled.graph
        self.analysis = analysis if analysis is not None else run_passes(self.graph)
        self.order = self.graph.topological()
        self.index = {nid: i for i, nid in enumerate(self.order)}
        self.scopes = self.graph.scopes
        self.input_id = self.graph.input
        self.input_shape = tuple(self.node(self.input_id).shape)
        self.main_path = self._main_path()
        self.spatial_path = self._spatial_prefix(self.main_path)
        self.stages = self._stages(self.spatial_path)
        self.conv_depth = self._conv_depth()
        self._scope_last = self._last_node_of_scopes()

    # ---- node facts ------------------------------------------------------------------
    def node(self, nid: str) -> Node:
        return self.graph.nodes[nid]

    def op(self, nid: str) -> Op:
        return self.graph.nodes[nid].op

    def role(self, nid: str) -> Role:
        return OP_ROLE[self.op(nid)]

    def shape(self, nid: str) -> tuple[int, ...]:
        return tuple(self.graph.nodes[nid].shape)

    def in_shape(self, nid: str) -> tuple[int, ...]:
        return self.shape(self.graph.nodes[nid].inputs[0])

    def numel(self, nid: str) -> int:
        return math.prod(self.shape(nid))

    def rf(self, nid: str):
        return self.analysis.nodes[nid].rf

    def macs(self, nid: str) -> int:
        return self.analysis.nodes[nid].macs

    def nodes_with(self, *roles: Role, include_aux: bool = True) -> list[str]:
        return [n for n in self.order if self.role(n) in roles and (include_aux or self.node(n).aux is None)]

    def consumers(self, nid: str) -> list[str]:
        """The nodes that really use ``nid``'s output: successors, looking through pointwise ops."""
        found, todo, seen = [], list(self.graph.successors(nid)), set()
        while todo:
            n = todo.pop(0)
            if n in seen:
                continue
            seen.add(n)
            if self.role(n) is Role.POINTWISE:
                todo.extend(self.graph.successors(n))
            else:
                found.append(n)
        return sorted(found, key=self.index.__getitem__)

    # ---- where to point ---------------------------------------------------------------
    def display(self, nid: str) -> str:
        """A short name: the block for a block's output, a conv unit's scope (``Mixed_5b/branch5x5_2``)
        rather than ``.../conv``, else the node id."""
        block = self.block_output_scope(nid)
        if block is not None:
            return block.id
        path = self.node(nid).path
        parent = self.scopes.get("/".join(path[:-1])) if len(path) > 1 else None
        if parent is not None and (parent.kind == "unit" or path[-1] in GROUP_OPS):
            return parent.id
        return nid

    def enclosing_scopes(self, nid: str) -> list:
        """Scopes containing ``nid``, outermost first."""
        path = self.node(nid).path
        return [self.scopes[s] for s in ("/".join(path[:i]) for i in range(1, len(path) + 1)) if s in self.scopes]

    def block_output_scope(self, nid: str):
        """The outermost block instance whose output is ``nid``, else ``None``."""
        for scope in self.enclosing_scopes(nid):
            if scope.kind == "block" and self._scope_last.get(scope.id) == nid:
                return scope
        return None

    def site(self, nid: str) -> Span:
        """Where a finding about ``nid``'s output representation points: a block's call site
        when ``nid`` is the block's output, else the statement that created ``nid``."""
        scope = self.block_output_scope(nid)
        return scope.span if scope is not None else self.node(nid).span

    def instance(self, nid: str):
        """The outermost block instance ``nid`` is inside (for "in Mixed_5b" notes), or ``None``."""
        for scope in self.enclosing_scopes(nid):
            if scope.kind == "block":
                return scope
        return None

    # ---- construction -----------------------------------------------------------------
    def _main_path(self) -> list[str]:
        main = self.graph.to_networkx().subgraph(n for n in self.order if self.node(n).aux is None)
        output = self.graph.output
        idom = nx.immediate_dominators(main, self.input_id)
        chain = [output]
        while chain[-1] != self.input_id:
            chain.append(idom[chain[-1]])
        return chain[::-1]

    def _spatial_prefix(self, chain: list[str]) -> list[str]:
        """The main path up to (not including) the classifier stage, which is meant to compress."""
        out = []
        for nid in chain:
            if not is_spatial(self.shape(nid)) or self.role(nid) is Role.GLOBAL:
                break  # adaptive pooling to any size starts the classifier stage too
            out.append(nid)
        return out

    def _stages(self, chain: list[str]) -> list[Stage]:
        stages: list[Stage] = []
        for nid in chain:
            rf = self.rf(nid)
            stride = (rf.h.stride or 1, rf.w.stride or 1)
            if not stages or stages[-1].stride != stride:
                stages.append(Stage(stride))
            stages[-1].nodes.append(nid)
        return stages

    def _conv_depth(self) -> dict[str, int]:
        """Longest chain of convolutions from the input to each node."""
        depth: dict[str, int] = {}
        for nid in self.order:
            before = max((depth[s] for s in self.node(nid).inputs), default=0)
            depth[nid] = before + (self.role(nid) is Role.CONV)
        return depth

    def _last_node_of_scopes(self) -> dict[str, str]:
        last: dict[str, str] = {}
        for nid in self.order:
            path = self.node(nid).path
            for i in range(1, len(path)):
                last["/".join(path[:i])] = nid
        return last
