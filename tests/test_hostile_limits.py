"""Hostile specs against the resource limits: every limit answers with a located diagnostic
(code, the limit, how to raise it) before time or memory run away. docs/limits.md lists
every limit; ``fuzz/limits_bench.py`` measures the worst cases (these tests assert only
behaviour)."""

from __future__ import annotations

import pytest
from hostile import HEAD, archc, at, one_error

from archlang import compile_spec, lower
from archlang.frontend import expressions as evaluate_mod
from archlang.frontend import loader
from archlang.frontend import parser as syntax
from archlang.ops import MAX_DIM

# ---- resource limits ------------------------------------------------------------------


def test_repeat_a_billion_is_refused_at_the_count():
    d = one_error(HEAD + "  repeat 1000000000 { conv(8, 3) }\n}")
    assert d.code == "E603" and at(d) == (3, 10)
    assert "1000000000" in d.message and f"{lower.DEFAULT_MAX_NODES}" in d.message
    assert "--max-nodes" in d.help


def test_max_nodes_counts_primitive_ops_and_can_be_raised(tmp_path):
    # input + 40 relus = 41 nodes: over a limit of 40, within 41
    spec = tmp_path / "n.arch"
    spec.write_text(HEAD + "  repeat 40 { relu }\n}")
    d = one_error(str(spec), max_nodes=40)
    assert d.code == "E603" and "more than 40 ops" in d.message and "--max-nodes" in d.help
    assert len(compile_spec(str(spec), max_nodes=41).graph) == 41
    refused = archc("check", spec, "--max-nodes", "40")
    assert refused.exit_code == 1 and "error[E603]" in refused.output
    assert archc("check", spec, "--max-nodes", "41").exit_code == 0


def test_a_block_that_instantiates_itself():
    d = one_error("block B() { relu\n B() }\n" + HEAD + "  B()\n}")
    assert d.code == "E602" and at(d) == (2, 2)
    assert any("B -> B" in n.message for n in d.notes)


def test_mutual_recursion_shows_the_whole_chain():
    src = "block A() { B() }\nblock B() { C() }\nblock C() { A() }\n" + HEAD + "  A()\n}"
    d = one_error(src)
    assert d.code == "E602" and at(d) == (3, 13)  # the call that closes the loop: A() inside C
    assert any("A -> B -> C -> A" in n.message for n in d.notes)


def test_block_instantiation_depth():
    n = lower.MAX_BLOCK_DEPTH + 5
    blocks = "".join(f"block B{i}() {{ B{i + 1}() }}\n" for i in range(n)) + f"block B{n}() {{ relu }}\n"
    d = one_error(blocks + HEAD + "  B0()\n}")
    assert d.code == "E602" and f"more than {lower.MAX_BLOCK_DEPTH} deep" in d.message
    # B0 .. B63 are open when B63's body calls B64: line 64, `block B63() { ` is 14 columns
    assert at(d) == (lower.MAX_BLOCK_DEPTH, 15)


def test_deep_bodies_inside_a_chain_of_blocks_are_stopped_before_recursion_runs_out():
    # Each block alone is legal (90 nested braces), but 60 of them inside each other would
    # need ~30,000 Python frames: refused by the dynamic depth count, with the block chain.
    depth, count = 90, 60
    blocks = "".join(
        f"block B{i}() {{ " + "{ " * depth + (f"B{i + 1}()" if i < count else "relu") + " }" * depth + " }\n"
        for i in range(count + 1)
    )
    d = one_error(blocks + HEAD + "  B0()\n}")
    assert d.code == "E601" and f"more than {lower.MAX_LOWER_DEPTH} levels" in d.message
    assert d.span is not None and any("B0 -> B1" in n.message for n in d.notes)


def test_ten_thousand_nested_concats():
    d = one_error(HEAD + "  " + "concat { " * 10_000 + "relu" + " }" * 10_000 + "\n}")
    assert d.code == "E601" and d.span.line == 3 and str(syntax.MAX_NESTING) in d.message


def test_ten_thousand_sibling_branches_compile():
    g = compile_spec(HEAD + "  concat { " + "relu " * 10_000 + "}\n}").graph
    # input + 10,000 relus + one concat; 10,000 branches of 3 channels each
    assert len(g) == 10_002
    assert g.nodes[g.graph["output"]]["shape"] == (30_000, 8, 8)


@pytest.mark.parametrize(
    "call, arg",
    [
        ("conv(1000000000000, 3)", "out_channels"),
        ("conv(8, 1000000000000)", "kernel"),
        ("conv2d(8, 3, stride=1000000000000)", "stride"),
        ("maxpool(1000000000000)", "kernel"),
    ],
)
def test_absurd_sizes_are_refused_with_the_limit(call, arg):
    d = one_error(HEAD + f"  {call}\n}}")
    assert d.code == "E205" and d.span.line == 3
    assert f"{MAX_DIM}" in d.message and arg in d.message


def test_absurd_linear_and_input():
    assert one_error("network N { input 8\n linear(1000000000000) }").code == "E205"
    d = one_error("network N { input 3x1000000000000x8\n relu }")
    assert d.code == "E303" and at(d) == (1, 19)


@pytest.mark.parametrize(
    "expr, code",
    [
        ("2 ** 10 ** 10", "E604"),
        ("7 ** 10 ** 6", "E604"),
        ("2 ** 63", "E604"),
        ("10 ** 18 * 10", "E604"),
        ("(-8) ** 0.5", "E305"),  # Python gives a complex number
        ("10.0 ** 400", "E604"),
        ("range(0, 10, 0)", "E305"),  # was a ValueError traceback
        ("range(10 ** 7)", "E603"),
        ("str(range(100000))", "E604"),  # 588,890 characters
        ("int(1e300)", "E604"),
    ],
)
def test_explosive_expressions(expr, code):
    d = one_error(f"const x = {expr}\n" + HEAD + "  const y = x\n  relu\n}")
    assert d.code == code and d.span.line == 1


def test_large_but_legal_powers():
    # 2**40 was refused by an over-eager size estimate; 2**62 is the documented bound
    g = compile_spec("const a = 2 ** 40\nconst b = 2 ** 62\n" + HEAD + "  const c = b - a\n  relu\n}").graph
    assert len(g) == 2


def test_doubling_sequences_and_strings_stop_at_their_limits():
    seq = "const a0 = (1, 2)\n" + "".join(f"const a{i + 1} = a{i} + a{i}\n" for i in range(30))
    d = one_error(seq + HEAD + "  const z = a30\n  relu\n}")
    assert d.code == "E604" and "sequence too long" in d.message
    text = 'const s0 = "ab"\n' + "".join(f"const s{i + 1} = s{i} + s{i}\n" for i in range(30))
    d = one_error(text + HEAD + "  const z = s30\n  relu\n}")
    assert d.code == "E604" and "string too long" in d.message


def test_nested_loops_without_nodes_run_out_of_evaluation_steps():
    src = HEAD + "  for i in range(1000000) {\n    for j in range(1000000) { const k = i }\n  }\n  relu\n}"
    d = one_error(src)
    assert d.code == "E605" and "evaluation steps" in d.message and "--max-nodes" in d.help
    steps = max(lower.MIN_STEPS, lower.STEPS_PER_NODE * lower.DEFAULT_MAX_NODES)
    assert f"{steps:,}" in d.message


def test_the_step_budget_scales_with_max_nodes():
    # range(100000) builds 100,000 items (1 + 100,000 // 8 = 12,501 steps), then 100,000
    # iterations of one statement each (200,000 steps): ~212,500 steps, over the floor of
    # 100,000 (--max-nodes 10), within 2 x 150,000
    src = HEAD + "  for i in range(100000) { const k = i }\n  relu\n}"
    assert one_error(src, max_nodes=10).code == "E605"
    assert len(compile_spec(src, max_nodes=150_000).graph) == 2


def test_the_budget_belongs_to_one_compilation():
    # a spent budget does not leak into the next compilation (nor outside any)
    src = HEAD + "  for i in range(300000) { const k = i }\n  relu\n}"
    one_error(src, max_nodes=10)
    assert evaluate_mod._BUDGET.get() is None
    assert len(compile_spec(HEAD + "  relu\n}").graph) == 2


def test_too_many_tokens(monkeypatch):
    d = one_error(HEAD + "  relu\n" * (syntax.MAX_TOKENS + 10) + "}")
    assert d.code == "E603" and f"{syntax.MAX_TOKENS:,} tokens" in d.message
    assert "MAX_TOKENS" in d.help and d.span is not None


def test_file_size_limit(monkeypatch, tmp_path):
    spec = tmp_path / "big.arch"
    spec.write_text(HEAD + "  relu\n}" + " " * 200)
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 100)
    d = one_error(str(spec))
    assert d.code == "E603" and "100 bytes" in d.message
