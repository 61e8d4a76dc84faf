"""Parameters and buffers per node, counted exactly as torch counts them.

``sum(p.numel() for p in model.parameters())`` counts conv/linear weights and biases and
BatchNorm's affine gamma/beta; BatchNorm's running_mean, running_var and
num_batches_tracked (one element) are buffers. Every rule takes
``(attrs, input shapes, output shape)`` and returns an element count.
"""

from __future__ import annotations

from collections.abc import Callable

from archlang.ops.param_counts import conv_weight_count

from ..ops import Op

Rule = Callable[[dict, list, tuple], int]


def zero(attrs, ins, out) -> int:
    return 0


def conv_weight_numel(attrs, ins) -> int:
    """Elements of a conv's weight: out × in/groups × kh × kw."""
    return conv_weight_count(ins[0][0], attrs["out_channels"], attrs["kernel_size"], attrs["groups"])


def _conv_params(attrs, ins, out) -> int:
    return conv_weight_numel(attrs, ins) + (attrs["out_channels"] if attrs["bias"] else 0)


def _linear_params(attrs, ins, out) -> int:
    # nn.Linear on the last dim: a flat vector, or a channels-last map's channels
    return attrs["out_features"] * ins[0][-1] + (attrs["out_features"] if attrs["bias"] else 0)


def _channels(attrs, ins, out) -> int:
    return out[0]


def _last_affine(attrs, ins, out) -> int:
    return 2 * out[-1] if attrs["affine"] else 0


def _bn_params(attrs, ins, out) -> int:
    return 2 * out[0] if attrs["affine"] else 0


def _bn_buffers(attrs, ins, out) -> int:
    # running_mean + running_var, plus the scalar num_batches_tracked.
    return 2 * out[0] + 1


PARAMS: dict[Op, Rule] = {
    Op.INPUT: zero,
    Op.TRANSFORM_INPUT: zero,  # constants folded into the expression, not registered
    Op.CONV2D: _conv_params,
    Op.BATCHNORM: _bn_params,
    Op.RELU: zero,
    Op.TANH: zero,
    Op.SIGMOID: zero,
    Op.RELU6: zero,
    Op.SILU: zero,
    Op.HARDSWISH: zero,
    Op.HARDSIGMOID: zero,
    Op.GELU: zero,
    Op.STOCHASTIC_DEPTH: zero,
    Op.CHANNEL_SHUFFLE: zero,
    Op.SPLIT: zero,
    Op.SPATIAL_MEAN: zero,
    Op.MAXPOOL: zero,
    Op.AVGPOOL: zero,
    Op.ADAPTIVE_AVGPOOL: zero,
    Op.LRN: zero,
    Op.DROPOUT: zero,
    Op.FLATTEN: zero,
    Op.LINEAR: _linear_params,
    Op.SOFTMAX: zero,
    Op.IDENTITY: zero,
    Op.PAD: zero,
    Op.CONCAT: zero,
    Op.ADD: zero,
    Op.MUL: zero,
    Op.LAYER_SCALE: _channels,  # the C×1×1 scale
    Op.PERMUTE: zero,
    Op.LAYERNORM: _last_affine,  # weight and bias over the last dim
    Op.LAYERNORM2D: lambda attrs, ins, out: 2 * out[0],
}

BUFFERS: dict[Op, Rule] = {op: zero for op in Op} | {Op.BATCHNORM: _bn_buffers}
# Ops with weights or buffers: their names are state_dict keys.
STATEFUL = frozenset(op for op in Op if PARAMS[op] is not zero or BUFFERS[op] is not zero)
