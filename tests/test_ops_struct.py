"""The structural ops of issue 12: `mul { }` (squeeze-and-excitation), `layer_scale`,
`permute` with the channels-last layout, `layernorm`, `layernorm2d` and `linear` on a
channels-last tensor.

Expected figures come from torch and torchvision: parameter counts are ``numel`` of the
built (or torchvision's) modules, FLOPs fvcore's ``FlopCountAnalysis`` on them, shapes the
shapes of the tensors they compute; torchvision's ``CNBlock``, ``SqueezeExcitation`` and
``LayerNorm2d`` weights load with ``strict=True`` into the archlang-built models, which
must then compute the same function in float64.
"""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
import torch
from archlang.backends.torch import optimize as torch_optimize
from conftest import ROOT
from fvcore.nn import FlopCountAnalysis
from graph_reference import evaluate
from torchvision.models.convnext import CNBlock, LayerNorm2d
from torchvision.ops.misc import SqueezeExcitation

import archlang
from archlang.diagnostics import SpecError
from archlang.ops import CALLABLE_OPS, Op

# ConvNeXt's block uses GELU; the `gelu` op is another change of issue 12. Until it is in,
# the spec uses ReLU and torchvision's block gets its GELU (parameter-free) swapped for one.
ACT = "gelu" if "gelu" in CALLABLE_OPS else "relu"

BLOCKS = f"""
block se(c: int, squeeze: int) {{
  mul {{
    identity
    {{ adaptive_avgpool(1); fc1: conv2d(squeeze, 1); relu; fc2: conv2d(c, 1); sigmoid }}
  }}
}}
block cn(dim: int, scale: float = 1e-6) {{
  add {{
    identity
    {{
      "block": {{
        conv2d(dim, 7, padding=3, groups=dim); permute((0, 2, 3, 1)); layernorm(eps=1e-6)
        linear(4 * dim); {ACT}; linear(dim); permute((0, 3, 1, 2))
      }}
      layer_scale: layer_scale(scale)
    }}
  }}
}}
"""
NET = (
    BLOCKS
    + """
network Net {
  input 16x14x14
  stem: conv2d(32, 3, padding=1)
  se: se(32, 8)
  cn: cn(32)
  norm: layernorm2d(eps=1e-6)
  adaptive_avgpool(1)
  flatten
  head_norm: layernorm
  fc: linear(10)
}
"""
)


def _torch_act(block: CNBlock) -> CNBlock:
    if ACT == "relu":
        block.block[4] = torch.nn.ReLU()
    return block


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.2)


def _fvcore(model, x) -> int:
    logging.disable(logging.WARNING)
    try:
        a = FlopCountAnalysis(model.eval(), x)
        a.unsupported_ops_warnings(False)
        a.uncalled_modules_warnings(False)
        return a.total()
    finally:
        logging.disable(logging.NOTSET)


# ---- shapes and layout (no torch needed) -----------------------------------------------


def _graph(body: str, input_shape: str = "8x6x5", pre: str = ""):
    return archlang.compile_spec(f"{pre}\nnetwork N {{\n  input {input_shape}\n{body}\n}}\n").graph


def _error(body: str, input_shape: str = "8x6x5") -> SpecError:
    with pytest.raises(SpecError) as info:
        _graph(body, input_shape)
    return info.value


def test_permute_shapes_and_layout():
    g = _graph("  a: permute((0, 2, 3, 1))\n  b: relu\n  c: linear(4)\n  d: layernorm\n  e: permute((0, 3, 1, 2))")
    assert g.nodes["a"].shape == (6, 5, 8) and g.nodes["a"].channels_last
    assert g.nodes["b"].shape == (6, 5, 8) and g.nodes["b"].channels_last  # elementwise keeps it
    assert g.nodes["c"].shape == (6, 5, 4) and g.nodes["d"].channels_last
    assert g.nodes["e"].shape == (4, 6, 5) and not g.nodes["e"].channels_last
    # torch agrees on every shape
    x = torch.zeros(1, 8, 6, 5).permute(0, 2, 3, 1)
    assert tuple(torch.nn.Linear(8, 4)(x).permute(0, 3, 1, 2).shape[1:]) == (4, 6, 5)
    # swapping H and W keeps the layout; flatten ends it
    g = _graph("  a: permute((0, 1, 3, 2))\n  b: permute((0, 3, 2, 1))\n  c: flatten\n  d: linear(3)")
    assert g.nodes["a"].shape == (8, 5, 6) and not g.nodes["a"].channels_last
    assert g.nodes["b"].shape == (6, 5, 8) and g.nodes["b"].channels_last
    assert g.nodes["c"].shape == (240,) and not g.nodes["c"].channels_last


@pytest.mark.parametrize(
    "body,code,line,col",
    [
        ("  permute((0, 2, 3, 1))\n  conv2d(4, 1)", "E407", 5, 3),
        ("  permute((0, 2, 3, 1))\n  batchnorm", "E407", 5, 3),
        ("  permute((0, 2, 3, 1))\n  maxpool(2)", "E407", 5, 3),
        ("  permute((0, 2, 3, 1))\n  layer_scale", "E407", 5, 3),
        ("  add {\n    identity\n    permute((0, 2, 3, 1))\n  }", "E407", 4, 3),  # mixed layouts
        ("  permute((0, 2, 1, 3))", "E407", 4, 3),  # channels between H and W
        ("  permute((0, 2, 1))", "E407", 4, 3),  # 3 dims for a 4-d tensor
        ("  permute((0, 2, 2, 1))", "E205", 4, 11),  # not a permutation
        ("  permute((2, 0, 3, 1))", "E205", 4, 11),  # moves the batch dim
        ("  linear(4)", "E404", 4, 3),  # channels-first map: still needs flatten
        ("  layernorm", "E407", 4, 3),  # would normalise the width
        ("  mul {\n    identity\n    conv2d(1, 1)\n  }", "E402", 4, 3),  # 1×H×W does not broadcast here
        ("  mul {\n    identity\n    { adaptive_avgpool(1); conv2d(4, 1) }\n  }", "E402", 4, 3),
    ],
)
def test_located_errors(body, code, line, col):
    err = _error(body)
    d = err.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == (code, line, col), d


def test_mixed_layouts_in_a_group_are_refused():
    g = _graph("  x: permute((0, 2, 3, 1))\n  m: mul {\n    identity\n    relu\n  }", "8x8x8")
    assert g.nodes["m/mul"].channels_last  # one layout: fine
    err = _error("  x: permute((0, 2, 3, 1))\n  add {\n    identity\n    permute((0, 3, 1, 2))\n  }", "8x8x8")
    assert err.diagnostics[0].code == "E407" and "mix" in err.diagnostics[0].message


def test_mul_broadcasts_a_per_channel_branch():
    g = _graph("  m: mul {\n    identity\n    { adaptive_avgpool(1); sigmoid }\n  }")
    assert g.nodes["m/mul"].shape == (8, 6, 5)
    a, s = torch.randn(1, 8, 6, 5), torch.randn(1, 8, 1, 1)
    assert tuple((a * s).shape[1:]) == (8, 6, 5)


# ---- figures against torch and fvcore --------------------------------------------------


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = archlang.build(NET).double().eval()
    _randomise(model)
    return archlang.analyze(NET), archlang.compile_spec(NET), model


def test_params_and_flops_match_torch_and_fvcore(net):
    a, _, model = net
    assert a.totals.params == sum(p.numel() for p in model.parameters())
    x = torch.randn(1, 16, 14, 14, dtype=torch.float64)
    assert a.totals.flops == _fvcore(model, x)
    # per op: the modules alone, traced by fvcore
    ln = torch.nn.LayerNorm(32, eps=1e-6).double()
    assert a.nodes["cn/block/2"].flops == _fvcore(ln, torch.randn(1, 14, 14, 32, dtype=torch.float64))
    assert a.nodes["cn/block/2"].params == sum(p.numel() for p in ln.parameters())
    lin = torch.nn.Linear(32, 128).double()
    assert a.nodes["cn/block/3"].flops == _fvcore(lin, torch.randn(1, 14, 14, 32, dtype=torch.float64))
    assert a.nodes["cn/block/3"].macs == a.nodes["cn/block/3"].flops
    assert a.nodes["cn/block/3"].params == sum(p.numel() for p in lin.parameters())
    ln2 = LayerNorm2d(32, eps=1e-6).double()
    assert a.nodes["norm"].flops == _fvcore(ln2, torch.randn(1, 32, 14, 14, dtype=torch.float64))
    assert a.nodes["norm"].params == 64 and a.nodes["cn/layer_scale"].params == 32
    for nid in ("se/mul", "cn/layer_scale", "cn/block/1"):  # aten::mul, permute: not counted
        assert a.nodes[nid].flops == a.nodes[nid].macs == 0


def test_shapes_match_torch(net):
    _, compiled, model = net
    g = compiled.graph
    seen = {}
    hooks = [
        model.cn.block[i].register_forward_hook(lambda m, i, o, k=i: seen.__setitem__(k, tuple(o.shape[1:])))
        for i in range(7)
    ]
    out = model(torch.randn(2, 16, 14, 14, dtype=torch.float64))
    for h in hooks:
        h.remove()
    assert tuple(out.shape[1:]) == g.nodes[g.output].shape
    assert seen == {i: g.nodes[f"cn/block/{i}"].shape for i in range(7)}


def test_built_model_equals_the_graph_reference(net):
    _, compiled, model = net
    x = torch.randn(2, 16, 14, 14, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), evaluate(compiled.graph, model.state_dict(), x), rtol=1e-12, atol=1e-12)


def test_receptive_fields(net):
    a, _, _ = net
    stem = a.nodes["stem"].rf
    for nid in ("cn/block/1", "cn/block/2", "cn/block/3", "cn/block/6"):  # 1×1 per position
        assert a.nodes[nid].rf.h == a.nodes["cn/block/0"].rf.h
    assert a.nodes["cn/block/0"].rf.h.size == stem.h.size + 6 or a.nodes["cn/block/0"].rf.h.whole
    assert a.nodes["se/mul"].rf.h.whole  # the squeeze sees the whole map


def test_convnext_block_loads_torchvision_weights():
    spec = BLOCKS + "network N {\n  input 96x14x14\n  b: cn(96)\n}\n"
    model = archlang.build(spec).double().eval()
    torch.manual_seed(1)
    ref = _torch_act(CNBlock(96, 1e-6, 0.0)).double().eval()
    _randomise(ref, 1)
    assert set(ref.state_dict()) == {
        *(f"block.{i}.{k}" for i in (0, 2, 3, 5) for k in ("weight", "bias")),
        "layer_scale",
    }
    model.b.load_state_dict(ref.state_dict(), strict=True)
    assert model.state_dict()["b.layer_scale"].shape == (96, 1, 1)
    x = torch.randn(2, 96, 14, 14, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-9, atol=1e-12)
    assert archlang.analyze(spec).totals.params == sum(p.numel() for p in ref.parameters())


def test_squeeze_excitation_loads_torchvision_weights():
    spec = BLOCKS + "network N {\n  input 32x9x9\n  b: se(32, 8)\n}\n"
    model = archlang.build(spec).double().eval()
    ref = SqueezeExcitation(32, 8).double().eval()
    _randomise(ref, 2)
    model.b.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 32, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-12, atol=1e-12)
    assert archlang.analyze(spec).totals.flops == _fvcore(ref, x[:1])


def test_layernorm2d_loads_torchvision_weights():
    spec = "network N {\n  input 12x5x7\n  norm: layernorm2d(eps=1e-6)\n}\n"
    model = archlang.build(spec).double().eval()
    ref = LayerNorm2d(12, eps=1e-6).double()
    _randomise(ref, 3)
    model.norm.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 12, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-12, atol=1e-12)


def test_layer_scale_without_label_and_in_a_sequential():
    spec = "network N {\n  input 4x3x3\n  layer_scale(0.5)\n  s: { layer_scale(2.0) ; relu }\n}\n"
    err = pytest.raises(SpecError, archlang.build, spec).value
    d = err.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E701", 4, 8)
    model = archlang.build("network N {\n  input 4x3x3\n  layer_scale(0.5)\n  relu\n}\n")
    assert list(model.state_dict()) == ["layer_scale"]
    assert torch.equal(model.layer_scale, torch.full((4, 1, 1), 0.5))


def test_generated_code_is_ruff_clean_and_has_no_torchvision(tmp_path):
    from archlang.backends.torch.codegen import emit

    for i, source in enumerate([emit(archlang.compile_spec(NET)), torch_optimize.emit(archlang.compile_spec(NET))]):
        assert "import torchvision" not in source and "from torchvision" not in source
        path = tmp_path / f"g{i}.py"
        path.write_text(source)
        for cmd in (["check", "--select", "E,F,W,I,B,UP,RUF"], ["format", "--check", "--diff"]):
            run = subprocess.run(
                [sys.executable, "-m", "ruff", *cmd[:1], "--isolated", *cmd[1:], str(path)],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            assert run.returncode == 0, run.stdout + run.stderr


def test_optimize_keeps_the_function(net):
    _, compiled, model = net
    optimized = torch_optimize.optimize(compiled, model.state_dict(), dtype=torch.float64)
    x = torch.randn(2, 16, 14, 14, dtype=torch.float64)
    with torch.inference_mode():
        torch.testing.assert_close(optimized(x), model(x), rtol=1e-9, atol=1e-9)


def test_every_new_op_is_in_the_graph():
    g = archlang.compile_spec(NET).graph
    ops = {d.op for d in g.nodes.values()}
    assert {Op.MUL, Op.LAYER_SCALE, Op.PERMUTE, Op.LAYERNORM, Op.LAYERNORM2D} <= ops
