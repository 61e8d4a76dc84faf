"""``archc SPEC --emit html -o report.html``: one self-contained page to share a network.

The block diagram (inline SVG from the Graphviz back end), the cost / receptive-field
table (sortable, one collapsible group of layer rows per top-level block) and the lint
findings; hovering a diagram node highlights its table row and the reverse. Everything is
in the one file (CSS and a little JS inline, no fonts or scripts fetched), so it opens
offline. Rendering the diagram needs Graphviz's ``dot`` (E111 otherwise, as ``--emit svg``).
"""

from __future__ import annotations

from .page import html_page


def emit_cli(compiled, fmt: str, options: dict) -> str:
    return html_page(compiled, options)


__all__ = ["emit_cli", "html_page"]
