"""Choosing rules (``--select`` / ``--ignore``) and silencing findings in the spec.

A finding is silenced by a comment on the line of the statement it points at, or on the
line of any enclosing statement (a block instance's call, a named branch, a conv unit)::

    conv(64, 5)                          # archlang: ignore[IN104]
    Mixed_5b: InceptionA(32)             # archlang: ignore[IN104, IN103]  (the whole instance)
    conv(64, 5)                          # archlang: ignore        (every rule)

Codes in brackets may be prefixes (``IN10``), like ``--select``. The grammar drops
comments, so the source text is scanned here.
"""

from __future__ import annotations

import re

from ..diagnostics import SourceMap

COMMENT = re.compile(r"#\s*archlang:\s*ignore\b(?:\[([^\]]*)\])?", re.IGNORECASE)


def matches(code: str, patterns) -> bool:
    return any(p == "ALL" or code.startswith(p) for p in patterns)


def normalise(patterns) -> tuple[str, ...]:
    return tuple(p.strip().upper() for item in patterns for p in str(item).split(",") if p.strip())


def unknown_patterns(patterns, codes) -> list[str]:
    return [p for p in patterns if p != "ALL" and not any(c.startswith(p) for c in codes)]


def selected(codes, select=(), ignore=()) -> list[str]:
    select, ignore = normalise(select), normalise(ignore)
    return [c for c in codes if (not select or matches(c, select)) and not matches(c, ignore)]


def ignored_on_line(sources: SourceMap, file: str, line: int, code: str) -> bool:
    text = sources.line(file, line)
    if not text or "#" not in text:
        return False
    for m in COMMENT.finditer(text):
        if m.group(1) is None:
            return True
        if matches(code, normalise([m.group(1)])):
            return True
    return False


def is_suppressed(sources: SourceMap, code: str, spans) -> bool:
    return any(s is not None and ignored_on_line(sources, s.file, s.line, code) for s in spans)
