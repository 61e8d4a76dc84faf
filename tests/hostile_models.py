"""Helpers of the importer tests (tests/test_import_*.py): a one-off module whose forward is a lambda,
and the two outcomes every import must have (a correct spec, or one diagnostic)."""

from __future__ import annotations

import pytest
import torch
from bn_stats import randomize_bn
from torch import nn

import archlang
from archlang import SpecError

SHAPE = (3, 16, 16)


class Net(nn.Module):
    """A tiny net whose forward is ``fn(self, x)``; ``modules`` added by name (any name
    ``add_module`` takes, keywords included)."""

    def __init__(self, fn, **modules):
        super().__init__()
        for name, m in modules.items():
            self.add_module(name, m)
        self._fn = fn

    def forward(self, x):
        return self._fn(self, x)


def conv(cin=3, cout=4):
    return nn.Conv2d(cin, cout, 3, padding=1)


def roundtrip(model: nn.Module, shape=SHAPE, call=None) -> str:
    """The spec of ``model``: it builds, loads the state_dict strictly, and equals the model
    in float64 eval mode (BN statistics and affine parameters randomised first)."""
    torch.manual_seed(0)
    text = archlang.from_module(model, shape)
    model = model.double().eval()
    randomize_bn(model, affine=True)
    built = archlang.build(text).double().eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        expected = call(model, x) if call else model(x)
        torch.testing.assert_close(built(x), expected, rtol=1e-9, atol=1e-12)
    return text


def refused(model: nn.Module, code: str, *fragments: str, shape=SHAPE, help: bool = True):
    """``from_module`` raises one diagnostic ``code`` whose message holds ``fragments``."""
    with pytest.raises(SpecError) as info:
        archlang.from_module(model, shape)
    (diag,) = info.value.diagnostics
    assert diag.code == code, diag.message
    for fragment in fragments:
        assert fragment in diag.message, diag.message
    if help:
        assert diag.help, diag.message
    return diag
