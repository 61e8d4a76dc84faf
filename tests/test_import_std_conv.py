"""Weight-standardised convolutions (``std_conv2d``, ``scaled_std_conv2d``) and the
normaliser-free ResNet block they make (NF-ResNets, Brock et al. 2021, timm's ``nfnet``).

The expected outputs come from the papers' formulas written here in torch (float64, strict
load), the parameters from torch's numel, the FLOPs from fvcore on a module written as timm
writes the layer. timm's layers are reproduced here (named as timm names them, so that the
import mapping of the op record, keyed by the class's qualified name, applies) so that the
fast tests need no timm; the real ``nf_resnet26`` is the one slow test.
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
from archlang.ops.conv import gamma_of

SHAPE = (4, 9, 9)
RELU_GAMMA = 1.7139588594436646  # NF-Nets' gain of ReLU (timm's _nonlin_gamma)


def _timm(cls):
    """``cls`` under timm's name: a reproduction of timm's layer of that definition."""
    cls.__module__ = "timm.layers.std_conv"
    return cls


@_timm
class StdConv2d(nn.Conv2d):
    # timm.layers.std_conv.StdConv2d's forward, verbatim
    def __init__(self, *args, eps=1e-6, **kwargs):
        super().__init__(*args, **kwargs)
        self.eps = eps

    def forward(self, x):
        weight = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1), None, None, training=True, momentum=0.0, eps=self.eps
        ).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


@_timm
class ScaledStdConv2d(nn.Conv2d):
    # timm.layers.std_conv.ScaledStdConv2d: only the product gamma / sqrt(fan-in) is kept
    def __init__(self, *args, gamma=1.0, eps=1e-6, gain_init=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.scale = gamma * self.weight[0].numel() ** -0.5
        self.eps = eps
        self.gain = nn.Parameter(torch.full((self.out_channels, 1, 1, 1), gain_init))

    def forward(self, x):
        weight = F.batch_norm(
            self.weight.reshape(1, self.out_channels, -1),
            None,
            None,
            weight=(self.gain * self.scale).view(-1),
            training=True,
            momentum=0.0,
            eps=self.eps,
        ).reshape_as(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


@_timm
class ScaledStdConv2dSame(ScaledStdConv2d):
    # timm's SAME form: with a stride > 1 it pads by the input's size at every call (pad_same)
    def __init__(self, *args, **kwargs):
        super().__init__(*args, padding=0, **kwargs)
        self.same_pad = True

    def forward(self, x):
        pads = []
        for n, k, s, d in zip(x.shape[-2:], self.kernel_size, self.stride, self.dilation):
            pads.append(max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0))
        (h, w) = pads
        return super().forward(F.pad(x, (w // 2, w - w // 2, h // 2, h - h // 2)))


def standardised(w, eps):
    """Weight standardisation as the paper writes it: per filter, over its fan-in."""
    mean = w.mean(dim=(1, 2, 3), keepdim=True)
    var = w.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
    return (w - mean) / torch.sqrt(var + eps)


class Paper(nn.Module):
    """``std_conv2d`` / ``scaled_std_conv2d`` from the papers' formulas (the reference)."""

    def __init__(self, cin, cout, k, stride=1, padding=0, groups=1, scaled=True, gamma=1.0, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin // groups, k, k))
        self.bias = nn.Parameter(torch.randn(cout))
        if scaled:
            self.gain = nn.Parameter(torch.rand(cout, 1, 1, 1) + 0.5)
        self.scaled, self.gamma, self.eps = scaled, gamma, eps
        self.conv = dict(stride=stride, padding=padding, groups=groups)

    def forward(self, x):
        w = standardised(self.weight, self.eps)
        if self.scaled:
            w = w * self.gain * self.gamma / math.sqrt(self.weight[0].numel())
        return F.conv2d(x, w, self.bias, **self.conv)


@pytest.mark.parametrize(
    ("line", "scaled", "kwargs"),
    [
        ("scaled_std_conv2d(6, 3, stride=2, padding=1, gamma=1.7139588594436646, eps=1e-05)", True,
         dict(stride=2, padding=1, gamma=RELU_GAMMA, eps=1e-5)),
        ("scaled_std_conv2d(6, 3, padding=1, groups=2)", True, dict(padding=1, groups=2)),
        ("std_conv2d(6, 3, padding=1, eps=0.001)", False, dict(padding=1, eps=1e-3)),
    ],
    ids=["nf-resnet", "grouped", "plain-ws"],
)  # fmt: skip
def test_the_built_layer_is_the_papers_formula(line, scaled, kwargs):
    torch.manual_seed(0)
    ref = Paper(4, 6, 3, scaled=scaled, **kwargs).double()
    built = archlang.build(f"network T() {{\n  input 4x9x9\n  c: {line}\n}}").double()
    built.c.load_state_dict(ref.state_dict(), strict=True)  # weight, bias (, gain): timm's keys
    x = torch.randn(2, *SHAPE, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(built(x), ref(x), rtol=1e-10, atol=1e-12)
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize(
    ("layer", "line"),
    [
        (ScaledStdConv2d(4, 6, 3, stride=2, padding=1, gamma=RELU_GAMMA, eps=1e-5),
         "scaled_std_conv2d(6, 3, stride=2, padding=1, gamma=1.7139588594436646, eps=1e-05)"),
        (ScaledStdConv2d(4, 8, 1, groups=2, bias=False), "scaled_std_conv2d(8, 1, groups=2, bias=false)"),
        (StdConv2d(4, 6, 3, padding=1, bias=False), "std_conv2d(6, 3, padding=1, bias=false)"),
    ],
    ids=["scaled", "scaled-grouped", "plain"],
)  # fmt: skip
def test_timms_layers_import_exactly_with_fvcores_flops(layer, line):
    torch.manual_seed(0)
    model = nn.Sequential(layer, nn.ReLU())
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))  # a gain of 1 everywhere would hide a lost gain
    text = roundtrip(model, SHAPE)
    assert line in text, text
    flops = FlopCountAnalysis(model.float().eval(), torch.zeros(1, *SHAPE))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert "batch_norm" in flops.by_operator()  # fvcore counts the weight's standardisation
    assert archlang.analyze(text).totals.flops == flops.total()
    assert archlang.analyze(text).totals.params == sum(p.numel() for p in model.parameters())
    built = archlang.build(text)
    again = archlang.from_module(built, SHAPE, name="T", source="s")
    assert archlang.from_module(archlang.build(again), SHAPE, name="T", source="s") == again
    # the emitted module is counted as timm's is
    ours = FlopCountAnalysis(built.eval(), torch.zeros(1, *SHAPE))
    ours.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert ours.total() == flops.total()


# NF-Nets' gammas (float32 values printed as doubles: ReLU, GELU, SiLU, sigmoid) and short ones
@pytest.mark.parametrize(
    "gamma", [RELU_GAMMA, 1.7015043497085571, 1.7881293296813965, 4.803835391998291, 1.0, 0.1, 1.7]
)
def test_gamma_is_recovered_from_the_kept_product(gamma):
    for fan_in in range(1, 3000):
        scale = gamma * fan_in**-0.5  # what timm keeps
        g = gamma_of(scale, fan_in)
        assert g * fan_in**-0.5 == scale  # bit for bit: the built layer computes timm's scale
        assert g == gamma, fan_in  # the same gamma in every layer, whatever its fan-in


class NormFree(nn.Module):
    """NF-ResNet's pre-activation bottleneck as timm writes it (``NormFreeBlock``): the input
    scaled by beta before the branches, the residual by alpha, an attention gain, SiLU with
    its NF gamma applied after the activation (``GammaAct``: ``act(x).mul_(gamma)``)."""

    def __init__(self, cin=4, cout=8, beta=0.5, alpha=0.2, gamma=1.7881293296813965):
        super().__init__()
        self.beta, self.alpha, self.gamma = beta, alpha, gamma
        self.downsample = ScaledStdConv2d(cin, cout, 1, gamma=gamma, eps=1e-5)
        self.conv1 = ScaledStdConv2d(cin, 4, 1, gamma=gamma, eps=1e-5)
        self.conv2 = ScaledStdConv2d(4, 4, 3, padding=1, groups=2, gamma=gamma, eps=1e-5)
        self.conv3 = ScaledStdConv2d(4, cout, 1, gamma=gamma, eps=1e-5, gain_init=0.0)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(cout, cout, 1)

    def act(self, x):
        return F.silu(x).mul_(self.gamma)

    def forward(self, x):
        out = self.act(x) * self.beta
        shortcut = self.downsample(out)
        out = self.conv2(self.act(self.conv1(out)))
        out = self.conv3(self.act(out))
        out = 2.0 * (out * torch.sigmoid(self.fc(self.pool(out))))  # attn_gain * SE
        return out * self.alpha + shortcut


class SkipInit(nn.Module):
    """DeepMind's NFNet block (timm's ``dm_nfnet``): a scalar gain, multiplied in place as a
    statement, ends the residual branch (SkipInit, De & Smith 2020)."""

    def __init__(self, alpha=0.2):
        super().__init__()
        self.alpha = alpha
        self.conv1 = ScaledStdConv2d(4, 4, 1, gamma=RELU_GAMMA)
        self.conv2 = ScaledStdConv2d(4, 4, 3, padding=1, gamma=RELU_GAMMA)
        self.drop_path = nn.Identity()  # its output is a view of its input
        self.skipinit_gain = nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        out = self.drop_path(self.conv2(F.relu(self.conv1(F.relu(x)))))
        out.mul_(self.skipinit_gain)  # the product is read through `out`
        return out * self.alpha + x


def test_a_scalar_gain_multiplied_in_place_is_a_scalar_layer_scale():
    model = SkipInit()
    with torch.no_grad():
        model.skipinit_gain.fill_(0.75)
    text = roundtrip(model, SHAPE)
    assert "skipinit_gain: layer_scale(0.75, scalar=true)" in text, text
    assert archlang.analyze(text).totals.params == sum(p.numel() for p in model.parameters())
    built = archlang.build(text)
    assert built.state_dict()["skipinit_gain"].shape == ()
    again = archlang.from_module(built, SHAPE, name="T", source="s")
    assert archlang.from_module(archlang.build(again), SHAPE, name="T", source="s") == again


def test_a_statement_in_place_op_whose_source_is_read_after_is_still_refused():
    class Aliased(SkipInit):
        def forward(self, x):
            y = self.conv2(self.conv1(x))
            out = self.drop_path(y)  # a view of y
            out.mul_(self.skipinit_gain)  # changes y too, which the sum reads
            return out + y

    refused(Aliased(), "E724", "`mul_` changes a tensor in place")


def test_a_layer_scale_cannot_be_scalar_and_flat():
    with pytest.raises(archlang.SpecError) as info:
        archlang.build("network T() {\n  input 4x9x9\n  g: layer_scale(scalar=true, flat=true)\n}")
    (diag,) = info.value.diagnostics
    assert diag.code == "E303" and "not both" in diag.message


def test_an_nf_block_imports_exactly():
    model = NormFree()
    with torch.no_grad():
        model.conv3.gain.copy_(torch.randn_like(model.conv3.gain))  # timm starts it at 0
    text = roundtrip(model, SHAPE)
    for piece in ("scale(0.5)", "scale(0.2)", "scale(2.0)", "scale(1.7881293296813965)", "gamma=1.7881293296813965"):
        assert piece in text, text
    assert archlang.analyze(text).totals.params == sum(p.numel() for p in model.parameters())
    again = archlang.from_module(archlang.build(text), SHAPE, name="T", source="s")
    assert archlang.from_module(archlang.build(again), SHAPE, name="T", source="s") == again


@pytest.mark.parametrize(("size", "pad"), [(9, "pad((1, 1, 1, 1))"), (10, "pad((0, 1, 0, 1))")])
def test_same_padding_by_the_input_size_is_a_pad_before_the_conv(size, pad):
    # TensorFlow's SAME with a stride of 2: the padding follows the input's size
    model = nn.Sequential(ScaledStdConv2dSame(4, 6, 3, stride=2, gamma=RELU_GAMMA), nn.ReLU())
    text = roundtrip(model, (4, size, size))
    assert f'{pad}\n  "0": scaled_std_conv2d(6, 3, stride=2, gamma=1.7139588594436646)' in text, text
    again = archlang.from_module(archlang.build(text), (4, size, size), name="T", source="s")
    assert archlang.from_module(archlang.build(again), (4, size, size), name="T", source="s") == again


def test_a_spec_error_names_the_op():
    with pytest.raises(archlang.SpecError) as info:
        archlang.build("network T() {\n  input 4x9x9\n  c: scaled_std_conv2d(6, 3, groups=3)\n}")
    (diag,) = info.value.diagnostics
    assert diag.code == "E405" and "in_channels (4)" in diag.message


@pytest.mark.slow  # timm's nf_resnet26: ~10 s on an idle core
def test_timm_nf_resnet26_imports_exactly():
    import timm

    model = timm.create_model("nf_resnet26", num_classes=5)
    with torch.no_grad():  # timm zeroes each block's last gain: its branch would not show
        for name, p in model.named_parameters():
            if name.endswith("gain"):
                p.uniform_(0.5, 1.5)
    shape = (3, 64, 64)
    text = roundtrip(model, shape)
    assert "scaled_std_conv2d(64, 7, stride=2, padding=3, gamma=1.7139588594436646, eps=1e-05)" in text
    flops = FlopCountAnalysis(model.float().eval(), torch.zeros(1, *shape))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert archlang.analyze(text).totals.flops == flops.total()
    assert archlang.analyze(text).totals.params == sum(p.numel() for p in model.parameters())
    again = archlang.from_module(archlang.build(text), shape, name="T", source="s")
    assert archlang.from_module(archlang.build(again), shape, name="T", source="s") == again
