"""`extern`: a PyTorch module archlang has no op for, declared with its output shape and
costs, then used like a block. The analyses carry the declaration; the generated file
imports the class; build ≡ emitted ≡ the reference evaluator (which makes the class itself);
PyTorch's numel and shapes equal the declaration when it is right."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from archlang.backends.torch.codegen import emit
from test_torch_differential import check_emitted_equals_built, ruff_clean

import archlang
from archlang.analysis import analyze

PACKAGE = """
import torch
from torch import nn


class Scale(nn.Module):
    def __init__(self, channels: int, init: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels, 1, 1), init))

    def forward(self, x):
        return x * self.weight


class SpaceToDepth(nn.Module):
    def __init__(self, block: int = 2) -> None:
        super().__init__()
        self.block = block

    def forward(self, x):
        return torch.nn.functional.pixel_unshuffle(x, self.block)
"""

SPEC = """
extern Scale(channels: int, init: float = 1.0) = "extpkg.layers:Scale" {
  shape = in_shape
  params = channels
}
extern SpaceToDepth(block: int = 2) = "extpkg.layers:SpaceToDepth" {
  shape = (in_shape[0] * block * block, in_shape[1] // block, in_shape[2] // block)
}
extern Shrink(lambd: float = 0.5) = "torch.nn:Hardshrink" {
  flops = in_shape[0] * in_shape[1] * in_shape[2]
}
network E(width: int = 4) {
  input 3x8x8
  conv: conv2d(width, 3, padding=1)
  s: Scale(width, init=0.5)
  d: SpaceToDepth()
  Shrink(lambd=0.25)
  head: conv2d(2, 1)
}
"""


@pytest.fixture
def extpkg(tmp_path, monkeypatch):
    (tmp_path / "extpkg").mkdir()
    (tmp_path / "extpkg" / "__init__.py").write_text("")
    (tmp_path / "extpkg" / "layers.py").write_text(PACKAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_analyses_carry_the_declaration():
    compiled = archlang.compile_spec(SPEC)  # no torch, no import of the package
    g = compiled.graph
    assert g.nodes["s"].shape == (4, 8, 8) and g.nodes["d"].shape == (16, 4, 4)
    assert g.nodes["Shrink"].shape == (16, 4, 4)
    result = analyze(compiled)
    # by hand: conv 3*9*4 + 4, Scale 4 (declared), head 16*2 + 2
    assert result.totals.params == (3 * 9 * 4 + 4) + 4 + (16 * 2 + 2)
    assert result.nodes["Shrink"].flops == 16 * 4 * 4  # declared: in_shape's elements


def test_the_generated_file_imports_the_class_and_equals_the_build(extpkg, tmp_path):
    compiled = archlang.compile_spec(SPEC)
    source = emit(compiled)
    assert "from extpkg.layers import Scale, SpaceToDepth" in source and "from torch.nn import Hardshrink" in source
    assert "self.s = Scale(channels=width, init=0.5)" in source or "self.s = Scale(channels=4, init=0.5)" in source
    out = tmp_path / "files"
    out.mkdir()
    check_emitted_equals_built(compiled, out)
    ruff_clean(out)
    model = archlang.build(compiled)
    # the declaration was right: torch counts what the spec declared
    assert sum(p.numel() for p in model.parameters()) == analyze(compiled).totals.params
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 2, 4, 4)


def test_an_extern_class_named_like_a_generated_helper_keeps_both(extpkg, tmp_path):
    # the user's SpaceToDepth (a pixel unshuffle) and archlang's space_to_depth op, whose
    # generated file defines a class SpaceToDepth too: the import is aliased, both run
    spec = SPEC.replace("  Shrink(lambd=0.25)\n", "  seq: { space_to_depth(2); relu }\n").replace(
        "conv2d(2, 1)", "conv2d(2, 1)\n  flatten"
    )
    compiled = archlang.compile_spec(spec)
    source = emit(compiled)
    assert "from extpkg.layers import SpaceToDepth as ExternSpaceToDepth" in source
    assert "class SpaceToDepth(nn.Module)" in source and "ExternSpaceToDepth(" in source
    out = tmp_path / "files"
    out.mkdir()
    check_emitted_equals_built(compiled, out)
    ruff_clean(out)
    model = archlang.build(compiled).eval()
    assert type(model.d).__module__ == "extpkg.layers"  # the user's class, not the helper
    # 4×8×8 → extern 16×4×4 → space_to_depth(2) 64×2×2 → head 2×2×2, flattened
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 8)


def test_a_class_that_does_not_import_is_located():
    with pytest.raises(archlang.SpecError) as err:
        archlang.build(SPEC.replace("extpkg.layers:Scale", "nopkg.layers:Scale"))
    text = str(err.value)
    assert "error[E734]: cannot import `nopkg.layers:Scale`" in text and "No module named 'nopkg'" in text
    assert "s: Scale(width, init=0.5)" in text  # the caret line: the call that needs it


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("params = channels", "parms = channels"), "error[E202]: `extern` declares shape, params, flops, not `parms`"),
        (("shape = in_shape", "shape = (0, 1, 1)"), "error[E303]: `Scale`'s shape must be C×H×W"),
        (("params = channels", "params = -1"), "error[E303]: `Scale`'s params must be a count"),
        (('"extpkg.layers:Scale"', '"not a target"'), "error[E207]: `not a target` is not a module and class"),
        (
            ("s: Scale(width, init=0.5)", "s: Scale(width, nope=1)"),
            "error[E202]: block `Scale` has no parameter `nope`",
        ),
    ],
)
def test_a_bad_declaration_or_call_is_located(change, expected):
    spec = SPEC.replace(*change)
    proc = subprocess.run(
        [sys.executable, "-m", "archlang.cli", "check", "-"], input=spec, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1 and expected in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "--> <stdin>:" in proc.stderr


def test_fmt_keeps_an_extern_declaration():
    from archlang.tools.fmt import format_source

    text = textwrap.dedent(SPEC).lstrip()
    assert format_source(text) == text
