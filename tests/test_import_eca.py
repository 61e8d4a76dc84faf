"""``eca``: efficient channel attention (Wang et al., ECA-Net, CVPR 2020), timm's
``EcaModule`` (ECA-ResNets, ECA-NFNets).

Expected outputs come from the paper's formula written here in torch (float64, strict load),
the FLOPs from fvcore on a module written as timm writes the layer (reproduced here under
timm's name, so that the import mapping keyed by it applies, with no timm import).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis
from hostile_models import refused, roundtrip
from torch import nn

import archlang

SHAPE = (4, 5, 7)


class EcaModule(nn.Module):
    # timm.layers.eca.EcaModule (channels given: k from the paper's adaptive rule)
    def __init__(self, channels=None, kernel_size=3, gamma=2, beta=1, use_mlp=False):
        super().__init__()
        if channels is not None:
            t = int(abs(math.log(channels, 2) + beta) / gamma)
            kernel_size = max(t if t % 2 else t + 1, 3)
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.conv2 = nn.Conv1d(1, 1, 1) if use_mlp else None
        self.gate = nn.Sigmoid()

    def forward(self, x):
        y = x.mean((2, 3)).view(x.shape[0], 1, -1)
        y = self.conv(y)
        if self.conv2 is not None:
            y = self.conv2(y)
        y = self.gate(y).view(x.shape[0], -1, 1, 1)
        return x * y.expand_as(x)


EcaModule.__module__ = "timm.layers.eca"


def eca(x, weight):
    """The paper's ECA: gates from a k-tap conv across the channels' global average pool."""
    k = weight.numel()
    pooled = x.mean(dim=(2, 3))  # N × C
    padded = F.pad(pooled, ((k - 1) // 2, (k - 1) // 2))
    gates = torch.stack([padded[:, c : c + k] @ weight.flatten() for c in range(x.shape[1])], 1)
    return x * torch.sigmoid(gates)[:, :, None, None]


@pytest.mark.parametrize(("channels", "line"), [(16, '"1": eca\n'), (256, '"1": eca(5)\n')])
def test_timms_eca_imports_exactly_with_fvcores_flops(channels, line):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, channels, 1), EcaModule(channels), nn.ReLU())
    text = roundtrip(model, SHAPE)
    assert line in text, text
    assert archlang.analyze(text).totals.params == sum(p.numel() for p in model.parameters())
    flops = FlopCountAnalysis(model.float().eval(), torch.zeros(1, *SHAPE))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert archlang.analyze(text).totals.flops == flops.total()
    built = archlang.build(text)
    ours = FlopCountAnalysis(built.eval(), torch.zeros(1, *SHAPE))
    ours.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert ours.total() == flops.total()
    again = archlang.from_module(built, SHAPE, name="T", source="s")
    assert archlang.from_module(archlang.build(again), SHAPE, name="T", source="s") == again


def test_the_built_layer_is_the_papers_formula():
    torch.manual_seed(1)
    built = archlang.build("network T() {\n  input 6x5x7\n  attn: eca(5)\n}").double()
    weight = torch.randn(1, 1, 5, dtype=torch.float64)
    built.load_state_dict({"attn.conv.weight": weight}, strict=True)
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(built(x), eca(x, weight), rtol=1e-12, atol=1e-14)


def test_timms_mlp_variant_is_located():
    refused(nn.Sequential(EcaModule(kernel_size=3, use_mlp=True)), "E722", "`0`", "use_mlp", help=False)


def test_an_even_kernel_is_located():
    with pytest.raises(archlang.SpecError) as info:
        archlang.build("network T() {\n  input 6x5x7\n  attn: eca(4)\n}")
    (diag,) = info.value.diagnostics
    assert diag.code == "E303" and "odd" in diag.message
