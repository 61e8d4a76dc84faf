"""Static output sizes of windowed ops (conv, max/avg pool) against PyTorch itself: archlang's
shape for each combination of size, kernel, stride, padding, dilation and ceil_mode must be
the shape the torch op returns on a tensor of that size, and a combination torch refuses must
be a located error. The oracle is torch, not a copy of the formula (tests/strategies.py has
one, and a copy shares the bugs of the rule it copies)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from archlang import compile_spec
from archlang.diagnostics import SpecError


def archlang_shape(h: int, w: int, layer: str):
    """(C, H, W) archlang infers for ``layer`` on a 1×h×w input, or None when it refuses it."""
    try:
        graph = compile_spec(f"network N() {{\n  input 1x{h}x{w}\n  {layer}\n}}\n").graph
    except SpecError:
        return None
    return graph.nodes[graph.output].shape


def torch_shape(h: int, w: int, module: nn.Module):
    try:
        return tuple(module(torch.zeros(1, 1, h, w)).shape[1:])
    except RuntimeError:
        return None


def test_ceil_mode_last_window_rule_on_a_5x5_maxpool():
    # ceil(5 / 2) + 1 = 4 windows, but the 4th would start at 6 = 5 + 1, in the right padding:
    # torch drops it.
    expected = tuple(nn.MaxPool2d(2, 2, 1, ceil_mode=True)(torch.zeros(1, 1, 5, 5)).shape[1:])
    assert expected == (1, 3, 3)
    assert archlang_shape(5, 5, "maxpool(2, stride=2, padding=1, ceil_mode=true)") == expected


def _pool_cases():
    # Kernel 1-4, stride 1-3, every padding PyTorch allows for pools (at most half the kernel),
    # dilation 1-2 (max pool only), both ceil modes; H and W differ so the axes cannot be swapped.
    for k, s, d, ceil in itertools.product(range(1, 5), range(1, 4), (1, 2), (False, True)):
        for p in range(k // 2 + 1):
            yield "maxpool", k, s, p, d, ceil
            if d == 1:
                yield "avgpool", k, s, p, d, ceil


@pytest.mark.parametrize("kind, k, s, p, d, ceil", list(_pool_cases()))
def test_pool_output_sizes_match_torch(kind, k, s, p, d, ceil):
    if kind == "maxpool":
        module = nn.MaxPool2d(k, s, p, dilation=d, ceil_mode=ceil)
        layer = f"maxpool({k}, stride={s}, padding={p}, dilation={d}, ceil_mode={str(ceil).lower()})"
    else:
        module = nn.AvgPool2d(k, s, p, ceil_mode=ceil)
        layer = f"avgpool({k}, stride={s}, padding={p}, ceil_mode={str(ceil).lower()})"
    for h in range(1, 10):
        w = h + 3
        assert archlang_shape(h, w, layer) == torch_shape(h, w, module), (h, w, layer)


@pytest.mark.parametrize("k, s, d", list(itertools.product(range(1, 5), range(1, 4), (1, 2))))
def test_conv_output_sizes_match_torch(k, s, d):
    for p in range(3):
        module = nn.Conv2d(1, 2, k, s, p, dilation=d)
        layer = f"conv(2, {k}, stride={s}, padding={p}, dilation={d})"
        for h in range(1, 10):
            w = h + 3
            assert archlang_shape(h, w, layer) == torch_shape(h, w, module), (h, w, layer)
