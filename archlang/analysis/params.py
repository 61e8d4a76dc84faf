"""Parameters and buffers per node, counted exactly as torch counts them.

``sum(p.numel() for p in model.parameters())`` counts conv/linear weights and biases and
BatchNorm's affine gamma/beta; BatchNorm's running_mean, running_var and
num_batches_tracked (one element) are buffers. The rules are the op records' ``params`` and ``buffers`` fields
(:mod:`archlang.ops.costs`); these tables are views of them.
"""

from __future__ import annotations

from ..ops import Op
from ..ops.costs import Rule, conv_weight_numel, zero
from ..ops.records import RECORDS

PARAMS: dict[Op, Rule] = {op: r.params for op, r in RECORDS.items()}
BUFFERS: dict[Op, Rule] = {op: r.buffers for op, r in RECORDS.items()}
# Ops with weights or buffers: their names are state_dict keys.
STATEFUL = frozenset(op for op in Op if PARAMS[op] is not zero or BUFFERS[op] is not zero)

__all__ = ["BUFFERS", "PARAMS", "STATEFUL", "Rule", "conv_weight_numel", "zero"]
