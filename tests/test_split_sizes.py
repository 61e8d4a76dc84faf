"""`split` with channel counts (`torch.split(x, [10, 30], dim=1)`: FasterNet's partial conv),
and `split` / `concat` / `spatial_mean` on the channels of a channels-last tensor
(`torch.split(x, sizes, dim=-1)`, `torch.cat(xs, dim=-1)`, `x.mean((1, 2))`: MambaOut's gated
block and head).

Expected values come from torch itself (the hand-written modules' outputs and tensor shapes,
``numel``) and from fvcore's ``FlopCountAnalysis``; never from archlang.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from graph_reference import evaluate
from hostile_models import refused, roundtrip
from torch import nn

import archlang

SHAPE = (4, 6, 6)


class PartialConv(nn.Module):
    """FasterNet's ``Partial_conv3.forward_split_cat``: a conv on the first channels only."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)

    def forward(self, x):
        x1, x2 = torch.split(x, [1, 3], dim=1)
        return torch.cat((self.conv(x1), x2), 1)


class PartialSlice(PartialConv):
    """The same with slices: ``x[:, :1]`` and ``x[:, 1:]``."""

    def forward(self, x):
        return torch.cat((self.conv(x[:, :1]), x[:, 1:]), 1)


class SplitBySize(nn.Module):
    """``torch.split(x, 3, 1)`` of 4 channels: pieces of 3 and 1 (torch.chunk(x, 2) is 2, 2)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)

    def forward(self, x):
        a, b = x.split(3, 1)
        return self.conv(a) * b


class Gated(nn.Module):
    """MambaOut's ``GatedConvBlock`` (B×H×W×C) between permutes, and its head's mean."""

    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.fc1 = nn.Linear(4, 10)
        self.conv = nn.Conv2d(3, 3, 3, padding=1, groups=3)
        self.fc2 = nn.Linear(5, 4)
        self.act = nn.GELU()
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        shortcut = x
        x = self.fc1(self.norm(x))
        g, i, c = torch.split(x, (5, 2, 3), dim=-1)
        c = self.conv(c.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x = self.fc2(self.act(g) * torch.cat((i, c), dim=-1)) + shortcut
        return self.head(x.mean((1, 2)))


def _fvcore_flops(model: nn.Module) -> int:
    counter = FlopCountAnalysis(model.float().eval(), (torch.zeros(1, *SHAPE),))
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return counter.total()


@pytest.mark.parametrize(
    ("model", "pieces"),
    [
        (PartialConv(), ["split((1, 3), 0)", "split((1, 3), 1)"]),
        (PartialSlice(), ["narrow(0, 1)", "narrow(1, 3)"]),
        (SplitBySize(), ["split((3, 1), 0)", "split((3, 1), 1)"]),
        (Gated(), ["split((5, 2, 3), 0)", "split((5, 2, 3), 1)", "split((5, 2, 3), 2)", "spatial_mean"]),
    ],
    ids=["split-sizes", "slices", "split-size", "channels-last"],
)
def test_imports_exactly(model, pieces):
    text = roundtrip(model, SHAPE)  # strict load, float64 outputs equal to the module's
    for piece in pieces:
        assert piece in text, text
    built = archlang.build(text)
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    assert archlang.analyze(text).totals.flops == _fvcore_flops(model)
    again = archlang.from_module(built, SHAPE, name="T", source="s")
    assert archlang.from_module(archlang.build(again), SHAPE, name="T", source="s") == again


def test_channels_last_shapes_are_torchs():
    model = Gated().eval()
    seen = {}

    def keep(name):
        def hook(module, inputs, output):
            seen[name] = output.shape[1:]

        return hook

    for name in ("fc1", "conv", "fc2", "head"):
        getattr(model, name).register_forward_hook(keep(name))
    with torch.no_grad():
        model(torch.randn(1, *SHAPE))
    nodes = archlang.analyze(archlang.from_module(Gated(), SHAPE)).nodes
    shapes = {nid.rsplit("/", 1)[-1]: n.shape for nid, n in nodes.items()}
    for name, shape in seen.items():
        assert shapes[name] == tuple(shape), name


class WidthSplit(nn.Module):
    def forward(self, x):
        return torch.split(x, [2, 4], dim=-1)[0]  # the width of an N×C×H×W map


class WidthCat(nn.Module):
    def forward(self, x):
        return torch.cat((x, x), dim=3)


class HeightSplitLast(nn.Module):
    def forward(self, x):
        return torch.split(x.permute(0, 2, 3, 1), [2, 4], dim=1)[0].permute(0, 3, 1, 2)


class ChannelMeanLast(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1).mean((2, 3))


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        (WidthSplit(), "`split` on dim=-1"),
        (WidthCat(), "`torch.cat` on dim=3"),
        (HeightSplitLast(), "`split` on dim=1"),
        (ChannelMeanLast(), "mean over dim=(2, 3)"),
    ],
    ids=["split-width", "cat-width", "split-height-channels-last", "mean-channels-last"],
)
def test_other_dims_are_refused(model, fragment):
    refused(model, "E722", fragment, shape=SHAPE, help=False)


class PartialInPlace(PartialConv):
    """FasterNet's ``forward_slicing`` (its inference-only form): an assignment into a slice."""

    def forward(self, x):
        x = x.clone()
        x[:, :1, :, :] = self.conv(x[:, :1, :, :])  # the refused line
        return x


def test_assignment_into_a_slice_is_refused_at_its_line():
    diag = refused(PartialInPlace(), "E721", "assigning into part of a tensor", shape=SHAPE)
    assert "torch.cat" in diag.help
    assert diag.span is not None
    assert (diag.span.file, diag.span.line) == (__file__, PartialInPlace.forward.__code__.co_firstlineno + 2)


SPEC = """network T() {
  input 8x4x5
  a: split((2, 6), 1)
  b: split((2, 6), 0) from input
  c: concat from a, b
  p: permute((0, 2, 3, 1))
  l: linear(12)
  g: split((3, 4, 5), 2)
  h: split((3, 4, 5), 0) from l
  m: concat from h, g
  q: permute((0, 3, 1, 2))
  s: split(3, 2)
}
"""


def _expected(model, x):
    # the same function written with torch by hand, the linear's weights taken from the model
    a, b = torch.split(x, [2, 6], dim=1)[1], torch.split(x, [2, 6], dim=1)[0]
    y = model.l(torch.cat([a, b], 1).permute(0, 2, 3, 1))
    y = torch.cat([y[..., :3], y[..., 7:]], -1).permute(0, 3, 1, 2)
    return torch.chunk(y, 3, 1)[2]


def test_language_split_forms_check_emit_and_run():
    analysis = archlang.analyze(SPEC)
    shapes = {nid: n.shape for nid, n in analysis.nodes.items()}
    assert shapes["a"] == (6, 4, 5) and shapes["b"] == (2, 4, 5)
    assert shapes["g"] == (4, 5, 5) and shapes["h"] == (4, 5, 3) and shapes["m"] == (4, 5, 8)
    assert shapes["s"] == (2, 4, 5)  # torch.chunk: 8 channels in 3 chunks are 3, 3, 2
    model = archlang.build(SPEC).eval()
    x = torch.randn(2, 8, 4, 5)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(out, _expected(model, x))
        torch.testing.assert_close(out, evaluate(analysis.graph, model.state_dict(), x))
    source = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", "-", "--emit", "torch"],
        input=SPEC,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "torch.split(x, [2, 6], dim=1)[1]" in source
    assert "torch.split(x, [3, 4, 5], dim=-1)[2]" in source
    assert "torch.cat([h, g], -1)" in source
    assert archlang.analyze(SPEC).totals.params == sum(p.numel() for p in model.parameters())


def test_fmt_keeps_the_sizes(tmp_path):
    path = tmp_path / "t.arch"
    path.write_text(SPEC)
    result = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", "fmt", "--check", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("line", "code", "message"),
    [
        ("a: split((2, 5), 1)", "E303", "split sizes (2, 5) add up to 7 channels; the input has 8"),
        ("a: split((2, 6), 2)", "E303", "split index 2 is out of range: 2 pieces"),
        ("a: split((2, 0, 6), 1)", "E205", "chunks must be positive"),
    ],
    ids=["sum", "index", "zero"],
)
def test_bad_sizes_are_located(tmp_path, line, code, message):
    path = tmp_path / "bad.arch"
    path.write_text(f"network T() {{\n  input 8x4x5\n  {line}\n}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", "check", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"error[{code}]: {message}" in result.stderr, result.stderr
    assert f"{path}:3:" in result.stderr and "^" in result.stderr and "Traceback" not in result.stderr


def test_concat_of_channels_last_values_must_agree_in_space():
    spec = """network T() {
  input 4x6x6
  p: permute((0, 2, 3, 1))
  q: maxpool(2) from input
  r: permute((0, 2, 3, 1))
  c: concat from p, r
}"""
    with pytest.raises(archlang.SpecError) as info:
        archlang.analyze(spec)
    assert info.value.diagnostics[0].code == "E401"


@pytest.mark.slow
def test_timm_models_import_exactly():
    import timm

    for name in ("fasternet_t0", "mambaout_femto"):
        model = timm.create_model(name, pretrained=False)
        text = roundtrip(model, (3, 64, 64))  # strict load, float64 outputs equal
        built = archlang.build(text)
        assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters()), name
