"""Channel attention layers that are one published layer with parameters of their own."""

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
)
