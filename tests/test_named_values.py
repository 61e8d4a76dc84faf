"""Any DAG: layers read named values (`from`), bare merges (`add from a, b`), several
outputs (`outputs dict(...)`).

* Every bundled spec and variant lowers to the graph it lowered to before named values
  existed (digests in tests/golden/graph_digests.json, made by scripts/graph_digests.py at
  the commit before them): the old syntax is sugar over the same graphs.
* Random DAG specs (``strategies.dag_specs``: skips to any earlier value, merges of several
  values, group branches reading outside values, blocks with their own DAG): the emitted
  file == ``archlang.build`` == the op-by-op reference, and PyTorch's shapes, ``numel`` and
  fvcore's FLOPs equal the static analysis.
* A DAG with skips, merges and two outputs against the same function written with
  ``torch.nn.functional``.
* Diagnostics, run as a user runs them (the CLI in a subprocess).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT
from graph_reference import evaluate
from hypothesis import HealthCheck, given, settings
from strategies import dag_specs
from test_torch_differential import analysis_totals, check_emitted_equals_built, check_shapes, fvcore_flops, ruff_clean
from torch import nn

import archlang
from archlang.analysis import analyze

GOLDEN = ROOT / "tests" / "golden" / "graph_digests.json"


def _archc(*args, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "archlang.cli", *args], capture_output=True, text=True, input=stdin, timeout=120
    )


def test_every_bundled_spec_lowers_to_the_graph_it_had_before_named_values():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from graph_digests import EXTRA, FILES, digest
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    from archlang.specs.catalog import VARIANTS

    golden = json.loads(GOLDEN.read_text())
    names = [*FILES, *VARIANTS, *EXTRA]
    assert sorted(golden) == sorted(names)
    for name in names:
        spec, params = EXTRA.get(name, (name, None))
        assert digest(spec, params) == golden[name], name


def test_the_digest_sees_a_rewired_input():
    # the golden is not vacuous: an explicit `from` to the value before is the same graph,
    # the same layers reading another value are not
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from graph_digests import digest
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    chain = "network N { input 3x8x8\n a: conv2d(3, 3, padding=1)\n b: conv2d(3, 3, padding=1)\n s: add from a, b }"
    explicit = chain.replace("b: conv2d(3, 3, padding=1)", "b: conv2d(3, 3, padding=1) from a")
    moved = chain.replace("b: conv2d(3, 3, padding=1)", "b: conv2d(3, 3, padding=1) from input")
    assert digest(chain) == digest(explicit)
    assert digest(chain)["sha256"] != digest(moved)["sha256"]


# ---- random DAGs ------------------------------------------------------------------------------


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=dag_specs())
def test_random_dags_emitted_equals_built_equals_reference(text, tmp_path):
    compiled = archlang.compile_spec(text)
    check_emitted_equals_built(compiled, tmp_path, optimized=not compiled.graph.returns)


def test_random_dag_files_are_ruff_clean(tmp_path):
    @settings(max_examples=15, deadline=None, derandomize=True, database=None)
    @given(text=dag_specs())
    def write(text):
        from archlang.backends.torch.codegen import emit

        (tmp_path / f"dag_{len(list(tmp_path.iterdir()))}.py").write_text(emit(archlang.compile_spec(text)))

    write()
    assert len(list(tmp_path.glob("dag_*.py"))) >= 10
    ruff_clean(tmp_path)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(text=dag_specs())
def test_random_dags_shapes_params_flops_equal_the_analysis(text):
    compiled = archlang.compile_spec(text)
    model = archlang.build(compiled).eval()
    check_shapes(model, compiled)
    params, flops = analysis_totals(compiled)
    assert sum(p.numel() for p in model.parameters()) == params
    assert fvcore_flops(model, compiled.graph.input_shape) == flops


def test_the_dag_strategy_draws_what_it_says():
    seen = {"skip": 0, "merge": 0, "dict": 0, "group": 0, "block": 0, "two inputs": 0, "inner value": 0}
    seen |= {"timm ops": 0, "channel pieces": 0, "depth moves": 0}

    @settings(max_examples=100, deadline=None, derandomize=True, database=None)
    @given(text=dag_specs())
    def count(text):
        seen["skip"] += " from v" in text
        seen["merge"] += "add from" in text or "concat from" in text
        seen["dict"] += "outputs dict" in text
        seen["group"] += "concat { relu from" in text
        seen["block"] += "block B0" in text
        seen["two inputs"] += ": Fuse(" in text
        seen["inner value"] += ".a\n" in text
        seen["timm ops"] += any(op in text for op in ("std_conv2d", "frozen_batchnorm", "eca", "radix_softmax"))
        seen["channel pieces"] += ": split((" in text or ": narrow(" in text
        seen["depth moves"] += "to_depth(2)" in text or "unshuffle(2)" in text

    count()
    rarer = ("timm ops", "channel pieces", "depth moves")  # drawn among others of their kind
    assert all(v >= (5 if k in rarer else 10) for k, v in seen.items()), seen


# ---- against plain PyTorch -------------------------------------------------------------------


def test_skips_merges_and_outputs_against_plain_pytorch():
    spec = """
    network Net {
      input 3x16x16
      stem: conv2d(8, 3, padding=1)
      a: { conv2d(8, 3, padding=1); relu }
      b: conv2d(8, 1) from stem
      s: add from a, b, stem
      m: mul from s, a
      c: concat from m, input
      head: conv2d(4, 1)
      outputs dict(out, "skip" = s)
    }
    """
    compiled = archlang.compile_spec(spec)
    model = archlang.build(compiled).eval()
    sd = model.state_dict()
    assert list(sd) == [
        "stem.weight",
        "stem.bias",
        "a.0.weight",
        "a.0.bias",
        "b.weight",
        "b.bias",
        "head.weight",
        "head.bias",
    ]
    x = torch.randn(2, 3, 16, 16)
    stem = F.conv2d(x, sd["stem.weight"], sd["stem.bias"], padding=1)
    a = F.relu(F.conv2d(stem, sd["a.0.weight"], sd["a.0.bias"], padding=1))
    s = a + F.conv2d(stem, sd["b.weight"], sd["b.bias"]) + stem
    out = F.conv2d(torch.cat([s * a, x], 1), sd["head.weight"], sd["head.bias"])
    result = model(x)
    assert isinstance(result, OrderedDict) and list(result) == ["out", "skip"]
    torch.testing.assert_close(result["out"], out)
    torch.testing.assert_close(result["skip"], s)
    torch.testing.assert_close(evaluate(compiled.graph, sd, x)["out"], out)
    # the analysis: 11 in-channels for head (8 + 3), params by hand
    assert compiled.graph.nodes["c"].shape == (11, 16, 16)
    assert analyze(compiled).totals.params == (3 * 9 * 8 + 8) + (8 * 9 * 8 + 8) + (8 * 8 + 8) + (11 * 4 + 4)


def test_a_block_reads_its_own_input_and_sees_only_its_own_names():
    ok = """
    block Res(c: int) {
      body: { conv2d(c, 3, padding=1); relu }
      s: add from body, input
    }
    network N { input 4x8x8
      r: Res(4)
    }
    """
    g = archlang.compile_spec(ok).graph
    assert g.nodes["r/s"].inputs == ("r/body/1", "input")
    leak = ok.replace("s: add from body, input", "s: add from body, outer").replace(
        "r: Res(4)", "outer: relu\n r: Res(4)"
    )
    proc = _archc("check", "-", stdin=leak)
    assert proc.returncode == 1 and "error[E208]: no value named `outer`" in proc.stderr


def test_a_branch_reads_a_value_outside_its_group():
    spec = """
    network N { input 4x8x8
      a: conv2d(4, 1)
      g: add { relu; relu from a }
    }
    """
    g = archlang.compile_spec(spec).graph
    assert g.nodes["g/relu_2"].inputs == ("a",) and g.nodes["g/relu"].inputs == ("a",)
    assert g.nodes["g/add"].inputs == ("g/relu", "g/relu_2")


# ---- diagnostics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected", "caret"),
    [
        (
            "a: conv2d(4, 1)\n b: add from a, aa",
            "error[E208]: no value named `aa` before this layer",
            "help: did you mean `a`?",
        ),
        (
            "a: conv2d(4, 1)\n b: relu from a, input",
            "error[E210]: this layer reads one value; `from` names 2",
            "add from a, b",
        ),
        ("f: add { relu; relu from f }", "error[E211]: `f` is still being built here", "note: `f` starts here"),
        ("b: relu from later\n later: relu", "error[E208]: no value named `later`", "from"),
        ("a: conv2d(4, 3)\n c: concat from a, input", "error[E401]: concat inputs disagree in height×width", "3×8×8"),
        ("a: conv2d(5, 1)\n s: add from a, input", "error[E402]: add inputs disagree in shape", "5×8×8"),
        (
            "a: relu\n outputs dict(out, x = nothere)",
            "error[E208]: no value named `nothere`",
            "for the outputs key `x`",
        ),
        ("a: relu\n outputs dict(out, out)", "error[E302]: the outputs key `out` is named twice", "out"),
    ],
)
def test_named_value_mistakes_are_located(body, expected, caret):
    proc = _archc("check", "-", stdin=f"network N {{ input 3x8x8\n {body}\n}}\n")
    assert proc.returncode == 1, proc.stdout
    assert expected in proc.stderr and caret in proc.stderr
    assert "Traceback" not in proc.stderr and "--> <stdin>:" in proc.stderr


def test_a_value_never_read_is_a_warning_not_an_error():
    proc = _archc(
        "check", "-", stdin="network N { input 3x8x8\n a: conv2d(4, 1)\n b: conv2d(4, 1) from input\n relu from a\n}\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning[W201]: the value of `b` is never used" in proc.stderr and "<stdin>:3:5" in proc.stderr
    used = _archc(
        "check",
        "-",
        stdin="network N { input 3x8x8\n a: conv2d(4, 1)\n b: conv2d(4, 1) from input\n add from a, b\n}\n",
    )
    assert used.returncode == 0 and "W201" not in used.stderr


def test_a_returned_value_is_used():
    proc = _archc(
        "check",
        "-",
        stdin='network N { input 3x8x8\n a: conv2d(4, 1)\n relu from input\n outputs dict(out, "a" = a)\n}\n',
    )
    assert proc.returncode == 0 and "W201" not in proc.stderr, proc.stderr


def test_the_language_guide_example_compiles_and_runs(tmp_path):
    text = (ROOT / "docs" / "language.md").read_text()
    start = text.index("network Skips {")
    spec = text[start : text.index("\n}\n", start) + 3]
    compiled = archlang.compile_spec(spec)
    assert [k for k, _ in compiled.graph.returns] == ["out", "skip"] and not compiled.graph.warnings
    check_emitted_equals_built(compiled, tmp_path)


def test_an_optional_residual_turned_off_emits_no_self_assignment(tmp_path):
    spec = """
    block IR(c: int, use_res: bool = true) {
      add {
        if use_res { identity }
        { conv2d(c, 3, padding=1); relu }
      }
    }
    network N { input 4x8x8
      a: IR(4)
      b: IR(4, false)
    }
    """
    from archlang.backends.torch.codegen import emit

    compiled = archlang.compile_spec(spec)
    source = emit(compiled)
    assert "x = x + relu" in source  # the residual where it is on
    assert not any(line.split("#")[0].strip() == "x = x" for line in source.splitlines())
    check_emitted_equals_built(compiled, tmp_path)


# ---- a block sees its input; a loop carries a value ---------------------------------------------


def test_a_block_reads_its_inputs_channels_and_shape():
    spec = """
    block Expand(oup: int, t: int) {
      const hidden = in_channels * t
      add {
        if in_channels == oup and in_shape[1] > 4 { identity }
        { conv2d(hidden, 1); relu; conv2d(oup, 1) }
      }
    }
    network N { input 8x16x16
      a: Expand(8, 6)
      b: Expand(16, 6)
    }
    """
    g = archlang.compile_spec(spec).graph
    # by hand: a's input has 8 channels (== oup: a residual), hidden 48; b's has 8 (!= 16)
    assert g.nodes["a/conv2d"].shape == (48, 16, 16) and g.nodes["a/add"].inputs == ("a/identity", "a/conv2d_2")
    assert g.nodes["b/conv2d"].shape == (48, 16, 16) and g.nodes["b/add"].inputs == ("b/conv2d_2",)


def test_in_channels_outside_a_block_or_after_a_shape_error_is_located():
    outside = _archc("check", "-", stdin="network N { input 3x8x8\n conv2d(in_channels, 1)\n}\n")
    assert outside.returncode == 1 and "E301" in outside.stderr and "<stdin>:2:" in outside.stderr
    broken = _archc(
        "check",
        "-",
        stdin="block B() { conv2d(in_channels, 1) }\nnetwork N { input 3x8x8\n conv2d(4, 9)\n b: B()\n}\n",
    )
    # the 9×9 kernel on 8×8 is the error reported, at its own line, not a traceback
    assert broken.returncode == 1 and "<stdin>:3:" in broken.stderr and "Traceback" not in broken.stderr


def test_a_var_carries_a_value_through_a_loop():
    spec = """
    network D { input 3x8x8
      var c = 8
      for i in range(3) {
        "stage{i}": conv2d(c, 3, padding=1)
        c = c * 2
      }
      out: conv2d(c, 1)
    }
    """
    g = archlang.compile_spec(spec).graph
    assert [g.nodes[n].shape[0] for n in ("stage0", "stage1", "stage2", "out")] == [8, 16, 32, 64]


def test_a_const_that_shadows_in_a_loop_is_a_warning_and_assigning_a_const_an_error():
    shadow = _archc(
        "check",
        "-",
        stdin="network D { input 3x8x8\n const c = 8\n for i in range(3) {\n  const c = c * 2\n  conv2d(c, 1)\n }\n}\n",
    )
    assert shadow.returncode == 0 and "warning[W202]: this const `c` hides" in shadow.stderr
    assert shadow.stderr.count("W202") == 1 and "var c = ..." in shadow.stderr  # once, not per iteration
    assign = _archc("check", "-", stdin="network D { input 3x8x8\n const c = 8\n c = 9\n relu\n}\n")
    assert assign.returncode == 1 and "error[E312]: `c` is a constant or parameter" in assign.stderr


def test_a_dotted_name_reads_a_value_inside_a_sequence_or_group(tmp_path):
    spec = """
    network N { input 3x16x16
      s: { conv2d(4, 3, padding=1); mid: relu; conv2d(4, 3, padding=1) }
      g: concat { a: conv2d(2, 1); b: { relu; r2: relu } }
      x: add from s.mid, s.2
      y: add from g.b.r2, x
      z: concat from s.0, x, y, g
    }
    """
    compiled = archlang.compile_spec(spec)
    g = compiled.graph
    assert g.nodes["x"].inputs == ("s/mid", "s/2") and g.nodes["y"].inputs == ("g/b/r2", "x")
    assert g.nodes["z"].inputs == ("s/0", "x", "y", "g/concat") and g.nodes["z"].shape == (18, 16, 16)
    check_emitted_equals_built(compiled, tmp_path)
    proc = _archc("check", "-", stdin=spec.replace("from s.mid", "from s.midd"))
    assert (
        proc.returncode == 1
        and "no value named `midd` inside `s`" in proc.stderr
        and "did you mean `mid`" in proc.stderr
    )


def test_named_values_round_trip_through_the_ir_json():
    from ir_json import read_ir

    from archlang.frontend.ir import as_data
    from archlang.frontend.parser import parse

    spec = (
        "block B(c: int) { a: conv2d(c, 1)\n s: add from a, input }\n"
        "network N { input 3x8x8\n var w = 3\n w = w + 0\n b: B(w)\n"
        ' x: relu from b.a\n m: concat from x, "b".s, input\n outputs dict(out, "0" = x)\n}\n'
    )
    module = parse(spec, "n.arch")
    assert read_ir(json.loads(json.dumps(as_data(module)))) == module


UP = """
block Up(c: int) from x, skip {
  up: conv2d(c, 1)
  cat: concat from skip, up
  conv: { conv2d(c, 3, padding=1); relu }
}
network U {
  input 3x16x16
  e1: { conv2d(8, 3, padding=1); relu }
  e2: { maxpool(2, stride=2); conv2d(16, 3, padding=1); relu }
  mid: conv2d(16, 3, padding=1)
  d1: Up(8) from mid, e2
  head: conv2d(2, 1)
}
"""


def test_a_block_of_two_inputs_is_a_module_of_two_inputs(tmp_path):
    from archlang.backends.torch.codegen import emit

    compiled = archlang.compile_spec(UP)
    source = emit(compiled)
    assert "def __init__(self, in_channels: int, skip_channels: int, c: int) -> None:" in source
    assert "def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:" in source
    assert "self.d1 = Up(16, 16, 8)" in source and "x = self.d1(mid, x)" in source
    check_emitted_equals_built(compiled, tmp_path)
    ruff_clean(tmp_path)
    # by hand: cat = e2 (16) + up (8) channels
    assert compiled.graph.nodes["d1/cat"].shape == (24, 8, 8)
    assert compiled.graph.nodes["d1/cat"].inputs == ("e2/2", "d1/up") and compiled.graph.nodes["d1/up"].inputs == (
        "mid",
    )


def test_a_block_read_inside_gives_its_inner_values_out(tmp_path):
    from archlang.backends.torch.codegen import emit

    spec = """
    block Stage(c: int) {
      a: { conv2d(c, 3, padding=1); relu }
      b: { conv2d(c, 3, stride=2, padding=1); relu }
    }
    network P { input 3x16x16
      s1: Stage(8)
      s2: Stage(16)
      lat: conv2d(4, 1) from s1.a
      outputs dict("0" = lat, "1" = s2)
    }
    """
    compiled = archlang.compile_spec(spec)
    source = emit(compiled)
    assert "-> tuple[torch.Tensor, torch.Tensor]:" in source and "return b, x" in source
    assert "s1, s1_a = self.s1(x)" in source
    check_emitted_equals_built(compiled, tmp_path)
    ruff_clean(tmp_path)


@pytest.mark.parametrize(
    ("network", "message"),
    [
        ("d1: Up(8) from mid", "block `Up` reads 2 values; `from` names 1"),
        ("d1: Up(8)", "block `Up` reads 2 values; name them with `from`"),
        ("d1: Up(8) from mid, e2, e1", "block `Up` reads 2 values; `from` names 3"),
    ],
)
def test_a_block_given_the_wrong_number_of_values_is_located(network, message):
    proc = _archc("check", "-", stdin=UP.replace("d1: Up(8) from mid, e2", network))
    assert proc.returncode == 1 and f"error[E210]: {message}" in proc.stderr, proc.stderr
    assert "<stdin>:12:" in proc.stderr and "Traceback" not in proc.stderr


# ---- resizing to another value; the guide's pyramid and U-Net -------------------------------


def _guide_spec(header: str) -> str:
    text = (ROOT / "docs" / "language.md").read_text()
    start = text.index(header)
    block_start = text.rfind("```text\n", 0, start) + len("```text\n")
    return text[block_start : text.index("```", start)]


def test_a_resize_to_another_value_reads_its_size_when_the_forward_runs(tmp_path):
    from archlang.backends.torch.codegen import emit

    spec = """
    network Seg(num_classes: int = 3) {
      input 3x33x33
      b: { conv2d(8, 3, stride=2, padding=1); relu; conv2d(16, 3, stride=2, padding=1); relu }
      head: conv2d(num_classes, 1)
      out: upsample(mode="bilinear") from head, input
      small: crop from input, head
      outputs dict(out, small)
    }
    """
    compiled = archlang.compile_spec(spec)
    g = compiled.graph
    assert g.nodes["out"].shape == (3, 33, 33) and g.nodes["small"].shape == (3, 9, 9)
    assert g.nodes["out"].inputs == ("head", "input")
    source = emit(compiled)
    assert 'out = F.interpolate(head, size=x.shape[-2:], mode="bilinear")' in source
    assert "small = center_crop(x, head.shape[-2:])" in source
    check_emitted_equals_built(compiled, tmp_path)
    # the size follows the tensor: the same model on a 65×65 input resizes to 65×65, as
    # torchvision's segmentation heads do
    model = archlang.build(compiled).eval()
    x = torch.randn(1, 3, 65, 65)
    out = model(x)
    assert out["out"].shape == (1, 3, 65, 65) and out["small"].shape == (1, 3, 17, 17)
    head = model.head(model.b(x))
    torch.testing.assert_close(out["out"], F.interpolate(head, size=(65, 65), mode="bilinear", align_corners=False))


def test_a_size_given_twice_is_located():
    proc = _archc(
        "check", "-", stdin="network N { input 3x8x8\n a: conv2d(2, 1)\n u: upsample(size=4) from a, input\n}\n"
    )
    assert proc.returncode == 1 and "E206" in proc.stderr and "<stdin>:3:" in proc.stderr


def test_the_guides_pyramid_equals_torchvisions_feature_pyramid_network():
    from torchvision.ops import FeaturePyramidNetwork

    compiled = archlang.compile_spec(_guide_spec("network TinyFPN(width: int = 64) {"))
    torch.manual_seed(0)
    model = archlang.build(compiled).eval()
    fpn = FeaturePyramidNetwork([64, 128, 256], 64).eval()
    ours = model.state_dict()
    mapping = {
        "inner_blocks.0.0": "inner3.conv",
        "inner_blocks.1.0": "inner4.conv",
        "inner_blocks.2.0": "inner5",
        "layer_blocks.0.0": "p3",
        "layer_blocks.1.0": "p4",
        "layer_blocks.2.0": "p5",
    }
    fpn.load_state_dict({k: ours[f"{mapping[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}"] for k in fpn.state_dict()})
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        c3 = model.c3(x)
        c4 = model.c4(c3)
        c5 = model.c5(c4)
        theirs = fpn(OrderedDict([("0", c3), ("1", c4), ("2", c5)]))
        mine = model(x)
    assert list(mine) == list(theirs) == ["0", "1", "2"]
    for key in mine:
        torch.testing.assert_close(mine[key], theirs[key])


class HandUNet(nn.Module):
    """The guide's U-Net written in plain PyTorch (its module names follow the spec's)."""

    def __init__(self, num_classes: int = 2, base: int = 8) -> None:
        super().__init__()

        def double(cin, c):
            return nn.Sequential(nn.Conv2d(cin, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU())

        self.e1 = double(1, base)
        self.e2 = nn.Sequential(nn.MaxPool2d(2), double(base, base * 2))
        self.e3 = nn.Sequential(nn.MaxPool2d(2), double(base * 2, base * 4))
        self.e4 = nn.Sequential(nn.MaxPool2d(2), double(base * 4, base * 8))
        self.bottom = nn.Sequential(nn.MaxPool2d(2), double(base * 8, base * 16))
        self.ups = nn.ModuleList()
        for c in (base * 8, base * 4, base * 2, base):
            up = nn.Module()
            up.up = nn.ConvTranspose2d(c * 2, c, 2, stride=2)
            up.conv = double(c * 2, c)
            self.ups.append(up)
        self.head = nn.Conv2d(base, num_classes, 1)

    def forward(self, x):
        e1 = self.e1(x)
        e2 = self.e2(e1)
        e3 = self.e3(e2)
        e4 = self.e4(e3)
        y = self.bottom(e4)
        for up, skip in zip(self.ups, (e4, e3, e2, e1)):
            y = up.conv(torch.cat([skip, up.up(y)], 1))
        return self.head(y)


def test_the_guides_unet_equals_a_unet_written_in_pytorch(tmp_path):
    compiled = archlang.compile_spec(_guide_spec("network UNet(num_classes: int = 2"), {"base": 8})
    check_emitted_equals_built(compiled, tmp_path)
    model = archlang.build(compiled).eval()
    hand = HandUNet().eval()
    renamed = {}
    for key, value in model.state_dict().items():
        for i, d in enumerate(("d4", "d3", "d2", "d1")):
            if key.startswith(d + "."):
                key = f"ups.{i}." + key[len(d) + 1 :]
        # DoubleConv's unnamed convs are `conv` and `conv_2` in the block; 0 and 2 by hand
        renamed[re.sub(r"\.conv(_2)?\.(weight|bias)$", lambda m: f".{2 if m[1] else 0}.{m[2]}", key)] = value
    hand.load_state_dict(renamed, strict=True)
    assert sum(p.numel() for p in hand.parameters()) == analyze(compiled).totals.params
    x = torch.randn(2, 1, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(x), hand(x))
    assert compiled.graph.nodes["head"].shape == (2, 128, 128)


def test_a_named_group_says_what_it_merges_in_the_report():
    proc = _archc(
        "-", "--report", "--depth", "1", "--format", "csv", stdin=_guide_spec("network TinyFPN(width: int = 64) {")
    )
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row["op"] for row in csv.DictReader(io.StringIO(proc.stdout))}
    assert rows["inner4"] == "add of 2" and rows["inner3"] == "add of 2" and rows["p3"] == "conv2d"
