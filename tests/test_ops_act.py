"""The activation and structural ops of issue #12 (relu6, silu, hardswish, hardsigmoid, gelu,
stochastic_depth, channel_shuffle, split, spatial_mean): shapes, parameters, MACs and FLOPs
against the real torch module or function and fvcore run on it; built models against torch's
and torchvision's reference functions; stochastic depth's training behaviour against
torchvision's own function under the same random seed; located errors.
"""

from __future__ import annotations

import math

import fvcore.nn
import pytest
import torch
import torch.nn.functional as F
import torchvision
from bn_stats import randomize_bn
from conftest import assert_ruff_clean
from torch import nn

import archlang
from archlang.diagnostics import SpecError
from archlang.lint import run_lint


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _shuffle(g):
    return Fn(lambda x: torchvision.models.shufflenetv2.channel_shuffle(x, g))


# (spec call, input shape, the torch module it stands for)
CASES = [
    ("relu6", (6, 4, 5), nn.ReLU6()),
    ("silu", (6, 4, 5), nn.SiLU()),
    ("hardswish", (6, 4, 5), nn.Hardswish()),
    ("hardsigmoid", (6, 4, 5), nn.Hardsigmoid()),
    ("gelu", (6, 4, 5), nn.GELU()),
    ('gelu(approximate="tanh")', (6, 4, 5), nn.GELU(approximate="tanh")),
    ("stochastic_depth(0.2)", (6, 4, 5), torchvision.ops.StochasticDepth(0.2, "row")),
    ('stochastic_depth(0.5, mode="batch")', (6, 4, 5), torchvision.ops.StochasticDepth(0.5, "batch")),
    ("channel_shuffle(3)", (6, 4, 5), nn.ChannelShuffle(3)),
    ("channel_shuffle(2)", (6, 4, 5), _shuffle(2)),  # torchvision's ShuffleNetV2 function
    ("split(2, 0)", (6, 4, 5), Fn(lambda x: torch.chunk(x, 2, dim=1)[0])),
    ("split(4, 2)", (6, 4, 5), Fn(lambda x: torch.chunk(x, 4, dim=1)[2])),  # 2, 2, 2: three chunks
    ("split(3, 2)", (7, 4, 5), Fn(lambda x: torch.chunk(x, 3, dim=1)[2])),  # 3, 3, 1
    ("split(2, 1)", (7,), Fn(lambda x: torch.chunk(x, 2, dim=1)[1])),  # a vector: 4, 3
    ("spatial_mean", (6, 4, 5), Fn(lambda x: x.mean((2, 3)))),
    ("spatial_mean(keepdim=true)", (6, 4, 5), Fn(lambda x: x.mean((2, 3), keepdim=True))),
]
IDS = [c[0] for c in CASES]


def _node(call: str, shape: tuple):
    spec = f"network T() {{\n  input {'x'.join(map(str, shape))}\n  x: {call}\n}}"
    return archlang.analyze(spec).nodes["x"]


def _fvcore(module: nn.Module, shape: tuple) -> int:
    counter = fvcore.nn.FlopCountAnalysis(module.eval(), (torch.randn(2, *shape),))
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return counter.total() // 2  # per sample


@pytest.mark.parametrize(("call", "shape", "module"), CASES, ids=IDS)
def test_shape_params_and_costs_match_torch_and_fvcore(call, shape, module):
    node = _node(call, shape)
    out = module.eval()(torch.randn(3, *shape))
    assert tuple(node.shape) == tuple(out.shape[1:])
    assert node.params == sum(p.numel() for p in module.parameters()) == 0
    assert node.buffers == sum(b.numel() for b in module.buffers()) == 0
    assert node.macs == 0
    assert node.flops == _fvcore(module, shape)  # fvcore counts none of them: 0


# all ops, by hand (docs/analysis.md): n = 6 * 4 * 5 = 120 elements
ALL_OPS = {
    "relu6": 2 * 120,  # two comparisons
    "silu": 4 * 120,  # exp, add, divide, multiply
    "hardswish": 5 * 120,  # add, 2 comparisons, multiply, divide
    "hardsigmoid": 4 * 120,  # add, 2 comparisons, divide
    "gelu": 5 * 120,  # x / sqrt 2, erf, + 1, two multiplies
    'gelu(approximate="tanh")': 13 * 120,  # x^3 (2), *, +, *, tanh (5), +1, *, *
    "stochastic_depth(0.2)": 0,
    "channel_shuffle(3)": 0,
    "split(2, 0)": 0,
    "spatial_mean": 6 * (4 * 5 - 1) + 6,  # per channel 19 adds and a divide
}


@pytest.mark.parametrize("call", list(ALL_OPS))
def test_all_ops_by_hand(call):
    assert _node(call, (6, 4, 5)).all_ops == ALL_OPS[call]


def test_receptive_fields():
    spec = """network T() {
  input 4x9x9
  c: conv2d(6, 3)
  a: hardswish
  s: channel_shuffle(2)
  p: split(3, 1)
  m: spatial_mean
}"""
    nodes = archlang.analyze(spec).nodes
    for nid in ("a", "s", "p"):
        assert (nodes[nid].rf.h.size, nodes[nid].rf.w.size) == (3, 3)
    assert nodes["m"].rf.whole


# ---- built models against the reference functions ------------------------------------------

REFERENCE = {
    "relu6": F.relu6,
    "silu": F.silu,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "gelu": F.gelu,
    'gelu(approximate="tanh")': lambda y: F.gelu(y, approximate="tanh"),
    "stochastic_depth(0.3)": lambda y: torchvision.ops.stochastic_depth(y, 0.3, "row", training=False),
    "channel_shuffle(4)": lambda y: torchvision.models.shufflenetv2.channel_shuffle(y, 4),
    "split(5, 3)": lambda y: torch.chunk(y, 5, dim=1)[3],  # 12 channels: 3, 3, 3, 3 (four chunks)
    "split(2, 1)": lambda y: torch.chunk(y, 2, dim=1)[1],
    "spatial_mean": lambda y: y.mean((2, 3)),
    "spatial_mean(keepdim=true)": lambda y: y.mean((2, 3), keepdim=True),
}


@pytest.mark.parametrize("call", list(REFERENCE))
def test_built_model_equals_the_reference(call):
    torch.manual_seed(0)
    model = archlang.build(f"network T() {{\n  input 3x6x7\n  c: conv2d(12, 3, padding=1)\n  x: {call}\n}}")
    model = model.double().eval()
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    with torch.no_grad():
        model.c.weight.mul_(8)  # values well beyond ±3 and 6: every kink of relu6 / hardswish
        out = model(x)
        expected = REFERENCE[call](model.c(x))
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def _sd_model(p: float, mode: str):
    spec = f'network T() {{\n  input 4x3x3\n  c: conv2d(4, 1)\n  sd: stochastic_depth({p}, mode="{mode}")\n}}'
    return archlang.build(spec).double()


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_in_training_is_torchvisions(mode):
    model = _sd_model(0.4, mode).train()
    x = torch.randn(64, 4, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        y = model.c(x)
        torch.manual_seed(11)
        out = model(x)
        torch.manual_seed(11)  # the same random stream: torchvision draws the same noise
        expected = torchvision.ops.stochastic_depth(y, 0.4, mode, training=True)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    kept = [not torch.equal(o, torch.zeros_like(o)) for o in out]
    for o, k, yy in zip(out, kept, y):  # a sample is zeroed or scaled by 1 / (1 - p)
        torch.testing.assert_close(o, yy / 0.6 if k else torch.zeros_like(yy))
    if mode == "batch":
        assert len(set(kept)) == 1


def test_stochastic_depth_statistics_eval_and_p0():
    x = torch.randn(4000, 4, 3, 3, dtype=torch.float64)
    model = _sd_model(0.3, "row").train()
    torch.manual_seed(5)
    with torch.no_grad():
        out = model(x)
        dropped = sum(torch.equal(o, torch.zeros_like(o)) for o in out) / len(out)
        # 4000 Bernoulli(0.3) draws: sd 0.0072; 0.03 is beyond 4 sd
        assert abs(dropped - 0.3) < 0.03
        assert torch.equal(model.eval()(x), model.c(x))  # identity in eval
        zero = _sd_model(0.0, "row").train()
        assert torch.equal(zero(x), zero.c(x))  # p = 0: identity in training too


# ---- generated code ---------------------------------------------------------------------------

SPEC = """
block Shuffle(c: int) {
  unit conv = conv_bn_relu
  concat {
    left: split(2, 0)
    right: { split(2, 1); conv(c, 1); hardswish; stochastic_depth(0.1) }
  }
  channel_shuffle(2)
}

block Half(c: int) {
  unit conv = conv_bn_relu
  concat { conv(c, 1); identity }
  split(2, 1)
  conv(c, 1)
}

network Zoo() {
  input 3x16x16
  unit conv = conv_bn_relu
  stem: conv(8, 3, stride=2, padding=1)
  s1: Shuffle(4)
  s2: Shuffle(6)
  s3: Shuffle(5)  # on 10 channels: the halves are 5, not 4 (`in_channels // 2`)
  h1: Half(4)  # (4 + 10) / 2 = 7 channels into its last conv
  h2: Half(6)  # (6 + 4) / 2 = 5
  a: relu6
  b: silu
  c: hardsigmoid
  d: gelu(approximate="tanh")
  m: spatial_mean
  fc: linear(10)
}
"""


def test_generated_model_equals_the_graph_reference():
    from graph_reference import evaluate

    compiled = archlang.compile_spec(SPEC)
    torch.manual_seed(0)
    model = archlang.build(SPEC).double()
    randomize_bn(model, seed=1)
    model.eval()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        out = model(x)
        expected = evaluate(compiled.graph, model.state_dict(), x)
    assert out.shape == (2, 10)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert [model.h1.conv_2.conv.in_channels, model.h2.conv_2.conv.in_channels] == [7, 5]


def test_generated_source_is_clean_and_does_not_import_torchvision(tmp_path):
    from archlang.backends.torch import codegen

    source = codegen.emit(archlang.compile_spec(SPEC))
    assert "import torchvision" not in source and "from torchvision" not in source
    assert "class StochasticDepth(nn.Module)" in source
    assert ", 2, dim=1)[1]" in source  # torch.chunk(..., 2, dim=1)[1]
    # one class per block: a split that divides exactly is `// chunks` of the input width
    assert source.count("class Shuffle") == 1 and source.count("class Half") == 1
    assert "BasicConv2d(in_channels // 2, c, kernel_size=1)" in source
    assert "BasicConv2d((c + in_channels) // 2, c, kernel_size=1)" in source
    path = tmp_path / "zoo.py"
    path.write_text(source)
    assert_ruff_clean(path)


def test_lint_runs_and_treats_the_new_ops_by_role():
    assert isinstance(run_lint(archlang.compile_spec(SPEC)), list)
    # spatial_mean collapses the grid: it starts the classifier stage, which IN101
    # (representational bottleneck) exempts, as it does adaptive pooling; a window op that
    # shrinks the same 64×64×16 map 64× is flagged
    spec = "network T() {{\n  input 3x64x64\n  c: conv(16, 3, padding=1)\n  {}\n  linear(10)\n}}"
    assert not run_lint(archlang.compile_spec(spec.format("spatial_mean")), select=("IN101",))
    assert run_lint(archlang.compile_spec(spec.format("maxpool(8); flatten")), select=("IN101",))
    # the activations are pointwise: consumers() looks through them to the next real layer
    from archlang.lint.view import LintView

    view = LintView(archlang.compile_spec(spec.format("hardswish; gelu; silu; spatial_mean")))
    assert [view.op(n).value for n in view.consumers("c")] == ["spatial_mean"]


# ---- located errors -------------------------------------------------------------------------

ERRORS = [
    ("channel_shuffle(4)", "E405", 3),  # 6 channels
    ("split(4, 3)", "E303", 3),  # torch.chunk(6 channels, 4) gives 3 chunks
    ("split(2, 2)", "E303", 3),
    ('gelu(approximate="fast")', "E205", 8),  # at the argument
    ('stochastic_depth(0.2, mode="col")', "E205", 25),
    ("stochastic_depth(1.5)", "E205", 20),
    ("split(0, 0)", "E205", 9),
    ("flatten; spatial_mean", "E404", 12),
    ("flatten; channel_shuffle(2)", "E404", 12),
]


@pytest.mark.parametrize(("body", "code", "col"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_are_located(body, code, col):
    spec = f"network T() {{\n  input 6x4x4\n  {body}\n}}"
    with pytest.raises(SpecError) as err:
        archlang.compile_spec(spec)
    d = err.value.diagnostics[0]
    assert d.code == code
    assert (d.span.line, d.span.col) == (3, col), d.message


def test_an_uneven_split_is_a_literal_width():
    """9 channels in 2 chunks are 5 and 4: no formula of in_channels, so the width is written
    out, and instances that differ in it get their own class."""
    from archlang.backends.torch import codegen

    spec = """block B(c: int) {
  split(2, 1)
  conv2d(c, 1)
}
network T() {
  input 9x4x4
  a: B(8)
  b: B(3)
}"""
    source = codegen.emit(archlang.compile_spec(spec))
    assert "nn.Conv2d(4, c, kernel_size=1)" in source and "nn.Conv2d(in_channels // 2, c" in source
    torch.manual_seed(0)
    model = archlang.build(spec).double().eval()
    x = torch.randn(2, 9, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        h = model.a(x)
        assert torch.equal(h, F.conv2d(torch.chunk(x, 2, 1)[1], model.a.conv2d.weight, model.a.conv2d.bias))
        assert model(x).shape == (2, 3, 4, 4)


def test_split_sizes_follow_torch_chunk():
    from archlang.ops.shape_rules import chunk_sizes

    for c in range(1, 30):
        for chunks in range(1, 12):
            expected = [t.shape[1] for t in torch.chunk(torch.zeros(1, c), chunks, dim=1)]
            assert chunk_sizes(c, chunks) == expected
            assert sum(expected) == c and len(expected) <= chunks and math.ceil(c / chunks) == expected[0]


def test_split_is_a_view_and_stochastic_depth_an_alias_in_memory():
    a = archlang.analyze("""network T() {
  input 8x4x4
  s: split(4, 0)
  sd: stochastic_depth(0.2)
  c: conv2d(8, 1)
}""")
    # elements per sample: input 128; s and sd are views of the input (torch.chunk returns a
    # view; stochastic depth returns its input in eval), c 128.
    # step input 128 | s 128 | sd 128 | c 128 + 128 -> peak 256 during c. Were the split a
    # copy (32 elements), the input would be freed after it: peak 32 + 128 = 160.
    assert (a.peak_activation_bytes, a.peak_at) == (256 * 4, "c")
