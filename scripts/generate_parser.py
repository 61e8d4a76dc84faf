"""Writes archlang/frontend/lalr_parser.py: Lark's standalone LALR parser for grammar.lark.

    python scripts/generate_parser.py           # rewrite the module after editing grammar.lark
    python scripts/generate_parser.py --check   # exit 1 if the committed module is stale

Building the parser from grammar.lark at run time (Lark's grammar parser, then the LALR
tables) costs more than the rest of an `archc check`; the generated module holds the tables,
ready to load, and Lark's parsing runtime, so archlang imports no `lark` to parse.

The output is made reproducible, so that tests/test_frontend.py can check that the committed
module is what this script makes of today's grammar.lark: Lark numbers parser states and
memoised terminals and rules in an order that changes from one run to the next (sets of
objects hashed by id), so states are renumbered breadth-first from the start states, along
symbols in name order, and terminals and rules sorted. The optional `regex` import of Lark's
runtime is dropped: archlang's grammar uses only `re` features, and `regex` takes ~0.1 s to
import; the `typing.cast` the runtime uses is imported.
"""

from __future__ import annotations

import argparse
import sys
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRAMMAR = ROOT / "archlang" / "frontend" / "grammar.lark"
OUTPUT = ROOT / "archlang" / "frontend" / "lalr_parser.py"
# The options archlang.frontend.parser relies on: `expr` parses name-template holes and --set
# values, positions give every IR node its span, placeholders keep optional children in place.
OPTIONS = {"parser": "lalr", "start": ["start", "expr"], "propagate_positions": True, "maybe_placeholders": True}

REGEX_IMPORT = """try:
    import regex
    _has_regex = True
except ImportError:
    _has_regex = False
"""
NO_REGEX = "_has_regex = False  # archlang: `regex` is not imported (scripts/generate_parser.py)\n"
# Lark's runtime calls typing.cast, which its standalone extract (1.3.1) does not import.
CAST = "from typing import cast  # archlang: Lark's extract uses it without importing it\n"


class _Canonical:
    """What ``gen_standalone`` reads of a Lark instance, with its tables in canonical order."""

    def __init__(self, lark_inst):
        self.lark_inst = lark_inst

    def memo_serialize(self, types):
        data, memo = self.lark_inst.memo_serialize(types)
        return canonical(data, memo)


def _rule_key(rule: dict) -> tuple:
    return (
        rule["origin"]["name"],
        rule["order"],
        tuple(s["name"] for s in rule["expansion"]),
        repr(rule["alias"]),
        repr(sorted(rule["options"].items())),
    )


def canonical(data: dict, memo: dict) -> tuple[dict, dict]:
    """``(data, memo)`` of ``Lark.memo_serialize`` renumbered: the same parser, one spelling."""
    terminals = sorted((k for k, v in memo.items() if v["__type__"] == "TerminalDef"), key=lambda k: memo[k]["name"])
    rules = sorted((k for k, v in memo.items() if v["__type__"] == "Rule"), key=lambda k: _rule_key(memo[k]))
    assert len(terminals) + len(rules) == len(memo), "memo holds only terminals and rules"
    assert len({_rule_key(memo[k]) for k in rules}) == len(rules), "rule keys are unique"
    new_id = {old: new for new, old in enumerate([*terminals, *rules])}

    def ref(r: dict) -> dict:
        return {"@": new_id[r["@"]]}

    front = data["parser"]
    front["lexer_conf"]["terminals"] = sorted((ref(r) for r in front["lexer_conf"]["terminals"]), key=lambda r: r["@"])
    front["parser_conf"]["rules"] = sorted((ref(r) for r in front["parser_conf"]["rules"]), key=lambda r: r["@"])
    data["rules"] = sorted((ref(r) for r in data["rules"]), key=lambda r: r["@"])

    table = front["parser"]
    names = table["tokens"]  # index -> symbol name
    token = {name: i for i, name in enumerate(sorted(names.values()))}
    order: dict[int, int] = {}  # old state -> new state, breadth-first from the start states
    queue = deque(table["start_states"][s] for s in sorted(table["start_states"]))
    while queue:
        state = queue.popleft()
        if state in order:
            continue
        order[state] = len(order)
        for _, (action, arg) in sorted(table["states"][state].items(), key=lambda kv: names[kv[0]]):
            if action == 0:  # shift (or goto): arg is the next state
                queue.append(arg)
    assert len(order) == len(table["states"]), "every state is reachable from a start state"

    def action(a: tuple) -> tuple:
        kind, arg = a
        return (kind, order[arg]) if kind == 0 else (kind, ref(arg))

    table["tokens"] = {i: name for name, i in sorted(token.items(), key=lambda kv: kv[1])}
    states = {}
    for old, new in sorted(order.items(), key=lambda kv: kv[1]):
        row = {token[names[sym]]: action(a) for sym, a in table["states"][old].items()}
        states[new] = dict(sorted(row.items()))
    table["states"] = states
    table["start_states"] = {s: order[table["start_states"][s]] for s in sorted(table["start_states"])}
    table["end_states"] = {s: order[table["end_states"][s]] for s in sorted(table["end_states"])}
    return data, {new_id[old]: memo[old] for old in [*terminals, *rules]}


def generate() -> str:
    """The module's text, from grammar.lark and the installed Lark."""
    from lark import Lark
    from lark.tools.standalone import gen_standalone

    lark_inst = Lark(GRAMMAR.read_text(encoding="utf-8"), **OPTIONS)
    lines: list[str] = []
    gen_standalone(_Canonical(lark_inst), output=lambda *parts: lines.append(" ".join(map(str, parts)) + "\n"))
    text = "".join(lines)
    if REGEX_IMPORT not in text:
        raise SystemExit("Lark's standalone runtime changed: update REGEX_IMPORT in scripts/generate_parser.py")
    header = (
        f"# Generated by scripts/generate_parser.py from archlang/frontend/grammar.lark: do not edit.\n"
        f"# Options: {OPTIONS}\n"
    )
    return header + CAST + text.replace(REGEX_IMPORT, NO_REGEX, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that the committed module is up to date")
    opts = ap.parse_args()
    text = generate()
    if opts.check:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run python scripts/generate_parser.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
