"""Children of one container called apart from each other, and one parameter-free module
called at several points, import exactly (strict load, float64 outputs equal, params =
numel, a fixed point on re-import): Res2Net's block runs two ``nn.ModuleList``\\ s in turn,
``for conv, bn in zip(self.convs, self.bns)`` over ``torch.split`` pieces, each step reading
the one before, with one ``self.relu`` called after every bn.

A labelled sequence opened again in one scope goes on the first (docs/language.md), so
``convs: { ... }`` written once per step keeps the keys ``convs.0.weight``,
``bns.0.running_mean``; the PyTorch back end runs each layer of such a sequence where it
stands. Expected outputs come from the torch modules themselves."""

from __future__ import annotations

import pytest
import torch
from hostile_models import roundtrip
from torch import nn

import archlang


class Res2(nn.Module):
    """Res2Net's Bottle2neck, written out: split into ``scale`` pieces, piece ``i`` (plus
    the previous step's result unless ``first``) through ``convs[i]``, ``bns[i]`` and the
    shared relu; the last piece (pooled when ``first``) joins the concat."""

    def __init__(self, channels=8, scale=4, first=False):
        super().__init__()
        width = channels // scale
        self.width, self.first = width, first
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.convs = nn.ModuleList([nn.Conv2d(width, width, 3, padding=1, bias=False) for _ in range(scale - 1)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(width) for _ in range(scale - 1)])
        self.pool = nn.AvgPool2d(3, 1, 1) if first else None
        self.conv3 = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        pieces = torch.split(out, self.width, 1)
        outs = []
        sp = pieces[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            sp = pieces[i] if i == 0 or self.first else sp + pieces[i]
            sp = self.relu(bn(conv(sp)))
            outs.append(sp)
        outs.append(self.pool(pieces[-1]) if self.pool is not None else pieces[-1])
        out = self.bn3(self.conv3(torch.cat(outs, 1)))
        return self.relu(out + x)


class Res2Net(nn.Module):
    """One block of each kind: a class called twice becomes a block of the spec."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.layer = nn.Sequential(Res2(first=True), Res2())

    def forward(self, x):
        return self.layer(self.stem(x))


class OutOfOrder(nn.Module):
    """Two lists called in turn, in the order 1, 0, 2: no index is a position."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)])
        self.bns = nn.ModuleList([nn.BatchNorm2d(4) for _ in range(3)])

    def forward(self, x):
        for i in (1, 0, 2):
            x = self.bns[i](self.convs[i](x))
        return x


class Reversed(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)])

    def forward(self, x):
        for layer in reversed(self.layers):
            x = layer(x)
        return x


class OneRelu(nn.Module):
    """One ReLU object at three points, one of them after a residual add."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(4, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 4, 3, padding=1)
        self.c3 = nn.Conv2d(4, 4, 1)
        self.act = nn.ReLU()

    def forward(self, x):
        x = self.act(self.c1(x))
        y = self.act(self.c2(x))
        return self.act(self.c3(y) + x)


SHAPE = (4, 8, 8)


def _exact(model: nn.Module, shape=SHAPE) -> str:
    """The spec of ``model``: strict load and float64 outputs equal (``roundtrip``), the
    model's own parameter count, and its re-import is itself."""
    text = roundtrip(model, shape)
    built = archlang.build(text)
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    again = archlang.from_module(built, shape, name="T", source="s")
    assert again == archlang.from_module(model, shape, name="T", source="s"), again
    return text


def test_res2net_lists_called_in_turn_import_exactly():
    text = _exact(Res2Net(), (3, 8, 8))
    # each step opens `convs` and `bns` again; the block holds both kinds (first or not)
    assert text.count("convs: {") == 6 and text.count("bns: {") == 6, text
    assert "block Res2" in text, text
    assert '"2": conv2d(' in text and '"2": batchnorm' in text, text


def test_a_list_called_out_of_order_keeps_its_keys():
    text = _exact(OutOfOrder())
    assert [line.strip() for line in text.splitlines() if line.strip().startswith('"')] == [
        '"1": conv2d(4, 3, padding=1)',
        '"1": batchnorm',
        '"0": conv2d(4, 3, padding=1)',
        '"0": batchnorm',
        '"2": conv2d(4, 3, padding=1)',
        '"2": batchnorm',
    ], text


def test_a_list_called_in_reverse():
    text = _exact(Reversed())
    assert text.index('"2": conv2d') < text.index('"0": conv2d'), text


def test_one_relu_module_at_three_points():
    text = _exact(OneRelu())
    assert text.count("relu") == 3 and "act" not in text, text


def test_a_sequence_named_again_goes_on():
    """The language side, on its own: layers of a sequence opened twice number on, and the
    built module computes what a hand-written one with the same weights does."""
    spec = """network N {
      input 4x8x8
      a: conv2d(4, 1)
      convs: { conv2d(4, 3, padding=1) }
      bns: { batchnorm }
      r: relu
      add from r, a
      convs: { conv2d(4, 3, padding=1) }
      bns: { batchnorm }
      relu
    }"""

    class Hand(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(4, 4, 1)
            self.convs = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1) for _ in range(2)])
            self.bns = nn.ModuleList([nn.BatchNorm2d(4) for _ in range(2)])

        def forward(self, x):
            a = self.a(x)
            y = torch.relu(self.bns[0](self.convs[0](a))) + a
            return torch.relu(self.bns[1](self.convs[1](y)))

    hand = Hand().double().eval()
    for bn in hand.bns:
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    built = archlang.build(spec).double().eval()
    built.load_state_dict(hand.state_dict(), strict=True)
    x = torch.randn(2, *SHAPE, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(built(x), hand(x), rtol=1e-12, atol=1e-12)
    assert archlang.analyze(spec).totals.params == sum(p.numel() for p in hand.parameters())


def test_a_sequence_in_a_repeat_is_one_sequence():
    built = archlang.build("network N { input 3x8x8\n repeat 3 { s: { conv2d(8, 3, padding=1) } }\n relu }")
    assert list(built.state_dict()) == [f"s.{i}.{p}" for i in range(3) for p in ("weight", "bias")]


@pytest.mark.parametrize(
    "body",
    [
        "s: { conv2d(8, 3) }\n s: conv2d(8, 3)",  # a sequence, then a layer
        "s: conv2d(8, 3)\n s: { conv2d(8, 3) }",  # a layer, then a sequence
        "s: add { identity }\n s: { relu }",  # a group is no sequence
    ],
)
def test_only_a_sequence_goes_on(body):
    with pytest.raises(archlang.SpecError) as info:
        archlang.compile_spec(f"network N {{ input 3x8x8\n {body} }}")
    assert info.value.diagnostics[0].code == "E302"


def test_a_sequence_of_another_scope_is_another_sequence():
    built = archlang.build("network N { input 3x8x8\n s: { conv2d(8, 3) }\n t: { s: { relu; conv2d(4, 1) } } }")
    assert sorted(built.state_dict()) == ["s.0.bias", "s.0.weight", "t.s.1.bias", "t.s.1.weight"]


@pytest.mark.slow  # timm's model: ~10 s on an idle core
def test_timm_res2net_imports_exactly():
    import timm

    model = timm.create_model("res2net50_26w_4s", num_classes=5)
    text = _exact(model, (3, 64, 64))
    assert "convs: {" in text and "bns: {" in text
