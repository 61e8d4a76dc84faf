"""Graphviz diagrams of a compiled network: DOT text, or SVG/PDF/PNG rendered by ``dot``.

Views (``options["view"]``):

* ``blocks`` (default): one node per top-level block instance or layer, repeated chained
  identical blocks collapsed to one "× N" node;
* ``layers``: every primitive op, each scope (block instance, branch, conv unit) a cluster;
* ``options["block_name"]``: one block template alone, in the style of the Inception papers'
  module figures (bottom to top).

DOT needs only the ``graphviz`` Python package; rendering runs Graphviz's ``dot``
executable, and its absence is a diagnostic (E111), not a traceback.
"""

from __future__ import annotations

import graphviz

from archlang.diagnostics import Diagnostic, SpecError

from .module_view import module_view
from .style import EDGE_ATTRS, GRAPH_ATTRS, NODE_ATTRS
from .views import blocks_view, dot_id, layers_view

RENDERED = ("svg", "pdf", "png")
VIEWS = {"blocks": blocks_view, "layers": layers_view}

__all__ = ["build", "dot_id", "emit_cli", "render", "to_dot"]


def build(compiled, options: dict | None = None) -> graphviz.Digraph:
    """The diagram as a ``graphviz.Digraph`` (nothing rendered yet)."""
    opts = dict(options or {})
    graph = compiled.graph if hasattr(compiled, "graph") else compiled
    block = opts.get("block_name")
    if opts.get("costs"):
        from archlang.analysis import run_passes

        opts["_analysis"] = run_passes(graph)
    default_rankdir = "BT" if block else "TB"
    name = f"{graph.network}.{block}" if block else graph.network
    dot = graphviz.Digraph(name=dot_id(name))
    dot.attr("graph", rankdir=opts.get("rankdir") or default_rankdir, **GRAPH_ATTRS)
    dot.attr("node", **NODE_ATTRS)
    dot.attr("edge", **EDGE_ATTRS)
    if block:
        opts["_templates"] = getattr(compiled, "templates", ())
        # Out-edges in definition order: the branches stand left to right in concat order;
        # straight edges as in the papers' figures.
        dot.attr("graph", ordering="out", splines="line")
        module_view(graph, dot, opts)
    else:
        VIEWS[opts.get("view") or "blocks"](graph, dot, opts)
    return dot


def to_dot(compiled, options: dict | None = None) -> str:
    return build(compiled, options).source


def render(dot_source: str, fmt: str) -> bytes:
    """Run ``dot -T<fmt>`` on DOT text; a missing or failing ``dot`` becomes a SpecError."""
    try:
        return graphviz.Source(dot_source).pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise SpecError(
            Diagnostic(
                code="E111",
                message=f"cannot render {fmt.upper()}: Graphviz's `dot` program is not installed (or not on PATH)",
                help="install Graphviz (`apt-get install graphviz` on Debian/Ubuntu, `brew install graphviz` on "
                "macOS), or use `--emit dot` to get the DOT text without rendering",
            )
        ) from None
    except graphviz.CalledProcessError as err:
        detail = (err.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise SpecError(
            Diagnostic(
                code="E112",
                message=f"Graphviz's `dot` failed to render {fmt.upper()}" + (f": {detail[-1]}" if detail else ""),
                help="try `--emit dot` and render it yourself to see the whole message",
            )
        ) from None


def emit_cli(compiled, fmt: str, options: dict) -> str | bytes:
    """The CLI entry point: DOT text for ``dot``, rendered bytes for svg/pdf/png."""
    dot = build(compiled, options)
    if fmt == "dot":
        return dot.source
    if fmt not in RENDERED:
        raise ValueError(f"graphviz backend cannot emit {fmt!r}")
    if fmt == "png" and options.get("dpi"):
        dot.attr("graph", dpi=str(options["dpi"]))  # Graphviz's default: 96
    return render(dot.source, fmt)
