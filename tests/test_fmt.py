"""``archc fmt``: the canonical layout (a messy spec against its layout written out by
hand), idempotence and meaning preservation on random specs with random spacing, line
breaks and comments, the bundled specs being fmt-clean, and the command's exit codes."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from conftest import ROOT, tracked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import valid_specs

from archlang.cli.main import main
from archlang.frontend.ir import as_data
from archlang.frontend.parser import parse
from archlang.tools.fmt import format_source, ir_without_spans

BUNDLED = [*tracked("specs/*.arch"), *tracked("specs/lib/*.arch")]

MESSY = """

# header comment


const  k=-1+ -2**3   # trailing
block B(a:int=1,
  b :int = a*2) {
    conv(a,3,stride=1 ,padding= - k) ;
  ;  relu;;maxpool( 2 )


    { conv(1, 1x3) ;relu ;}          # aligned by the author: kept at column 38
}
network N(
    num_classes: int = 10,
) {
input 3x32x32
   c1 :conv(8,[1,2][0]) # c
\t"l{k}": B( 4 , b = 2 )
  x, y: { conv(2, 1); relu }
  for ( n , c ) in [ ( "a" , 1 ) , ( "b" , 2 ) ] {
    "{n}": conv(c, 1)

  }
  add{conv(2,1)
      identity}
  fc : linear(num_classes)
  outputs O(logits)
}

"""

# The same spec laid out by the rules of docs/tools.md, by hand.
EXPECTED = """\
# header comment

const k = -1 + -2 ** 3  # trailing
block B(a: int = 1,
        b: int = a * 2) {
  conv(a, 3, stride=1, padding=-k)
  relu; maxpool(2)

  { conv(1, 1x3); relu }             # aligned by the author: kept at column 38
}
network N(
  num_classes: int = 10,
) {
  input 3x32x32
  c1: conv(8, [1, 2][0])  # c
  "l{k}": B(4, b=2)
  x, y: { conv(2, 1); relu }
  for (n, c) in [("a", 1), ("b", 2)] {
    "{n}": conv(c, 1)
  }
  add { conv(2, 1)
        identity }
  fc: linear(num_classes)
  outputs O(logits)
}
"""


def test_messy_spec_gets_the_canonical_layout():
    assert format_source(MESSY) == EXPECTED
    assert format_source(EXPECTED) == EXPECTED
    assert ir_without_spans(parse(MESSY)) == ir_without_spans(parse(EXPECTED))


def test_ir_comparison_sees_a_real_change():
    # the check format_source relies on is not vacuous
    assert ir_without_spans(parse(EXPECTED)) != ir_without_spans(parse(EXPECTED.replace("conv(2, 1)", "conv(3, 1)")))


@pytest.mark.parametrize(
    "source, expected",
    [
        ("network N{input 3;relu}", "network N { input 3; relu }\n"),
        ("network N {}", "network N {}\n"),
        ("const x = - - 1", "const x = --1\n"),
        ("const x=a[0]+[1][0]", "const x = a[0] + [1][0]\n"),
        ("const x = f( a , b , )", "const x = f(a, b,)\n"),
        ("const t = (3 ,)", "const t = (3,)\n"),
        ("const x = if a then-1 else not b", "const x = if a then -1 else not b\n"),
        ("const x = 2**-1", "const x = 2 ** -1\n"),
        ('const s="a  #  b"  #  c  ', 'const s = "a  #  b"  #  c\n'),
        ("network N(a: int = 1) {\n  aux h at x: { relu }\n}", "network N(a: int = 1) {\n  aux h at x: { relu }\n}\n"),
        ("# only a comment", "# only a comment\n"),
        (
            "network N{input 3x4x4;mul{identity;{adaptive_avgpool(1);sigmoid}};permute((0,2,3,1));layer_scale(1e-6)}",
            "network N { input 3x4x4; mul { identity; { adaptive_avgpool(1); sigmoid } }; permute((0, 2, 3, 1));"
            " layer_scale(1e-6) }\n",
        ),
        ("", ""),
    ],
)
def test_small_cases(source, expected):
    assert format_source(source) == expected


# A statement's continuation lines (an expression going on outside brackets) never sit at
# the statement's own indentation: they line up with the code after a `=` on its line, else
# hang 4 deeper; `elif`, `else {` and a body's `{` start lines at the statement's indentation.
CONTINUED = """\
network R(depth: int = 18) {
  const blocks = if depth == 18 then [2, 2, 2, 2]
  else if depth == 34 then [3, 4, 6,
  3]
      else [3, 8, 36, 3]
  input 3x224x224
}
const k =
if a then 1
# the default
else 2
network N {
  input if a
  then 3x32x32 else 3x64x64
  x, y:
  conv(1)
  if a and
  b {
  relu
  }
  else {
  tanh
  }
}
"""

CONTINUED_EXPECTED = """\
network R(depth: int = 18) {
  const blocks = if depth == 18 then [2, 2, 2, 2]
                 else if depth == 34 then [3, 4, 6,
                                           3]
                 else [3, 8, 36, 3]
  input 3x224x224
}
const k =
    if a then 1
    # the default
    else 2
network N {
  input if a
      then 3x32x32 else 3x64x64
  x, y:
      conv(1)
  if a and
      b {
    relu
  }
  else {
    tanh
  }
}
"""


def test_continuation_lines_align_after_the_equals_or_hang():
    assert format_source(CONTINUED) == CONTINUED_EXPECTED
    assert format_source(CONTINUED_EXPECTED) == CONTINUED_EXPECTED
    assert ir_without_spans(parse(CONTINUED)) == ir_without_spans(parse(CONTINUED_EXPECTED))
    assert _misplaced_continuations(CONTINUED_EXPECTED) == []
    assert _misplaced_continuations(CONTINUED) == [3, 4, 9, 11, 14, 16, 18]  # the check can fail


_STATEMENT_KINDS = {"layer", "input", "const_stmt", "unit", "init", "outputs", "aux", "if", "for", "repeat"}
_STATEMENT_KINDS |= {"import", "block", "network"}
_OWN_LINE = re.compile(r"#|[})\]{]|elif\b|else\s*([{#]|$)")  # a comment, a bracket, a clause


def _misplaced_continuations(text: str) -> list[int]:
    """Lines (1-based) that continue a statement but are not indented deeper than the line
    the statement starts on. Statements and their extents come from the parse."""
    spans = []
    todo = [as_data(parse(text))]
    while todo:
        value = todo.pop()
        if isinstance(value, dict):
            if value.get("kind") in _STATEMENT_KINDS:
                span = value["span"]
                spans.append(((span["line"], span["col"]), (span["end_line"], span["end_col"])))
            todo.extend(value.values())
        elif isinstance(value, (list, tuple)):
            todo.extend(value)
    lines = text.split("\n")
    indent = [len(line) - len(line.lstrip()) for line in lines]
    bad = []
    for n, line in enumerate(lines, start=1):
        col = indent[n - 1] + 1
        if not line.strip() or _OWN_LINE.match(line.lstrip()) or any(start == (n, col) for start, _ in spans):
            continue
        owners = [start for start, end in spans if start < (n, col) < end]
        if owners and indent[n - 1] <= indent[max(owners)[0] - 1]:
            bad.append(n)
    return bad


def test_bundled_specs_are_fmt_clean():
    result = CliRunner().invoke(
        main, ["fmt", "--check", *map(str, BUNDLED), str(ROOT / "archlang" / "frontend" / "prelude.arch")]
    )
    assert result.exit_code == 0, result.output


# ---- random specs, random layouts ----------------------------------------------------------

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[0-9]+(?:\.[0-9]*)?[eE][+-]?[0-9]+|[A-Za-z0-9_.]+|\*\*|//|[=!<>]=|\S')


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


@st.composite
def respaced(draw, text: str) -> str:
    """The same tokens, each line's gaps refilled with random spaces and tabs."""
    out = []
    for line in text.split("\n"):
        tokens = _tokens(line)
        gaps = [draw(st.text(" \t", min_size=1, max_size=3)) for _ in tokens]
        indent = draw(st.text(" \t", max_size=6))
        out.append(indent + "".join(t + g for t, g in zip(tokens, gaps)))
    return "\n".join(out)


@st.composite
def relaid(draw, text: str) -> tuple[str, list[str]]:
    """The same tokens with random line breaks, blank lines and comments between them."""
    comments = []
    out = []
    for token in _tokens(text):
        out.append(token)
        gap = draw(st.sampled_from([" ", " ", " ", "\n", "\n\n\n", "  ", "comment", "\n\t"]))
        if gap == "comment":
            comments.append(f"# note {len(comments)}")
            gap = draw(st.sampled_from(["  ", " ", "      "])) + comments[-1] + "\n" * draw(st.integers(1, 3))
        out.append(gap)
    return "".join(out), comments


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), valid_specs())
def test_spacing_never_matters(data, text):
    canonical = format_source(text)
    assert format_source(canonical) == canonical
    assert format_source(data.draw(respaced(text))) == canonical
    assert ir_without_spans(parse(canonical)) == ir_without_spans(parse(text))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), valid_specs())
def test_any_layout_formats_idempotently_to_the_same_ir(data, text):
    layout, comments = data.draw(relaid(text))
    formatted = format_source(layout)
    assert format_source(formatted) == formatted
    assert ir_without_spans(parse(formatted)) == ir_without_spans(parse(text))
    assert re.findall(r"# note \d+", formatted) == comments  # every comment, in order
    assert _misplaced_continuations(formatted) == []
    assert "\n\n\n" not in formatted and not formatted.startswith("\n")
    assert all(line == line.rstrip() for line in formatted.split("\n"))


# ---- the command ----------------------------------------------------------------------------


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *args, **kw: runner.invoke(main, list(args), env={"NO_COLOR": "1"}, **kw)


def test_fmt_rewrites_in_place_and_check_and_diff_report(run, tmp_path):
    messy = tmp_path / "messy.arch"
    messy.write_text(MESSY)
    before = messy.read_text()
    checked = run("fmt", "--check", str(messy))
    assert checked.exit_code == 1 and f"would reformat {messy}" in checked.stderr
    diffed = run("fmt", "--diff", str(messy))
    assert diffed.exit_code == 1 and "+  fc: linear(num_classes)" in diffed.stdout
    assert messy.read_text() == before  # --check and --diff write nothing
    rewritten = run("fmt", str(messy))
    assert rewritten.exit_code == 0 and messy.read_text() == EXPECTED
    assert run("fmt", "--check", str(messy)).exit_code == 0


def test_fmt_stdin_to_stdout(run):
    result = run("fmt", "-", input="network N{input 3;relu}")
    assert result.exit_code == 0 and result.stdout == "network N { input 3; relu }\n"


def test_fmt_bad_input_is_a_diagnostic(run, tmp_path):
    bad = tmp_path / "bad.arch"
    bad.write_text("network N {\n  input 3\n  conv( }\n")
    good = tmp_path / "good.arch"
    good.write_text("network N {}\n")
    result = run("fmt", "--check", str(bad), str(good), str(tmp_path / "missing.arch"))
    assert result.exit_code == 1
    assert "error[E101]" in result.stderr and "bad.arch:3:9" in result.stderr and "^" in result.stderr
    assert "error[E104]" in result.stderr and "missing.arch" in result.stderr
    assert "Traceback" not in result.output
    assert bad.read_text() == "network N {\n  input 3\n  conv( }\n"


def test_pre_commit_hook_runs_the_check(run, tmp_path):
    import shlex

    import yaml

    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "archc-fmt" and re.search(hook["files"], "specs/lib/inception.arch")
    program, *args = shlex.split(hook["entry"])
    assert program == "archc" and args[:2] == ["fmt", "--check"]
    messy = tmp_path / "messy.arch"
    messy.write_text(MESSY)
    assert run(*args, str(messy)).exit_code == 1  # pre-commit passes the staged files last
    assert run(*args, *map(str, BUNDLED)).exit_code == 0


def test_a_path_read_with_from_keeps_its_dots_unspaced():
    text = 'network A {\n  input 3x8x8\n  s: { a: conv(4, 1); b: conv(4, 1) }\n  c: relu from s.a\n  d: relu from s."b"\n}\n'
    assert format_source(text, "<t>") == text
