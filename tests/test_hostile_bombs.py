"""Expansion bombs inside the limits (issue 14, findings 2 and 6): each is refused before it
is expanded, with a located diagnostic, quickly. The spec files of tests/bad/bombs/ pin
codes and locations; these tests cover what needs a generated file or a property beyond
the location. ``fuzz/limits_bench.py`` measures time and memory of each."""

from __future__ import annotations

import sys
import threading
import time

from hostile import HEAD, archc, at, errors, one_error

from archlang import compile_spec, lower
from archlang.frontend import expressions as evaluate
from archlang.lower import layer_names as names
from archlang.lower import state


def test_a_value_is_measured_by_its_logical_size_not_its_memory():
    # [f, f] holds two references: 2 + 2 * 10 items. Nine levels of ten-fold sharing are
    # (10**9 - 1) / 9 * 10 items, over the 2**20 cap from the sixth level (1,111,110).
    lines = ["const f0 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    lines += [f"const f{i} = [{', '.join([f'f{i - 1}'] * 10)}]" for i in range(1, 9)]
    d = one_error("\n".join(lines) + "\n" + HEAD + "  const z = f8\n  relu\n}")
    assert d.code == "E604" and at(d) == (6, 12) and "1,111,110" in d.message
    # the level below is 111,110 items: legal, and so is using it
    assert len(compile_spec("\n".join(lines[:5]) + "\n" + HEAD + "  const z = len(f4)\n  relu\n}").graph) == 2


def test_sequences_joined_with_plus_carry_their_nested_size():
    # a = 2**10 items; b = [a] * 2**10 by doubling: 2**20 + 2**10 + ... > 2**20
    src = "const a = range(1024)\nconst b0 = [a]\n" + "".join(f"const b{i + 1} = b{i} + b{i}\n" for i in range(10))
    d = one_error(src + HEAD + "  const z = b10\n  relu\n}")
    assert d.code == "E604" and at(d) == (12, 13)


def test_a_long_string_literal_is_refused_where_it_is_written():
    text = "a" * (evaluate.MAX_STRING + 1)
    d = one_error(HEAD + f'  const s = "{text}"\n  relu\n}}')
    assert d.code == "E604" and at(d) == (3, 13)
    # exactly at the limit is fine
    ok = "a" * evaluate.MAX_STRING
    assert len(compile_spec(HEAD + f'  const s = "{ok}"\n  relu\n}}').graph) == 2


def test_names_are_capped_before_they_are_built():
    long = "a" * 200
    d = one_error(f'const s = "{long}"\n' + HEAD + '  "{s}{s}": relu\n}')
    assert d.code == "E207" and at(d) == (4, 3) and str(names.MAX_NAME) in d.message
    assert len(compile_spec(HEAD + f'  "{"b" * names.MAX_NAME}": relu\n}}').graph) == 2


def test_one_error_repeated_by_a_loop_stops_compilation_early():
    start = time.perf_counter()
    diags = errors(HEAD + "  repeat 150000 { convv(8, 3) }\n}")
    assert [d.code for d in diags] == ["E201"] and time.perf_counter() - start < 5
    # independent errors are still all reported (up to MAX_REPORTED_ERRORS)
    body = "".join(f"  bad{i}(8)\n" for i in range(30))
    assert len(errors(HEAD + "  relu\n" + body + "}")) == state.MAX_REPORTED_ERRORS


def test_a_concat_of_many_mismatched_branches_is_one_error_with_few_notes():
    # branch 1 keeps 8x8, the 300 others halve it: 301 branches, 8 shown
    diags = errors(HEAD + "  concat { relu repeat 300 { maxpool(2) } }\n}")
    assert [d.code for d in diags] == ["E401"]
    notes = diags[0].notes
    assert len(notes) == 9 and "293 more branches" in notes[-1].message


def test_the_up_front_bound_counts_only_what_every_expansion_adds():
    # `if` adds its smallest branch, a loop over a local value is unknown: both legal
    legal = (
        "block B(n: int) { for i in range(n) { relu } }\n"
        + HEAD
        + "  repeat 100 { if false { repeat 1000 { relu } } else { relu } }\n  B(3)\n}"
    )
    assert len(compile_spec(legal, max_nodes=200).graph) == 1 + 100 + 3
    # a shadowed name is not read from the top-level constant
    shadow = "const n = 1000000\n" + HEAD + "  const n = 2\n  repeat 10 { repeat n { relu } }\n}"
    assert len(compile_spec(shadow, max_nodes=100).graph) == 1 + 20


def test_the_default_graph_limit_is_used_by_archc(tmp_path):
    # 200,000 (docs/limits.md): refused up front, before any node is built
    assert lower.DEFAULT_MAX_NODES == 200_000
    spec = tmp_path / "big.arch"
    spec.write_text(HEAD + "  repeat 2 { repeat 100000 { relu } }\n}\n")
    result = archc("check", spec)
    assert result.exit_code == 1 and "E603" in result.output and "200000" in result.output


def test_a_chain_of_995_imports_loads(tmp_path):
    count = 995
    (tmp_path / "main.arch").write_text('import "f1.arch"\n' + HEAD + "  B1()\n}\n")
    for i in range(1, count + 1):
        nxt = f'import "f{i + 1}.arch"\n' if i < count else ""
        (tmp_path / f"f{i}.arch").write_text(nxt + f"block B{i}() {{ relu }}\n")
    program = compile_spec(str(tmp_path / "main.arch")).program
    assert len(program.modules) == 1 + count + 1  # main, the chain, the prelude


def test_nesting_with_little_stack_left_is_located():
    # Compile from deep inside Python's stack: the walker turns the RecursionError into an
    # E601 at the statement where it happened, not an unlocated one.
    src = HEAD + "  " + "{ " * 90 + "relu" + " }" * 90 + "\n}"
    found = {}

    def deep(n):
        if n:
            return deep(n - 1)
        try:
            compile_spec(src)
        except Exception as err:  # noqa: BLE001 - recorded for the assertion below
            found["err"] = err

    def run():
        deep(sys.getrecursionlimit() - 250)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    diags = found["err"].diagnostics
    assert diags[0].code == "E601" and diags[0].span is not None and diags[0].span.line == 3
