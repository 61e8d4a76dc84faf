"""Deep nesting and huge files: a diagnostic or the right answer, never Python's
RecursionError."""

from __future__ import annotations

import sys

import pytest
from hostile import HEAD, archc

from archlang import compile_spec
from archlang.diagnostics import SpecError

# ---- deep nesting: a diagnostic or the right answer, never RecursionError -----------------

N = 10_000
DEEP = {
    "braces": HEAD + "  " + "{ " * N + "relu" + " }" * N + "\n}",
    "concat": HEAD + "  " + "concat { " * N + "relu" + " }" * N + "\n}",
    "add": HEAD + "  " + "add { " * N + "relu" + " }" * N + "\n}",
    "if": HEAD + "  " + "if true { " * N + "relu" + " }" * N + "\n}",
    "for": HEAD + "  " + "for i in [1] { " * N + "relu" + " }" * N + "\n}",
    "brackets": "const x = " + "[" * N + "1" + "]" * N + "\n" + HEAD + "  const y = x\n  relu\n}",
    "unary_minus": "const x = " + "- " * N + "1\n" + HEAD + "  const y = x\n  relu\n}",
    "not": "const x = " + "not " * N + "true\n" + HEAD + "  const y = x\n  relu\n}",
    "if_expr": "const x = " + "if true then " * N + "1" + " else 2" * N + "\n" + HEAD + "  const y = x\n  relu\n}",
    "sum": "const x = " + " + ".join(["1"] * N) + "\n" + HEAD + "  const y = x\n  relu\n}",
    "power": "const x = " + " ** ".join(["1"] * N) + "\n" + HEAD + "  const y = x\n  relu\n}",
    "index": "const x = (1,)" + "[0]" * N + "\n" + HEAD + "  const y = x\n  relu\n}",
    "call": "const x = " + "abs(" * N + "1" + ")" * N + "\n" + HEAD + "  const y = x\n  relu\n}",
    "arg": HEAD + "  conv(" + "(" * N + "8" + ")" * N + ", 3)\n}",
    "unclosed": HEAD + "  " + "{ " * N + "relu\n}",
    "unopened": HEAD + "  relu" + " }" * N + "\n",
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_ten_thousand_levels(name):
    try:
        graph = compile_spec(DEEP[name]).graph
    except SpecError as err:
        for d in err.diagnostics:
            assert d.code and d.message and d.span is not None, d
        assert err.diagnostics[0].code in {"E601", "E101", "E102"}, err.diagnostics
    else:
        assert name == "arg"  # parentheses add no tree depth: conv(((8)), 3) is conv(8, 3)
        assert graph.nodes[graph.output].shape == (8, 6, 6)


def test_deepest_legal_nesting_compiles_and_emits_ir(tmp_path):
    # 90 nested sequences: within MAX_NESTING (2 tree levels each) and MAX_LOWER_DEPTH
    spec = tmp_path / "deep.arch"
    spec.write_text(HEAD + "  " + "{ " * 90 + "relu" + " }" * 90 + "\n}")
    assert len(compile_spec(str(spec)).graph) == 2
    result = archc(spec, "--emit", "ir")
    assert result.exit_code == 0, result.output
    assert result.stdout.count('"kind": "seq"') == 90


def test_deepest_legal_recursion_fits_from_the_default_recursion_limit():
    # 63 nested block instances, 36 of them around a concat (99 levels of MAX_LOWER_DEPTH),
    # and at the bottom a call nested 190 deep (within MAX_NESTING): ~1,300 frames, more
    # than Python's default limit of 1000, which lowering raises for itself.
    blocks = "".join(
        f"block B{i}() {{ "
        + ("concat { " if i < 36 else "")
        + (f"B{i + 1}()" if i < 62 else "relu\n const z = " + "abs(" * 190 + "1" + ")" * 190 + "\n")
        + (" }" if i < 36 else "")
        + " }\n"
        for i in range(63)
    )
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        graph = compile_spec(blocks + HEAD + "  B0()\n}").graph
    finally:
        sys.setrecursionlimit(max(saved, sys.getrecursionlimit()))
    # input, one relu, and one single-branch concat per concat level
    assert len(graph) == 1 + 1 + 36


@pytest.mark.slow  # ~15-25 s: Lark parses ~10k tokens a second here
def test_a_hundred_thousand_lines(tmp_path):
    spec = tmp_path / "long.arch"
    spec.write_text(HEAD + "  relu\n" * 100_000 + "}\n")
    g = compile_spec(str(spec)).graph
    assert len(g) == 100_001 and g.output == "relu_100000"
