"""Module names the spec cannot hold, refused before any text is written (E724), and the
last check of every import: the spec text compiles (no torch here).

A state_dict key is the labels on its path joined by ``.``; a label must be a name
archlang accepts (non-empty, at most ``MAX_NAME`` characters, no ``/`` or control
characters), and ``input`` cannot name a top-level layer (the network's input has that
name). Anything else the compiler refuses in the emitted text (an automatic name equal to
a module's that :mod:`.text` may not change, an op narrower than torch's) is E724 quoting
the spec line, never a spec that does not build.
"""

from __future__ import annotations

from archlang.importer.series_parallel import problem
from archlang.importer.tree import Group, Instance, Network, Seq
from archlang.lower.layer_names import MAX_NAME, has_forbidden_char

_HELP = "rename the module (the spec keeps module names as layer names so state_dict keys survive)"


def _bad(label: str) -> str | None:
    if not label:
        return "an empty name"
    if len(label) > MAX_NAME:
        return f"a name of {len(label):,} characters (the limit is {MAX_NAME})"
    if has_forbidden_char(label):
        return "'/' or a control character"
    return None


def check_labels(network: Network) -> None:
    """E724 for the first label of ``network`` the spec cannot hold, naming its path."""
    stack = [(item, "", True) for item in reversed(network.body.items)]
    stack += [(aux.body, aux.label, False) for aux in network.aux]
    for aux in network.aux:
        _check(aux.label, aux.label, top=True)
    while stack:
        item, prefix, top = stack.pop()
        label = getattr(item, "label", None)
        path = prefix
        if label is not None:
            path = f"{prefix}.{label}" if prefix else label
            _check(label, getattr(item, "path", None) or path, top)
        if isinstance(item, Instance):
            children, inner = item.body.items, path
        elif isinstance(item, Seq):
            children, inner = item.items, path
        elif isinstance(item, Group):
            children, inner = item.branches, prefix
        else:
            continue
        nested = top and label is None  # an unlabelled sequence or group stays in the scope
        stack.extend((child, inner, nested) for child in reversed(children))


def _check(label: str, path: str, top: bool) -> None:
    reason = _bad(label)
    if reason is None and top and label == "input":
        reason = "the name of the network's input"
    if reason is not None:
        from archlang.diagnostics import printable

        shown = printable(path if len(path) <= 80 else path[:77] + "...", keep_newlines=False)
        raise problem("E724", f"the module name `{shown}` cannot be a spec layer name: {reason}", _HELP)


def check_text(make_text) -> str:
    """``make_text()``, the spec text (:func:`archlang.importer.text.network_text` compiles
    it); E724 if it cannot be formatted or does not compile (quoting the first error and its
    spec line)."""
    from archlang.diagnostics import SpecError

    try:
        return make_text()
    except SpecError as err:
        diag = err.diagnostics[0]
        if diag.code.startswith("E72"):
            raise  # the importer's own diagnostic (a value with no literal)
        span = getattr(diag, "span", None)
        text = err.sources.texts.get(span.file, "") if span is not None and err.sources is not None else ""
        lines = text.splitlines()
        line = lines[span.line - 1].strip() if span is not None and 0 < span.line <= len(lines) else ""
        quoted = f" (spec line `{line[:100]}`)" if line else ""
        help = "archlang's op is narrower than torch's here (docs/language.md)"
        raise problem(
            "E724",
            f"archlang cannot write this model as a spec: {diag.message}{quoted}",
            _HELP if diag.code in ("E302", "E207", "E102") else help,
        ) from None
