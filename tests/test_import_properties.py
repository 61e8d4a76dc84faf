"""The importer's law on random valid specs, not only on torchvision's zoo.

For a random valid spec S (``strategies.spec_cases``, and ``fuzz/typed.py``'s generator
that ``fuzz/campaign.py --valid --import`` runs), M = ``archlang.build(S)`` with its batch
norm statistics and affine weights randomised, and T = ``archlang.from_module(M, input
shape of S)``:

* T compiles, and ``archlang.build(T)`` loads ``M.state_dict()`` with ``strict=True``;
* in eval mode and float64, both compute the same outputs (relative error <= 1e-9);
* the analysis of T equals that of S: total parameters, buffers, MACs and FLOPs (fvcore's
  convention), of the main path and of each aux head, the output shape, and for every
  layer with weights or buffers (its node id is its state_dict path in both) the op, shape,
  parameters, buffers, MACs and FLOPs;
* ``from_module(build(T))`` is T again (the fixed point; header comments aside).

Everything expected comes from S and M (archlang's own analysis of the hand-written spec,
torch's outputs of its build), never from an earlier import. Where the importer refuses,
the refusal must be an E72x diagnostic of a class listed in ``KNOWN_GAPS`` (with why).
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import pytest
import torch
from bn_stats import randomize_bn
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import spec_cases

import archlang
from archlang import SpecError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import import_law  # noqa: E402
import typed  # noqa: E402

KNOWN_GAPS = import_law.KNOWN_GAPS


def _law(text: str, fixed_point: bool = False) -> str | None:
    """Check the law on ``text``; the import's text, or None for a known-gap refusal."""
    outcome = import_law.check(text, fixed_point=fixed_point)
    if outcome.kind == "refused":
        assert outcome.gap, f"refusal outside the known gaps:\n{outcome.detail}\n--- spec:\n{text}"
        return None
    assert outcome.kind == "ok", f"{outcome.kind}: {outcome.detail}\n--- spec:\n{text}"
    return outcome.imported


@settings(max_examples=examples(40))
@given(spec_cases(max_items=5, max_size=16))
def test_law_on_spec_cases(case):
    _law(case.text)


@settings(max_examples=examples(40))
@given(st.integers(0, 2**32 - 1))
def test_law_on_typed_specs(seed):
    text = typed.gen_typed(random.Random(seed), hostile=False)
    try:
        archlang.compile_spec(text)
    except SpecError:  # the typed generator's rare invalid draw (a 1-pixel map, ...)
        return
    _law(text)


@settings(max_examples=examples(25))
@given(st.integers(0, 2**32 - 1))
def test_no_refusal_and_fixed_point(seed):
    text = typed.gen_typed(random.Random(seed), hostile=False)
    try:
        archlang.compile_spec(text)
    except SpecError:
        return
    outcome = import_law.check(text, fixed_point=True)
    assert outcome.kind == "ok", f"{outcome.kind}: {outcome.detail}\n--- spec:\n{text}"
    assert outcome.fixed_point, f"{outcome.detail}\n--- import:\n{outcome.imported}"


# ---- bugs the law found, each as a minimal spec ------------------------------------------

FOUND = {
    # A one-branch concat is no layer of the import, so the positions after it shift: the
    # relu inside the second concat was numbered "5", the conv before it kept its key "5"
    # (E302 when the import compiled). Now the relu is labelled `relu` (names.py).
    "auto-name-collides-with-label": """\
network R {
  input 1x8x8
  s: {
    concat { a: conv(2, 1) }
    concat { identity; { conv(2, 1); relu; conv(2, 1) } }
  }
}
""",
    # The torch back end writes a `pad` as `F.pad(x, (left, right, top, bottom))`, which the
    # importer did not read (E721 `torch.nn.functional.pad`); now it is `pad` again.
    "functional-pad": """\
network R {
  input 2x5x7
  conv(2, 1)
  pad((1, 2, 0, 3))
  relu
}
""",
    # A module name with a quote or a backslash: torch.fx's GraphModule wrote it unescaped
    # into its generated code (`getattr(self, "a"b")`) and the shape pass died with a
    # SyntaxError traceback. Shapes are now propagated on the module itself (shapes.py).
    "quote-in-a-module-name": r"""
network R {
  input 1x6x6
  "a\"b\\c": conv(2, 1)
  relu
}
""",
    # The torch back end writes a labelled parameter-free layer as a function call
    # (`x = F.hardswish(x)`), its label lost, so an aux head hanging from it had no anchor
    # (E724). The import now names such a layer after its op (`hardswish: hardswish`).
    "aux-on-a-functional-layer": """\
network R {
  input 2x6x6
  l1: conv(2, 3)
  l2: hardswish
  aux a1 at l2: { adaptive_avgpool(1); flatten; linear(3) }
  outputs Outs(logits, aux1 = a1)
  pool: adaptive_avgpool(1)
  flatten
  l3: linear(3)
}
""",
    # Fixed point: `b0` (a `Res` module, used once) is written inline as `b0: { add {...};
    # relu }`; its build runs that sequence (not a chain: a ModuleDict) in the network's
    # forward, where the relu has no module, and the re-import placed it after `b0`. The
    # import now writes edge layers of such sequences where the re-import will (boundary.py).
    "fixed-point-trailing-relu": """\
block Res(c: int) {
  add { { conv(c, 3, padding=1); batchnorm }; identity }
  relu
}
network R {
  input 2x6x6
  b0: Res(2)
  l2: conv(3, 1)
}
""",
    # The converse: a `split` between two inline sequences (`s`, and `l2` once `Mix` is
    # inline) was written between them, and the re-import put it at the end of `s`.
    "fixed-point-split-between-inline-sequences": """\
block Mix(a: int) {
  concat { branch1: conv(a, 1); branch2: conv(a, 1) }
}
network R {
  input 4x6x6
  s: mul { identity; { adaptive_avgpool(1); conv(4, 1); sigmoid } }
  split(2, 1)
  l2: Mix(2)
}
""",
    # Found by the 1,000-case campaign after the fix above, in its first form: the conv that
    # opens `l1` prints without a label (its key `l1.0` is its position) and was taken for a
    # parameter-free edge layer, moved out of `l1`, and lost its key. Only layers without
    # parameters move now.
    "edge-layer-with-parameters-stays": """\
network R {
  input 2x6x6
  stem: conv(3, 1)
  relu
  l1: {
    conv(3, 1)
    l2: add { conv(3, 1); identity }
  }
}
""",
}


@pytest.mark.parametrize("name", sorted(FOUND))
def test_found_bugs(name):
    outcome = import_law.check(FOUND[name], fixed_point=True)
    assert outcome.kind == "ok", outcome.detail
    assert outcome.fixed_point, outcome.detail


def test_permute_helper_in_a_labelled_sequence():
    """Found by the fuzz profile: ConvNeXt's channels-last pattern in a labelled sequence
    (the built model's `Permute` helper must read back as `permute`, not as a block)."""
    spec = """\
network R {
  input 1x8x8
  l1: { permute((0, 2, 3, 1)); layernorm; linear(1); relu; permute((0, 3, 1, 2)) }
  relu
}
"""
    outcome = import_law.check(spec)
    assert outcome.kind == "ok", outcome.detail


def test_found_bug_names_the_aux_anchor_after_its_op():
    """The head hangs from the hardswish, named by its op since its label did not survive."""
    text = import_law.check(FOUND["aux-on-a-functional-layer"]).imported
    assert re.search(r"\bhardswish: hardswish\b", text) and re.search(r"\baux a1 at hardswish\b", text)


def test_edge_layers_sit_where_the_reimport_puts_them():
    """The relu that ends the inline `b0` is written after it; the split between `s` and
    `l2` ends `s` (nesting.merge's rule for layers between two such sequences)."""
    trail = import_law.check(FOUND["fixed-point-trailing-relu"]).imported
    assert re.search(r"\n  }\n  relu\n  l2: conv2d", trail), trail
    split = import_law.check(FOUND["fixed-point-split-between-inline-sequences"]).imported
    assert re.search(r"\n    split\(2, 1\)\n  }\n  l2: {", split), split


def test_found_bug_relabels_only_the_parameter_free_layer():
    """The import keeps the conv's key ("5") and names the relu by its op instead."""
    text = import_law.check(FOUND["auto-name-collides-with-label"]).imported
    assert re.search(r'"5": conv2d\(2, 1\)', text) and re.search(r"\brelu: relu\b", text)


def test_law_detects_a_wrong_import(monkeypatch):
    """The law is not vacuous: an importer that loses a layer fails it."""
    real = archlang.from_module

    def lossy(module, input_shape, name=None):
        return real(module, input_shape, name).replace("relu\n", "sigmoid\n", 1)

    monkeypatch.setattr(archlang, "from_module", lossy)
    spec = "network N {\n  input 1x6x6\n  c: conv(2, 3, padding=1)\n  relu\n}\n"
    outcome = import_law.check(spec)
    assert outcome.kind == "fail" and "outputs" in outcome.detail


@pytest.mark.parametrize("layer", ["channel_shuffle(2)", "layernorm2d", "stochastic_depth(0.2)"])
def test_former_gaps_import(layer):
    """Once refused (the back end writes `F.channel_shuffle` and its own `LayerNorm2d` /
    `StochasticDepth` classes, which the importer now reads back: importer/generated.py):
    the law holds and the re-import is the import."""
    text = f"network N {{\n  input 4x6x6\n  c: conv(4, 1)\n  {layer}\n  relu\n}}\n"
    outcome = import_law.check(text, fixed_point=True)
    assert outcome.kind == "ok" and outcome.fixed_point, outcome.detail


def test_randomised_bn_changes_the_output():
    """The BN statistics really are randomised in M (so a BN wired wrong would show)."""
    spec = "network N {\n  input 1x4x4\n  conv(2, 1)\n  batchnorm\n}\n"
    m = archlang.build(spec).double().eval()
    x = torch.randn(1, 1, 4, 4, dtype=torch.float64)
    before = m(x)
    randomize_bn(m, seed=1, affine=True)
    assert not torch.allclose(before, m(x))
