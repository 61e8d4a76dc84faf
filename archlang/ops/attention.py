"""Attention layers: ECA's channel gate, a published layer with parameters of its own, and
self-attention over the positions of a map (CPUBone's ConvAttention)."""

from __future__ import annotations

import math

from . import rf_rules
from . import shape_rules as sr
from .base import A, Op, ShapeError, sig, t_int
from .import_form import Unsupported
from .record import Diagram, Imports, OpRecord
from .torch_form import Arg, TorchOp

# Wang et al., "ECA-Net: Efficient Channel Attention" (CVPR 2020): every channel scaled by the
# sigmoid of a k-tap 1-D convolution, without bias, across the channels' spatial means (SE's
# gate without its bottleneck). timm's EcaModule, as the generated file writes it.
ECA_SIG = sig(
    "efficient channel attention: x · sigmoid(conv1d_k(mean over H×W)) across channels (ECA-Net)",
    A("kernel_size", t_int, 3),
)

ECA_HELPERS = {
    "EcaModule": '''class EcaModule(nn.Module):
    """Efficient channel attention (Wang et al., ECA-Net, 2020): every channel
    scaled by the sigmoid of a 1-D convolution, without bias, across the channels'
    spatial means."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=padding, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3)).view(x.shape[0], 1, -1)  # the channels as a sequence
        y = torch.sigmoid(self.conv(y)).view(x.shape[0], -1, 1, 1)
        return x * y.expand_as(x)''',
}


def _eca_shape(attrs, shapes):
    (shape,) = shapes
    sr.need_map(Op.ECA, shape)
    if attrs["kernel_size"] % 2 == 0:
        raise ShapeError(
            "E303",
            f"eca kernel_size {attrs['kernel_size']} must be odd",
            help="an odd kernel keeps one gate per channel (padding (k - 1) / 2 on both sides)",
        )
    return shape


def _eca_macs(attrs, ins, out) -> int:
    return attrs["kernel_size"] * out[0]  # the 1-D conv: k taps per channel (fvcore's conv handle)


def _eca_ops(attrs, ins, out) -> int:
    # the means (H·W - 1 adds and a divide per channel), the conv (k multiplies, k - 1 adds),
    # the sigmoid (exp, add, divide), the product with the input
    c, k = out[0], attrs["kernel_size"]
    return math.prod(out) + (2 * k - 1) * c + 3 * c + math.prod(out)


def import_eca(m):
    """timm's ``EcaModule`` (``EfficientChannelAttn``) as the paper defines it."""
    conv = m.conv
    if getattr(m, "conv2", None) is not None:
        raise Unsupported("use_mlp=True (timm's experiment beyond the paper)")
    if type(m.gate).__name__ != "Sigmoid":
        raise Unsupported(f"the gate {type(m.gate).__name__} (ECA gates with a sigmoid)")
    k = conv.kernel_size[0]
    if (conv.in_channels, conv.out_channels, conv.bias, tuple(conv.padding)) != (1, 1, None, ((k - 1) // 2,)):
        raise Unsupported("a conv other than Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)")
    return _eca_call(k)


def _eca_call(k: int):
    return "eca", () if k == 3 else (k,), ()


ATTENTION_SIG = sig(
    "multi-head self-attention over the H×W positions of a map whose C channels are, per head, "
    "its queries, keys and values (C/heads each, split in three): C/3 channels out",
    A("heads", t_int),
)


def attention_shape(attrs, shapes):
    (shape,) = shapes
    c, h, w = sr.need_map(Op.ATTENTION, shape)
    heads = attrs["heads"]
    if c % (3 * heads):
        raise ShapeError(
            "E405",
            f"attention with {heads} heads needs channels divisible by 3 × {heads}, got {c}",
            help="each head reads its queries, keys and values from C / heads channels, a third each",
        )
    return (c // 3, h, w)


def _attention_ops(attrs, ins, out) -> int:
    # per head, L = H×W positions of d features: q scaled (L·d), q·kᵀ (2·L²·d), softmax
    # (3·L²: exp, sum, divide), weights·v (2·L²·d)
    c, h, w = ins[0]
    heads, n = attrs["heads"], h * w
    d = c // (3 * heads)
    return heads * (4 * n * n * d + 3 * n * n + n * d)


def _heads(a, s=None):
    return [Arg("heads", a["heads"], True)]


HELPERS = {
    "qkv_attention": '''def qkv_attention(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head self-attention over the H×W positions of an NCHW map whose channels
    hold each head's queries, keys and values (CPUBone's ConvAttention)."""
    n, c, h, w = x.shape
    qkv = x.reshape(n, heads, c // heads, h * w).permute(0, 1, 3, 2)
    q, k, v = qkv.chunk(3, dim=3)
    out = nn.functional.scaled_dot_product_attention(q, k, v)
    return out.permute(0, 1, 3, 2).reshape(n, c // 3, h, w)''',
    "QKVAttention": '''class QKVAttention(nn.Module):
    """`qkv_attention` as a module, for `nn.Sequential`; it holds no state."""

    def __init__(self, heads: int) -> None:
        super().__init__()
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        qkv = x.reshape(n, self.heads, c // self.heads, h * w).permute(0, 1, 3, 2)
        q, k, v = qkv.chunk(3, dim=3)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return out.permute(0, 1, 3, 2).reshape(n, c // 3, h, w)''',
}


def f_qkv_attention(x, heads):
    return "attention", (int(heads),), ()


RECORDS = (
    OpRecord(
        Op.ECA,
        ECA_SIG,
        _eca_shape,
        TorchOp(
            "EcaModule",
            lambda a, s=None: [Arg("kernel_size", a["kernel_size"], True)],
            fresh=True,
            helpers=ECA_HELPERS,
        ),
        Diagram("other", lambda a: f"ECA, k={a['kernel_size']}"),
        params=lambda attrs, ins, out: attrs["kernel_size"],
        macs=_eca_macs,
        flops=_eca_macs,  # aten::mean, sigmoid and mul have no fvcore handle
        all_ops=_eca_ops,
        rf=rf_rules.whole,  # every gate reads the whole map's means
        imports=Imports(
            modules={"timm.layers.eca.EcaModule": import_eca},
            helpers={"EcaModule": lambda m: _eca_call(m.conv.kernel_size[0])},
        ),
    ),
    OpRecord(
        Op.ATTENTION,
        ATTENTION_SIG,
        attention_shape,
        TorchOp("QKVAttention", _heads, "qkv_attention", _heads, width="shape", helpers=HELPERS),
        Diagram("other", lambda a: f"attention, {a['heads']} heads"),
        # fvcore has no handle for aten::scaled_dot_product_attention: 0 FLOPs, no MACs
        all_ops=_attention_ops,
        rf=rf_rules.whole,  # every position reads every other
        # no window and no weights: the lint rules for convolutions and pools do not apply
        role="pointwise",
        imports=Imports(
            # the importer folds the reshapes around F.scaled_dot_product_attention into this call
            functions={"archlang.importer.attention.qkv_attention": f_qkv_attention},
            helpers={"QKVAttention": lambda m: ("attention", (m.heads,), ()), "qkv_attention": f_qkv_attention},
        ),
    ),
)
