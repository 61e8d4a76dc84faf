"""The names of the primitive ops and the vocabulary their records are written in: argument
checkers, :class:`Signature`, :class:`ShapeError`.

A leaf module: the op records (:mod:`archlang.ops.records`) and every rule module import
it, and it imports nothing of the project.

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
    STD_CONV2D = "std_conv2d"
    SCALED_STD_CONV2D = "scaled_std_conv2d"
    BATCHNORM = "batchnorm"
    FROZEN_BATCHNORM = "frozen_batchnorm"
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
    BLUR_POOL = "blur_pool"
    ADAPTIVE_AVGPOOL = "adaptive_avgpool"
    LRN = "lrn"
    DROPOUT = "dropout"
    FLATTEN = "flatten"
    LINEAR = "linear"
    SOFTMAX = "softmax"
    RADIX_SOFTMAX = "radix_softmax"
    ATTENTION = "attention"
    IDENTITY = "identity"
    PAD = "pad"
    CONCAT = "concat"
    ADD = "add"
    MUL = "mul"
    LAYER_SCALE = "layer_scale"
    ECA = "eca"
    PERMUTE = "permute"
    LAYERNORM = "layernorm"
    LAYERNORM2D = "layernorm2d"
    PIXEL_SHUFFLE = "pixel_shuffle"
    PIXEL_UNSHUFFLE = "pixel_unshuffle"
    SPACE_TO_DEPTH = "space_to_depth"
    DEPTH_TO_SPACE = "depth_to_space"
    LEAKY_RELU = "leaky_relu"
    PRELU = "prelu"
    STAR_RELU = "star_relu"
    ELU = "elu"
    MISH = "mish"
    SOFTPLUS = "softplus"
    HARDTANH = "hardtanh"
    SQUARE = "square"
    DROPOUT2D = "dropout2d"
    GROUP_NORM = "group_norm"
    INSTANCE_NORM = "instance_norm"
    ADAPTIVE_MAXPOOL = "adaptive_maxpool"
    CONV_TRANSPOSE = "conv_transpose"
    UPSAMPLE = "upsample"
    CROP = "crop"
    NARROW = "narrow"
    SCALE = "scale"
    BATCHNORM1D = "batchnorm1d"
    EXTERNAL = "extern"  # a module from outside archlang, declared with `extern`


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
        raise ArgError(f"expected an integer, got {describe(v)}")
    low = 0 if zero_ok else 1
    if v < low:
        raise ArgError(f"{what} must be {'≥ 0' if zero_ok else 'positive'}, got {v}")
    if v > MAX_DIM:
        raise ArgError(
            f"{what} {v} is beyond the limit of {MAX_DIM}", help="archlang refuses sizes this large; is there a typo?"
        )
    return v


def describe(v) -> str:
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
    raise ArgError(f"{what} must be an integer or a pair (h, w), got {describe(v)}", help="write e.g. 3, (1, 7) or 1x7")


def t_int(v, name):
    return positive_int(v, name)


def t_nonneg(v, name):
    return positive_int(v, name, zero_ok=True)


def t_pair(v, name):
    return pair(v, name)


def t_pair0(v, name):
    return pair(v, name, zero_ok=True)


def t_padding(v, name):
    if v in ("same", "valid"):
        return v
    if isinstance(v, str):
        raise ArgError(f'padding must be an integer, a pair, "same" or "valid", got {v!r}')
    if isinstance(v, (tuple, list)) and len(v) == 4:
        raise ArgError(
            f"conv padding is symmetric: an integer or a pair (h, w), got {describe(v)}",
            help="for asymmetric padding put `pad((top, bottom, left, right))` before the conv, "
            "as nn.ZeroPad2d does in PyTorch",
        )
    return pair(v, name, zero_ok=True)


def t_pad4(v, name):
    """``p``, ``(h, w)`` or ``(top, bottom, left, right)`` -> (top, bottom, left, right);
    a negative amount crops that side, as in PyTorch's ``F.pad`` (the shape rule checks
    what is left)."""
    if _is_int(v):
        return (signed_int(v, name),) * 4
    if isinstance(v, (tuple, list)) and len(v) in (2, 4) and all(_is_int(x) for x in v):
        sides = tuple(signed_int(x, name) for x in v)
        return sides if len(sides) == 4 else (sides[0], sides[0], sides[1], sides[1])
    raise ArgError(
        f"{name} must be an integer, a pair (h, w) or (top, bottom, left, right), got {describe(v)}",
        help="e.g. pad((0, 1, 0, 1)) pads one row below and one column to the right; a negative amount crops",
    )


def signed_int(v, what: str) -> int:
    if abs(v) > MAX_DIM:
        raise ArgError(
            f"{what} {v} is beyond the limit of ±{MAX_DIM}", help="archlang refuses sizes this large; is there a typo?"
        )
    return v


def t_fill(v, name):
    """A fill value: a number, or ``inf`` / ``-inf`` (max pooling's padding, as timm's
    ``MaxPool2dSame`` pads); never NaN."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArgError(f"{name} must be a number, got {describe(v)}", help="e.g. value=0 or value=-inf")
    if v != v:
        raise ArgError(f"{name} must be a number, got nan")
    return float(v)


def t_chunks(v, name):
    """``split``'s pieces: a count of equal chunks (``torch.chunk``), or the channel count of
    each piece, as a tuple (``torch.split`` with sizes)."""
    if isinstance(v, (tuple, list)) and v:
        return tuple(positive_int(x, name) for x in v)
    if _is_int(v):
        return positive_int(v, name)
    raise ArgError(
        f"{name} must be a count of equal chunks or a tuple of channel counts, got {describe(v)}",
        help="split(2, 0) is the first half; split((10, 30), 1) the 30 channels after the first 10",
    )


def t_bool(v, name):
    if not isinstance(v, bool):
        raise ArgError(f"{name} must be true or false, got {describe(v)}")
    return v


def t_float(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ArgError(f"{name} must be a number, got {describe(v)}")
    if not math.isfinite(v):
        raise ArgError(f"{name} must be finite, got {v}")
    return float(v)


def t_prob(v, name):
    v = t_float(v, name)
    if not 0.0 <= v < 1.0:
        raise ArgError(f"{name} must be in [0, 1), got {v}")
    return v


def t_positive_float(v, name):
    v = t_float(v, name)
    if v <= 0:
        raise ArgError(f"{name} must be positive, got {v}")
    return v


def t_opt_float(v, name):
    return None if v is None else t_positive_float(v, name)


def t_opt_pair(v, name):
    return None if v is None else pair(v, name)


def t_permutation(v, name):
    """torch.permute's dims, the batch dim included: a permutation of 0..n-1 that keeps 0 first."""
    if not isinstance(v, (tuple, list)) or not all(_is_int(x) for x in v):
        raise ArgError(f"{name} must be a tuple of dimension indices, got {describe(v)}", help="e.g. (0, 2, 3, 1)")
    if sorted(v) != list(range(len(v))) or len(v) < 2 or v[0] != 0:
        raise ArgError(
            f"{name} must be a permutation of 0..{max(len(v), 2) - 1} that keeps the batch dim 0 first, got {tuple(v)}",
            help="(0, 2, 3, 1) makes C×H×W channels-last, (0, 3, 1, 2) makes it channels-first again",
        )
    return tuple(v)


def t_choice(*choices: str) -> Callable[[Any, str], str]:
    shown = ", ".join(f'"{c}"' for c in choices)

    def check(v, name):
        if not isinstance(v, str) or v not in choices:
            raise ArgError(
                f"{name} must be one of {shown}, got {describe(v)}",
                help=f'e.g. {name}="{choices[-1]}"',
            )
        return v

    return check


def t_float_triple(v, name):
    if isinstance(v, (tuple, list)) and len(v) == 3:
        return tuple(t_float(x, name) for x in v)
    raise ArgError(f"{name} must be a triple of numbers, got {describe(v)}")


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


def sig(doc, *args):
    return Signature(tuple(args), doc)


A = ArgSpec
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
