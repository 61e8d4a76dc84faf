"""Constructs of timm's CNNs that map to ops of their own: a constant factor (``x * 0.17``,
Inception-ResNet's residual scale) is ``scale``, a slice of consecutive channels
(``x[:, :C]``: GhostNet, ReXNet) is ``narrow``. Each imports exactly (strict load, float64
outputs equal), its parameters are torch's numel, and the spec re-imports to itself."""

from __future__ import annotations

import pytest
import torch
from hostile_models import roundtrip
from torch import nn

import archlang

SHAPE = (4, 6, 6)


class Scaled(nn.Module):
    def __init__(self, scale=0.17):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.scale = scale

    def forward(self, x):
        return self.conv(x) * self.scale + x


class ScaledLeft(Scaled):
    def forward(self, x):
        return torch.relu(2.5 * self.conv(x))


class GhostSlice(nn.Module):
    # GhostNet's module: a cheap op doubles the channels, then the first out_chs are kept
    def __init__(self):
        super().__init__()
        self.primary = nn.Conv2d(4, 3, 1)
        self.cheap = nn.Conv2d(3, 3, 3, padding=1, groups=3)

    def forward(self, x):
        x1 = self.primary(x)
        out = torch.cat([x1, self.cheap(x1)], dim=1)
        return out[:, :5, :, :]


class RexSlice(nn.Module):
    # ReXNet's partial residual: the shortcut is added to the first in_chs channels only
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 7, 1)

    def forward(self, x):
        y = self.conv(x)
        return torch.cat([y[:, 0:4] + x, y[:, 4:]], dim=1)


class Ellipsis_(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 1)

    def forward(self, x):
        return self.conv(x)[:, -4:-1, ...]


def _fixed_point(text: str, model: nn.Module) -> None:
    built = archlang.build(text)
    again = archlang.from_module(built, SHAPE, name="T", source="s")
    assert archlang.from_module(archlang.build(again), SHAPE, name="T", source="s") == again
    numel = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in built.parameters()) == numel


@pytest.mark.parametrize(
    ("model", "factor"), [(Scaled(), "scale(0.17)"), (Scaled(1.0), "scale(1.0)"), (ScaledLeft(), "scale(2.5)")]
)
def test_constant_factor_is_scale(model, factor):
    text = roundtrip(model, SHAPE)
    assert factor in text, text
    _fixed_point(text, model)


@pytest.mark.parametrize(
    ("model", "ops"),
    [(GhostSlice(), ["narrow(0, 5)"]), (RexSlice(), ["narrow(0, 4)", "narrow(4, 3)"]), (Ellipsis_(), ["narrow(2, 3)"])],
    ids=["ghost", "rexnet", "negative-ellipsis"],
)
def test_channel_slice_is_narrow(model, ops):
    text = roundtrip(model, SHAPE)
    for op in ops:
        assert op in text, text
    _fixed_point(text, model)


def test_narrow_and_scale_costs_and_shapes():
    spec = "network T() {\n  input 6x4x5\n  a: narrow(2, 3)\n  b: scale(0.5)\n}"
    built = archlang.build(spec)
    x = torch.randn(1, 6, 4, 5)
    torch.testing.assert_close(built(x), x[:, 2:5] * 0.5)


def test_narrow_past_the_channels_is_located():
    with pytest.raises(archlang.SpecError) as info:
        archlang.build("network T() {\n  input 6x4x5\n  a: narrow(4, 3)\n}")
    (diag,) = info.value.diagnostics
    assert diag.code == "E303" and "past the input's 6" in diag.message


def test_other_indexing_is_still_refused():
    class Strided(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 6, 1)

        def forward(self, x):
            return self.conv(x)[:, ::2]

    with pytest.raises(archlang.SpecError) as info:
        archlang.from_module(Strided(), SHAPE)
    assert info.value.diagnostics[0].code == "E721"


class FlatGamma(nn.Module):
    # timm's ConvNeXt block: a (C,) gamma reshaped to (1, -1, 1, 1) where it multiplies
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.gamma = nn.Parameter(0.5 * torch.ones(4))

    def forward(self, x):
        return self.conv(x).mul(self.gamma.reshape(1, -1, 1, 1)) + x


def test_flat_gamma_is_a_flat_layer_scale():
    model = FlatGamma()
    with torch.no_grad():
        model.gamma.copy_(torch.randn(4))  # a swapped or broadcast-wrong gamma shows
    text = roundtrip(model, SHAPE)
    assert "flat=true" in text, text
    _fixed_point(text, model)
    assert archlang.build(text).state_dict()["gamma"].shape == (4,)


def test_other_reshapes_of_a_parameter_are_refused():
    class Odd(FlatGamma):
        def __init__(self):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(4, 1))  # a column: no (C,) layer_scale loads it

        def forward(self, x):
            return self.conv(x) * self.gamma.reshape(1, -1, 1, 1)

    with pytest.raises(archlang.SpecError) as info:
        archlang.from_module(Odd(), SHAPE)
    assert info.value.diagnostics[0].code == "E721"


class NormHead(nn.Module):
    # RepViT's classifier: BatchNorm1d then linear, two heads averaged in eval
    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.bn = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 3)
        self.dist = nn.Linear(4, 3)

    def forward(self, x):
        x = self.bn(torch.flatten(self.pool(x), 1))
        return (self.fc(x) + self.dist(x)) / 2


def test_batchnorm1d_and_a_divided_mean_of_heads():
    model = NormHead()
    text = roundtrip(model, SHAPE)
    assert "batchnorm1d" in text and "scale(0.5)" in text, text
    _fixed_point(text, model)
    assert isinstance(archlang.build(text).bn, nn.BatchNorm1d)


def test_batchnorm1d_on_a_map_is_located():
    with pytest.raises(archlang.SpecError) as info:
        archlang.build("network T() {\n  input 6x4x5\n  b: batchnorm1d\n}")
    assert info.value.diagnostics[0].code == "E404"


@pytest.mark.slow  # timm models, seconds each on an idle core
@pytest.mark.parametrize(
    ("name", "op", "shape"),
    [
        ("ghostnet_050", "cheap_operation", (3, 64, 64)),  # its `out[:, :C]` keeps every channel: no op
        ("rexnet_100", "narrow(", (3, 64, 64)),
        ("convnext_atto", "flat=true", (3, 64, 64)),
        ("repvit_m1", "batchnorm1d", (3, 64, 64)),
    ],
)
def test_timm_models_import_exactly(name, op, shape):
    import timm

    model = timm.create_model(name, num_classes=5)
    text = roundtrip(model, shape)
    assert op in text
    assert sum(p.numel() for p in archlang.build(text).parameters()) == sum(p.numel() for p in model.parameters())
    again = archlang.from_module(archlang.build(text), shape, name="T", source="s")
    assert archlang.from_module(archlang.build(again), shape, name="T", source="s") == again


def test_same_padding_imports_as_numbers_and_is_a_fixed_point():
    # ConvMixer's depthwise conv: padding="same" (odd kernel, stride 1) is the padding the
    # built spec's conv holds, so its re-import gives the same text
    model = nn.Sequential(nn.Conv2d(4, 4, (3, 5), padding="same"), nn.Conv2d(4, 4, 3, padding="same", dilation=2))
    text = roundtrip(model, SHAPE)
    assert "padding=(1, 2)" in text and "padding=2, dilation=2" in text, text
    _fixed_point(text, model)


def test_same_padding_flops_are_fvcores_on_the_built_model():
    import fvcore.nn as fvcore  # in the test extra

    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding="same"))
    text = archlang.from_module(model, SHAPE)
    counter = fvcore.FlopCountAnalysis(archlang.build(text).eval(), torch.zeros(1, *SHAPE))
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert archlang.analyze(text).totals.flops == counter.total() == 4 * 4 * 9 * 36
