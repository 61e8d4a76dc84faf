"""The closed set of primitive ops: one :class:`~archlang.ops.record.OpRecord` per op.

An op's whole behaviour (signature, shape rule, parameters, MACs/FLOPs, receptive field,
memory, lint role, torch form, diagram style, import mapping) is one record in the module
of its family (:mod:`.conv`, :mod:`.pool`, :mod:`.norm`, :mod:`.activation`,
:mod:`.regularize`, :mod:`.classifier`, :mod:`.resample`, :mod:`.structure`), collected
in :data:`archlang.ops.records.RECORDS`. The tables below, and those of the analyses and
back ends, are views of those records.

Shapes are per sample, without the batch dimension: ``(C, H, W)`` for feature maps and
``(F,)`` for flat vectors.
"""

from __future__ import annotations

from .base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MAX_DIM,
    MAX_PARAM_ELEMENTS,
    ArgError,
    ArgSpec,
    Op,
    ShapeError,
    Signature,
    pair,
    positive_int,
)
from .records import RECORDS

SIGNATURES: dict[Op, Signature] = {op: r.signature for op, r in RECORDS.items()}

# Group modes (written `concat { }` ...), by their keyword.
GROUP_OPS: dict[str, Op] = {"concat": Op.CONCAT, "add": Op.ADD, "mul": Op.MUL}
MERGE_OPS = frozenset(GROUP_OPS.values())  # the graph ops that merge parallel branches
# Names a spec may call directly (structural ops are written with `concat {}` / `add {}` / `mul {}`).
CALLABLE_OPS: dict[str, Op] = {op.value: op for op in Op if op is not Op.INPUT and op not in GROUP_OPS.values()}
# Other names for a call, with the arguments they fix: `global_avgpool` is `adaptive_avgpool(1)`.
ALIASES: dict[str, tuple[Op, dict]] = {
    name: (op, dict(fixed)) for op, r in RECORDS.items() for name, fixed in r.aliases.items()
}

__all__ = [
    "ALIASES",
    "CALLABLE_OPS",
    "GROUP_OPS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_DIM",
    "MAX_PARAM_ELEMENTS",
    "MERGE_OPS",
    "RECORDS",
    "SIGNATURES",
    "ArgError",
    "ArgSpec",
    "Op",
    "ShapeError",
    "Signature",
    "pair",
    "positive_int",
]
