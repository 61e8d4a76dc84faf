"""timm's drop path (``DropPath`` and the ``drop_path`` function) is stochastic depth per
sample, the survivors scaled by 1 / keep: it imports as ``stochastic_depth(p)`` (mode row),
traced in training mode as the importer does, and the spec's layer behaves as timm's in
training too (same mask for the same seed)."""

from __future__ import annotations

import torch
from hostile_models import refused, roundtrip
from timm.layers.drop import DropPath, drop_path
from torch import nn

import archlang

SHAPE = (4, 6, 6)


class Block(nn.Module):
    def __init__(self, p=0.2, scale_by_keep=True):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.drop_path = DropPath(p, scale_by_keep=scale_by_keep)

    def forward(self, x):
        return x + self.drop_path(self.conv(x))


class Functional(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return x + drop_path(self.conv(x), 0.3, self.training)


def test_drop_path_module_is_stochastic_depth():
    text = roundtrip(Block(), SHAPE)
    assert "stochastic_depth(0.2)" in text
    model, built = Block(), archlang.build(text)
    built.load_state_dict(model.state_dict(), strict=True)
    model.train(), built.train()
    x = torch.randn(64, *SHAPE)
    torch.manual_seed(3)
    expected = model(x)
    torch.manual_seed(3)
    torch.testing.assert_close(built(x), expected)  # torchvision's row mode draws the same mask
    assert not torch.equal(expected, model.eval()(x))  # the mask did drop samples


def test_drop_path_function_is_stochastic_depth():
    assert "stochastic_depth(0.3)" in roundtrip(Functional(), SHAPE)


def test_drop_path_without_rescaling_is_refused():
    refused(Block(scale_by_keep=False), "E722", "scale_by_keep", shape=SHAPE)
