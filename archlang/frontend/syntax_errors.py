"""Lark's syntax errors as diagnostics (where, what was found, what was expected), and the
size limits checked around parsing (the limits themselves live in :mod:`archlang.frontend.parser`)."""

from __future__ import annotations

import bisect
import re

from archlang.diagnostics import Diagnostic, Note, Span, SpecError, line_col
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
    diag = _syntax_diagnostic(err, file, text)
    if isinstance(err, UnexpectedToken | UnexpectedEOF):
        at_end = isinstance(err, UnexpectedEOF) or err.token.type == "$END"
        stop = len(text) if at_end else getattr(err, "pos_in_stream", None)
        if stop is not None:
            opener = unclosed_brace(text, stop, at_end)
            if opener is not None:
                return _unclosed(diag, file, text, opener)
    return diag


def _unclosed(diag: Diagnostic, file: str, text: str, opener: int) -> Diagnostic:
    """The error put where rustc puts it: at the ``{`` that is never closed, the place the
    parser gave up in a note."""
    return Diagnostic(
        code="E101",
        message="unclosed `{`",
        span=Span.at_offset(file, text, opener),
        label="this `{` is never closed",
        notes=(Note(f"the parser stopped here: {diag.message}", diag.span),),
        help="add the missing `}` where this body ends",
    )


class _Lines:
    """Line starts and indentation of a text, looked up in O(log n) per offset (a one-line
    file of a million braces must not cost a scan back to the line start per brace)."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._indents: dict[int, int] = {}

    def start(self, offset: int) -> int:
        return self.starts[bisect.bisect_right(self.starts, offset) - 1]

    def indent(self, offset: int) -> tuple[int, bool]:
        """The indentation of the line holding ``offset``, and whether ``offset`` is its first token."""
        start = self.start(offset)
        if start not in self._indents:
            self._indents[start] = _LEADING.match(self.text, start).end() - start
        indent = self._indents[start]
        return indent, offset - start == indent


_LEADING = re.compile(r"[ \t]*")


def unclosed_brace(text: str, stop: int, at_end: bool) -> int | None:
    """The offset of a ``{`` that the layout says was never closed, if any (as rustc reads
    indentation): a ``}`` opening its line closes the innermost ``{`` whose line is indented
    as much (the ``{``s above it are unclosed); and the line where the parser gave up, if
    it is indented no deeper than a ``{`` still open, shows that ``{`` should have been
    closed before it. At the end of the file any ``{`` still open is unclosed."""
    lines = _Lines(text)
    stack: list[tuple[int, int, int]] = []  # (offset, indentation of its line, line start)
    unclosed: list[int] = []
    parens: list[int] = []  # offsets of the `(` and `[` open since the innermost open `{`
    for match in _ROUGH_TOKEN.finditer(text, 0, stop):
        tok = match.group()
        if tok in ("(", "["):
            parens.append(match.start())
        elif tok in (")", "]"):
            if parens:
                parens.pop()
        elif tok == "{":
            parens = []
            indent, _ = lines.indent(match.start())
            stack.append((match.start(), indent, lines.start(match.start())))
        elif tok == "}" and stack:
            indent, first = lines.indent(match.start())
            match_at = None
            if first:
                match_at = next((j for j in range(len(stack) - 1, -1, -1) if stack[j][1] == indent), None)
            if match_at is not None:
                unclosed += [offset for offset, _, _ in stack[match_at + 1 :]]
                del stack[match_at:]
            else:
                stack.pop()
    line_start = lines.start(stop)
    if any(at_end or p < line_start for p in parens):  # `conv(8, 3,` then `}` or the end: the `(` is not closed
        return None
    if unclosed:
        return min(unclosed)
    if at_end:
        return stack[-1][0] if stack else None
    indent, _ = lines.indent(stop)
    late = [offset for offset, opened, start in stack if opened >= indent and start < line_start]
    return min(late) if late else None


def _syntax_diagnostic(err: UnexpectedInput, file: str, text: str) -> Diagnostic:
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
