"""Pooling: windows, adaptive and global."""

from __future__ import annotations

import math

from . import costs, labels, rf_rules
from . import shape_rules as sr
from . import torch_form as tf
from .base import A, Op, ShapeError, sig, t_bool, t_choice, t_opt_pair, t_pair, t_pair0
from .import_form import NN, F, Unsupported, default, kw
from .import_form import import_size as size
from .record import Diagram, Imports, OpRecord
from .torch_form import Arg, TorchOp

MAXPOOL_SIG = sig(
    "max pooling",
    A("kernel_size", t_pair),
    A("stride", t_opt_pair, None),
    A("padding", t_pair0, 0),
    A("dilation", t_pair, 1),
    A("ceil_mode", t_bool, False),
)
AVGPOOL_SIG = sig(
    "average pooling",
    A("kernel_size", t_pair),
    A("stride", t_opt_pair, None),
    A("padding", t_pair0, 0),
    A("ceil_mode", t_bool, False),
    A("count_include_pad", t_bool, True),
)
ADAPTIVE_AVGPOOL_SIG = sig("adaptive average pooling to a fixed output size", A("output_size", t_pair, 1))
SPATIAL_MEAN_SIG = sig("mean over H and W: (C, H, W) -> (C,), or (C, 1, 1)", A("keepdim", t_bool, False))


def _pool_stride(kernel, stride):
    stride = size(stride)
    return None if stride in (None, kernel) or stride == () else stride


def maxpool_call(kernel_size, stride, padding, dilation, ceil_mode):
    kernel = size(kernel_size)
    kwargs = kw(
        MAXPOOL_SIG,
        [
            ("stride", _pool_stride(kernel, stride)),
            ("padding", size(padding)),
            ("dilation", size(dilation)),
            ("ceil_mode", bool(ceil_mode)),
        ],
    )
    return "maxpool", (kernel,), kwargs


def import_maxpool(m):
    if m.return_indices:
        raise Unsupported("return_indices=True")
    return maxpool_call(m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)


def f_maxpool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    if return_indices:
        raise Unsupported("return_indices=True")
    return maxpool_call(kernel_size, stride, padding, dilation, ceil_mode)


def avgpool_call(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    if divisor_override is not None:
        raise Unsupported(f"divisor_override={divisor_override}")
    kernel = size(kernel_size)
    kwargs = kw(
        AVGPOOL_SIG,
        [
            ("stride", _pool_stride(kernel, stride)),
            ("padding", size(padding)),
            ("ceil_mode", bool(ceil_mode)),
            ("count_include_pad", bool(count_include_pad)),
        ],
    )
    return "avgpool", (kernel,), kwargs


def import_avgpool(m):
    return avgpool_call(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad, m.divisor_override)


def f_avgpool(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    return avgpool_call(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def adaptive_call(op: str, signature):
    def call(output_size):
        out = size(output_size)
        if out is None or (isinstance(out, tuple) and None in out):
            raise Unsupported(f"output_size={output_size!r} (a None size keeps the input's)")
        return op, () if out == default(signature, "output_size") else (out,), ()

    return call


_adaptive_avg = adaptive_call("adaptive_avgpool", ADAPTIVE_AVGPOOL_SIG)


def f_adaptive_avg(input, output_size):
    return _adaptive_avg(output_size)


def f_mean(input, dim=None, keepdim=False, *, ndim, last=False, dtype=None):
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    spatial = [1, 2] if last else [2, 3]
    if ndim != 4 or not all(isinstance(d, int) for d in dims) or sorted(d % 4 for d in dims) != spatial:
        raise Unsupported(
            f"mean over dim={dim!r} (archlang's spatial_mean averages H×W: dims (2, 3) of a C×H×W map, "
            "(1, 2) of a channels-last H×W×C one)"
        )
    return "spatial_mean", (), kw(SPATIAL_MEAN_SIG, [("keepdim", bool(keepdim))])


def adaptive_label(kind: str):
    def label(a: dict) -> str:
        out = a["output_size"]
        return f"global {kind} pool" if tuple(out) == (1, 1) else f"{kind} pool to {labels.kxk(out)}"

    return label


ADAPTIVE_MAXPOOL_SIG = sig("adaptive max pooling to a fixed output size", A("output_size", t_pair, 1))
_adaptive_max = adaptive_call("adaptive_maxpool", ADAPTIVE_MAXPOOL_SIG)


def _adaptive_max_shape(attrs, shapes):
    (shape,) = shapes
    c, _, _ = sr.need_map(Op.ADAPTIVE_MAXPOOL, shape)
    return (c, *attrs["output_size"])


def import_adaptive_max(m):
    if m.return_indices:
        raise Unsupported("return_indices=True")
    return _adaptive_max(m.output_size)


def f_adaptive_max(input, output_size, return_indices=False):
    if return_indices:
        raise Unsupported("return_indices=True")
    return _adaptive_max(output_size)


BLUR_POOL_SIG = sig(
    "anti-aliased downsampling (Zhang, ICML 2019; timm's BlurPool2d): pad, then a fixed binomial "
    "blur per channel with a stride",
    A("kernel_size", t_pair, 3),
    A("stride", t_pair, 2),
    A("padding", t_pair0, 1),
    A("pad_mode", t_choice("constant", "replicate", "circular", "reflect"), "reflect"),
)


def binomial(k: int) -> list[float]:
    """The blur's taps: row k - 1 of Pascal's triangle over 2^(k - 1) (sums to 1)."""
    row = [1]
    for _ in range(k - 1):
        row = [a + b for a, b in zip([0, *row], [*row, 0])]
    return [c / 2 ** (k - 1) for c in row]


def blur_pool_shape(attrs, shapes):
    (shape,) = shapes
    _, h, w = sr.need_map(Op.BLUR_POOL, shape)
    (ph, pw), mode = attrs["padding"], attrs["pad_mode"]
    if mode in ("reflect", "circular") and (ph >= h or pw >= w):
        raise ShapeError(
            "E403",
            f"{mode} padding {ph}×{pw} needs a larger input than {h}×{w}",
            help="reflection and circular padding take at most size - 1 values from each side",
        )
    c, oh, ow = sr.pool_shape(Op.BLUR_POOL)({**attrs, "ceil_mode": False}, shapes)
    return (c, oh, ow)


def blur_macs(attrs, ins, out) -> int:
    return math.prod(out) * math.prod(attrs["kernel_size"])  # a depthwise k×k conv, no bias


def import_blur_pool(m):
    """timm's ``BlurPool2d``: its filter is a non-persistent buffer (no state_dict key), the
    binomial of ``filt_size`` unless someone changed it, which this op could not hold."""
    k = m.filt_size
    taps = binomial(k)
    expected = [a * b for a in taps for b in taps]
    if tuple(m.filt.shape[1:]) != (1, k, k) or any(row != expected for row in m.filt.reshape(-1, k * k).tolist()):
        raise Unsupported("a filter other than the binomial blur of its filt_size")
    top, bottom, left, right = m.padding if len(m.padding) == 4 else (*m.padding, *m.padding)
    if top != bottom or left != right:
        raise Unsupported(f"padding={list(m.padding)} (archlang's blur_pool pads both sides alike)")
    pairs = [("stride", size(m.stride)), ("padding", size((top, left))), ("pad_mode", m.pad_mode)]
    return "blur_pool", (size(k),) if size(k) != 3 else (), kw(BLUR_POOL_SIG, pairs)


def _blur_pool_call(m):
    """The generated ``BlurPool`` read back (its ``padding`` is F.pad's (left, right, top, bottom))."""
    left, _, top, _ = m.padding
    pairs = [("stride", size(m.stride)), ("padding", size((top, left))), ("pad_mode", m.pad_mode)]
    k = size(tuple(m.filt.shape[-2:]))
    return "blur_pool", (k,) if k != 3 else (), kw(BLUR_POOL_SIG, pairs)


def blur_pool_args(attrs, in_shape):
    return [
        Arg("channels", in_shape[0], True),
        *tf.opt("kernel_size", attrs["kernel_size"], (3, 3)),
        *tf.opt("stride", attrs["stride"], (2, 2)),
        *tf.opt("padding", attrs["padding"], (1, 1)),
        *tf.opt("pad_mode", attrs["pad_mode"], "reflect", str),
    ]


BLUR_POOL_HELPERS = {
    "BlurPool": '''class BlurPool(nn.Module):
    """Anti-aliased downsampling (Zhang, ICML 2019; timm's `BlurPool2d`): pad, then
    blur each channel with a fixed binomial filter (a non-persistent buffer) at a
    stride."""

    def __init__(
        self,
        channels: int,
        kernel_size=3,
        stride=2,
        padding=1,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        kh, kw = (
            (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        )
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        self.channels, self.stride, self.pad_mode = channels, stride, pad_mode
        self.padding = (pw, pw, ph, ph)
        taps = []
        for k in (kh, kw):
            row = torch.ones(1)
            for _ in range(k - 1):
                row = torch.cat([row, torch.zeros(1)]) + torch.cat(
                    [torch.zeros(1), row]
                )
            taps.append(row / 2 ** (k - 1))
        filt = (taps[0][:, None] * taps[1][None, :]).expand(channels, 1, kh, kw)
        self.register_buffer("filt", filt.contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, self.padding, mode=self.pad_mode)
        return nn.functional.conv2d(
            x, self.filt, stride=self.stride, groups=self.channels
        )''',
}


RECORDS = (
    OpRecord(
        Op.SPATIAL_MEAN,
        SPATIAL_MEAN_SIG,
        sr.spatial_mean_shape,
        TorchOp(
            None,
            tf.none,
            "torch.mean",
            tf.mean_args,
            extra=(Arg("dim", (2, 3), True),),
            extra_last=(Arg("dim", (1, 2), True),),
        ),
        Diagram("pool", lambda a: "global mean", "avg pool"),  # a global average pool
        flops=costs.zero,  # aten::mean: unsupported in fvcore
        all_ops=costs.in_numel,  # per channel H·W - 1 adds and one divide
        rf=rf_rules.whole,
        role="global",
        channels_last=sr.spatial_mean_last,  # MambaOut's head: x.mean((1, 2)) of B×H×W×C
        imports=Imports(functions={"torch.mean": f_mean}, methods={"mean": f_mean}),
    ),
    OpRecord(
        Op.MAXPOOL,
        MAXPOOL_SIG,
        sr.pool_shape(Op.MAXPOOL),
        TorchOp("nn.MaxPool2d", tf.maxpool_args, "F.max_pool2d", tf.maxpool_args, at_root=True),
        Diagram("pool", labels.pool_label("max"), "max pool"),
        flops=costs.zero,  # unsupported in fvcore (fvcore#148)
        all_ops=costs.window_ops(0),
        rf=rf_rules.windowed,
        role="pool",
        imports=Imports(modules={NN + "pooling.MaxPool2d": import_maxpool}, functions={F + "max_pool2d": f_maxpool}),
        aliases={"max_pool": {}},
    ),
    OpRecord(
        Op.AVGPOOL,
        AVGPOOL_SIG,
        sr.pool_shape(Op.AVGPOOL),
        TorchOp("nn.AvgPool2d", tf.avgpool_args, "F.avg_pool2d", tf.avgpool_args, at_root=True),
        Diagram("pool", labels.pool_label("avg"), "avg pool"),
        flops=costs.zero,  # unsupported in fvcore (fvcore#148)
        all_ops=costs.window_ops(1),
        rf=rf_rules.windowed,
        role="pool",
        imports=Imports(modules={NN + "pooling.AvgPool2d": import_avgpool}, functions={F + "avg_pool2d": f_avgpool}),
        aliases={"avg_pool": {}},
    ),
    OpRecord(
        Op.ADAPTIVE_AVGPOOL,
        ADAPTIVE_AVGPOOL_SIG,
        sr.adaptive_shape,
        TorchOp("nn.AdaptiveAvgPool2d", tf.adaptive_args, "F.adaptive_avg_pool2d", tf.adaptive_args, at_root=True),
        Diagram("pool", adaptive_label("avg"), "avg pool"),
        flops=costs.in_numel,  # fvcore: elementwise_flop_counter(1, 0) on the input
        all_ops=costs.adaptive_ops(1),
        rf=rf_rules.adaptive,
        role="global",
        imports=Imports(
            modules={NN + "pooling.AdaptiveAvgPool2d": lambda m: _adaptive_avg(m.output_size)},
            functions={F + "adaptive_avg_pool2d": f_adaptive_avg},
        ),
        aliases={"global_avgpool": {"output_size": 1}},
    ),
    OpRecord(
        Op.ADAPTIVE_MAXPOOL,
        ADAPTIVE_MAXPOOL_SIG,
        _adaptive_max_shape,
        TorchOp("nn.AdaptiveMaxPool2d", tf.adaptive_args, "F.adaptive_max_pool2d", tf.adaptive_args, at_root=True),
        Diagram("pool", adaptive_label("max"), "max pool"),
        flops=costs.zero,  # aten::adaptive_max_pool2d: no fvcore handle
        all_ops=costs.adaptive_ops(0),  # n - 1 comparisons per n-element bin
        rf=rf_rules.adaptive,
        role="global",
        imports=Imports(
            modules={NN + "pooling.AdaptiveMaxPool2d": import_adaptive_max},
            functions={F + "adaptive_max_pool2d": f_adaptive_max},
        ),
        aliases={"global_maxpool": {"output_size": 1}},
    ),
    OpRecord(
        Op.BLUR_POOL,
        BLUR_POOL_SIG,
        blur_pool_shape,
        TorchOp("BlurPool", blur_pool_args, helpers=BLUR_POOL_HELPERS),
        Diagram("pool", labels.pool_label("blur"), "blur pool"),
        buffers=lambda attrs, ins, out: ins[0][0] * math.prod(attrs["kernel_size"]),  # the C×1×kh×kw filter
        macs=blur_macs,
        flops=blur_macs,  # fvcore's conv handle on F.conv2d; the pad is aten::reflection_pad2d (no handle)
        all_ops=lambda attrs, ins, out: math.prod(out) * (2 * math.prod(attrs["kernel_size"]) - 1),
        rf=rf_rules.windowed,
        role="pool",
        imports=Imports(
            modules={"timm.layers.blur_pool.BlurPool2d": import_blur_pool},
            helpers={"BlurPool": _blur_pool_call},
        ),
    ),
)
