"""Diagnostics are data: a code, a severity, a message, spans and help.

Every stage reports problems by raising :class:`SpecError` (or returning a list of
:class:`Diagnostic`); they are rendered in exactly one place, :func:`render`, in the
style of rustc: ``error[E401]: message``, a ``--> file:line:col`` pointer, the source line
and a caret under the span, then notes and help.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import Enum


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file. Lines and columns are 1-based; ``end_col`` is exclusive.

    A plain dataclass, like the IR's nodes: the graph's nodes carry spans, and the back
    ends and reports that read them need nothing else of the front end."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @classmethod
    def point(cls, file: str, line: int, col: int, width: int = 1) -> Span:
        """A span of ``width`` characters on one line."""
        return cls(file=file, line=line, col=col, end_line=line, end_col=col + width)

    @classmethod
    def at_offset(cls, file: str, text: str, offset: int, width: int = 1) -> Span:
        """The span of ``width`` characters at character ``offset`` of ``text``."""
        return cls.point(file, *line_col(text, offset), width)


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text`` (lines end at LF)."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Note:
    message: str
    span: Span | None = None


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    severity: Severity = Severity.ERROR
    help: str | None = None
    notes: tuple[Note, ...] = ()
    label: str | None = None  # short text printed after the caret

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "span": asdict(self.span) if self.span else None,
            "help": self.help,
            "notes": [{"message": n.message, "span": asdict(n.span) if n.span else None} for n in self.notes],
        }


class SpecError(Exception):
    """One or more diagnostics that stop compilation of a spec.

    ``sources`` holds the text of the files compiled, when known, so that ``str(err)`` is
    what ``archc`` prints: every diagnostic with its source line, caret, notes and help."""

    def __init__(self, diagnostics: Diagnostic | list[Diagnostic], sources: SourceMap | None = None):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        self.sources: SourceMap | None = sources
        super().__init__(self.diagnostics)

    def __str__(self) -> str:
        return render_all(self.diagnostics, self.sources)


@dataclass
class SourceMap:
    """The text of every file a compilation read, so diagnostics can quote lines."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, text: str) -> None:
        self.texts[name] = text

    def line(self, name: str, line: int) -> str | None:
        text = self.texts.get(name)
        if text is None:
            return None
        lines = text.split("\n")
        if 1 <= line <= len(lines):
            return lines[line - 1].rstrip("\r")
        return None


# C0 controls but tab and newline, DEL and C1 (which includes the 8-bit CSI and OSC): a spec
# echoed on a terminal must not move the cursor, retitle the window or clear the screen.
# Lone surrogates too: no terminal encoding can write them (a file name with undecodable bytes).
# And the bidirectional controls (embeddings, overrides, isolates, the LRM/RLM/ALM marks): a
# U+202E in a layer name reverses the rest of its line on screen, so `exe.txt` can show as
# `txt.exe` (display spoofing, "Trojan Source").
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{BIDI_CONTROLS}]")


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, keep_newlines: bool = True) -> str:
    """``text`` with control characters shown as ``\\xNN`` escapes (ESC becomes ``\\x1b``)."""
    shown = _CONTROL.sub(_escape_char, str(text))
    return shown if keep_newlines else shown.replace("\n", "\\n")


def _display_width_prefix(line: str, col: int) -> tuple[str, int]:
    """Escape control characters and expand tabs so the caret lines up; return the shown
    line and the caret offset."""
    shown = printable(line, keep_newlines=False).expandtabs(4)
    offset = len(printable(line[: col - 1], keep_newlines=False).expandtabs(4))
    return shown, offset


def render(diag: Diagnostic, sources: SourceMap | None = None, color: bool = False) -> str:
    """Render one diagnostic as text, rustc style."""
    sev = diag.severity.value

    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color else text

    sev_color = {"error": "1;31", "warning": "1;33", "info": "1;36"}[sev]
    out = [paint(f"{sev}[{diag.code}]", sev_color) + paint(f": {printable(diag.message)}", "1")]
    out.extend(_render_span(diag.span, diag.label, sources, paint, main=True))
    for note in diag.notes:
        if note.span is not None:
            out.append(paint("note", "1;36") + f": {printable(note.message)}")
            out.extend(_render_span(note.span, None, sources, paint, main=False))
        else:
            out.append(f"   = note: {printable(note.message)}")
    if diag.help:
        out.append(f"   = {paint('help', '1;32')}: {printable(diag.help)}")
    return "\n".join(out)


MAX_ECHO = 160  # characters of a source line echoed; a minified or binary line is cut


def _window(shown: str, offset: int, width: int) -> tuple[str, int, int]:
    """At most ``MAX_ECHO`` characters of the line around the caret, cuts marked with "…"."""
    if len(shown) <= MAX_ECHO:
        return shown, offset, width
    start = max(0, min(offset - MAX_ECHO // 4, len(shown) - MAX_ECHO))
    end = start + MAX_ECHO
    cut = ("…" if start else "") + shown[start:end] + ("…" if end < len(shown) else "")
    offset = offset - start + (1 if start else 0)
    return cut, offset, max(1, min(width, MAX_ECHO - (offset - (1 if start else 0))))


def _render_span(span, label, sources, paint, main: bool) -> list[str]:
    if span is None:
        return []
    lines = [f"  --> {printable(str(span), keep_newlines=False)}"]
    text = sources.line(span.file, span.line) if sources else None
    if text is None:
        return lines
    shown, offset = _display_width_prefix(text, span.col)
    if span.end_line == span.line and span.end_col > span.col:
        width = len(printable(text[span.col - 1 : span.end_col - 1], keep_newlines=False).expandtabs(4)) or 1
    else:
        width = max(1, len(shown) - offset)
    shown, offset, width = _window(shown, offset, width)
    gutter = " " * len(str(span.line))
    marker = "^" if main else "-"
    caret = " " * offset + marker * width + (f" {printable(label)}" if label else "")
    lines += [
        f"{gutter} |",
        f"{span.line} | {shown}",
        f"{gutter} | " + paint(caret, "1;31" if main else "1;36"),
    ]
    return lines


def render_all(diags: list[Diagnostic], sources: SourceMap | None = None, color: bool = False) -> str:
    body = "\n\n".join(render(d, sources, color) for d in diags)
    errors = sum(d.severity is Severity.ERROR for d in diags)
    warnings = sum(d.severity is Severity.WARNING for d in diags)
    summary = []
    if errors:
        summary.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        summary.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return body + ("\n\n" + ", ".join(summary) + " emitted" if summary else "")
