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

Every rule takes ``(attrs, input shapes, output shape)`` and returns an integer.
"""

from __future__ import annotations

import math

from ..ops import Op
from .params import Rule, conv_weight_numel
from .params import zero as _zero


def _conv_macs(attrs, ins, out) -> int:
    return conv_weight_numel(attrs, ins) * out[1] * out[2]


def _linear_macs(attrs, ins, out) -> int:
    # in × out per position: one position for a vector, H×W for a channels-last map
    return math.prod(ins[0]) * attrs["out_features"]


def _in_numel(attrs, ins, out) -> int:
    return math.prod(ins[0])


MACS: dict[Op, Rule] = {
    Op.INPUT: _zero,
    Op.TRANSFORM_INPUT: _zero,
    Op.CONV2D: _conv_macs,
    Op.BATCHNORM: _zero,
    Op.RELU: _zero,
    Op.TANH: _zero,
    Op.SIGMOID: _zero,
    Op.RELU6: _zero,
    Op.SILU: _zero,
    Op.HARDSWISH: _zero,
    Op.HARDSIGMOID: _zero,
    Op.GELU: _zero,
    Op.STOCHASTIC_DEPTH: _zero,
    Op.CHANNEL_SHUFFLE: _zero,
    Op.SPLIT: _zero,
    Op.SPATIAL_MEAN: _zero,
    Op.MAXPOOL: _zero,
    Op.AVGPOOL: _zero,
    Op.ADAPTIVE_AVGPOOL: _zero,
    Op.LRN: _zero,
    Op.DROPOUT: _zero,
    Op.FLATTEN: _zero,
    Op.LINEAR: _linear_macs,
    Op.SOFTMAX: _zero,
    Op.IDENTITY: _zero,
    Op.PAD: _zero,
    Op.CONCAT: _zero,
    Op.ADD: _zero,
    Op.MUL: _zero,
    Op.LAYER_SCALE: _zero,
    Op.PERMUTE: _zero,
    Op.LAYERNORM: _zero,
    Op.LAYERNORM2D: _zero,
}


def _fvcore_bn(attrs, ins, out) -> int:
    # fvcore's batchnorm_flop_jit in eval mode: 2 per element with affine, else 1.
    return math.prod(out) * (2 if attrs["affine"] else 1)


FLOPS: dict[Op, Rule] = {
    Op.INPUT: _zero,
    Op.TRANSFORM_INPUT: _zero,  # aten::mul / add / cat: not in fvcore's supported set
    Op.CONV2D: _conv_macs,
    Op.BATCHNORM: _fvcore_bn,
    Op.RELU: _zero,
    Op.TANH: _zero,  # aten::tanh: unsupported in fvcore
    Op.SIGMOID: _zero,  # aten::sigmoid: unsupported in fvcore
    Op.RELU6: _zero,  # aten::hardtanh: unsupported in fvcore
    Op.SILU: _zero,  # aten::silu: unsupported
    Op.HARDSWISH: _zero,  # aten::hardswish: unsupported
    Op.HARDSIGMOID: _zero,  # aten::hardsigmoid: unsupported
    Op.GELU: _zero,  # aten::gelu: unsupported
    Op.STOCHASTIC_DEPTH: _zero,  # the identity in eval
    Op.CHANNEL_SHUFFLE: _zero,  # aten::channel_shuffle: unsupported
    Op.SPLIT: _zero,  # aten::chunk: a view
    Op.SPATIAL_MEAN: _zero,  # aten::mean: unsupported in fvcore
    Op.MAXPOOL: _zero,  # unsupported in fvcore (fvcore#148)
    Op.AVGPOOL: _zero,  # unsupported in fvcore (fvcore#148)
    Op.ADAPTIVE_AVGPOOL: _in_numel,  # fvcore: elementwise_flop_counter(1, 0) on the input
    Op.LRN: _zero,
    Op.DROPOUT: _zero,
    Op.FLATTEN: _zero,
    Op.LINEAR: _linear_macs,
    Op.SOFTMAX: _zero,
    Op.IDENTITY: _zero,
    Op.PAD: _zero,  # aten::pad / constant_pad_nd: unsupported in fvcore
    Op.CONCAT: _zero,
    Op.ADD: _zero,  # aten::add is unsupported in fvcore
    Op.MUL: _zero,  # aten::mul: unsupported in fvcore
    Op.LAYER_SCALE: _zero,  # aten::mul
    Op.PERMUTE: _zero,
    Op.LAYERNORM: lambda attrs, ins, out: math.prod(out) * (5 if attrs["affine"] else 4),  # fvcore norm_flop_counter
    Op.LAYERNORM2D: lambda attrs, ins, out: 5 * math.prod(out),  # aten::layer_norm with weight and bias
}


def _dot_ops(macs_rule: Rule) -> Rule:
    # One multiply and one add per MAC. With a bias the bias seeds the accumulator, so every
    # product is added; without one, the first product of each output needs no add.
    def rule(attrs, ins, out) -> int:
        ops = 2 * macs_rule(attrs, ins, out)
        return ops if attrs["bias"] else ops - math.prod(out)

    return rule


def _per_element(n: int) -> Rule:
    def rule(attrs, ins, out) -> int:
        return n * math.prod(out)

    return rule


def _window_ops(extra: int) -> Rule:
    # A k-element window costs k - 1 comparisons (max) or k - 1 adds plus 1 divide (avg,
    # extra=1). Windows that overlap the padding are counted as full windows.
    def rule(attrs, ins, out) -> int:
        return math.prod(out) * (math.prod(attrs["kernel_size"]) - 1 + extra)

    return rule


def _adaptive_bins(size: int, n_out: int) -> int:
    """Total elements over PyTorch's adaptive bins [floor(i*size/n), ceil((i+1)*size/n))."""
    return sum(-(-(i + 1) * size // n_out) - (i * size // n_out) for i in range(n_out))


def _adaptive_ops(attrs, ins, out) -> int:
    # n - 1 adds and one divide per n-element bin: n ops per bin, exactly.
    c, h, w = ins[0]
    oh, ow = attrs["output_size"]
    return c * _adaptive_bins(h, oh) * _adaptive_bins(w, ow)


def _lrn_ops(attrs, ins, out) -> int:
    # PyTorch's algorithm: square (1), sum over `size` channels (size - 1), times alpha/size
    # (1), plus k (1), pow beta (1), divide (1) -> size + 4 per element.
    return (attrs["size"] + 4) * math.prod(out)


def _gelu_ops(attrs, ins, out) -> int:
    # "none": 0.5 * x * (1 + erf(x / sqrt 2)): multiply, erf, add, multiply, multiply (5).
    # "tanh": 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x³))): x³ (2), multiply,
    # add, multiply, tanh (5, as Op.TANH), add, multiply, multiply (13).
    return (5 if attrs["approximate"] == "none" else 13) * math.prod(out)


def _add_ops(attrs, ins, out) -> int:
    return (len(ins) - 1) * math.prod(out)


ALL_OPS: dict[Op, Rule] = {
    Op.INPUT: _zero,
    Op.TRANSFORM_INPUT: _per_element(2),  # x * scale_c + shift_c
    Op.CONV2D: _dot_ops(_conv_macs),
    Op.BATCHNORM: _per_element(2),  # eval: folded to x * scale_c + shift_c
    Op.RELU: _per_element(1),  # one comparison
    Op.TANH: _per_element(5),  # 1 - 2 / (exp(2x) + 1): multiply, exp, add, divide, subtract
    Op.SIGMOID: _per_element(3),  # 1 / (1 + exp(-x)): exp, add, divide
    Op.RELU6: _per_element(2),  # two comparisons (0 and 6)
    Op.SILU: _per_element(4),  # x * sigmoid(x): sigmoid (3) and a multiply
    Op.HARDSWISH: _per_element(5),  # x * relu6(x + 3) / 6: add, 2 comparisons, multiply, divide
    Op.HARDSIGMOID: _per_element(4),  # relu6(x + 3) / 6: add, 2 comparisons, divide
    Op.GELU: _gelu_ops,
    Op.STOCHASTIC_DEPTH: _zero,  # the identity at inference
    Op.CHANNEL_SHUFFLE: _zero,  # a copy
    Op.SPLIT: _zero,  # a view
    Op.SPATIAL_MEAN: _in_numel,  # per channel H·W - 1 adds and one divide
    Op.MAXPOOL: _window_ops(0),
    Op.AVGPOOL: _window_ops(1),
    Op.ADAPTIVE_AVGPOOL: _adaptive_ops,
    Op.LRN: _lrn_ops,
    Op.DROPOUT: _zero,  # the identity at inference
    Op.FLATTEN: _zero,  # a view
    Op.LINEAR: _dot_ops(_linear_macs),
    Op.SOFTMAX: _per_element(3),  # exp, add to the sum, divide (max-subtraction not counted)
    Op.IDENTITY: _zero,
    Op.PAD: _zero,  # a copy into a larger zeroed tensor
    Op.CONCAT: _zero,  # a copy, no arithmetic
    Op.ADD: _add_ops,
    Op.MUL: _add_ops,  # one multiply per element per extra branch (after broadcasting)
    Op.LAYER_SCALE: _per_element(1),
    Op.PERMUTE: _zero,  # a view
    # mean (1 add), subtract, square, variance (1 add), scale by 1/sqrt: 5 per element (the
    # per-row sqrt and divide not counted), plus multiply and add when affine
    Op.LAYERNORM: lambda attrs, ins, out: math.prod(out) * (7 if attrs["affine"] else 5),
    Op.LAYERNORM2D: _per_element(7),
}
