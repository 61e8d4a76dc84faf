"""archlang/frontend/lalr_parser.py, the parser generated ahead of time from grammar.lark by
scripts/generate_parser.py: it is what the script makes of today's grammar (so it cannot go
stale), and it parses as a Lark parser built from the grammar at run time does."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import pytest
from lark import Lark, Token
from lark.exceptions import UnexpectedInput

from archlang.frontend import lalr_parser
from archlang.frontend.parser import parser

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "archlang" / "frontend" / "lalr_parser.py"
SOURCES = sorted([*ROOT.glob("specs/**/*.arch"), *ROOT.glob("examples/*.arch"), *ROOT.glob("tests/bad/**/*.arch")])


def _script():
    spec = importlib.util.spec_from_file_location("generate_parser", ROOT / "scripts" / "generate_parser.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _tables(text: str) -> tuple:
    module = types.ModuleType("tables")
    exec(compile(text, "<generated>", "exec"), module.__dict__)
    return module.DATA, module.MEMO


def test_the_committed_parser_is_generated_from_grammar_lark():
    import lark

    fresh, committed = _script().generate(), GENERATED.read_text(encoding="utf-8")
    hint = "run `python scripts/generate_parser.py` after editing grammar.lark"
    if lalr_parser.__version__ == lark.__version__:
        assert fresh == committed, hint
    else:  # another Lark, so another runtime: the tables must still be the grammar's
        assert _tables(fresh) == _tables(committed), hint


@pytest.fixture(scope="module")
def built_from_grammar() -> Lark:
    return Lark((ROOT / "archlang" / "frontend" / "grammar.lark").read_text(encoding="utf-8"), **_script().OPTIONS)


def _shape(node) -> tuple:
    """A parse tree as plain tuples: rule names, token types and texts, and every position."""
    if isinstance(node, (Token, lalr_parser.Token)):
        return ("token", node.type, str(node), node.line, node.column, node.end_line, node.end_column)
    if node is None:  # maybe_placeholders: an optional part that is absent
        return ("absent",)
    meta = node.meta
    where = (meta.line, meta.column, meta.end_line, meta.end_column) if not meta.empty else ()
    return (node.data, where, *map(_shape, node.children))


def _outcome(parse, text: str, start: str):
    try:
        return _shape(parse(text, start=start))
    except (UnexpectedInput, lalr_parser.UnexpectedInput) as err:
        expected = sorted(getattr(err, "expected", ()) or getattr(err, "allowed", ()) or ())
        return (type(err).__name__, err.line, err.column, expected)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_it_parses_as_the_grammar_does(built_from_grammar, path):
    text = path.read_bytes().decode("utf-8", errors="replace")  # tests/bad has a file that is not UTF-8
    assert _outcome(parser().parse, text, "start") == _outcome(built_from_grammar.parse, text, "start")


@pytest.mark.parametrize("text", ["1 + 2 * x", "f(a, b=3)[0] ** -2", "i if i > 0 else None", "3x224x224", "1 +", ")"])
def test_expressions_parse_as_the_grammar_does(built_from_grammar, text):
    assert _outcome(parser().parse, text, "expr") == _outcome(built_from_grammar.parse, text, "expr")


def test_trees_are_those_of_the_tools_lark():
    # sanity of the comparison above: it sees rule names and positions, not just "some tree"
    shape = _outcome(parser().parse, "network N {\n  input 3x8x8\n  relu\n}\n", "start")
    assert shape[0] == "start" and shape[1] == (1, 1, 4, 2)
    network = shape[2]
    assert network[:4] == ("network_def", (1, 1, 4, 2), ("token", "NAME", "N", 1, 9, 1, 10), ("absent",))
    assert network[4][2] == (
        "input_stmt",
        (2, 3, 2, 14),
        ("dims_lit", (2, 9, 2, 14), ("token", "DIMS", "3x8x8", 2, 9, 2, 14)),
    )
