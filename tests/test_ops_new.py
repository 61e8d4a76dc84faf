"""The ops of issue 19, each one record (archlang/ops/<family>.py): for each, a tiny spec
whose shapes and parameters are compared with the torch module it stands for, FLOPs with
fvcore's ``FlopCountAnalysis`` run on that module (where fvcore has no handle for the op,
the count is 0 there too, and archlang's all-ops count is checked against a hand count
written out here), and the built model (the emitted code, executed) computes the module's
function in float64 with the module's weights loaded strictly.
"""

from __future__ import annotations

import logging

import fvcore.nn
import pytest
import torch
from torch import nn

import archlang
from archlang.diagnostics import SpecError


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


# (spec call, input C×H×W, the torch module it stands for, all-ops by hand per sample)
CASES = [
    # a copy: no arithmetic
    ("pixel_shuffle(2)", (8, 3, 5), nn.PixelShuffle(2), 0),
    ("pixel_shuffle(3)", (18, 2, 2), nn.PixelShuffle(3), 0),
]
IDS = [c[0] for c in CASES]


def _fvcore(module: nn.Module, shape: tuple) -> int:
    logging.disable(logging.WARNING)
    try:
        counter = fvcore.nn.FlopCountAnalysis(module.eval(), (torch.randn(2, *shape),))
        counter.unsupported_ops_warnings(False)
        counter.uncalled_modules_warnings(False)
        return counter.total() // 2  # per sample
    finally:
        logging.disable(logging.NOTSET)


def _spec(call: str, shape: tuple) -> str:
    return f"network T() {{\n  input {'x'.join(map(str, shape))}\n  x: {call}\n}}"


@pytest.mark.parametrize(("call", "shape", "module", "all_ops"), CASES, ids=IDS)
def test_shape_params_flops_match_torch_and_fvcore(call, shape, module, all_ops):
    node = archlang.analyze(_spec(call, shape)).nodes["x"]
    out = module.eval()(torch.randn(3, *shape))
    assert tuple(node.shape) == tuple(out.shape[1:])
    assert node.params == sum(p.numel() for p in module.parameters())
    assert node.buffers == sum(b.numel() for b in module.buffers())
    assert node.flops == _fvcore(module, shape)
    assert node.all_ops == all_ops


@pytest.mark.parametrize(("call", "shape", "module", "all_ops"), CASES, ids=IDS)
def test_built_model_computes_the_module(call, shape, module, all_ops):
    built = archlang.build(_spec(call, shape)).double().eval()
    reference = nn.Module()
    reference.x = module
    reference.load_state_dict(built.state_dict(), strict=True)  # same keys and shapes
    x = torch.randn(2, *shape, dtype=torch.float64)
    torch.testing.assert_close(built(x), module.double().eval()(x), rtol=0, atol=1e-12)


def _error(body: str, shape: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        archlang.compile_spec(f"network T() {{\n  input {shape}\n{body}\n}}")
    return info.value


def test_pixel_shuffle_refuses_channels_not_divisible_by_r_squared():
    err = _error("  x: pixel_shuffle(2)", "6x4x4")
    assert err.diagnostics[0].code == "E405" and "divisible by 4" in err.diagnostics[0].message


def test_pixel_shuffle_receptive_field_jump_is_one_over_r():
    # stride-2 conv (jump 2), then pixel_shuffle(2): neighbouring outputs are 1 input pixel apart
    a = archlang.analyze(_spec("conv2d(8, 3, stride=2, padding=1)\n  y: pixel_shuffle(2)", (3, 8, 8)))
    assert a.nodes["x"].rf.h.stride == 2 and a.nodes["y"].rf.h.stride == 1
    assert a.nodes["y"].rf.h.size == a.nodes["x"].rf.h.size == 3
