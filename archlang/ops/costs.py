"""Cost rules the op records name: parameters and buffers (as torch counts them), MACs,
FLOPs (fvcore's ``FlopCountAnalysis`` convention) and all-ops (archlang's count of every
arithmetic operation). Conventions are in ``docs/analysis.md``.

Every rule takes ``(attrs, input shapes, output shape)`` and returns an integer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .param_counts import conv_weight_count

Rule = Callable[[dict, list, tuple], int]


def zero(attrs, ins, out) -> int:
    return 0


# ---- parameters and buffers ------------------------------------------------------------


def conv_weight_numel(attrs, ins) -> int:
    """Elements of a conv's weight: out × in/groups × kh × kw."""
    return conv_weight_count(ins[0][0], attrs["out_channels"], attrs["kernel_size"], attrs["groups"])


def conv_params(attrs, ins, out) -> int:
    return conv_weight_numel(attrs, ins) + (attrs["out_channels"] if attrs["bias"] else 0)


def linear_params(attrs, ins, out) -> int:
    # nn.Linear on the last dim: a flat vector, or a channels-last map's channels
    return attrs["out_features"] * ins[0][-1] + (attrs["out_features"] if attrs["bias"] else 0)


def channels(attrs, ins, out) -> int:
    return out[0]


def two_per_channel(attrs, ins, out) -> int:
    return 2 * out[0]


def bn_params(attrs, ins, out) -> int:
    return 2 * out[0] if attrs["affine"] else 0


def bn_buffers(attrs, ins, out) -> int:
    # running_mean + running_var, plus the scalar num_batches_tracked.
    return 2 * out[0] + 1


# ---- MACs and fvcore FLOPs ---------------------------------------------------------------


def conv_macs(attrs, ins, out) -> int:
    return conv_weight_numel(attrs, ins) * out[1] * out[2]


def linear_macs(attrs, ins, out) -> int:
    # in × out per position: one position for a vector, H×W for a channels-last map
    return math.prod(ins[0]) * attrs["out_features"]


def in_numel(attrs, ins, out) -> int:
    return math.prod(ins[0])


def out_numel(attrs, ins, out) -> int:
    return math.prod(out)


def fvcore_bn(attrs, ins, out) -> int:
    # fvcore's batchnorm_flop_jit in eval mode: 2 per element with affine, else 1.
    return math.prod(out) * (2 if attrs["affine"] else 1)


# ---- all-ops ---------------------------------------------------------------------------


def dot_ops(macs_rule: Rule) -> Rule:
    # One multiply and one add per MAC. With a bias the bias seeds the accumulator, so every
    # product is added; without one, the first product of each output needs no add.
    def rule(attrs, ins, out) -> int:
        ops = 2 * macs_rule(attrs, ins, out)
        return ops if attrs["bias"] else ops - math.prod(out)

    return rule


def per_element(n: int) -> Rule:
    def rule(attrs, ins, out) -> int:
        return n * math.prod(out)

    return rule


def window_ops(extra: int) -> Rule:
    # A k-element window costs k - 1 comparisons (max) or k - 1 adds plus 1 divide (avg,
    # extra=1). Windows that overlap the padding are counted as full windows.
    def rule(attrs, ins, out) -> int:
        return math.prod(out) * (math.prod(attrs["kernel_size"]) - 1 + extra)

    return rule


def adaptive_bins(size: int, n_out: int) -> int:
    """Total elements over PyTorch's adaptive bins [floor(i*size/n), ceil((i+1)*size/n))."""
    return sum(-(-(i + 1) * size // n_out) - (i * size // n_out) for i in range(n_out))


def adaptive_ops(extra: int) -> Rule:
    # n - 1 adds and one divide per n-element bin (avg, extra=1: n ops per bin, exactly), or
    # n - 1 comparisons (max, extra=0).
    def rule(attrs, ins, out) -> int:
        c, h, w = ins[0]
        oh, ow = attrs["output_size"]
        return c * adaptive_bins(h, oh) * adaptive_bins(w, ow) - (1 - extra) * math.prod(out)

    return rule


def lrn_ops(attrs, ins, out) -> int:
    # PyTorch's algorithm: square (1), sum over `size` channels (size - 1), times alpha/size
    # (1), plus k (1), pow beta (1), divide (1) -> size + 4 per element.
    return (attrs["size"] + 4) * math.prod(out)


def gelu_ops(attrs, ins, out) -> int:
    # "none": 0.5 * x * (1 + erf(x / sqrt 2)): multiply, erf, add, multiply, multiply (5).
    # "tanh": 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x³))): x³ (2), multiply,
    # add, multiply, tanh (5, as Op.TANH), add, multiply, multiply (13).
    return (5 if attrs["approximate"] == "none" else 13) * math.prod(out)


def add_ops(attrs, ins, out) -> int:
    return (len(ins) - 1) * math.prod(out)
