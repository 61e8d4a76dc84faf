"""Lark's syntax errors as diagnostics: where, what was found, and what was expected."""

from __future__ import annotations

from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .diagnostics import Diagnostic, Span, line_col

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
