"""Network flags written as code from one compile (backends/torch/conditions.py): lowering
keeps both sides of an `if` on boolean network parameters in the network body, and the
generated class takes the flags as arguments (`if self.transform_input:`).

The reference for every flag setting is the graph compiled with that setting, evaluated op
by op (tests/graph_reference.py), which shares no code with the generator."""

from __future__ import annotations

import itertools

import pytest
import torch
from archlang.backends.torch import source
from archlang.backends.torch.codegen import emit
from generated import import_source
from graph_reference import evaluate

import archlang
from archlang import compiler

SPEC = """
network Flags(a: bool = true, b: bool = false, width: int = 8) {
  input 3x16x16
  if b { transform_input }
  c1: conv2d(width, 3, padding=1)
  if a { bn: batchnorm } else { gelu }
  relu
  if not b and a { extra: conv2d(width, 1) }
  gap: adaptive_avgpool(1)
  flatten
  fc: linear(5)
}
"""


def _compiles(monkeypatch) -> list:
    calls: list = []
    real = compiler.lower

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(compiler, "lower", counting)
    return calls


@pytest.mark.parametrize("name", ["googlenet", "inception_v3", "resnet50"])
def test_one_compile_per_emit(name, monkeypatch):
    """`archc SPEC --emit torch` lowers the spec once, whatever flags it has (googlenet's
    aux_logits and transform_input took three compiles before)."""
    calls = _compiles(monkeypatch)
    text, _ = source.generate(compiler.compile_spec(name))
    assert len(calls) == 1
    params = compiler.compile_spec(name).graph.params
    for flag in (q for q, v in params.items() if isinstance(v, bool)):
        assert f"        {flag}: bool = {params[flag]}," in text


def test_unet_flags_inside_block_classes_from_one_compile(monkeypatch):
    """U-Net's `batch_norm` and `padding` are tested inside its block classes, reach conv
    attributes and choose the input size: one compile (was 4), the blocks take the flags
    from the network class, attributes print their expression."""
    compiled = compiler.compile_spec("unet")
    calls = _compiles(monkeypatch)
    text, _ = source.generate(compiled)
    assert not calls
    assert "        padding: bool = True,\n        batch_norm: bool = False," in text
    assert "padding=1 if padding else 0," in text and "bias=not batch_norm," in text
    assert "*([nn.BatchNorm2d(c)] if batch_norm else [])," in text
    assert "        if self.padding:\n            x = torch.cat([skip, x], 1)" in text
    assert "DoubleConv(1, 64, padding=padding, batch_norm=batch_norm)" in text
    # compiled unpadded, the padded side's `cat` of uncropped maps cannot be lowered: that
    # file keeps its flags fixed (the fallback stops after one more compile, was three)
    unpadded = compiler.compile_spec("unet", {"padding": False})
    calls.clear()
    text, _ = source.generate(unpadded)
    assert len(calls) == 1
    assert "padding: bool" not in text and "batch_norm: bool" not in text


@pytest.mark.parametrize("padding,batch_norm", list(itertools.product((True, False), repeat=2)))
@pytest.mark.parametrize("emitted_bn", [False, True])
def test_unet_every_flag_setting_from_one_file(padding, batch_norm, emitted_bn, tmp_path):
    """The file emitted with either `batch_norm`, instantiated with each setting, is the
    graph compiled with it (tests/graph_reference.py): keys, shapes, eval outputs (the
    crop, the batch norms, the conv biases)."""
    params = {"base": 4, "depth": 2}
    text = emit(archlang.compile_spec("unet", {**params, "batch_norm": emitted_bn}))
    assert "padding: bool = True," in text and f"batch_norm: bool = {emitted_bn}," in text
    module = import_source(text, tmp_path, f"unet_{int(padding)}{int(batch_norm)}{int(emitted_bn)}")
    flags = {"padding": padding, "batch_norm": batch_norm}
    mine = module.UNet(**flags).double().eval()
    size = 32 if padding else 44  # unpadded: 44 -> 40 -> 20 -> 16 -> 8 -> 4 -> 16 -> 12 -> 24 -> 20
    graph = archlang.compile_spec("unet", {**params, **flags}, input_shape=(1, size, size)).graph
    built = archlang.build("unet", **params, **flags).double().eval()
    assert [(k, v.shape) for k, v in mine.state_dict().items()] == [(k, v.shape) for k, v in built.state_dict().items()]
    torch.manual_seed(0)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in built.state_dict().items()}
    state = {k: v.abs() + 0.5 if k.endswith("running_var") else v for k, v in state.items()}
    mine.load_state_dict(state, strict=True)
    x = torch.randn(2, 1, size, size, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), evaluate(graph, state, x), rtol=1e-9, atol=1e-12)


def test_the_branch_not_taken_stays_out_of_the_graph():
    """What the flags do not choose is lowered beside the graph, never in it: the analyses
    and every other back end see the network the flags give."""
    plain = archlang.compile_spec("googlenet").graph
    assert "transform_input" not in plain.nodes
    (other,) = [a for a in plain.alternatives if a.nodes and a.nodes[0].path == ("transform_input",)]
    assert other.when == (("param", "transform_input"),)
    assert all(n.when == (("param", "aux_logits"),) for nid, n in plain.nodes.items() if nid.startswith("aux"))
    flipped = archlang.compile_spec("googlenet", {"transform_input": True, "aux_logits": False}).graph
    assert flipped.nodes["transform_input"].when == (("param", "transform_input"),)
    assert not any(nid.startswith("aux") for nid in flipped.nodes)
    assert len(plain.nodes) == len(flipped.nodes) + 18 - 1  # two aux heads of 9 ops, one transform
    assert plain.symbolic_flags == flipped.symbolic_flags == {"aux_logits", "transform_input"}


def _check(source_text, compiled_with: dict, tmp_path, flags: dict):
    module = import_source(source_text, tmp_path, "flags_" + "_".join(f"{k}{int(v)}" for k, v in flags.items()))
    torch.manual_seed(0)
    mine = module.Flags(**flags).double().eval()
    graph = archlang.compile_spec(SPEC, flags).graph
    built = archlang.build(SPEC, **flags).double().eval()
    assert [(k, v.shape) for k, v in mine.state_dict().items()] == [(k, v.shape) for k, v in built.state_dict().items()]
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in built.state_dict().items()}
    state = {k: v.abs() + 0.5 if k.endswith("running_var") else v for k, v in state.items()}
    mine.load_state_dict(state, strict=True)
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), evaluate(graph, state, x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("a,b", list(itertools.product((True, False), repeat=2)))
def test_every_flag_setting_from_one_file(a, b, tmp_path, monkeypatch):
    """The file emitted from one setting, instantiated with each of the four, is the graph
    compiled with that setting: keys, shapes and eval outputs (if/else, `not`, `and`)."""
    compiled = archlang.compile_spec(SPEC, {"a": a, "b": b})
    calls = _compiles(monkeypatch)
    text = emit(compiled)
    assert not calls  # no compile beyond the one emitted
    assert "if self.a:" in text and "if self.b:" in text and "if not self.b and self.a:" in text
    assert "        else:\n            x = F.gelu(x)" in text  # the two sides of one `if`
    for flags in itertools.product((True, False), repeat=2):
        _check(text, {"a": a, "b": b}, tmp_path, dict(zip("ab", flags, strict=True)))


def test_flags_file_is_the_built_model(tmp_path):
    """archlang.build returns the generated class by construction: same source text."""
    compiled = archlang.compile_spec(SPEC)
    built = archlang.build(compiled)
    assert type(built).__name__ == "Flags"
    assert "if a:" in emit(compiled)


def test_settings_in_the_branch_not_taken_do_not_leak():
    """An `init` (or `unit`) under a flag changes what follows the `if`: the side not
    taken is lowered, but its settings stay there, and the flag is not one the class can
    take from this compile (the fallback compiles it)."""
    spec = "network N(f: bool = false) {\n  input 3x8x8\n  if f { init xavier_uniform }\n  conv2d(4, 3)\n}\n"
    off = archlang.compile_spec(spec).graph
    assert off.nodes["conv2d"].init is None
    assert off.symbolic_flags == frozenset()
    assert archlang.compile_spec(spec, {"f": True}).graph.nodes["conv2d"].init["scheme"] == "xavier_uniform"
