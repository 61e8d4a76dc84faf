"""The closed set of primitive ops and their signatures.

Per-op behaviour lives in tables keyed by :class:`Op` (here: ``SIGNATURES``; shape rules
in :mod:`archlang.ops.shape_rules`; binding a call to its signature in :mod:`archlang.ops.binding`;
analyses and backends keep their own tables keyed the same way, and a test checks every
op has a row in every table).

Shapes are per sample, without the batch dimension: ``(C, H, W)`` for feature maps and
``(F,)`` for flat vectors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Op(str, Enum):
    INPUT = "input"
    TRANSFORM_INPUT = "transform_input"
    CONV2D = "conv2d"
    BATCHNORM = "batchnorm"
    RELU = "relu"
    TANH = "tanh"
    SIGMOID = "sigmoid"
    RELU6 = "relu6"
    SILU = "silu"
    HARDSWISH = "hardswish"
    HARDSIGMOID = "hardsigmoid"
    GELU = "gelu"
    STOCHASTIC_DEPTH = "stochastic_depth"
    CHANNEL_SHUFFLE = "channel_shuffle"
    SPLIT = "split"
    SPATIAL_MEAN = "spatial_mean"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    ADAPTIVE_AVGPOOL = "adaptive_avgpool"
    LRN = "lrn"
    DROPOUT = "dropout"
    FLATTEN = "flatten"
    LINEAR = "linear"
    SOFTMAX = "softmax"
    IDENTITY = "identity"
    PAD = "pad"
    CONCAT = "concat"
    ADD = "add"
    MUL = "mul"
    LAYER_SCALE = "layer_scale"
    PERMUTE = "permute"
    LAYERNORM = "layernorm"
    LAYERNORM2D = "layernorm2d"


class ShapeError(Exception):
    """A shape rule failed; lowered to a located diagnostic by the shape pass."""

    def __init__(self, code: str, message: str, help: str | None = None, notes: tuple[str, ...] = ()):
        super().__init__(message)
        self.code, self.message, self.help, self.notes = code, message, help, notes


# ---- argument types ---------------------------------------------------------------------


class ArgError(Exception):
    """A bad argument to an op: ``code`` is the diagnostic code, ``arg`` the argument at
    fault (its name, its position, or None for the call as a whole)."""

    def __init__(self, message: str, help: str | None = None, code: str = "E205", arg: str | int | None = None):
        super().__init__(message)
        self.message, self.help, self.code, self.arg = message, help, code, arg


MAX_DIM = 1 << 20  # channels, features, kernel sizes: beyond this a spec is surely wrong
MAX_PARAM_ELEMENTS = 1 << 31  # one conv / linear weight tensor (8 GiB of float32)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def positive_int(v, what: str = "value", zero_ok: bool = False) -> int:
    if not _is_int(v):
        raise ArgError(f"expected an integer, got {_describe(v)}")
    low = 0 if zero_ok else 1
    if v < low:
        raise ArgError(f"{what} must be {'≥ 0' if zero_ok else 'positive'}, got {v}")
    if v > MAX_DIM:
        raise ArgError(
            f"{what} {v} is beyond the limit of {MAX_DIM}", help="archlang refuses sizes this large; is there a typo?"
        )
    return v


def _describe(v) -> str:
    if isinstance(v, bool):
        return f"bool {str(v).lower()}"
    if isinstance(v, str):
        return f"string {v!r}"
    if isinstance(v, tuple):
        return f"tuple {v}"
    if v is None:
        return "none"
    return f"{type(v).__name__} {v!r}"


def pair(v, what: str, zero_ok: bool = False) -> tuple[int, int]:
    if _is_int(v):
        return (positive_int(v, what, zero_ok),) * 2
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return (positive_int(v[0], what, zero_ok), positive_int(v[1], what, zero_ok))
    raise ArgError(
        f"{what} must be an integer or a pair (h, w), got {_describe(v)}", help="write e.g. 3, (1, 7) or 1x7"
    )


def _t_int(v, name):
    return positive_int(v, name)


def _t_nonneg(v, name):
    return positive_int(v, name, zero_ok=True)


def _t_pair(v, name):
    return pair(v, name)


def _t_pair0(v, name):
    return pair(v, name, zero_ok=True)


def _t_padding(v, name):
    if v in ("same", "valid"):
        return v
    if isinstance(v, str):
        raise ArgError(f'padding must be an integer, a pair, "same" or "valid", got {v!r}')
    if isinstance(v, (tuple, list)) and len(v) == 4:
        raise ArgError(
            f"conv padding is symmetric: an integer or a pair (h, w), got {_describe(v)}",
            help="for asymmetric padding put `pad((top, bottom, left, right))` before the conv, "
            "as nn.ZeroPad2d does in PyTorch",
        )
    return pair(v, name, zero_ok=True)


def _t_pad4(v, name):
    """``p``, ``(h, w)`` or ``(top, bottom, left, right)`` -> (top, bottom, left, right)."""
    if isinstance(v, (tuple, list)) and len(v) == 4:
        return tuple(positive_int(x, name, zero_ok=True) for x in v)
    try:
        h, w = pair(v, name, zero_ok=True)
    except ArgError:
        raise ArgError(
            f"{name} must be an integer, a pair (h, w) or (top, bottom, left, right), got {_describe(v)}",
            help="e.g. pad((0, 1, 0, 1)) pads one row below and one column to the right",
        ) from None
    return (h, h, w, w)


def _t_bool(v, name):
    if not isinstance(v, bool):
        raise ArgError(f"{name} must be true or false, got {_describe(v)}")
    return v


def _t_float(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArgError(f"{name} must be a number, got {_describe(v)}")
    if not math.isfinite(v):
        raise ArgError(f"{name} must be finite, got {v}")
    return float(v)


def _t_prob(v, name):
    v = _t_float(v, name)
    if not 0.0 <= v < 1.0:
        raise ArgError(f"{name} must be in [0, 1), got {v}")
    return v


def _t_positive_float(v, name):
    v = _t_float(v, name)
    if v <= 0:
        raise ArgError(f"{name} must be positive, got {v}")
    return v


def _t_opt_float(v, name):
    return None if v is None else _t_positive_float(v, name)


def _t_opt_pair(v, name):
    return None if v is None else pair(v, name)


def _t_permutation(v, name):
    """torch.permute's dims, the batch dim included: a permutation of 0..n-1 that keeps 0 first."""
    if not isinstance(v, (tuple, list)) or not all(_is_int(x) for x in v):
        raise ArgError(f"{name} must be a tuple of dimension indices, got {_describe(v)}", help="e.g. (0, 2, 3, 1)")
    if sorted(v) != list(range(len(v))) or len(v) < 2 or v[0] != 0:
        raise ArgError(
            f"{name} must be a permutation of 0..{max(len(v), 2) - 1} that keeps the batch dim 0 first, got {tuple(v)}",
            help="(0, 2, 3, 1) makes C×H×W channels-last, (0, 3, 1, 2) makes it channels-first again",
        )
    return tuple(v)


def _t_choice(*choices: str) -> Callable[[Any, str], str]:
    shown = ", ".join(f'"{c}"' for c in choices)

    def check(v, name):
        if not isinstance(v, str) or v not in choices:
            raise ArgError(
                f"{name} must be one of {shown}, got {_describe(v)}",
                help=f'e.g. {name}="{choices[-1]}"',
            )
        return v

    return check


def _t_float_triple(v, name):
    if isinstance(v, (tuple, list)) and len(v) == 3:
        return tuple(_t_float(x, name) for x in v)
    raise ArgError(f"{name} must be a triple of numbers, got {_describe(v)}")


_REQUIRED = object()


@dataclass(frozen=True)
class ArgSpec:
    name: str
    check: Callable[[Any, str], Any]
    default: Any = _REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


@dataclass(frozen=True)
class Signature:
    args: tuple[ArgSpec, ...]
    doc: str


def _sig(doc, *args):
    return Signature(tuple(args), doc)


A = ArgSpec
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SIGNATURES: dict[Op, Signature] = {
    Op.INPUT: _sig("the network input"),
    Op.TRANSFORM_INPUT: _sig(
        "torchvision's transform_input: re-normalise ImageNet-normalised input to [-1, 1]",
        A("mean", _t_float_triple, IMAGENET_MEAN),
        A("std", _t_float_triple, IMAGENET_STD),
    ),
    Op.CONV2D: _sig(
        "2-D convolution",
        A("out_channels", _t_int),
        A("kernel_size", _t_pair),
        A("stride", _t_pair, 1),
        A("padding", _t_padding, 0),
        A("dilation", _t_pair, 1),
        A("groups", _t_int, 1),
        A("bias", _t_bool, True),
        A("init_std", _t_opt_float, None),
    ),
    Op.BATCHNORM: _sig(
        "batch normalisation over channels",
        A("eps", _t_positive_float, 1e-5),
        A("momentum", _t_float, 0.1),
        A("affine", _t_bool, True),
        A("zero_init", _t_bool, False, "start the scale γ at 0 (ResNet's zero_init_residual)"),
    ),
    Op.RELU: _sig("rectified linear unit"),
    Op.TANH: _sig("hyperbolic tangent"),
    Op.SIGMOID: _sig("logistic sigmoid 1 / (1 + exp(-x))"),
    Op.RELU6: _sig("ReLU clipped at 6: min(max(x, 0), 6)"),
    Op.SILU: _sig("SiLU (swish): x * sigmoid(x)"),
    Op.HARDSWISH: _sig("hard swish: x * relu6(x + 3) / 6"),
    Op.HARDSIGMOID: _sig("hard sigmoid: relu6(x + 3) / 6"),
    Op.GELU: _sig("Gaussian error linear unit", A("approximate", _t_choice("none", "tanh"), "none")),
    Op.STOCHASTIC_DEPTH: _sig(
        "stochastic depth: zeroes whole samples (row) or the whole batch in training; identity in eval",
        A("p", _t_prob),
        A("mode", _t_choice("row", "batch"), "row"),
    ),
    Op.CHANNEL_SHUFFLE: _sig("channel shuffle: (groups, C/groups) -> (C/groups, groups)", A("groups", _t_int)),
    Op.SPLIT: _sig(
        "one chunk along channels: torch.chunk(x, chunks, dim=1)[index]",
        A("chunks", _t_int),
        A("index", _t_nonneg),
    ),
    Op.SPATIAL_MEAN: _sig("mean over H and W: (C, H, W) -> (C,), or (C, 1, 1)", A("keepdim", _t_bool, False)),
    Op.MAXPOOL: _sig(
        "max pooling",
        A("kernel_size", _t_pair),
        A("stride", _t_opt_pair, None),
        A("padding", _t_pair0, 0),
        A("dilation", _t_pair, 1),
        A("ceil_mode", _t_bool, False),
    ),
    Op.AVGPOOL: _sig(
        "average pooling",
        A("kernel_size", _t_pair),
        A("stride", _t_opt_pair, None),
        A("padding", _t_pair0, 0),
        A("ceil_mode", _t_bool, False),
        A("count_include_pad", _t_bool, True),
    ),
    Op.ADAPTIVE_AVGPOOL: _sig("adaptive average pooling to a fixed output size", A("output_size", _t_pair, 1)),
    Op.LRN: _sig(
        "local response normalisation across channels",
        A("size", _t_int),
        A("alpha", _t_float, 1e-4),
        A("beta", _t_float, 0.75),
        A("k", _t_float, 1.0),
    ),
    Op.DROPOUT: _sig("dropout (training only)", A("p", _t_prob, 0.5)),
    Op.FLATTEN: _sig("flatten C×H×W to a vector"),
    Op.LINEAR: _sig(
        "fully connected layer", A("out_features", _t_int), A("bias", _t_bool, True), A("init_std", _t_opt_float, None)
    ),
    Op.SOFTMAX: _sig("softmax over features"),
    Op.IDENTITY: _sig("identity"),
    Op.PAD: _sig(
        "zero padding of the borders: an integer, (h, w) or (top, bottom, left, right)", A("padding", _t_pad4)
    ),
    Op.CONCAT: _sig("channel concatenation of parallel branches"),
    Op.ADD: _sig("elementwise sum of parallel branches"),
    Op.MUL: _sig("elementwise product of parallel branches, a C×1×1 branch broadcast over C×H×W"),
    Op.LAYER_SCALE: _sig("learnable per-channel scale (C×1×1 parameter named by the label)", A("init", _t_float, 1e-6)),
    Op.PERMUTE: _sig(
        "torch.permute, dims with the batch dim: (0, 2, 3, 1) is channels-last", A("dims", _t_permutation)
    ),
    Op.LAYERNORM: _sig(
        "layer normalisation over the last dim (channels of a channels-last tensor)",
        A("eps", _t_positive_float, 1e-5),
        A("affine", _t_bool, True),
    ),
    Op.LAYERNORM2D: _sig("layer normalisation over the channels of a C×H×W map", A("eps", _t_positive_float, 1e-5)),
}

# Group modes (written `concat { }` ...), by their keyword.
GROUP_OPS: dict[str, Op] = {"concat": Op.CONCAT, "add": Op.ADD, "mul": Op.MUL}
MERGE_OPS = frozenset(GROUP_OPS.values())  # the graph ops that merge parallel branches
# Names a spec may call directly (structural ops are written with `concat {}` / `add {}` / `mul {}`).
CALLABLE_OPS: dict[str, Op] = {op.value: op for op in Op if op is not Op.INPUT and op not in GROUP_OPS.values()}
ALIASES = {
    "global_avgpool": (Op.ADAPTIVE_AVGPOOL, {"output_size": 1}),
    "max_pool": (Op.MAXPOOL, {}),
    "avg_pool": (Op.AVGPOOL, {}),
    "batch_norm": (Op.BATCHNORM, {}),
    "fc": (Op.LINEAR, {}),
}
