"""Convolutions."""

from __future__ import annotations

import math
import struct
from types import SimpleNamespace

from . import costs, labels, rf_rules
from . import shape_rules as sr
from . import torch_form as tf
from .base import (
    A,
    Op,
    ShapeError,
    sig,
    t_bool,
    t_float,
    t_int,
    t_opt_float,
    t_padding,
    t_pair,
    t_pair0,
    t_positive_float,
)
from .import_form import NN, Unsupported, kw
from .import_form import import_size as size
from .record import Diagram, Imports, OpRecord
from .torch_form import Arg, TorchOp

CONV2D_SIG = sig(
    "2-D convolution",
    A("out_channels", t_int),
    A("kernel_size", t_pair),
    A("stride", t_pair, 1),
    A("padding", t_padding, 0),
    A("dilation", t_pair, 1),
    A("groups", t_int, 1),
    A("bias", t_bool, True),
    A("init_std", t_opt_float, None),
)


def import_conv2d(m):
    if m.padding_mode != "zeros":
        raise Unsupported(f"padding_mode={m.padding_mode!r} (archlang convolutions pad with zeros)")
    if getattr(m, "transposed", False):
        raise Unsupported("transposed convolution")
    padding = m.padding if isinstance(m.padding, str) else size(m.padding)
    if padding == "same" and any(d * (k - 1) % 2 for k, d in zip(m.kernel_size, m.dilation)):
        raise Unsupported("padding='same' with an even kernel (torch pads one side more; archlang's 'same' is even)")
    if padding == "same":  # as numbers, which is what the built spec's conv holds (a fixed point)
        padding = size(tuple(d * (k - 1) // 2 for k, d in zip(m.kernel_size, m.dilation)))
    kwargs = kw(
        CONV2D_SIG,
        [
            ("stride", size(m.stride)),
            ("padding", padding),
            ("dilation", size(m.dilation)),
            ("groups", m.groups),
            ("bias", m.bias is not None),
        ],
    )
    return "conv2d", (m.out_channels, size(m.kernel_size)), kwargs


def f_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``F.conv2d`` on a module's own weight (timm's ``Conv2dSame``, after its ``F.pad``)."""

    def pair(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

    conv = SimpleNamespace(
        padding_mode="zeros",
        padding=padding if isinstance(padding, str) else pair(padding),
        kernel_size=tuple(weight.shape[2:]),
        stride=pair(stride),
        dilation=pair(dilation),
        groups=groups,
        bias=bias,
        out_channels=weight.shape[0],
    )
    return import_conv2d(conv)


# ---- weight-standardised convolutions --------------------------------------------------
# Qiao et al., "Weight Standardization" (arXiv 1903.10520), and its scaled form with a learned
# gain from Brock et al.'s normaliser-free ResNets (arXiv 2101.08692): the conv's filters are
# standardised over their fan-in at every forward. timm writes the standardisation as a
# training-mode ``F.batch_norm`` of the (1, out, fan-in) weight, which fvcore counts as a
# norm (5 per weight element with the gain as its affine weight, 4 without); the emitted
# helper makes the same call, so the built module computes (and is counted) as timm's is.

_CONV_ARGS = CONV2D_SIG.args[:7]  # out_channels ... bias (no init_std: the spec's init is conv2d's)
STD_CONV2D_SIG = sig(
    "2-D convolution of weight-standardised filters (each filter: zero mean, unit variance over its fan-in)",
    *_CONV_ARGS,
    A("eps", t_positive_float, 1e-6),
)
SCALED_STD_CONV2D_SIG = sig(
    "2-D convolution of scaled weight-standardised filters: standardised, times a learned per-filter "
    "gain and gamma / sqrt(fan-in) (NF-ResNets)",
    *_CONV_ARGS,
    A("gamma", t_float, 1.0, "the activation's gain the scale folds in (NF-Nets' nonlinearity gamma)"),
    A("eps", t_positive_float, 1e-6),
)

STD_CONV_HELPERS = {
    "StdConv2d": '''class StdConv2d(nn.Conv2d):
    """Weight standardisation (Qiao et al., 2019): each filter is standardised over its
    fan-in (zero mean, unit variance) before the convolution."""

    def __init__(self, *args, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a training-mode batch norm of the (1, out, fan-in) weight: per filter,
        # minus the mean, over sqrt(biased variance + eps)
        weight = nn.functional.batch_norm(
            self.weight.reshape(1, self.out_channels, -1),
            None,
            None,
            training=True,
            momentum=0.0,
            eps=self.eps,
        ).reshape_as(self.weight)
        return self._conv_forward(x, weight, self.bias)''',
    "ScaledStdConv2d": '''class ScaledStdConv2d(nn.Conv2d):
    """Scaled weight standardisation (Brock et al., 2021, NF-ResNets): each filter
    is standardised over its fan-in, then scaled by a learned gain and
    gamma / sqrt(fan-in)."""

    def __init__(self, *args, gamma: float = 1.0, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gain = nn.Parameter(torch.ones(self.out_channels, 1, 1, 1))
        self.gamma, self.eps = gamma, eps
        self.scale = gamma * self.weight[0].numel() ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a training-mode batch norm of the (1, out, fan-in) weight: per filter,
        # minus the mean, over sqrt(biased variance + eps), times gain * scale
        weight = nn.functional.batch_norm(
            self.weight.reshape(1, self.out_channels, -1),
            None,
            None,
            weight=(self.gain * self.scale).view(-1),
            training=True,
            momentum=0.0,
            eps=self.eps,
        ).reshape_as(self.weight)
        return self._conv_forward(x, weight, self.bias)''',
}


def std_conv_shape(op: Op):
    """A weight-standardised conv's shape rule: the conv's, and a fan-in above 1. One weight
    per filter has no variance: the filter would standardise to 0, and torch's training-mode
    batch norm, which the layer standardises with, raises at the first forward."""
    conv_rule = sr.conv_shape_of(op)

    def rule(attrs, shapes):
        out = conv_rule(attrs, shapes)
        kh, kw = attrs["kernel_size"]
        if shapes[0][0] // attrs["groups"] * kh * kw == 1:
            raise ShapeError(
                "E405",
                f"{op.value} standardises each filter over its fan-in, here a single weight "
                f"({shapes[0][0]} input channel{'s' if shapes[0][0] > 1 else ''} per group, a 1×1 kernel)",
                help="use `conv2d`, or a kernel or group with more than one weight per filter",
            )
        return out

    return rule


def _fan_in(m) -> int:
    kh, kw = m.kernel_size
    return m.in_channels // m.groups * kh * kw


def _conv_part(m) -> tuple[tuple, tuple]:
    _, args, kwargs = import_conv2d(m)
    return args, kwargs


def same_pad(m, in_shape) -> list:
    """timm's ``pad_same`` before a ``*Same`` layer whose padding depends on the input
    (TensorFlow's SAME with a stride > 1): ``[pad((top, bottom, left, right))]`` for this
    input's H×W, as ``F.pad`` in timm's ``Conv2dSame`` imports; [] for a static padding."""
    if not getattr(m, "same_pad", False) or in_shape is None:
        return []
    total = [
        max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        for n, k, s, d in zip(in_shape[-2:], m.kernel_size, m.stride, m.dilation)
    ]
    (h, w) = total
    return [("pad", ((h // 2, h - h // 2, w // 2, w - w // 2),), ())]


def import_std_conv2d(m, in_shape=None):
    """timm's ``StdConv2d`` and ``StdConv2dSame``."""
    args, kwargs = _conv_part(m)
    op = ("std_conv2d", args, kwargs + kw(STD_CONV2D_SIG, [("eps", m.eps)]))
    pads = same_pad(m, in_shape)
    return [*pads, op] if pads else op


def _float32(v: float) -> float:
    return struct.unpack("f", struct.pack("f", v))[0]


def gamma_of(scale: float, fan_in: int) -> float:
    """The shortest decimal ``g`` with ``g * fan_in ** -0.5 == scale``: timm keeps only the
    product ``scale``; the spec writes the gamma it came from (``1.7139588594436646``, ReLU's),
    and the built layer's ``gamma * fan_in ** -0.5`` is ``scale`` again, bit for bit.

    Several doubles a few ulps apart can give the same product. A float32 among them wins
    (at most one lies this close): NF-Nets' gammas are float32 values that timm's table prints
    as doubles, and a shorter neighbour that happens to fit one fan-in would not fit the next,
    so every layer of a network writes the same gamma. Else the fewest digits win."""
    root = fan_in**-0.5
    guess = scale / root
    low, high = guess, guess
    near = [guess]
    for _ in range(4):  # the quotient can be a few ulps off the gamma the product came from
        low, high = math.nextafter(low, -math.inf), math.nextafter(high, math.inf)
        near += [low, high]
    single = [v for v in near if v * root == scale and _float32(v) == v]
    if single:
        return single[0]
    for digits in range(1, 18):
        exact = [g for g in (float(f"{v:.{digits}g}") for v in near) if g * root == scale]
        if exact:
            return exact[0]
    return guess


def import_scaled_std_conv2d(m, in_shape=None):
    """timm's ``ScaledStdConv2d`` and ``ScaledStdConv2dSame``."""
    args, kwargs = _conv_part(m)
    pairs = [("gamma", gamma_of(m.scale, _fan_in(m))), ("eps", m.eps)]
    op = ("scaled_std_conv2d", args, kwargs + kw(SCALED_STD_CONV2D_SIG, pairs))
    pads = same_pad(m, in_shape)
    return [*pads, op] if pads else op


def _helper_scaled(m):
    # the emitted helper keeps the gamma it was given
    args, kwargs = _conv_part(m)
    return "scaled_std_conv2d", args, kwargs + kw(SCALED_STD_CONV2D_SIG, [("gamma", m.gamma), ("eps", m.eps)])


def _std_args(attrs, in_shape):
    return [*tf.conv_args(attrs, in_shape), *tf.opt("eps", attrs["eps"], 1e-6, float)]


def _scaled_args(attrs, in_shape):
    return [
        *tf.conv_args(attrs, in_shape),
        *tf.opt("gamma", attrs["gamma"], 1.0, float),
        *tf.opt("eps", attrs["eps"], 1e-6, float),
    ]


def _standardised(per_element: int, conv_rule):
    # the conv's count plus `per_element` per weight element (the standardisation)
    def rule(attrs, ins, out) -> int:
        return conv_rule(attrs, ins, out) + per_element * costs.conv_weight_numel(attrs, ins)

    return rule


def _scaled_params(attrs, ins, out) -> int:
    return costs.conv_params(attrs, ins, out) + attrs["out_channels"]  # + the gain


def _std_label(kind: str):
    def label(a: dict) -> str:
        return labels.conv_label(a).replace(" conv,", f" {kind} conv,", 1)

    return label


CONV_TRANSPOSE_SIG = sig(
    "2-D transposed convolution (the gradient of a conv: upsamples by its stride)",
    A("out_channels", t_int),
    A("kernel_size", t_pair),
    A("stride", t_pair, 1),
    A("padding", t_pair0, 0),
    A("output_padding", t_pair0, 0),
    A("groups", t_int, 1),
    A("bias", t_bool, True),
    A("dilation", t_pair, 1),
)


def conv_transpose_shape(attrs, shapes):
    (shape,) = shapes
    c, h, w = sr.need_map(Op.CONV_TRANSPOSE, shape)
    g, out = attrs["groups"], attrs["out_channels"]
    if c % g or out % g:
        raise ShapeError("E405", f"groups={g} must divide both in_channels ({c}) and out_channels ({out})")
    s, p, op, d, k = (attrs[n] for n in ("stride", "padding", "output_padding", "dilation", "kernel_size"))
    if any(o >= si and o >= di for o, si, di in zip(op, s, d)):
        raise ShapeError(
            "E303",
            f"conv_transpose output_padding {op} must be smaller than the stride {s} or the dilation {d}",
            help="PyTorch refuses it: output_padding only picks one of the stride's possible output sizes",
        )
    sr.check_weight(Op.CONV_TRANSPOSE, (c, out // g, *k))
    oh, ow = ((n - 1) * si - 2 * pi + di * (ki - 1) + oi + 1 for n, si, pi, di, ki, oi in zip((h, w), s, p, d, k, op))
    if oh < 1 or ow < 1:
        raise ShapeError("E403", f"conv_transpose output would be {oh}×{ow}: the padding exceeds the output")
    return (out, oh, ow)


def _transpose_weight(attrs, ins) -> int:
    # weight in × out/groups × kh × kw
    return ins[0][0] * (attrs["out_channels"] // attrs["groups"]) * attrs["kernel_size"][0] * attrs["kernel_size"][1]


def conv_transpose_params(attrs, ins, out) -> int:
    return _transpose_weight(attrs, ins) + (attrs["out_channels"] if attrs["bias"] else 0)


def conv_transpose_macs(attrs, ins, out) -> int:
    # fvcore's conv_flop_count with transposed=True: prod(weight shape) × the input's H×W
    # (every input unit multiplies the whole kernel once)
    return _transpose_weight(attrs, ins) * ins[0][1] * ins[0][2]


def conv_transpose_ops(attrs, ins, out) -> int:
    # scattered: each product is added into the output, which starts as the bias (or zeros)
    return 2 * conv_transpose_macs(attrs, ins, out)


def conv_transpose_args(attrs, in_shape):
    return [
        Arg("in_channels", in_shape[0], True),
        Arg("out_channels", attrs["out_channels"], True),
        Arg("kernel_size", tf.size(attrs["kernel_size"])),
        Arg("stride", tf.size(attrs["stride"]), default=1),
        *tf.opt("padding", attrs["padding"], (0, 0)),
        *tf.opt("output_padding", attrs["output_padding"], (0, 0)),
        *tf.opt("groups", attrs["groups"], 1, int),
        *tf.opt("bias", attrs["bias"], True, bool),
        *tf.opt("dilation", attrs["dilation"], (1, 1)),
    ]


def import_conv_transpose(m):
    if m.padding_mode != "zeros":
        raise Unsupported(f"padding_mode={m.padding_mode!r} (archlang convolutions pad with zeros)")
    kwargs = kw(
        CONV_TRANSPOSE_SIG,
        [
            ("stride", size(m.stride)),
            ("padding", size(m.padding)),
            ("output_padding", size(m.output_padding)),
            ("groups", m.groups),
            ("bias", m.bias is not None),
            ("dilation", size(m.dilation)),
        ],
    )
    return "conv_transpose", (m.out_channels, size(m.kernel_size)), kwargs


def conv_transpose_label(a: dict) -> str:
    groups = f", g{a['groups']}" if a["groups"] > 1 else ""
    s = a["stride"]
    up = "" if max(s) == 1 else f", ×{s[0]}" if s[0] == s[1] else f", ×{labels.kxk(s)}"
    return f"{labels.kxk(a['kernel_size'])} transposed conv, {a['out_channels']}{groups}{up}"


RECORDS = (
    OpRecord(
        Op.CONV2D,
        CONV2D_SIG,
        sr.conv_shape,
        TorchOp("nn.Conv2d", tf.conv_args, init=True, fresh=True, width="out_arg"),
        Diagram("conv", labels.conv_label, "convolution"),
        params=costs.conv_params,
        macs=costs.conv_macs,
        flops=costs.conv_macs,
        all_ops=costs.dot_ops(costs.conv_macs),
        rf=rf_rules.windowed,
        role="conv",
        imports=Imports(
            modules={NN + "conv.Conv2d": import_conv2d}, functions={"torch.nn.functional.conv2d": f_conv2d}
        ),
    ),
    OpRecord(
        Op.STD_CONV2D,
        STD_CONV2D_SIG,
        std_conv_shape(Op.STD_CONV2D),
        TorchOp(
            "StdConv2d", _std_args, fresh=True, width="out_arg", helpers={"StdConv2d": STD_CONV_HELPERS["StdConv2d"]}
        ),
        Diagram("conv", _std_label("WS"), "convolution"),
        params=costs.conv_params,
        macs=costs.conv_macs,
        flops=_standardised(4, costs.conv_macs),  # fvcore: the norm without affine weight
        # mean, subtract, square, variance, divide per weight element
        all_ops=_standardised(5, costs.dot_ops(costs.conv_macs)),
        rf=rf_rules.windowed,
        role="conv",
        imports=Imports(
            modules={
                "timm.layers.std_conv.StdConv2d": import_std_conv2d,
                "timm.layers.std_conv.StdConv2dSame": import_std_conv2d,
            },
            helpers={"StdConv2d": import_std_conv2d},
        ),
    ),
    OpRecord(
        Op.SCALED_STD_CONV2D,
        SCALED_STD_CONV2D_SIG,
        std_conv_shape(Op.SCALED_STD_CONV2D),
        TorchOp(
            "ScaledStdConv2d",
            _scaled_args,
            fresh=True,
            width="out_arg",
            helpers={"ScaledStdConv2d": STD_CONV_HELPERS["ScaledStdConv2d"]},
        ),
        Diagram("conv", _std_label("scaled WS"), "convolution"),
        params=_scaled_params,
        macs=costs.conv_macs,
        flops=_standardised(5, costs.conv_macs),  # fvcore: the norm with the gain as its weight
        all_ops=_standardised(6, costs.dot_ops(costs.conv_macs)),  # and the gain's multiply
        rf=rf_rules.windowed,
        role="conv",
        imports=Imports(
            modules={
                "timm.layers.std_conv.ScaledStdConv2d": import_scaled_std_conv2d,
                "timm.layers.std_conv.ScaledStdConv2dSame": import_scaled_std_conv2d,
            },
            helpers={"ScaledStdConv2d": _helper_scaled},
        ),
    ),
    OpRecord(
        Op.CONV_TRANSPOSE,
        CONV_TRANSPOSE_SIG,
        conv_transpose_shape,
        # the spec's weight init (conv2d / linear) does not reach it: PyTorch's default init
        TorchOp("nn.ConvTranspose2d", conv_transpose_args, fresh=True, width="out_arg"),
        Diagram("conv", conv_transpose_label),
        params=conv_transpose_params,
        macs=conv_transpose_macs,
        flops=conv_transpose_macs,
        all_ops=conv_transpose_ops,
        rf=rf_rules.transposed,
        role="upsample",
        imports=Imports(modules={NN + "conv.ConvTranspose2d": import_conv_transpose}),
    ),
)
