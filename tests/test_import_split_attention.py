"""Selective-kernel and split-attention units (SKNet, ResNeSt): R paths stacked into a
(B, R, C, H, W) tensor (or a (B, R·C, H, W) map reshaped to it), summed over the paths,
soft-maxed over them and multiplied. Hand-written torch modules, no timm: each imports
exactly (strict load, float64 outputs equal to torch's), its parameters are torch's numel,
its FLOPs fvcore's count of the torch module, and the spec re-imports to itself. The
`radix_softmax` op is checked against ResNeSt's own rSoftMax, copied below."""

from __future__ import annotations

import math

import fvcore.nn
import pytest
import torch
import torch.nn.functional as F
from hostile_models import refused, roundtrip
from torch import nn

import archlang

SHAPE = (8, 6, 5)


class RSoftMax(nn.Module):
    """ResNeSt's ``rSoftMax`` (zhanghang1989/ResNeSt, resnest/torch/models/splat.py), verbatim
    but for the names: traced through, its view / transpose / softmax / reshape chain."""

    def __init__(self, radix, cardinality):
        super().__init__()
        self.radix = radix
        self.cardinality = cardinality

    def forward(self, x):
        batch = x.size(0)
        if self.radix > 1:
            x = x.view(batch, self.cardinality, self.radix, -1).transpose(1, 2)
            x = F.softmax(x, dim=1)
            x = x.reshape(batch, -1)
        else:
            x = torch.sigmoid(x)
        return x


class SplitAttention(nn.Module):
    """ResNeSt's split-attention conv (SplAtConv2d, cut down): one grouped conv makes R paths
    of C channels side by side; the attention over them is per cardinal group."""

    def __init__(self, channels=8, radix=2, cardinality=1, attn=16):
        super().__init__()
        self.radix = radix
        self.conv = nn.Conv2d(channels, channels * radix, 3, padding=1, groups=cardinality * radix, bias=False)
        self.bn0 = nn.BatchNorm2d(channels * radix)
        self.fc1 = nn.Conv2d(channels, attn, 1, groups=cardinality)
        self.bn1 = nn.BatchNorm2d(attn)
        self.fc2 = nn.Conv2d(attn, channels * radix, 1, groups=cardinality)
        self.rsoftmax = RSoftMax(radix, cardinality)

    def forward(self, x):
        x = F.relu(self.bn0(self.conv(x)))
        batch, rchannel = x.shape[:2]
        splited = torch.split(x, rchannel // self.radix, dim=1)
        gap = sum(splited)
        gap = F.adaptive_avg_pool2d(gap, 1)
        gap = F.relu(self.bn1(self.fc1(gap)))
        atten = self.rsoftmax(self.fc2(gap)).view(batch, -1, 1, 1)
        attens = torch.split(atten, rchannel // self.radix, dim=1)
        return sum(att * split for (att, split) in zip(attens, splited))


class SplitAttention5D(SplitAttention):
    """timm's SplitAttn forward: the paths as a 5-D reshape, summed over dim 1."""

    def forward(self, x):
        x = F.relu(self.bn0(self.conv(x)))
        B, RC, H, W = x.shape
        x = x.reshape((B, self.radix, RC // self.radix, H, W))
        gap = x.sum(dim=1).mean((2, 3), keepdim=True)
        gap = F.relu(self.bn1(self.fc1(gap)))
        atten = self.rsoftmax(self.fc2(gap)).view(B, -1, 1, 1)
        out = (x * atten.reshape((B, self.radix, RC // self.radix, 1, 1))).sum(dim=1)
        return out.contiguous()


class SplitAttentionMM(SplitAttention):
    """mmdetection's / mmpretrain's SplitAttentionConv2d forward: ``view(B, R, -1, *x.shape[2:])``
    and the product in the other order."""

    def forward(self, x):
        x = F.relu(self.bn0(self.conv(x)))
        batch = x.shape[0]
        splits = x.view(batch, self.radix, -1, *x.shape[2:])
        gap = F.relu(self.bn1(self.fc1(F.adaptive_avg_pool2d(splits.sum(dim=1), 1))))
        atten = self.rsoftmax(self.fc2(gap)).view(batch, -1, 1, 1)
        attens = atten.view(batch, self.radix, -1, *atten.shape[2:])
        return torch.sum(attens * splits, dim=1).contiguous()


class SelectiveKernel(nn.Module):
    """SKNet's unit: a 3×3 and a dilated 3×3 path stacked on dim 1, their sum pooled, an
    attention vector per path soft-maxed over the paths, the paths weighted and summed."""

    def __init__(self, channels=8, paths=2, attn=4):
        super().__init__()
        self.paths = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=d, dilation=d, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
            )
            for d in range(1, paths + 1)
        )
        self.fc_reduce = nn.Conv2d(channels, attn, 1, bias=False)
        self.bn = nn.BatchNorm2d(attn)
        self.fc_select = nn.Conv2d(attn, channels * paths, 1, bias=False)
        self.num_paths = paths

    def attention(self, x):
        x = x.sum(1).mean((2, 3), keepdim=True)
        x = self.fc_select(F.relu(self.bn(self.fc_reduce(x))))
        B, C, H, W = x.shape
        return torch.softmax(x.view(B, self.num_paths, C // self.num_paths, H, W), dim=1)

    def forward(self, x):
        x = torch.stack([p(x) for p in self.paths], dim=1)
        return torch.sum(x * self.attention(x), dim=1)


class SelectiveKernelCat(SelectiveKernel):
    """The same unit written as the original SKNet code does: paths unsqueezed on dim 1 and
    concatenated, an ``nn.Softmax(dim=1)`` module over them."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        feas = torch.cat([p(x).unsqueeze(1) for p in self.paths], dim=1)
        u = torch.sum(feas, dim=1).mean((2, 3), keepdim=True)
        z = self.fc_select(F.relu(self.bn(self.fc_reduce(u))))
        attention = self.softmax(z.reshape(z.size(0), self.num_paths, -1, 1, 1))
        return (feas * attention).sum(dim=1)


class SelectiveKernelViews(SelectiveKernel):
    """A third spelling (common SKNet ports): 4-D paths and attention vectors concatenated on
    channels, then viewed as (B, M, C, H, W); an attention conv per path."""

    def __init__(self, channels=8, paths=2, attn=4):
        super().__init__(channels, paths, attn)
        self.fcs = nn.ModuleList(nn.Conv2d(attn, channels, 1) for _ in range(paths))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.softmax = nn.Softmax(dim=1)
        del self.fc_select

    def forward(self, x):
        batch, channels = x.shape[0], x.shape[1]
        feats = torch.cat([p(x) for p in self.paths], dim=1)
        feats = feats.view(batch, self.num_paths, channels, feats.shape[2], feats.shape[3])
        z = F.relu(self.bn(self.fc_reduce(self.pool(torch.sum(feats, dim=1)))))
        attention = torch.cat([fc(z) for fc in self.fcs], dim=1)
        attention = self.softmax(attention.view(batch, self.num_paths, channels, 1, 1))
        return torch.sum(feats * attention, dim=1)


def _fvcore_flops(model: nn.Module, shape) -> int:
    counter = fvcore.nn.FlopCountAnalysis(model.float().eval(), (torch.zeros(1, *shape),))
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return counter.total()


def _exact(model: nn.Module, *ops: str) -> str:
    text = roundtrip(model, SHAPE)  # float64 outputs equal to the model's, strict load
    for op in ops:
        assert op in text, text
    built = archlang.build(text)
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    assert archlang.analyze(text).totals.flops == _fvcore_flops(model, SHAPE)
    again = archlang.from_module(built, SHAPE, name="T", source="s")
    assert archlang.from_module(archlang.build(again), SHAPE, name="T", source="s") == again
    return text


@pytest.mark.parametrize(
    ("model", "ops"),
    [
        (SelectiveKernel(), ["radix_softmax(2)", "narrow(8, 8)"]),
        (SelectiveKernel(paths=3), ["radix_softmax(3)", "narrow(16, 8)"]),
        (SelectiveKernelCat(), ["radix_softmax(2)", "narrow(8, 8)"]),
        (SelectiveKernelViews(paths=3), ["radix_softmax(3)", "narrow(16, 8)"]),
    ],
    ids=["sk", "sk-3-paths", "sk-unsqueeze-cat-softmax-module", "sk-cat-then-view"],
)
def test_selective_kernel_imports_exactly(model, ops):
    _exact(model, *ops)


@pytest.mark.parametrize(
    "cls", [SplitAttention, SplitAttention5D, SplitAttentionMM], ids=["split", "reshape-5d", "mm-view"]
)
@pytest.mark.parametrize(("cardinality", "op"), [(1, "radix_softmax(2)"), (2, "radix_softmax(2, groups=2)")])
def test_split_attention_imports_exactly(cls, cardinality, op):
    _exact(cls(cardinality=cardinality), op)


def test_radix_one_is_a_sigmoid_gate():
    text = _exact(SplitAttention5D(radix=1).eval())
    assert "sigmoid" in text and "radix_softmax" not in text, text


@pytest.mark.parametrize(("radix", "groups"), [(2, 1), (2, 2), (3, 2), (4, 1)])
@pytest.mark.parametrize("shape", [(24, 3, 2), (24,)], ids=["map", "vector"])
def test_radix_softmax_is_resnest_rsoftmax(radix, groups, shape):
    text = f"network T() {{\n  input {'x'.join(map(str, shape))}\n  r: radix_softmax({radix}, groups={groups})\n}}"
    built = archlang.build(text).double()
    x = torch.randn(2, *shape, dtype=torch.float64)
    expected = RSoftMax(radix, groups)(x).view(2, *shape)
    torch.testing.assert_close(built(x), expected, rtol=0, atol=0)
    (node,) = [n for n in archlang.analyze(text).nodes.values() if n.op == "radix_softmax"]
    # aten::softmax has no fvcore handle: 0, as softmax; exp, add and divide per element
    assert node.flops == 0 == _fvcore_flops(RSoftMax(radix, groups), shape)
    assert node.all_ops == 3 * math.prod(shape)


def test_radix_softmax_that_does_not_divide_the_channels_is_located():
    with pytest.raises(archlang.SpecError) as info:
        archlang.build("network T() {\n  input 10x3x3\n  r: radix_softmax(2, groups=3)\n}")
    (diag,) = info.value.diagnostics
    assert diag.code == "E405" and "(10)" in diag.message


class _Paths(SelectiveKernel):
    def __init__(self, tail):
        super().__init__()
        self.tail = tail

    def forward(self, x):
        return self.tail(self, torch.stack([p(x) for p in self.paths], dim=1))


@pytest.mark.parametrize(
    ("tail", "code", "fragment"),
    [
        (lambda s, x: x.sum(2), "E721", "`Tensor.sum` other than over dim 1"),
        (lambda s, x: x.sum(), "E721", "`Tensor.sum`"),
        (lambda s, x: torch.softmax(x, dim=2).sum(1), "E722", "over dim=2"),
        (lambda s, x: x[:, 0], "E721", "indexing"),
        (lambda s, x: x, "E721", "the module's output reads a 2×2×8×6×5 tensor"),
        (lambda s, x: x.permute(0, 2, 1, 3, 4).sum(1), "E721", "Tensor.permute reads a 2×2×8×6×5 tensor"),
        (lambda s, x: x.view(2, 16, 6, 5), "E721", "first dim is not the batch"),
        (lambda s, x: x.transpose(1, 3).sum(1), "E721", "dims (1, 3)"),
        (lambda s, x: x.transpose(1, 2).sum(1), "E721", "`Tensor.sum` reads channel groups transposed"),
        (lambda s, x: (x * x.sum(1, keepdim=True)).sum(1), "E721", "`*` of 2×2×8×6×5 and 2×1×8×6×5"),
        (lambda s, x: x.view(x.size(0), 2, 8, 30).sum(1), "E721", "2×2×8×30 tensor of a 2×16×6×5 map"),
    ],
    ids=[
        "sum-dim-2",
        "sum-all",
        "softmax-dim-2",
        "index",
        "returned",
        "permute",
        "literal-batch",
        "transpose-spatial",
        "transposed-sum",
        "broadcast-over-paths",
        "spatial-merged",
    ],
)
def test_what_channel_groups_cannot_say_is_located(tail, code, fragment):
    diag = refused(_Paths(tail), code, fragment, shape=SHAPE, help=code != "E722")
    assert diag.message.startswith("the top-level module: "), diag.message


def test_a_flat_radix_softmax_read_as_a_vector_is_a_flatten():
    # timm's RadixSoftmax returns (B, C) of a C×1×1 map; a linear reading it reads a flatten
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.rsoftmax = RSoftMax(2, 2)
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc(self.rsoftmax(self.pool(x)))

    text = roundtrip(Head(), SHAPE)
    assert "radix_softmax(2, groups=2)" in text and "flatten" in text, text


@pytest.mark.slow  # timm's models, ~10 s each on an idle core
@pytest.mark.parametrize("name", ["skresnet18", "resnest14d"])
def test_timm_sknet_and_resnest_import_exactly(name):
    import timm

    model = timm.create_model(name, num_classes=5)
    shape = (3, 64, 64)
    text = roundtrip(model, shape)
    assert "radix_softmax(2" in text
    built = archlang.build(text)
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    assert archlang.analyze(text).totals.flops == _fvcore_flops(model, shape)
    again = archlang.from_module(built, shape, name="T", source="s")
    assert archlang.from_module(archlang.build(again), shape, name="T", source="s") == again
