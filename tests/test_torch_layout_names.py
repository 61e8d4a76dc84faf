"""Two torch back-end regressions, each checked against torch itself.

1. Channel tracking through channels-last tensors: a block whose output is H×W×C (it ends
   in, or contains, ``permute((0, 2, 3, 1))``) hands the next layernorm / linear its last
   dim, not its first; flatten of an H×W×C map gives H·W·C features. The built model must
   run, its modules' output shapes equal the static analysis, and its float64 outputs equal
   the graph evaluated with ``torch.nn.functional`` (tests/graph_reference.py).
2. Generated names are unique: ``outputs Net(...)`` in ``network Net`` (or an outputs type
   named like a block) gets its own namedtuple name (``NetOutputs``), a block named like the
   network gets its own class, and torchvision's names stay where nothing clashes.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from archlang.backends.torch import build as torch_build
from archlang.backends.torch import optimize as torch_optimize
from click.testing import CliRunner
from conftest import ROOT
from graph_reference import evaluate
from torchvision.models.googlenet import GoogLeNetOutputs
from torchvision.models.inception import InceptionOutputs

import archlang
from archlang.cli.main import main

P = "block P(dims) { permute(dims) }\n"

LAYOUT = {
    # the spec: nn.LayerNorm(8) was built on an (8, 8, 1) map
    "layernorm_after_block": P
    + """network R {
  input 1x8x8
  P((0, 2, 3, 1))
  layernorm
  linear(1)
  P((0, 3, 1, 2))
}
""",
    "linear_after_block": P
    + """network R {
  input 3x8x6
  P((0, 2, 3, 1))
  linear(5)
  gelu
  P((0, 3, 1, 2))
  conv2d(2, 3)
}
""",
    "layernorm2d_after_blocks": P
    + """network R {
  input 3x8x6
  P((0, 2, 3, 1))
  layernorm
  P((0, 3, 1, 2))
  layernorm2d
  conv2d(4, 1)
}
""",
    # a permute in the middle of a block; the block ends channels-last without a permute
    "permute_mid_block": """\
block Last(c) { conv2d(c, 1); permute((0, 2, 3, 1)); linear(c * 2); gelu }
block Back { layernorm; permute((0, 3, 1, 2)); relu }
network R {
  input 3x7x5
  Last(4)
  layernorm
  linear(3)
  Back
  Last(6)
  linear(2)
  Back
  layernorm2d
}
""",
    # a block that takes a channels-last input and keeps it
    "block_reads_channels_last": P
    + """block Mlp(c) { layernorm; linear(c); gelu; linear(c) }
network R {
  input 2x6x6
  P((0, 2, 3, 1))
  Mlp(5)
  Mlp(3)
  layernorm
  P((0, 3, 1, 2))
}
""",
    # flatten of an H×W×C map: H·W·C features (7·5·3 = 105), inline and after a block
    "flatten_channels_last": P
    + """network R {
  input 3x7x5
  a: { permute((0, 2, 3, 1)); flatten; linear(4) }
  b: { linear(2) }
}
""",
    "flatten_after_block": P
    + """network R {
  input 3x7x5
  P((0, 2, 3, 1))
  linear(6)
  flatten
  linear(4)
}
""",
}


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.5)


def _built(text: str, monkeypatch, tmp_path) -> tuple[torch.nn.Module, str]:
    """archlang.build's model for ``text`` (from tmp_path/r.arch) and the source it ran."""
    spec = tmp_path / "r.arch"
    spec.write_text(text)
    ran = []
    load = torch_build.load_source

    def spy(source, name):
        ran.append(source)
        return load(source, name)

    monkeypatch.setattr(torch_build, "load_source", spy)
    model = archlang.build(spec)
    (source,) = ran
    return model, source


def _emitted(tmp_path) -> str:
    """``archc r.arch --emit torch``'s file, checked ruff-clean."""
    spec, out = tmp_path / "r.arch", tmp_path / "r.py"
    result = CliRunner().invoke(main, [str(spec), "--emit", "torch", "-o", str(out)])
    assert result.exit_code == 0, result.output
    for cmd in (["check", "--select", "E,F,W,I,B,UP,RUF"], ["format", "--check", "--diff"]):
        run = subprocess.run(
            [sys.executable, "-m", "ruff", cmd[0], "--isolated", *cmd[1:], str(out)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    return out.read_text()


def _module_shapes(model: torch.nn.Module, graph, x: torch.Tensor) -> dict:
    """Output shape (without the batch dim) of every node whose path is a module of ``model``."""
    seen, hooks = {}, []
    for nid, data in graph.nodes.items():
        if data.aux is not None or not data.path:
            continue
        try:
            module = model.get_submodule(".".join(data.path))
        except AttributeError:
            continue
        hooks.append(module.register_forward_hook(lambda m, i, o, k=nid: seen.__setitem__(k, tuple(o.shape[1:]))))
    model(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", list(LAYOUT))
def test_channels_last_widths_match_torch(name, tmp_path, monkeypatch):
    text = LAYOUT[name]
    model, ran = _built(text, monkeypatch, tmp_path)
    assert _emitted(tmp_path) == ran  # archc --emit torch writes what build runs
    compiled = archlang.compile_spec(text)
    graph = compiled.graph
    model = model.double().eval()
    _randomise(model)
    x = torch.randn(2, *graph.input_shape, dtype=torch.float64)
    with torch.no_grad():
        shapes = _module_shapes(model, graph, x)
        out = model(x)
        reference = evaluate(graph, model.state_dict(), x)
        fast = torch_optimize.optimize(compiled, model.state_dict(), dtype=torch.float64)(x)
    assert shapes, "no module was checked"
    assert shapes == {nid: graph.nodes[nid].shape for nid in shapes}
    assert tuple(out.shape[1:]) == graph.nodes[graph.output].shape
    torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast, out, rtol=1e-9, atol=1e-9)  # --optimize's model too


def test_layernorm_after_a_permuting_block_normalises_the_last_dim(monkeypatch, tmp_path):
    model, _ = _built(LAYOUT["layernorm_after_block"], monkeypatch, tmp_path)
    # 1×8×8 permuted (0, 2, 3, 1) is 8×8×1: layernorm and linear read the last dim, 1
    assert model.layernorm.normalized_shape == (1,)
    assert model.linear.in_features == 1
    x = torch.randn(2, 1, 8, 8)
    by_hand = torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (1,))  # one value: all zero
    torch.testing.assert_close(model.layernorm(model.P(x)), by_hand)


# ---- unique names ----------------------------------------------------------------------

NET_OUTPUTS = """\
block Head(n) { adaptive_avgpool(1); flatten; linear(n) }
network Net {
  input 3x8x8
  a: conv2d(4, 3, padding=1)
  relu
  aux a1 at a: Head(2)
  adaptive_avgpool(1)
  flatten
  logits: linear(2)
  outputs Net(logits, aux1 = a1)
}
"""


def _aux_by_hand(model, x):
    """Head(2) at `a` with F: conv, global mean, linear."""
    sd = model.state_dict()
    a = F.conv2d(x, sd["a.weight"], sd["a.bias"], padding=1)
    return F.linear(a.mean((2, 3)), sd["a1.linear.weight"], sd["a1.linear.bias"])


@pytest.mark.parametrize(
    ("text", "binding", "typename", "classes"),
    [
        (NET_OUTPUTS, "NetOutputs", "Net", {"Net", "Head"}),
        # the outputs type named like a block class: the namedtuple's binding yields
        (NET_OUTPUTS.replace("outputs Net(", "outputs Head("), "HeadOutputs", "Head", {"Net", "Head"}),
        # a block named like the network, and the outputs like both
        (NET_OUTPUTS.replace("Head", "Net"), "NetOutputs", "Net", {"Net", "Net_2"}),
    ],
    ids=["network", "block", "both"],
)
def test_outputs_namedtuple_and_classes_get_unique_names(text, binding, typename, classes, tmp_path, monkeypatch):
    """The namedtuple type keeps the spec's name (as for ``outputs OrderedDict(...)``,
    test_hostile_generated); the module-level name it is bound to is unique."""
    model, ran = _built(text, monkeypatch, tmp_path)
    assert _emitted(tmp_path) == ran
    assert f'{binding} = namedtuple("{typename}", ["logits", "aux1"])' in ran
    assert {line.split("(")[0][len("class ") :] for line in ran.splitlines() if line.startswith("class ")} == classes
    assert type(model).__name__ == "Net"
    model = model.double()
    _randomise(model)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        got = model.train()(x)  # crashed: the namedtuple was the network class
        logits = model.eval()(x)
    assert type(got).__name__ == typename and got._fields == ("logits", "aux1")
    graph = archlang.compile_spec(text).graph
    torch.testing.assert_close(got.logits, evaluate(graph, model.state_dict(), x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got.logits, logits, rtol=0, atol=0)
    torch.testing.assert_close(got.aux1, _aux_by_hand(model, x), rtol=1e-12, atol=1e-12)


def test_block_named_like_the_network_gets_its_own_class(monkeypatch, tmp_path):
    text = "block Net { relu }\nnetwork Net {\n  input 3x4x4\n  Net\n  conv: conv2d(2, 1)\n}\n"
    model, ran = _built(text, monkeypatch, tmp_path)
    assert type(model).__name__ == "Net" and type(model.Net).__name__ == "Net_2"
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model.conv(torch.relu(x)))


@pytest.mark.parametrize(("spec", "outputs"), [("googlenet", GoogLeNetOutputs), ("inception_v3", InceptionOutputs)])
def test_torchvision_outputs_names_stay(spec, outputs):
    from archlang.backends.torch.codegen import emit

    module = torch_build.load_source(emit(archlang.compile_spec(spec)), spec)
    ours = getattr(module, outputs.__name__)
    assert (ours.__name__, ours._fields) == (outputs.__name__, outputs._fields)
