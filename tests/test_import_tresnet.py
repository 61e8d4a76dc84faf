"""What TResNet needed besides its space-to-depth stem (tests/test_import_rearrange.py):
timm's ``BlurPool2d`` (Zhang's anti-aliased downsampling: reflect pad, then a fixed binomial
filter, a non-persistent buffer, per channel) is ``blur_pool``; a head whose pool is a
module that only calls ``x.mean`` (timm's ``FastAdaptiveAvgPool``) imports to the text its
own re-import gives. Outputs are checked against the torch models themselves (float64,
strict load)."""

from __future__ import annotations

import pytest
import torch
from hostile_models import refused, roundtrip
from torch import nn

import archlang

SHAPE = (3, 12, 12)


def _fixed_point(text: str, shape=SHAPE) -> None:
    """The spec's built model re-imports to the same text (the first re-import included)."""
    again = archlang.from_module(archlang.build(text), shape)
    assert again.split("\n", 2)[2] == text.split("\n", 2)[2]


def _blurred(**kwargs) -> nn.Module:
    from timm.layers import BlurPool2d

    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), BlurPool2d(6, **kwargs), nn.ReLU())


@pytest.mark.parametrize(
    ("kwargs", "call"),
    [
        ({}, "blur_pool"),
        ({"filt_size": 5, "stride": 1}, "blur_pool(5, stride=1, padding=2)"),
        ({"pad_mode": "constant"}, 'blur_pool(pad_mode="constant")'),
    ],
)
def test_timm_blur_pool_is_blur_pool(kwargs, call):
    text = roundtrip(_blurred(**kwargs), SHAPE)
    assert f'"1": {call}\n' in text, text
    _fixed_point(text)


def test_a_blur_pool_whose_filter_was_changed_is_refused():
    model = _blurred()
    with torch.no_grad():
        model[1].filt[0, 0, 1, 1] += 0.5
    refused(model, "E722", "`1`", "binomial", shape=SHAPE)


class FastPool(nn.Module):
    # timm's FastAdaptiveAvgPool: a module whose forward is one `x.mean`
    def forward(self, x):
        return x.mean((2, 3))


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.global_pool = nn.Sequential()
        self.global_pool.pool = FastPool()
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        return self.fc(self.global_pool(x))


def test_a_head_pooling_by_a_mean_module_is_a_fixed_point():
    model = nn.Sequential()
    model.conv = nn.Conv2d(3, 6, 3)
    model.head = Head()
    text = roundtrip(model, SHAPE)
    # the built model has no module to name `global_pool` by: the mean runs before `head`
    assert "global_pool" not in text and text.index("spatial_mean") < text.index("head:"), text
    _fixed_point(text)


@pytest.mark.slow
def test_tresnet_imports_exactly():
    import timm

    model = timm.create_model("tresnet_m", num_classes=5)
    shape = (3, 64, 64)
    text = roundtrip(model, shape)
    assert "space_to_depth(4)" in text and "blur_pool" in text
    built = archlang.build(text)
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    _fixed_point(text, shape)
