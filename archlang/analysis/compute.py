"""Compute per node, per sample, in three conventions (see ``docs/analysis.md``).

``MACS``
    multiply-accumulates of conv and linear layers only (the GoogLeNet paper's "ops",
    torchvision's "GFLOPS"): conv ``prod(weight_shape) * H_out * W_out``, linear
    ``in * out``; bias adds are not counted.
``FLOPS``
    fvcore's ``FlopCountAnalysis`` in eval mode: MACs, plus batch norm ``2 * numel``
    (``numel`` without affine), plus adaptive average pooling ``input numel``. Everything
    else is 0 in fvcore (max/avg pooling are unsupported there, fvcore#148; so is
    ``aten::mean``, hence ``spatial_mean`` is 0 though ``adaptive_avgpool(1)`` is not).
``ALL_OPS``
    archlang's count of every arithmetic operation at inference, one per multiply, add,
    comparison, divide, exp or pow (a multiply-add is 2). See each rule's comment.

The rules are the op records' ``macs``, ``flops`` and ``all_ops`` fields, each written
next to its op (:mod:`archlang.ops`); these tables are views of them.
"""

from __future__ import annotations

from ..ops import Op
from ..ops.records import RECORDS
from .params import Rule

MACS: dict[Op, Rule] = {op: r.macs for op, r in RECORDS.items()}
FLOPS: dict[Op, Rule] = {op: r.flops for op, r in RECORDS.items()}
ALL_OPS: dict[Op, Rule] = {op: r.all_ops for op, r in RECORDS.items()}
