"""Constructs of timm's MetaFormers (PoolFormer) and CPUBone, written as small torch modules:
``F.group_norm`` on a module's own weight and bias (timm's ``GroupNorm1``) is that module's
``group_norm`` layer, ``a - b`` is ``add { a; b then scale(-1) }`` (PoolFormer's token mixer
``pool(x) - x``), a (C,) parameter viewed as (C, 1, 1) is a flat ``layer_scale``, the
reshapes around ``F.scaled_dot_product_attention`` of per-head q/k/v channels are one
``attention(heads)`` (CPUBone's ``ConvAttention``), and a slice that keeps a whole map
(``o[..., :H, :W]``) is no op. Each
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


class ConvAttention(nn.Module):
    # CPUBone's attention: a 1x1 conv makes each head's queries, keys and values
    def __init__(self, heads=2, d=3, crop=False):
        super().__init__()
        self.heads, self.crop = heads, crop
        self.pwise = nn.Conv2d(4, 3 * heads * d, 1, bias=False)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.proj = nn.Conv2d(heads * d, 4, 1)

    def forward(self, x):
        H, W = x.shape[-2:]
        y = self.pwise(F.avg_pool2d(x, 2) if self.crop else x)
        N, _, h, w = y.size()
        qkv = y.reshape(N, self.heads, y.shape[1] // self.heads, h * w).permute(0, 1, 3, 2)
        q, k, v = qkv.chunk(3, dim=3)
        values = F.scaled_dot_product_attention(q, k, v)
        o = self.proj(values.permute(0, 1, 3, 2).reshape(N, y.shape[1] // 3, h, w))
        if self.crop:
            o = self.up(o)
        return o[..., :H, :W] + x


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


@pytest.mark.parametrize(
    ("groups", "eps", "bias", "op"),
    [(1, 1e-5, True, "group_norm(1)"), (2, 1e-6, True, "group_norm(2, eps=1e-06)"), (1, 1e-5, False, "bias=false")],
)
def test_functional_group_norm_on_own_parameters_is_the_modules_layer(groups, eps, bias, op):
    norm = GroupNormF(4, groups, eps)
    if not bias:
        norm.bias = None  # PoolFormer v2's GroupNorm1NoBias
    model = _randomized(nn.Sequential(nn.Conv2d(4, 4, 1), norm))
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


@pytest.mark.parametrize(("heads", "crop"), [(2, False), (1, True)])
def test_attention_over_positions_is_one_op(heads, crop):
    model = _randomized(ConvAttention(heads, crop=crop))
    text = roundtrip(model, SHAPE)
    assert f"attention({heads})" in text and "reshape" not in text, text
    _fixed_point_and_costs(text, model)  # fvcore has no handle for aten::scaled_dot_product_attention


def test_attention_op_computes_softmax_attention_per_head():
    built = archlang.build("network T() {\n  input 12x3x4\n  a: attention(2)\n}").double().eval()
    x = torch.randn(2, 12, 3, 4, dtype=torch.float64)
    q, k, v = x.reshape(2, 2, 6, 12).split(2, dim=2)  # per head: 2 features of 12 positions each
    weights = torch.softmax(torch.einsum("nhdi,nhdj->nhij", q, k) / 2**0.5, dim=-1)
    expected = torch.einsum("nhij,nhdj->nhdi", weights, v).reshape(2, 4, 3, 4)
    torch.testing.assert_close(built(x), expected, rtol=1e-12, atol=1e-12)
    # per head, 12 positions of 2 features: 12·2 (scale q) + 4·12²·2 (q·kᵀ, weights·v) + 3·12² (softmax)
    assert archlang.analyze(built_text := "network T() {\n  input 12x3x4\n  attention(2)\n}").totals.all_ops == 2 * (
        12 * 2 + 4 * 144 * 2 + 3 * 144
    ), built_text


def test_attention_channels_not_in_thirds_per_head_are_located():
    with pytest.raises(archlang.SpecError) as info:
        archlang.build("network T() {\n  input 12x3x4\n  attention(3)\n}")
    (diag,) = info.value.diagnostics
    assert diag.code == "E405" and "divisible by 3 × 3" in diag.message


def test_other_attention_layouts_are_refused():
    class Masked(ConvAttention):
        def forward(self, x):
            y = self.pwise(x)
            N, _, h, w = y.size()
            q, k, v = y.reshape(N, 1, 18, h * w).permute(0, 1, 3, 2).chunk(3, dim=3)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True).sum()

    refused(Masked(), "E721", "no archlang op for function `torch.scaled_dot_product_attention`", shape=SHAPE)


def test_a_slice_that_drops_rows_is_still_refused():
    class Cropped(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return self.conv(x)[..., :5, :]

    refused(Cropped(), "E721", "indexing", shape=SHAPE)


@pytest.mark.slow  # a timm model, seconds on an idle core
@pytest.mark.parametrize(
    ("name", "ops"),
    [("poolformer_s12", ("group_norm(1)", "scale(-1.0)")), ("cpubone_t0", ("attention(", "group_norm(1)"))],
)
def test_timm_model_imports_exactly(name, ops):
    import fvcore.nn as fvcore
    import timm

    shape = (3, 64, 64)
    model = timm.create_model(name, num_classes=5)
    randomize_bn(model, affine=True)
    text = roundtrip(model, shape)
    assert all(op in text for op in ops), text
    built = archlang.build(text)
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    counter = fvcore.FlopCountAnalysis(model.float().eval(), torch.zeros(1, *shape))
    counter.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert archlang.analyze(text).totals.flops == counter.total()
    again = archlang.from_module(built, shape, name="T", source="s")
    assert archlang.from_module(archlang.build(again), shape, name="T", source="s") == again


class LayerNorm2dNoBias(nn.LayerNorm):
    # MetaFormer's: F.layer_norm on its own weight (no bias), between permutes
    def __init__(self, channels):
        super().__init__(channels, eps=1e-6)
        self.bias = None

    def forward(self, x):
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class NoBiasNorms(nn.Module):
    # and an nn.LayerNorm(bias=False) on a vector
    def __init__(self):
        super().__init__()
        self.norm1 = LayerNorm2dNoBias(4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.norm2 = nn.LayerNorm(4, bias=False)

    def forward(self, x):
        return self.norm2(torch.flatten(self.pool(self.norm1(x)), 1))


def test_layer_norm_without_bias():
    model = _randomized(NoBiasNorms())
    text = roundtrip(model, SHAPE)
    assert text.count("bias=false") == 2, text
    _fixed_point_and_costs(text, model)
    # 4 weights each; fvcore: aten::layer_norm with a weight, 5 per element (144 and 4
    # elements), aten::adaptive_avg_pool2d 1 per input element
    assert archlang.analyze(text).totals.params == 8
    assert archlang.analyze(text).totals.flops == 5 * 144 + 144 + 5 * 4


class Squares(nn.Module):
    # MetaFormer's SquaredReLU (torch.square(relu(x))) and the other spellings of x²
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = torch.square(torch.relu(self.conv(x)))
        return (y**2).square() + x.pow(2) + torch.pow(x, 2.0)


def test_square_in_every_spelling():
    model = _randomized(Squares())
    text = roundtrip(model, SHAPE)
    assert text.count("square") == 5, text
    _fixed_point_and_costs(text, model)


def test_other_powers_are_refused():
    class Cube(nn.Module):
        def forward(self, x):
            return x**3

    refused(Cube(), "E722", "a power 3", shape=SHAPE, help=False)


def test_star_relu_op_against_its_formula():
    text = "network T() {\n  input 4x6x6\n  act: star_relu(scale=0.5, bias=-0.25)\n}"
    built = archlang.build(text).double()
    assert {k: tuple(v.shape) for k, v in built.state_dict().items()} == {"act.scale": (1,), "act.bias": (1,)}
    x = torch.randn(2, *SHAPE, dtype=torch.float64)
    torch.testing.assert_close(built(x), 0.5 * torch.relu(x) ** 2 - 0.25, rtol=0, atol=0)
    assert archlang.analyze(text).totals.params == 2
    assert archlang.from_module(built, SHAPE, name="T", source="s").count("star_relu(scale=0.5, bias=-0.25)") == 1


def test_timms_star_relu_is_the_op():
    from timm.models import metaformer

    model = _randomized(nn.Sequential(nn.Conv2d(4, 4, 1), metaformer.StarReLU()))
    text = roundtrip(model, SHAPE)
    assert "star_relu(scale=" in text, text
    _fixed_point_and_costs(text, model)
