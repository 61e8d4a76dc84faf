"""Typed results of the static analyses: one :class:`NodeCost` per graph node, summed into
:class:`Totals`, all held by an :class:`Analysis`.

Every count is an exact ``int`` (no floats), so reports and JSON can print them unrounded.
Costs (MACs, FLOPs, all-ops) are per sample; memory figures are for ``batch`` samples at
``dtype``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..graph.model import Graph
from ..ops import Op
from ..ops.fields import WHOLE_AXIS, AxisRF, ReceptiveField

__all__ = ["WHOLE_AXIS", "Analysis", "AxisRF", "NodeCost", "ReceptiveField", "Totals"]


@dataclass(frozen=True, slots=True)
class NodeCost:
    """Everything the analyses know about one node."""

    id: str
    op: Op
    shape: tuple[int, ...]
    aux: str | None
    params: int
    buffers: int
    macs: int
    flops: int  # fvcore convention (see docs/analysis.md)
    all_ops: int  # every arithmetic op, archlang's convention (see docs/analysis.md)
    out_elements: int  # per sample
    out_bytes: int  # for the analysis' batch and dtype
    rf: ReceptiveField


# The NodeCost fields that add up over nodes.
SUMMABLE = ("params", "buffers", "macs", "flops", "all_ops", "out_elements", "out_bytes")


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over a set of nodes (the main path, one aux head, or one block)."""

    nodes: int = 0
    params: int = 0
    buffers: int = 0
    macs: int = 0
    flops: int = 0
    all_ops: int = 0
    out_elements: int = 0
    out_bytes: int = 0

    @classmethod
    def of(cls, costs) -> Totals:
        costs = list(costs)
        if len(costs) == 1:  # the common case in per-layer reports
            c = costs[0]
            return cls(1, c.params, c.buffers, c.macs, c.flops, c.all_ops, c.out_elements, c.out_bytes)
        return cls(len(costs), *(sum(getattr(c, name) for c in costs) for name in SUMMABLE))

    def __add__(self, other: Totals) -> Totals:
        return Totals(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Analysis:
    """The result of :func:`archlang.analyze`.

    ``nodes`` maps node id to :class:`NodeCost` in topological order; ``totals`` covers the
    inference path (nodes outside aux heads); ``aux_totals`` each aux head (train-time only);
    ``peak_activation_bytes`` is the inference peak of live activations (see
    :mod:`archlang.analysis.memory`).
    """

    graph: Graph
    nodes: dict[str, NodeCost]
    totals: Totals
    aux_totals: dict[str, Totals]
    peak_activation_bytes: int
    peak_at: str | None  # the node during whose execution the peak occurs
    dtype: str
    batch: int
    input_shape: tuple[int, ...] = field(default=())

    @property
    def network(self) -> str:
        return self.graph.network

    @property
    def output_rf(self) -> ReceptiveField:
        return self.nodes[self.graph.output].rf

    def block(self, path: str) -> Totals:
        """Sums over the nodes at or below ``path`` (a block instance, branch or node id)."""
        prefix = path.rstrip("/") + "/"
        costs = [c for nid, c in self.nodes.items() if nid == path or nid.startswith(prefix)]
        if not costs:
            raise KeyError(f"no node at or below {path!r}")
        return Totals.of(costs)

    def last_node(self, path: str) -> NodeCost:
        """The last node (in topological order) at or below ``path``: the block's output."""
        prefix = path.rstrip("/") + "/"
        last = None
        for nid, c in self.nodes.items():
            if nid == path or nid.startswith(prefix):
                last = c
        if last is None:
            raise KeyError(f"no node at or below {path!r}")
        return last

    def to_dataframe(self):
        """The per-node table as a pandas DataFrame (needs pandas, which archlang does not require)."""
        import pandas as pd  # optional: archlang does not depend on pandas

        return pd.DataFrame(
            [
                {
                    **{n: getattr(c, n) for n in ("id", "aux", *SUMMABLE)},
                    "op": c.op.value,
                    "shape": c.shape,
                    "rf": c.rf.text(),
                }
                for c in self.nodes.values()
            ]
        )
