"""``archc fmt``: one canonical layout for ``.arch`` files.

The formatter works on the token stream of the grammar (``grammar.lark``, lexed by Lark,
comments included); the text is parsed first (diagnostics for bad input) and after (the
IR must not change). It keeps the author's line breaks, as ``gofmt`` does, and makes
everything within and around them canonical:

* one space between words and around binary operators and ``=`` (none around a keyword
  argument's ``=`` inside a call), none inside ``(`` ``[``, one inside ``{ ... }`` on one
  line, ``,`` ``;`` ``:`` followed by one space;
* indentation from the brackets still open: two spaces per hanging ``{`` / ``(`` / ``[``;
  when a bracket is followed by code on its line, the lines inside line up with that code
  (``network N(a: int,`` / ``          b: int)``);
* a continuation line of a statement outside brackets (which line starts a statement comes
  from the parse: newlines are not significant) lines up with the code after the
  statement's ``=`` (``const blocks = if ...`` / ``else ...`` under the ``if``), else hangs
  ``CONTINUATION`` (4) deeper than the statement's line; ``elif``, ``else {`` and a body's
  ``{`` on their own line line up with their statement;
* runs of blank lines become one; none at the start or end of the file, right after an
  opening bracket or right before a closing one;
* ``;`` only between two statements on one line;
* comments kept verbatim on their lines; a trailing comment two spaces after the code,
  or further right where the author aligned it.

Formatting never changes meaning: :func:`format_source` re-parses its output and checks
that the IR equals the input's (spans aside). ``format_source(format_source(x)) ==
format_source(x)``.
"""

from __future__ import annotations

import functools
import itertools
import typing
from dataclasses import dataclass
from pathlib import Path

from archlang.diagnostics import Diagnostic, SpecError

INDENT = 2
CONTINUATION = 2 * INDENT  # a hanging continuation line, deeper than a body's lines
_OPEN = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSE = set(_OPEN.values())
_NO_SPACE_BEFORE = {"RPAR", "RSQB", "COMMA", "SEMICOLON", "COLON"}
_WORDS = {"NAME", "INT", "FLOAT", "DIMS", "STRING"}
# Tokens an expression can end with: a `-` after one of them is binary, else unary.
_OPERAND_END = {*_WORDS, "RPAR", "RSQB", "TRUE", "FALSE", "NONE"}


@dataclass(frozen=True)
class Item:
    """A token or a comment, where it stood in the input (line 1-based, col 0-based)."""

    type: str  # a grammar terminal, or "COMMENT"
    text: str
    line: int
    col: int

    @property
    def end_col(self) -> int:
        return self.col + len(self.text)


@functools.lru_cache(maxsize=1)
def _lark():
    from lark import Lark

    # Only the lexer is used; an Earley front with the basic lexer skips building the LALR
    # tables (~0.15 s) and lexes exactly as the LALR parser's basic lexer would.
    return Lark.open(str(Path(__file__).parent.parent / "frontend" / "grammar.lark"), parser="earley", lexer="basic")


def _items(text: str) -> list[Item]:
    """Tokens and comments in source order (the text must parse). Lark's basic lexer, not
    the parser: a third of the time, and the spacing rules need only the token types. It
    lexes every ``-`` as MINUS; one after an operand is binary (typed ADD_OP here)."""
    out = []
    prev = None
    for tok in _lark().lex(text, dont_ignore=True):
        if tok.type == "WS":
            continue
        kind = tok.type
        if kind == "MINUS" and prev is not None and prev.type in _OPERAND_END:
            kind = "ADD_OP"
        item = Item(kind, str(tok).rstrip(), tok.line, tok.column - 1)
        out.append(item)
        if kind != "COMMENT":
            prev = item
    return out


def _drop_semicolons(items: list[Item]) -> list[Item]:
    """Keep a ``;`` only between two statements on one line."""
    code = [i for i in items if i.type != "COMMENT"]
    keep_ids = set()
    prev = None
    for n, tok in enumerate(code):
        if tok.type == "SEMICOLON":
            nxt = code[n + 1] if n + 1 < len(code) else None
            if (
                prev is None
                or nxt is None
                or prev.line != tok.line
                or nxt.line != tok.line
                or prev.type in ("LBRACE", "SEMICOLON")
                or nxt.type in ("RBRACE", "SEMICOLON")
            ):
                continue
        keep_ids.add(id(tok))
        prev = tok
    return [i for i in items if i.type == "COMMENT" or id(i) in keep_ids]


@dataclass
class _Open:
    """An open bracket, or the file itself (``type`` "FILE"): where the lines inside go."""

    type: str
    kind: str  # "call" (arguments: `=` unspaced), "params", "outputs", "tuple", "brace", "file"
    line_indent: int
    align: int | None = None  # column of the code after the bracket on its line
    # In a `{` and in the file, which hold statements: the statement being laid out.
    stmt_indent: int = 0  # the indentation of the line it starts on
    cont_align: int | None = None  # column of the code after its `=`, on the `=`'s line

    @property
    def holds_statements(self) -> bool:
        return self.type in ("LBRACE", "FILE")

    @property
    def inner_indent(self) -> int:
        return self.align if self.align is not None else self.line_indent + INDENT

    @property
    def continuation_indent(self) -> int:
        return self.cont_align if self.cont_align is not None else self.stmt_indent + CONTINUATION


def _paren_kind(prev: Item | None, before: Item | None) -> str:
    if prev is None or prev.type != "NAME":
        return "tuple"
    if before is not None and before.type in ("NETWORK", "BLOCK", "EXTERN"):
        return "params"
    if before is not None and before.type == "OUTPUTS":
        return "outputs"
    return "call"


def _space(prev: Item, cur: Item, top: _Open | None) -> str:
    """The spacing between two tokens on one output line."""
    if cur.type in _NO_SPACE_BEFORE:
        return ""
    # a dotted path `fpn.layer_blocks.0`: the basic lexer reads its `.0` as a float
    path_float = cur.type == "FLOAT" and cur.text.startswith(".") and prev.type in ("NAME", "STRING", "INT", "FLOAT")
    if cur.type == "DOT" or prev.type == "DOT" or path_float:
        return ""
    if cur.type == "RBRACE":
        return "" if prev.type == "LBRACE" else " "
    if prev.type in ("LPAR", "LSQB", "MINUS", "DOT") or cur.type == "DOT":
        return ""  # `from s.a`: a path's dots stay unspaced
    if cur.type == "EQUAL" or prev.type == "EQUAL":
        return "" if top is not None and top.kind == "call" else " "
    if cur.type == "LPAR":
        return "" if prev.type == "NAME" else " "
    if cur.type == "LSQB":  # indexing sticks to its operand
        return "" if prev.type in ("NAME", "RPAR", "RSQB", "STRING") else " "
    return " "


def _statement_starts(module) -> set[tuple[int, int]]:
    """Where each statement of the module begins: (line, 0-based column) of its first token."""
    from archlang.frontend import ir

    statements = (*typing.get_args(ir.Stmt), ir.Import, ir.BlockDef, ir.ExternDef, ir.NetworkDef)
    starts = set()
    todo: list = list(module.items)
    while todo:  # a loop, not recursion: expressions may nest deeply
        value = todo.pop()
        if isinstance(value, ir.Node):
            if isinstance(value, statements):
                starts.add((value.span.line, value.span.col - 1))
            if isinstance(value, ir.ExternDef):  # its `shape = ...` rules are statements of its body
                starts.update((rule.span.line, rule.span.col - 1) for rule in value.rules)
            todo.extend(getattr(value, name) for name in ir.field_names(type(value)) if name != "span")
        elif isinstance(value, tuple):
            todo.extend(value)
    return starts


def _role(first: Item, ctx: _Open, starts, prev_code: Item | None, next_code: Item | None) -> str:
    """What a line starting with ``first`` is, ``ctx`` being the innermost open bracket (or
    the file): "close", "inside" a `(` `[`, a "statement", a "clause" of one (`elif`, `else {`,
    a body's or a group's `{`), or a "continuation" of one's expression."""
    if first.type in _CLOSE:
        return "close"
    if not ctx.holds_statements:
        return "inside"
    if (first.line, first.col) in starts:
        return "statement"
    if (
        first.type == "ELIF"
        or (first.type == "ELSE" and next_code is not None and next_code.type == "LBRACE")
        or (first.type == "LBRACE" and (prev_code is None or prev_code.type != "COLON"))
    ):
        return "clause"
    return "continuation"


def _indent(role: str, ctx: _Open) -> int:
    if role == "close":
        return ctx.line_indent
    if role == "clause":
        return ctx.stmt_indent
    if role == "continuation":
        return ctx.continuation_indent
    return ctx.inner_indent


def _layout(items: list[Item], blanks_before: list[int], starts: set[tuple[int, int]]) -> list[str]:
    """Output lines; ``blanks_before[n]``: how many blank input lines precede line ``n``;
    ``starts``: where statements begin (line, column), from the parse."""
    code = [i for i in items if i.type != "COMMENT"]
    code_index = {id(tok): n for n, tok in enumerate(code)}
    by_line: dict[int, list[Item]] = {}
    for item in items:
        by_line.setdefault(item.line, []).append(item)
    # A comment-only line is indented like the code line after it would be (or as a
    # statement, before a closing bracket or at the end).
    first_code: dict[int, Item | None] = {}
    upcoming: Item | None = None
    for line_no in reversed(by_line):
        firsts = [i for i in by_line[line_no] if i.type != "COMMENT"]
        upcoming = firsts[0] if firsts else upcoming
        first_code[line_no] = upcoming
    file = _Open("FILE", "file", 0, align=0)
    stack: list[_Open] = []
    out: list[str] = []
    prev_line: int | None = None
    last_tok: Item | None = None  # the last token placed (for bracket kinds and spacing)
    before_last: Item | None = None
    for line_no, line_items in by_line.items():
        first = line_items[0]
        if prev_line is not None and blanks_before[line_no] > blanks_before[prev_line]:
            opened = last_tok is not None and last_tok.type in _OPEN and last_tok.line == prev_line
            if not opened and first.type not in _CLOSE:
                out.append("")
        line_ctx = stack[-1] if stack else file
        lead = first_code[line_no]
        if lead is None:
            role = "statement"
        else:
            n = code_index[id(lead)]
            role = _role(lead, line_ctx, starts, last_tok, code[n + 1] if n + 1 < len(code) else None)
            if first.type == "COMMENT" and role == "close":
                role = "statement"
        indent = _indent(role, line_ctx)
        text = " " * indent
        # The indentation new brackets count from: this line's, or, once a bracket opened
        # on an earlier line closes here, that line's (`network N(a,` / `b) {`); a body's
        # `{` on a continuation line, the statement's (its `}` lines up with the statement).
        base = indent
        prev: Item | None = None
        pending: list[_Open] = []  # brackets opened on this line, waiting for their next token
        after_equal: _Open | None = None  # a statement whose `=` was the last token
        for item in line_items:
            if item.type == "COMMENT":
                if prev is None:
                    text += item.text
                else:
                    code_end = len(text)
                    aligned = item.col - prev.end_col >= 2 and item.col > code_end + 2
                    text += " " * ((item.col if aligned else code_end + 2) - code_end) + item.text
                break  # a comment runs to the end of the line
            if prev is not None:
                text += _space(prev, item, stack[-1] if stack else None)
            for bracket in pending:
                bracket.align = len(text)
            pending = []
            if after_equal is not None:
                after_equal.cont_align = len(text)
                after_equal = None
            ctx = stack[-1] if stack else file
            if (item.line, item.col) in starts:
                # mid-line, a statement sits where it would on a line of its own, or
                # deeper; brackets it opens count from there
                ctx.stmt_indent, ctx.cont_align = max(indent, ctx.inner_indent), None
                base = ctx.stmt_indent
            elif item.type == "EQUAL" and ctx.holds_statements:
                after_equal = ctx
            if item.type in _CLOSE and stack:
                base = stack.pop().line_indent
            text += item.text
            if item.type in _OPEN:
                kind = "brace" if item.type == "LBRACE" else "tuple"
                if item.type == "LPAR":
                    kind = _paren_kind(last_tok, before_last)
                body_brace = item.type == "LBRACE" and role == "continuation" and ctx is line_ctx
                bracket = _Open(item.type, kind, ctx.stmt_indent if body_brace else base)
                stack.append(bracket)
                pending.append(bracket)
            prev = item
            before_last, last_tok = last_tok, item
        out.append(text.rstrip())
        prev_line = line_no
    return out


def _layout_text(text: str, module) -> str:
    items = _drop_semicolons(_items(text))
    blanks_before = [0, *itertools.accumulate(not line.strip() for line in text.split("\n"))]
    out = _layout(items, blanks_before, _statement_starts(module))
    return "\n".join(out) + "\n" if out else ""


def ir_without_spans(module) -> object:
    """A module's IR as plain data with every span and file name removed."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not (k == "file" or k == "span" or k.endswith("_span"))}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        return value

    from archlang.frontend.ir import as_data

    return strip(as_data(module))


def format_source(text: str, file: str = "<string>") -> str:
    """The canonical layout of ``text``. Raises :class:`SpecError` if it does not parse,
    and an E900 internal error if the layout would change the IR (a formatter bug)."""
    from archlang.frontend.parser import parse

    if text.startswith("\ufeff"):
        text = text[1:]
    before = parse(text, file)
    formatted = _layout_text(text, before)
    if formatted != text and ir_without_spans(parse(formatted, file)) != ir_without_spans(before):
        raise SpecError(
            Diagnostic(
                code="E900",
                message=f"internal error: formatting `{file}` would change its meaning; the file was left as it is",
                help="please report this with the file",
            )
        )
    return formatted


# ---- files (the CLI writes; this only reads and decides) -------------------------------------


@dataclass
class FileResult:
    path: str
    original: str | None = None
    formatted: str | None = None
    error: SpecError | None = None

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original


def format_file(path: str, data: bytes | None = None) -> FileResult:
    """Read (unless ``data`` is given: stdin's bytes) and format one file; errors are kept,
    not raised. Files are read through ``archc check``'s guards
    (:func:`archlang.frontend.loader.read_source`): a directory, a FIFO, ``/dev/zero`` or a
    file over the size limit is a diagnostic, never a hang or a MemoryError."""
    from archlang.frontend.loader import decode, read_source

    result = FileResult(path)
    try:
        result.original = read_source(Path(path), path) if data is None else decode(data, path)
        result.formatted = format_source(result.original, path)
    except SpecError as err:
        if getattr(err, "sources", None) is None:
            from archlang.diagnostics import SourceMap

            err.sources = SourceMap({path: result.original} if result.original is not None else {})
        result.error = err
    return result


def unified_diff(result: FileResult) -> str:
    import difflib

    return "".join(
        difflib.unified_diff(
            (result.original or "").splitlines(keepends=True),
            (result.formatted or "").splitlines(keepends=True),
            f"{result.path}",
            f"{result.path} (formatted)",
        )
    )
