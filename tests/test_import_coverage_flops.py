"""The coverage tables' FLOPs reference (``scripts/import_coverage.py``) counts
``nn.Conv2d(padding="same")`` (traced to ``aten::_convolution_mode``, which fvcore skips) with
fvcore's own conv formula: equal to the same conv with explicit padding."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("import_coverage_flops", ROOT / "scripts" / "import_coverage.py")
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path  # the script puts tests/ on the path for itself
    return module


@pytest.mark.parametrize(("kernel", "dilation", "groups"), [(3, 1, 1), (5, 2, 4), ((3, 5), 1, 8)])
def test_same_padding_conv_counts_as_the_explicit_one(script, kernel, dilation, groups):
    torch.manual_seed(0)
    x = torch.zeros(1, 8, 9, 11)
    same = nn.Conv2d(8, 16, kernel, dilation=dilation, groups=groups, padding="same")
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    explicit = nn.Conv2d(8, 16, kernel, dilation=dilation, groups=groups, padding=tuple(dilation * (s // 2) for s in k))
    # fvcore itself counts the explicit conv; the "same" one it skips (the reason for the handle)
    want = FlopCountAnalysis(explicit, x).unsupported_ops_warnings(False).total()
    assert want == 16 * (8 // groups) * k[0] * k[1] * 9 * 11  # fvcore's formula, by hand
    assert FlopCountAnalysis(same, x).unsupported_ops_warnings(False).total() == 0
    assert script.fvcore_flops(same, x) == want
    assert script.fvcore_flops(explicit, x) == want
