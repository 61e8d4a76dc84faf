"""The bad-spec corpus: every file in tests/bad/ must fail with exactly the diagnostics its
header names, located, rendered with a caret, and never with a traceback.

Header (line 1): ``# expect: CODE LINE:COL [FILE]`` — several separated by ``;`` when one
run reports several independent errors; FILE (relative to the spec) when the error is in an
imported file. Optional line 2: ``# params: NAME=VALUE`` (what ``--set`` would pass).
Files under tests/bad/ without a header (the other half of an import cycle, libraries) are
helpers, not cases. The expected locations were checked by reading each file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT

from archlang import compile_spec
from archlang.diagnostics import SpecError, render_all

BAD = Path(__file__).resolve().parent / "bad"
CARET = re.compile(r"^\s*\|\s*\^+", re.MULTILINE)


@dataclass(frozen=True)
class Expected:
    code: str
    line: int
    col: int
    file: Path


def _header(path: Path) -> tuple[list[Expected], dict]:
    lines = path.read_bytes().split(b"\n")
    head = lines[0].decode()
    assert head.startswith("# expect: "), path
    expected = []
    for part in head[len("# expect: ") :].split(";"):
        code, loc, *where = part.split()
        line, col = map(int, loc.split(":"))
        file = (path.parent / where[0]).resolve() if where else path.resolve()
        expected.append(Expected(code, line, col, file))
    params = {}
    if len(lines) > 1 and lines[1].startswith(b"# params:"):
        name, _, value = lines[1][len(b"# params:") :].decode().strip().partition("=")
        params[name] = value
    return expected, params


CASES = sorted(p for p in BAD.rglob("*.arch") if p.read_bytes().startswith(b"# expect:"))


def _id(path: Path) -> str:
    return str(path.relative_to(BAD).with_suffix(""))


def _compile_error(path: Path, params: dict) -> SpecError:
    with pytest.raises(SpecError) as info:
        compile_spec(str(path), params or None)
    return info.value


def test_corpus_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=_id)
def test_bad_spec(path):
    expected, params = _header(path)
    err = _compile_error(path, params)
    got = [
        Expected(d.code, d.span.line, d.span.col, Path(d.span.file).resolve()) if d.span else d.code
        for d in err.diagnostics
    ]
    assert got == expected
    rendered = render_all(err.diagnostics, getattr(err, "sources", None))
    for diag in err.diagnostics:
        assert f"error[{diag.code}]" in rendered
        assert f"{diag.span.file}:{diag.span.line}:{diag.span.col}" in rendered
    assert len(CARET.findall(rendered)) >= len(expected)
    assert "Traceback" not in rendered


# Every error class the language defines has at least one case (see docs/language.md).
REQUIRED_CODES = {
    "E101",
    "E102",
    "E103",
    "E105",
    "E106",
    "E107",
    "E201",
    "E202",
    "E203",
    "E204",
    "E205",
    "E206",
    "E207",
    "E208",
    "E209",
    "E210",
    "E211",
    "E301",
    "E302",
    "E303",
    "E304",
    "E305",
    "E309",
    "E312",
    "E401",
    "E402",
    "E403",
    "E404",
    "E405",
    "E406",
    "E407",
    "E501",
    "E502",
    "E503",
    "E505",
    "E506",
    "E508",
    "E601",
    "E602",
    "E603",
    "E604",
}


def test_corpus_covers_every_error_class():
    codes = {e.code for p in CASES for e in _header(p)[0]}
    assert REQUIRED_CODES <= codes, sorted(REQUIRED_CODES - codes)


# ---- what the messages say --------------------------------------------------------------


def _diag(name: str, index: int = 0):
    path = BAD / f"{name}.arch"
    return _compile_error(path, _header(path)[1]).diagnostics[index]


@pytest.mark.parametrize(
    "name, suggestion",
    [
        ("unknown_layer", "conv"),
        ("unknown_block", "Stem"),
        ("wrong_arg_name", "stride"),
        ("block_wrong_arg_name", "width"),
        ("undefined_name", "width"),
        ("unknown_function", "max"),
        ("aux_unknown_point", "stem"),
        ("unknown_set_param", "num_classes"),
        ("unknown_unit_style", "conv_bn_relu"),
    ],
)
def test_did_you_mean(name, suggestion):
    assert f"did you mean `{suggestion}`?" in _diag(name).help


@pytest.mark.parametrize(
    "name, expected_tokens",
    [
        ("syntax_missing_paren", ["')'", "','"]),
        ("syntax_keyword_as_name", ["'('", "a name"]),
        ("unexpected_eof_in_args", ["')'"]),
    ],
)
def test_syntax_errors_list_expected_tokens(name, expected_tokens):
    help_text = _diag(name).help
    assert help_text.startswith("expected ")
    for token in expected_tokens:
        assert token in help_text


def test_unexpected_eof_and_quotes():
    # a body left open to the end of the file is reported at its `{`, as rustc does
    eof = _diag("unexpected_eof")
    assert eof.message == "unclosed `{`" and eof.label == "this `{` is never closed"
    assert [n.message for n in eof.notes] == ["the parser stopped here: unexpected end of file"]
    assert "double quotes" in _diag("string_single_quote").help
    assert "not closed" in _diag("string_unclosed").help


def test_concat_mismatch_names_each_branch_and_shape():
    diag = _diag("concat_mismatch")
    notes = [n.message for n in diag.notes]
    # branch a: 1x1 conv keeps 32x32; branch b: 3x3 valid conv gives 30x30
    assert notes == ["branch 1 ends at `a` with 8×32×32", "branch 2 ends at `b` with 8×30×30"]
    assert [n.span.line for n in diag.notes] == [5, 6]


def test_add_mismatch_names_each_branch_and_shape():
    diag = _diag("add_mismatch")
    assert [n.message for n in diag.notes] == [
        "branch 1 ends at `conv` with 3×32×32",
        "branch 2 ends at `conv_2` with 4×32×32",
    ]


def test_independent_shape_errors_are_reported_together():
    first, second = _compile_error(BAD / "two_concat_mismatches.arch", {}).diagnostics
    assert "`first/concat`" in first.message and "`second/concat`" in second.message
    # Strided: 3x3 pad 1 keeps 32; maxpool 3/2 pad 1 gives floor((32 + 2 - 3) / 2) + 1 = 16
    assert [n.message for n in second.notes][1] == "branch 2 ends at `second/maxpool` with 3×16×16"


def test_spatial_zero_names_the_layer():
    # 8 -> 3 -> 1 -> (1 - 3) < 0: the third conv
    diag = _diag("spatial_zero")
    assert "`conv_3`" in diag.message and "1×1 input" in diag.message


def test_recursive_block_shows_the_chain():
    diag = _diag("recursive_block")
    assert any("A -> B -> A" in n.message for n in diag.notes)


def test_import_cycle_shows_both_files():
    diag = _compile_error(BAD / "imports" / "cycle_a.arch", {}).diagnostics[0]
    (note,) = diag.notes
    assert re.search(r"cycle_a\.arch -> .*cycle_b\.arch -> .*cycle_a\.arch", note.message)


# ---- the same through `archc check` -----------------------------------------------------

CLI_CASES = [
    "syntax_missing_paren",
    "unknown_layer",
    "concat_mismatch",
    "spatial_zero",
    "int_overflow",
    "imports/cycle_a",
    "not_utf8",
    "unknown_set_param",
]


def _check_args(name: str) -> tuple[list[str], list]:
    path = BAD / f"{name}.arch"
    expected, params = _header(path)
    args = ["check", os.path.relpath(path, ROOT)]
    for key, value in params.items():
        args += ["--set", f"{key}={value}"]
    return args, expected


def _assert_located(out: str, expected) -> None:
    first = expected[0]
    assert "Traceback" not in out
    assert f"error[{first.code}]" in out
    assert f"{os.path.relpath(first.file, ROOT)}:{first.line}:{first.col}" in out
    assert CARET.search(out)


@pytest.mark.parametrize("name", CLI_CASES)
def test_archc_check_exit_1_with_location(name, run, monkeypatch):
    monkeypatch.chdir(ROOT)  # paths are shown relative to the working directory
    args, expected = _check_args(name)
    result = run(*args)
    assert result.exit_code == 1, result.output
    _assert_located(result.stderr, expected)


def test_archc_check_as_a_whole_process():
    """The same as a real process (exit status, stderr, no traceback): one case stands for
    all, the in-process runs above cover each kind of error."""
    args, expected = _check_args(CLI_CASES[0])
    proc = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stdout
    _assert_located(proc.stderr, expected)
