"""Constructs of timm's MetaFormers (PoolFormer) and CPUBone, written as small torch modules:
``F.group_norm`` on a module's own weight and bias (timm's ``GroupNorm1``) is that module's
``group_norm`` layer, ``a - b`` is ``add { a; b then scale(-1) }`` (PoolFormer's token mixer
``pool(x) - x``), and a (C,) parameter viewed as (C, 1, 1) is a flat ``layer_scale``. Each
imports exactly (strict load, float64 outputs equal), its parameters are torch's numel, its
FLOPs are fvcore's count of the original module, and the spec re-imports to itself."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hostile_models import randomize_bn, refused, roundtrip
from torch import nn

import archlang

SHAPE = (4, 6, 6)


class GroupNormF(nn.GroupNorm):
    # timm's GroupNorm1: an nn.GroupNorm subclass whose forward calls the function
    def __init__(self, channels, groups=1, eps=1e-5):
        super().__init__(groups, channels, eps=eps)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class Pooling(nn.Module):
    # PoolFormer's token mixer: the pooled map minus its input
    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        return self.pool(x) - x


class Scale(nn.Module):
    # MetaFormer's layer scale: a (C,) parameter viewed as (C, 1, 1)
    def __init__(self, dim):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.scale.view((self.scale.numel(), 1, 1))


class PoolBlock(nn.Module):
    def __init__(self, groups=1, eps=1e-5):
        super().__init__()
        self.norm1 = GroupNormF(4, groups, eps)
        self.token_mixer = Pooling()
        self.layer_scale1 = Scale(4)

    def forward(self, x):
        return x + self.layer_scale1(self.token_mixer(self.norm1(x)))


class SubMethods(nn.Module):
    # the other spellings of a difference, the tensor being subtracted first or second
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.c = nn.Conv2d(4, 4, 1)
        self.d = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = torch.sub(self.a(x), x)
        z = x.sub(self.b(y))
        return self.c(z) - self.d(z)


def _randomized(model: nn.Module) -> nn.Module:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():  # a gamma of ones or a bias of zeros hides a swap
            p.copy_(torch.randn_like(p))
    return model


def _fixed_point_and_costs(text: str, model: nn.Module) -> None:
    import fvcore.nn as fvcore  # in the test extra

    built = archlang.build(text)
    again = archlang.from_module(built, SHAPE, name="T", source="s")
    assert archlang.from_module(archlang.build(again), SHAPE, name="T", source="s") == again
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    counter = fvcore.FlopCountAnalysis(model.float().eval(), torch.zeros(1, *SHAPE))
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert archlang.analyze(text).totals.flops == counter.total()


@pytest.mark.parametrize(("groups", "eps", "op"), [(1, 1e-5, "group_norm(1)"), (2, 1e-6, "group_norm(2, eps=1e-06)")])
def test_functional_group_norm_on_own_parameters_is_the_modules_layer(groups, eps, op):
    model = _randomized(nn.Sequential(nn.Conv2d(4, 4, 1), GroupNormF(4, groups, eps)))
    text = roundtrip(model, SHAPE)
    assert op in text, text
    _fixed_point_and_costs(text, model)
    assert set(archlang.build(text).state_dict()) == set(model.state_dict())
    # fvcore: the 1x1 conv's multiply-adds (no bias), aten::group_norm with affine weight 5 per element
    assert archlang.analyze(text).totals.flops == 4 * 4 * 36 + 5 * 4 * 36


def test_functional_group_norm_on_other_tensors_is_refused():
    class Foreign(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(4))
            self.norm = GroupNormF(4)

        def forward(self, x):
            return F.group_norm(self.norm(x), 1, self.w)

    refused(Foreign(), "E721", "group_norm", "not the own parameters", shape=SHAPE)


def test_pooling_minus_input_with_a_viewed_layer_scale():
    model = _randomized(PoolBlock())
    text = roundtrip(model, SHAPE)
    assert "scale(-1.0)" in text and "layer_scale(" in text and "flat=true" in text, text
    _fixed_point_and_costs(text, model)
    assert archlang.build(text).state_dict()["layer_scale1.scale"].shape == (4,)


def test_every_spelling_of_a_difference_keeps_its_order():
    model = _randomized(SubMethods())
    text = roundtrip(model, SHAPE)
    assert text.count("scale(-1.0)") == 3, text
    _fixed_point_and_costs(text, model)


def test_difference_with_a_constant_is_refused():
    class Shift(nn.Module):
        def forward(self, x):
            return x - 1.0

    diag = refused(Shift(), "E721", "`-` of a tensor and a constant", shape=SHAPE)
    assert "add" in diag.help


@pytest.mark.parametrize("dims", [(4, 1, 1), (-1, 1, 1), (1, 4, 1, 1), (1, -1, 1, 1)])
def test_every_channels_view_of_a_flat_scale_is_a_flat_layer_scale(dims):
    class Viewed(Scale):
        def forward(self, x):
            return x * self.scale.view(dims)

    text = roundtrip(_randomized(Viewed(4)), SHAPE)
    assert "layer_scale(" in text and "flat=true" in text, text


def test_a_scale_viewed_otherwise_is_refused():
    class Odd(Scale):
        def forward(self, x):
            return x * self.scale.view(1, 1, 1, -1)  # along W, not the channels

    refused(Odd(4), "E721", "Tensor.view", shape=(4, 4, 4))


@pytest.mark.slow  # a timm model, seconds on an idle core
def test_poolformer_imports_exactly():
    timm = pytest.importorskip("timm")
    import fvcore.nn as fvcore

    shape = (3, 64, 64)
    model = timm.create_model("poolformer_s12", num_classes=5)
    randomize_bn(model, affine=True)
    text = roundtrip(model, shape)
    assert "group_norm(1)" in text and "scale(-1.0)" in text
    built = archlang.build(text)
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    counter = fvcore.FlopCountAnalysis(model.float().eval(), torch.zeros(1, *shape))
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert archlang.analyze(text).totals.flops == counter.total()
    again = archlang.from_module(built, shape, name="T", source="s")
    assert archlang.from_module(archlang.build(again), shape, name="T", source="s") == again
