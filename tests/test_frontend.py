"""The front end's contracts that no other test pins: errors raised to Python carry what the
CLI prints, lowering leaves the process as it found it, name templates are parsed once, and
every statement kind has a handler. Each test fails on the code before the fix it covers."""

from __future__ import annotations

import gc
import re
import sys
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from archlang import compile_spec
from archlang.analysis import run_passes
from archlang.diagnostics import Span, SpecError, line_col
from archlang.frontend import ir
from archlang.frontend import parser as syntax
from archlang.frontend.loader import load_text
from archlang.graph.shape_text import format_shape
from archlang.lower import lower
from archlang.lower.layers import BODY, BRANCHES, STATEMENTS
from archlang.lower.walk import CONTROL
from archlang.ops import ArgError, Op
from archlang.ops.binding import bind_args
from archlang.ops.param_counts import conv_weight_count

HEAD = "network Deep {\n  input 3x8x8\n"


def test_spec_error_from_python_carries_the_help_the_cli_prints():
    with pytest.raises(SpecError) as info:
        compile_spec("googlenet", {"num_clases": 10})
    text = str(info.value)
    assert "error[E505]: network `GoogLeNet` has no parameter `num_clases`" in text
    assert "help: did you mean `num_classes`?" in text
    assert "network GoogLeNet(" in text and "^" in text  # the source line and a caret under it
    assert info.value.sources is not None  # declared, set by the compiler


def test_spec_error_sources_are_a_constructor_argument():
    err = SpecError(SpecError(load_error()).diagnostics)
    assert err.sources is None
    assert "E101" in str(err)


def load_error():
    try:
        load_text("network N { input 3x8x8 relu(")
    except SpecError as err:
        assert err.sources is not None and "<string>" in err.sources.texts
        return err.diagnostics
    raise AssertionError("no error")


def test_arg_error_declares_code_and_argument():
    assert (ArgError("bad").code, ArgError("bad").arg) == ("E205", None)
    with pytest.raises(ArgError) as info:
        bind_args(Op.CONV2D, [8, 3], {"strid": 2})
    assert (info.value.code, info.value.arg) == ("E202", "strid")
    with pytest.raises(ArgError) as info:
        bind_args(Op.CONV2D, [8, 0], {})
    assert (info.value.code, info.value.arg) == ("E205", 1)  # the second positional argument


# 63 nested block instances, 36 around a concat, and a call nested 190 deep at the bottom:
# the deepest spec the limits (MAX_LOWER_DEPTH, MAX_BLOCK_DEPTH, MAX_NESTING) let through.
DEEPEST = "".join(
    f"block B{i}() {{ "
    + ("concat { " if i < 36 else "")
    + (f"B{i + 1}()" if i < 62 else "relu\n const z = " + "abs(" * 190 + "1" + ")" * 190 + "\n")
    + (" }" if i < 36 else "")
    + " }\n"
    for i in range(63)
) + (HEAD + "  B0()\n}")


def test_compiling_and_analysing_leave_the_recursion_limit_and_the_collector_alone():
    # Other threads keep a working collector throughout; nothing is left changed after.
    limit, thresholds = sys.getrecursionlimit(), gc.get_threshold()
    seen, done = set(), threading.Event()

    def watch():
        while not done.is_set():
            seen.add((sys.getrecursionlimit(), gc.isenabled()))

    watcher = threading.Thread(target=watch)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # let the watcher look often: one analysis takes ~2 ms
    watcher.start()
    try:
        for _ in range(3):
            run_passes(compile_spec(DEEPEST).graph)
        in_threads = [threading.Thread(target=lambda: run_passes(compile_spec("googlenet").graph)) for _ in range(4)]
        for t in in_threads:
            t.start()
        for t in in_threads:
            t.join()
    finally:
        done.set()
        watcher.join()
        sys.setswitchinterval(switch)
    assert seen == {(limit, True)}
    assert (sys.getrecursionlimit(), gc.get_threshold()) == (limit, thresholds)


def test_deepest_spec_compiles_from_a_thread_with_the_default_limit():
    # A fresh thread starts with an empty stack; lowering itself must fit in 1000 frames.
    assert sys.getrecursionlimit() >= 1000
    result = []
    thread = threading.Thread(target=lambda: result.append(len(compile_spec(DEEPEST).graph)))
    thread.start()
    thread.join()
    assert result == [1 + 1 + 36]


def test_too_little_stack_left_is_a_diagnostic_not_a_traceback():
    program = load_text(DEEPEST)
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        with pytest.raises(SpecError) as info:
            lower(program)
    finally:
        sys.setrecursionlimit(saved)
    assert info.value.diagnostics[0].code == "E601"
    assert "recursion limit" in info.value.diagnostics[0].message
    assert info.value.diagnostics[0].span is not None  # issue 14: every E601 is located


def test_name_templates_are_parsed_with_the_spec_not_while_lowering(monkeypatch):
    # A hole text no other test uses, so no memo can hide a parse.
    program = load_text(HEAD + '  repeat 3 as k { "layer_{k * 1009 + 17}": relu }\n}')
    calls = []
    lark = syntax.parser()
    real = lark.parse
    monkeypatch.setattr(lark, "parse", lambda *a, **k: calls.append(a) or real(*a, **k))
    graph = lower(program)
    assert calls == []
    assert {"layer_17", "layer_1026", "layer_2035"} <= set(graph)


def test_a_bad_template_hole_is_located_at_its_label():
    with pytest.raises(SpecError) as info:
        load_text(HEAD + '  "x{1 +}": relu\n}')
    d = info.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E101", 3, 3)
    assert "bad expression `1 +` in a name template" in d.message


def test_every_statement_kind_has_one_handler():
    kinds = {cls.model_fields["kind"].default for cls in ir.Stmt.__origin__.__args__}
    assert kinds == set(STATEMENTS) | set(CONTROL)
    assert not set(STATEMENTS) & set(CONTROL)
    assert BODY.handlers is STATEMENTS and set(BRANCHES.handlers) == {"layer"}


@given(st.text(alphabet="ab\n", max_size=30), st.data())
def test_line_col_counts_lines_and_columns_from_one(text, data):
    offset = data.draw(st.integers(0, len(text)))
    lines = text[:offset].split("\n")
    assert line_col(text, offset) == (len(lines), len(lines[-1]) + 1)
    assert Span.at_offset("f", text, offset) == Span.point("f", len(lines), len(lines[-1]) + 1)


def test_format_shape():
    assert format_shape((192, 35, 35)) == "192×35×35"
    assert format_shape((1000,), "x") == "1000"
    assert format_shape((3, 299, 299), "x") == "3x299x299"


def test_conv_weight_count_by_hand():
    # torchvision Inception3 Conv2d_2b_3x3: 32 -> 64 channels, 3x3: 64 * 32 * 9 weights
    assert conv_weight_count(32, 64, (3, 3)) == 18_432
    # a depthwise 3x3 over 32 channels: one 3x3 filter per channel
    assert conv_weight_count(32, 32, (3, 3), groups=32) == 288
    # a 1x7 conv, 192 -> 160 (Inception C): 160 * 192 * 7
    assert conv_weight_count(192, 160, (1, 7)) == 215_040


def test_every_archlang_package_is_shipped():
    # A package missing from pyproject's explicit list imports from the source tree and
    # fails only after `pip install .` (archlang.lower was one).
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    listed = set(re.findall(r'"(archlang(?:\.\w+)*)"', text.split("packages =", 1)[1].split("]", 1)[0]))
    found = {
        ".".join(("archlang", *p.parent.relative_to(root / "archlang").parts))
        for p in (root / "archlang").rglob("__init__.py")
    }
    assert found <= listed, found - listed
