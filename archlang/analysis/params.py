"""Parameters and buffers per node, counted exactly as torch counts them.

``sum(p.numel() for p in model.parameters())`` counts conv/linear weights and biases and
BatchNorm's affine gamma/beta; BatchNorm's running_mean, running_var and
num_batches_tracked (one element) are buffers. Every rule takes
``(attrs, input shapes, output shape)`` and returns an element count.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ..ops import Op

Rule = Callable[[dict, list, tuple], int]


def _zero(attrs, ins, out) -> int:
    return 0


def _conv_params(attrs, ins, out) -> int:
    cin = ins[0][0]
    weight = attrs["out_channels"] * (cin // attrs["groups"]) * math.prod(attrs["kernel_size"])
    return weight + (attrs["out_channels"] if attrs["bias"] else 0)


def _linear_params(attrs, ins, out) -> int:
    return attrs["out_features"] * ins[0][0] + (attrs["out_features"] if attrs["bias"] else 0)


def _bn_params(attrs, ins, out) -> int:
    return 2 * out[0] if attrs["affine"] else 0


def _bn_buffers(attrs, ins, out) -> int:
    # running_mean + running_var, plus the scalar num_batches_tracked.
    return 2 * out[0] + 1


PARAMS: dict[Op, Rule] = {
    Op.INPUT: _zero,
    Op.TRANSFORM_INPUT: _zero,  # constants folded into the expression, not registered
    Op.CONV2D: _conv_params,
    Op.BATCHNORM: _bn_params,
    Op.RELU: _zero,
    Op.MAXPOOL: _zero,
    Op.AVGPOOL: _zero,
    Op.ADAPTIVE_AVGPOOL: _zero,
    Op.LRN: _zero,
    Op.DROPOUT: _zero,
    Op.FLATTEN: _zero,
    Op.LINEAR: _linear_params,
    Op.SOFTMAX: _zero,
    Op.IDENTITY: _zero,
    Op.CONCAT: _zero,
    Op.ADD: _zero,
}

BUFFERS: dict[Op, Rule] = {op: _zero for op in Op} | {Op.BATCHNORM: _bn_buffers}
