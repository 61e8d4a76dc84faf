"""Language constructs, continued: aux heads and outputs, inits, constants, imports and
conditionals, and the README's example. Expected facts are worked out by hand in each test."""

from __future__ import annotations

import pytest
from spec_graph import attrs, graph, ids, shape

from archlang import compile_spec
from archlang.diagnostics import SpecError
from archlang.ops import IMAGENET_MEAN, IMAGENET_STD

# ---- aux heads, outputs, names ----------------------------------------------------------


def test_aux_heads_and_outputs():
    g = graph(
        "  stem: conv(4, 3, padding=1)\n  aux side at stem: { flatten; fc: linear(10) }\n"
        "  outputs Out(logits, side_logits = side)\n  flatten\n  fc: linear(5)"
    )
    assert g.aux_outputs == {"side": "side/fc"}
    assert shape(g, "side/fc") == (10,) and shape(g, "fc") == (5,)
    assert g.nodes["side/0"].inputs == ("stem",)
    assert g.nodes["side/fc"].aux == "side" and g.nodes["fc"].aux is None
    out = g.outputs_type
    assert out.name == "Out" and out.fields == (("logits", None), ("side_logits", "side"))
    assert g.output == "fc"


def test_sequential_numbering_in_named_branches():
    g = graph("  unit conv = conv_bn_relu\n  b: { conv(4, 1); pool: maxpool(2); conv(4, 3, padding=1) }")
    # like nn.Sequential: unnamed children are numbered by position, named ones keep their name
    assert [n for n in ids(g) if n.startswith("b/")] == [
        "b/0/conv",
        "b/0/bn",
        "b/0/relu",
        "b/pool",
        "b/2/conv",
        "b/2/bn",
        "b/2/relu",
    ]
    assert g.scopes["b"].kind == "branch"


def test_transform_input():
    g = graph("  transform_input\n  relu")
    assert attrs(g, "transform_input") == {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}


def test_init_scheme_and_override():
    g = graph("  init trunc_normal(std=0.1)\n  a: conv(4, 1)\n  flatten\n  b: linear(3, init_std=0.001)\n  r: relu")
    assert g.nodes["a"].init == {"scheme": "trunc_normal", "std": 0.1, "a": -2.0, "b": 2.0, "bias": None}
    assert g.nodes["b"].init["std"] == 0.001
    assert g.nodes["r"].init is None
    assert graph("  a: conv(4, 1)").nodes["a"].init is None  # torch's default init


def test_kaiming_init_with_torch_defaults_and_bias_constant():
    g = graph('  init kaiming_normal(mode="fan_out", nonlinearity="relu", bias=0)\n  a: conv(4, 1)')
    assert g.nodes["a"].init == {
        "scheme": "kaiming_normal",
        "mode": "fan_out",
        "nonlinearity": "relu",
        "a": 0.0,  # torch.nn.init.kaiming_normal_'s default negative slope
        "bias": 0.0,
    }
    assert graph("  init xavier_uniform\n  a: conv(4, 1)").nodes["a"].init["gain"] == 1.0


@pytest.mark.parametrize(
    "init, code",
    [
        ('kaiming_normal(mode="fan_middle")', "E205"),
        ('kaiming_normal(nonlinearity="swish")', "E205"),
        ("kaiming_normal(0.1)", "E203"),
        ("kaiming_normal(std=0.1)", "E202"),
        ("normal(std=-1)", "E205"),
        ('normal(bias="zero")', "E205"),
        ("kaiming", "E201"),
    ],
)
def test_bad_init_arguments_are_located(init, code):
    with pytest.raises(SpecError) as err:
        graph(f"  init {init}\n  a: conv(4, 1)")
    assert err.value.diagnostics[0].code == code


# ---- comments, constants, imports, conditionals -----------------------------------------


def test_comments_and_semicolons():
    g = graph("  # a comment line\n  a: conv(4, 1)  # trailing comment\n  relu; b: relu;  # two on a line")
    assert ids(g)[1:] == ["a", "relu", "b"]


def test_constants_top_level_and_local():
    g = graph(
        "  const local = base * 2\n  a: conv(local, 1)\n  b: conv(widths[1], 1)",
        pre="const base = 3\nconst widths = [5, 7]",
    )
    assert attrs(g, "a")["out_channels"] == 6 and attrs(g, "b")["out_channels"] == 7


def test_imports_relative_to_the_importing_file(tmp_path, monkeypatch):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "outer.arch").write_text('import "inner.arch"\nblock Outer() { Inner(); relu }\n')
    (tmp_path / "lib" / "inner.arch").write_text("const inner_width = 9\nblock Inner() { conv(inner_width, 1) }\n")
    (tmp_path / "net.arch").write_text('import "lib/outer.arch"\nnetwork N {\n  input 3x8x8\n  o: Outer()\n}\n')
    monkeypatch.chdir(tmp_path / "lib")  # resolution must not depend on the working directory
    g = compile_spec(str(tmp_path / "net.arch")).graph
    assert attrs(g, "o/Inner/conv")["out_channels"] == 9


def test_if_elif_else():
    body = '  if mode == "a" { a: relu } elif mode == "b" { b: relu } else { c: relu }'
    for mode in "abc":
        g = graph(body, header="network N(mode: str)", params={"mode": mode})
        assert ids(g)[1:] == [mode]


def test_if_with_less_or_equal_follows_python():
    # No bundled spec or fuzzer case uses `<=`; the tie n == 2 is where it differs from `<`.
    body = "  if n <= 2 { low: relu } elif n >= 4 { high: relu } else { mid: relu }"
    for n in range(6):
        g = graph(body, header="network N(n: int)", params={"n": n})
        assert ids(g)[1:] == ["low" if n <= 2 else "high" if n >= 4 else "mid"], n


def test_if_expression():
    g = graph("  conv(if big then 16 else 4, 1)", header="network N(big: bool = false)")
    assert attrs(g, "conv")["out_channels"] == 4
    g = graph("  conv(if big then 16 else 4, 1)", header="network N(big: bool = false)", params={"big": True})
    assert attrs(g, "conv")["out_channels"] == 16


# ---- the README's example ---------------------------------------------------------------


def test_readme_inception_module_example():
    from conftest import ROOT

    from archlang.analysis.summary import count_params

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The language", 1)[1]
    text = section.split("```text\n", 1)[1].split("```", 1)[0]
    g = compile_spec(text).graph
    # 64 + 64 + 96 + pool_features 32 channels (FACTS.md: Mixed_5b is 256×35×35)
    assert g.nodes["Mixed_5b/concat"].shape == (256, 35, 35)
    # FACTS.md: Mixed_5b has 255,904 parameters; fc adds 256·1000 weights + 1000 biases
    assert count_params(g) == 255_904 + 256 * 1000 + 1000
    assert g.scopes["Mixed_5b"].template == "InceptionA"
