"""Attention over the positions of a map."""

from __future__ import annotations

from . import rf_rules
from . import shape_rules as sr
from .base import A, Op, ShapeError, sig, t_int
from .record import Diagram, Imports, OpRecord
from .torch_form import Arg, TorchOp

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
