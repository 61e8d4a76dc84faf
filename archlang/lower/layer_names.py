"""Layer names: filling name templates (``"conv{i}"``, holes parsed once by the parser)
and checking that a name is well-formed and new in its scope."""

from __future__ import annotations

from archlang.diagnostics import Note, SpecError
from archlang.frontend import ir
from archlang.frontend.expressions import Env, evaluate
from archlang.lower.state import Scope, lowering_error

# Names become Python attributes, table cells and diagram labels, once per instance: a
# 100,000-character name repeated 3,000 times would be 300 MB of text downstream.
MAX_NAME = 256


def label_text(label: ir.Label, env: Env) -> str:
    if not label.holes:
        if len(label.text) > MAX_NAME:
            raise _too_long(len(label.text), label.span)
        return label.text
    out, length = [label.pieces[0]], len(label.pieces[0])
    for hole, piece in zip(label.holes, label.pieces[1:]):
        try:
            value = evaluate(hole, env)
        except SpecError as e:
            d = e.diagnostics[0]
            raise lowering_error(d.code, d.message + " (in a name template)", label.span, d.help) from None
        text = str(value).lower() if isinstance(value, bool) else str(value)
        length += len(text) + len(piece)
        if length > MAX_NAME:
            raise _too_long(length, label.span)
        out += (text, piece)
    return "".join(out)


def _too_long(length: int, span) -> SpecError:
    return lowering_error(
        "E207", f"name of {length:,} characters (the limit is {MAX_NAME})", span, help="give the layer a shorter name"
    )


def has_forbidden_char(text: str) -> bool:
    """A ``/`` (the path separator) or a control character: C0, DEL and C1 (the 8-bit CSI
    U+009B would drive a terminal)."""
    return "/" in text or any(ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F for ch in text)


def check_label(text: str, span, scope: Scope) -> None:
    if not text or has_forbidden_char(text):
        raise lowering_error(
            "E207",
            f"invalid name {text!r}",
            span,
            help="names must be non-empty and contain no '/' or control characters",
        )
    if text in scope.labels:
        raise lowering_error(
            "E302",
            f"the name `{text}` is used twice in this scope",
            span,
            notes=[Note("first used here", scope.labels[text][1])],
            help="give each layer, block and branch in a scope its own name",
        )
