"""Lark's syntax errors as diagnostics (where, what was found, what was expected), and the
size limits checked around parsing (the limits themselves live in :mod:`archlang.frontend.parser`)."""

from __future__ import annotations

import re

from archlang.diagnostics import Diagnostic, Span, SpecError, line_col
from archlang.frontend.lalr_parser import Tree, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

# How expected terminals are named in "expected ..." help lines.
TOKEN_NAMES = {
    "LPAR": "'('",
    "RPAR": "')'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "SEMICOLON": "';'",
    "EQUAL": "'='",
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "DIMS": "dimensions like 3x224x224",
    "MINUS": "'-'",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*', '/', '//' or '%'",
    "COMP_OP": "a comparison",
    "POW": "'**'",
    "$END": "end of file",
}


def expected_tokens(tokens) -> str:
    names = sorted({TOKEN_NAMES.get(t, f"'{t.lower()}'" if t.isalpha() else t) for t in tokens})
    names = [n for n in names if not n.startswith("'__")]
    if len(names) > 8:
        names = names[:8] + ["..."]
    return ", ".join(names)


def syntax_diagnostic(err: UnexpectedInput, file: str, text: str) -> Diagnostic:
    line = getattr(err, "line", 1) or 1
    col = getattr(err, "column", 1) or 1
    if isinstance(err, UnexpectedToken) and err.token.type == "$END" or isinstance(err, UnexpectedEOF):
        line, col = line_col(text, len(text))
        expected = expected_tokens(getattr(err, "expected", ()) or getattr(err, "accepts", ()))
        return Diagnostic(
            code="E101",
            message="unexpected end of file",
            span=Span.point(file, line, col),
            help=f"expected {expected}" if expected else "is a '}' or ')' missing?",
        )
    if isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else "?"
        hint = None
        if char == "'":
            hint = 'strings use double quotes: "..."'
        elif char == '"':
            hint = "this string is not closed on its line"
        elif ord(char) > 127:  # a look-alike (Cyrillic о in `cоnv`), a BOM or a smart quote
            import unicodedata

            hint = (
                f"{unicodedata.name(char, 'this character')} (U+{ord(char):04X}) is not ASCII; "
                "names use only A-Z, a-z, 0-9 and _"
            )
        elif err.allowed:
            hint = f"expected {expected_tokens(err.allowed)}"
        return Diagnostic(
            code="E102",
            message=f"unexpected character {char!r}",
            span=Span.point(file, line, col),
            help=hint,
        )
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    width = max(1, len(str(tok)))
    shown = str(tok) if len(str(tok)) <= 30 else str(tok)[:27] + "..."
    expected = expected_tokens(err.accepts or err.expected)
    return Diagnostic(
        code="E101",
        message=f"unexpected {shown!r}",
        span=Span.point(file, line, col, width),
        help=f"expected {expected}" if expected else None,
    )


_ROUGH_TOKEN = re.compile(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"|#[^\n]*|[A-Za-z0-9_.]+|\*\*|//|[=!<>]=|\S')
_OPENERS = {"{": 2, "[": 1}  # tree levels each bracket adds at least (a `{` body sits in a statement)
_CLOSERS = {"}": 2, "]": 1}


def check_size(text: str, file: str, max_tokens: int, max_nesting: int) -> None:
    """Refuse too many tokens, and brackets nested far past max_nesting, before Lark spends
    time on them (10,000 nested `concat {` would take Lark half a second to parse first)."""
    depth = 0
    for count, match in enumerate(_ROUGH_TOKEN.finditer(text), 1):
        tok = match.group()
        if tok in _OPENERS:
            depth += _OPENERS[tok]
            # Twice the limit: near it, the exact check on the tree (after parsing) says where
            # the limit is crossed; this only spares Lark absurd inputs.
            if depth > 2 * max_nesting:
                raise SpecError(_too_deep(max_nesting, Span.at_offset(file, text, match.start())))
        elif tok in _CLOSERS:
            depth = max(0, depth - _CLOSERS[tok])
        if count > max_tokens:
            raise SpecError(
                Diagnostic(
                    code="E603",
                    message=f"the file has more than {max_tokens:,} tokens",
                    span=Span.at_offset(file, text, match.start()),
                    help="split it into block libraries, or use `repeat`/`for`; from Python, raise "
                    "archlang.frontend.parser.MAX_TOKENS",
                )
            )


def _too_deep(max_nesting: int, span: Span | None) -> Diagnostic:
    return Diagnostic(
        code="E601",
        message=f"nesting deeper than {max_nesting} levels",
        span=span,
        help="flatten the spec: use a block or `repeat` instead of deep nesting",
    )


def check_depth(tree: Tree, file: str, max_nesting: int) -> None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_nesting:
            meta = node.meta
            raise SpecError(_too_deep(max_nesting, None if meta.empty else Span.point(file, meta.line, meta.column)))
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
