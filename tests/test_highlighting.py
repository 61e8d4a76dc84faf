"""Syntax highlighting: the Pygments lexer (entry point, no error tokens on any bundled or
random spec, tokens by role) and the TextMate grammar (valid, same keywords, and the
scopes it gives when applied to a spec)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT, tracked
from hypothesis import given, settings
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Comment, Error, Keyword, Name, Number, String
from strategies import valid_specs

from archlang.frontend.keywords import KEYWORDS
from archlang.tools.pygments_lexer import ArchLexer

SPECS = [*tracked("specs/**/*.arch"), ROOT / "archlang" / "frontend" / "prelude.arch"]
TM_GRAMMAR = ROOT / "editors" / "arch.tmLanguage.json"


def _lex(text: str):
    return list(ArchLexer(stripnl=False).get_tokens(text))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_bundled_specs_lex_without_errors(path):
    text = path.read_text()
    tokens = _lex(text)
    assert [v for t, v in tokens if t in Error] == []
    assert "".join(v for _, v in tokens) == text


@settings(max_examples=30, deadline=None)
@given(valid_specs())
def test_random_specs_lex_without_errors(text):
    assert not [v for t, v in _lex(text) if t in Error]


def test_tokens_by_role():
    text = 'block B(c: int) { conv1: conv(c, 1x3, eps=1e-5)  # x\n "m_{i}": relu }'
    got = {(str(t), v) for t, v in _lex(text) if v.strip()}
    for expected in [
        (Keyword.Declaration, "block"),
        (Name.Class, "B"),
        (Keyword.Type, "int"),
        (Name.Label, "conv1"),
        (Name.Function, "conv"),
        (Number.Integer, "1x3"),
        (Number.Float, "1e-5"),
        (Comment.Single, "# x"),
        (String.Interpol, "{i}"),
    ]:
        assert (str(expected[0]), expected[1]) in got
    assert [v for t, v in _lex("conv(1, padding='same')") if t in Error]  # single quotes are E102


def test_lexer_is_registered_by_entry_point():
    # needs `pip install` (CI installs the project); the entry point is in pyproject.toml
    assert type(get_lexer_by_name("arch")).__name__ == "ArchLexer"
    assert type(get_lexer_for_filename("net.arch")).__name__ == "ArchLexer"


def test_pygmentize_inception_v3_has_no_error_tokens():
    proc = subprocess.run(
        [sys.executable, "-m", "pygments", "-l", "arch", "-f", "raw", str(ROOT / "specs" / "inception_v3.arch")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Token.Name.Function" in proc.stdout and "Token.Error" not in proc.stdout


# ---- TextMate ------------------------------------------------------------------------------


def _tm():
    return json.loads(TM_GRAMMAR.read_text())


def _patterns(grammar):
    repo = grammar["repository"]
    for p in grammar["patterns"]:
        yield repo[p["include"][1:]] if "include" in p else p


def _scopes(grammar, line: str) -> dict[str, str]:
    """Apply the grammar's top-level patterns to one line as a TextMate engine does (at
    each position the earliest match wins, then the first pattern); token -> scope."""
    compiled = []
    for p in _patterns(grammar):
        if "begin" in p:  # the string rule: one line at most
            compiled.append((re.compile(p["begin"] + r'(?:\\.|[^"\\])*(?:' + p["end"] + ")"), p["name"], None))
        else:
            compiled.append((re.compile(p["match"]), p.get("name"), p.get("captures")))
    out, pos = {}, 0
    while pos < len(line):
        found = [(m.start(), i, m) for i, (rx, _, _) in enumerate(compiled) if (m := rx.search(line, pos))]
        if not found:
            break
        _, i, m = min(found, key=lambda f: (f[0], f[1]))
        _, name, captures = compiled[i]
        if captures:
            for group, scope in captures.items():
                out[m.group(int(group))] = scope["name"]
        else:
            out[m.group()] = name
        pos = max(m.end(), pos + 1)
    return out


def test_textmate_grammar_is_valid_and_in_step_with_the_lexer():
    grammar = _tm()
    assert grammar["scopeName"] == "source.arch" and "arch" in grammar["fileTypes"]
    words = set()
    for p in _patterns(grammar):
        for key in ("match", "begin", "end"):
            if key in p:
                re.compile(p[key])  # Oniguruma syntax used here is also Python's
                words |= set(re.findall(r"[a-z]+", re.sub(r"\\[a-zA-Z]", "", p[key])))
    assert set(KEYWORDS) <= words


def test_textmate_scopes_on_a_spec_line():
    got = _scopes(_tm(), '  inception3a: Inception(64, 1x7, 0.5, paper=true)  # "x"')
    assert got["inception3a"] == "entity.name.label.arch"
    assert got["Inception"] == "entity.name.function.arch"
    assert got["64"] == "constant.numeric.integer.arch"
    assert got["1x7"] == "constant.numeric.dimensions.arch"
    assert got["0.5"] == "constant.numeric.float.arch"
    assert got["true"] == "constant.language.arch"
    assert got['# "x"'] == "comment.line.number-sign.arch"
    got = _scopes(_tm(), 'network N(c: int) { "m_{i}": concat { relu } }')
    assert got["network"] == "storage.type.arch" and got["N"] == "entity.name.type.arch"
    assert got["int"] == "support.type.arch" and got['"m_{i}"'] == "string.quoted.double.arch"
    assert got["concat"] == "keyword.control.group.arch"
    got = _scopes(_tm(), "network N { se: mul { identity; sigmoid } }")
    assert got["mul"] == "keyword.control.group.arch"
    assert (str(Keyword), "mul") in {(str(t), v) for t, v in _lex("mul { identity }")}


def test_every_word_of_the_grammar_is_a_keyword_of_the_highlighters():
    # a keyword added to grammar.lark (`from`) but not to keywords.py would be lexed as a name
    grammar = (ROOT / "archlang" / "frontend" / "grammar.lark").read_text()
    code = "\n".join(line.split("#")[0] for line in grammar.splitlines())
    words = set(re.findall(r'"([a-z]+)"', code))
    assert words == set(KEYWORDS)
