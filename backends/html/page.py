"""The HTML page: markup built here from the analysed graph; style and behaviour in
``report.css`` and ``report.js`` next to this module, inlined into the page.

Each top-level block is one ``<tbody>``: its row, then its layer rows (``hidden`` until
expanded). Block rows carry ``data-node`` (the diagram's node id, see
:func:`archlang.backends.diagrams.views.dot_id`) and ``data-v-<column>`` sort keys; the
script only reads those attributes and never builds markup from spec text.
"""

from __future__ import annotations

import html
import re
from importlib import resources

from archlang.backends.diagrams.render import render, to_dot
from archlang.backends.diagrams.views import dot_id
from archlang.backends.report.formats import KINDS
from archlang.backends.report.tables import CONVENTIONS, LAYER_COLUMNS

from archlang.analysis import Analysis, run_passes
from archlang.analysis.grouping import Group, group_nodes
from archlang.graph.shape_text import format_shape

_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.S)  # XML declaration, DOCTYPE, comments


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def diagram_svg(compiled) -> str:
    """The blocks view, uncollapsed (one node per table group), as inline SVG markup."""
    svg = render(to_dot(compiled, {"view": "blocks", "collapse": False}), "svg").decode("utf-8")
    return _PROLOG.sub("", svg, count=1)


def _sort_key(value) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        n = 1
        for v in value:
            n *= v
        return str(n)
    if hasattr(value, "h"):  # a receptive field: its larger finite axis, global last
        sizes = [a.size for a in (value.h, value.w) if not a.whole]
        return str(max(sizes)) if sizes else str(1 << 62)
    return str(value)


def _cells(values: dict, name_html: str) -> str:
    out = []
    for col in LAYER_COLUMNS:
        if col.key == "name":
            out.append(f"<th scope='row'>{name_html}</th>")
            continue
        text = KINDS[col.kind].display(values.get(col.key))
        cls = " class='num'" if col.numeric else ""
        out.append(f"<td{cls}>{html.escape(text)}</td>")
    return "".join(out)


def _values(name: str, label: str, totals, out) -> dict:
    return {
        "name": name,
        "op": label,
        "shape": out.shape,
        "params": totals.params,
        "macs": totals.macs,
        "flops": totals.flops,
        "rf": out.rf,
        "memory": totals.out_bytes,
    }


def _data_attrs(values: dict) -> str:
    return (
        "".join(
            f" data-v-{col.key}='{html.escape(_sort_key(values.get(col.key)))}'" for col in LAYER_COLUMNS if col.numeric
        )
        + f" data-v-name='{html.escape(values['name'])}'"
    )


def _group_tbody(group: Group) -> str:
    values = _values(group.id, group.label, group.totals, group.output)
    node = dot_id(group.id)
    children = [] if len(group.nodes) == 1 and group.nodes[0].id == group.id else list(group.nodes)
    name = html.escape(group.id)
    aux = " <span class='tag'>aux</span>" if group.aux else ""
    if children:
        toggle = f"<button class='toggle' aria-expanded='false' title='show the layers'>{name}</button>{aux}"
    else:
        toggle = f"<span class='leaf'>{name}</span>{aux}"
    rows = [f"<tr class='group' data-node='{html.escape(node)}'{_data_attrs(values)}>{_cells(values, toggle)}</tr>"]
    prefix = group.id + "/"
    for cost in children:
        label = cost.op.value
        child = _values(cost.id, label, cost, cost)
        short = cost.id[len(prefix) :] if cost.id.startswith(prefix) else cost.id
        rows.append(f"<tr class='layer' hidden>{_cells(child, html.escape(short))}</tr>")
    cls = "aux" if group.aux else "main"
    return f"<tbody class='{cls}' data-node='{html.escape(node)}'>" + "".join(rows) + "</tbody>"


def cost_table(analysis: Analysis) -> str:
    head = "".join(
        f"<th scope='col' data-key='{c.key}' class='{'num' if c.numeric else ''}' aria-sort='none'>"
        f"<button class='sort'>{html.escape(c.title)}</button></th>"
        for c in LAYER_COLUMNS
    )
    groups = list(group_nodes(analysis, 1))
    for name in analysis.aux_totals:
        groups += group_nodes(analysis, 1, aux=name)
    bodies = "".join(_group_tbody(g) for g in groups)
    t = analysis.totals
    total = {"params": t.params, "macs": t.macs, "flops": t.flops, "rf": analysis.output_rf, "memory": t.out_bytes}
    foot = f"<tr class='total'>{_cells(total, 'total (inference)')}</tr>"
    return "<table id='costs'><thead><tr>" + head + "</tr></thead>" + bodies + "<tfoot>" + foot + "</tfoot></table>"


def lint_section(compiled) -> str:
    try:
        from archlang.diagnostics import render as render_diagnostic
        from archlang.lint import run_lint
    except ImportError:
        return ""
    findings = run_lint(compiled)
    if not findings:
        return "<p class='clean'>No lint findings.</p>"
    items = "".join(
        f"<li class='finding' data-code='{html.escape(d.code)}'><pre>"
        f"{html.escape(render_diagnostic(d, compiled.sources))}</pre></li>"
        for d in findings
    )
    return f"<ol class='findings'>{items}</ol>"


def html_page(compiled, options: dict | None = None) -> str:
    analysis = run_passes(compiled.graph)
    network = html.escape(analysis.network)
    t = analysis.totals
    shape = format_shape(analysis.input_shape)
    sets = (options or {}).get("sets") or {}
    setting = "".join(f" <code>--set {html.escape(f'{k}={v}')}</code>" for k, v in sets.items())
    conventions = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in CONVENTIONS.items())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="archc --emit html">
<title>{network}: archlang report</title>
<style>
{_asset("report.css")}</style>
</head>
<body>
<header>
<h1>{network}</h1>
<p class="summary">input {shape}{setting} · params <b>{t.params:,}</b> · MACs <b>{t.macs:,}</b> ·
FLOPs <b>{t.flops:,}</b> · receptive field <b>{html.escape(analysis.output_rf.text())}</b></p>
</header>
<main>
<section id="diagram" aria-label="block diagram">
<h2>Blocks</h2>
{diagram_svg(compiled)}
</section>
<section id="table" aria-label="costs and receptive fields">
<h2>Cost and receptive field <button id="expand-all">expand all</button>
<button id="collapse-all">collapse all</button></h2>
{cost_table(analysis)}
<details><summary>conventions</summary><ul>{conventions}</ul></details>
<h2>Lint</h2>
{lint_section(compiled)}
</section>
</main>
<script>
{_asset("report.js")}</script>
</body>
</html>
"""
