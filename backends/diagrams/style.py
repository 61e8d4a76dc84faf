"""How diagrams look: per-op categories, colours, paper-style labels and cost figures.

The per-op tables are views of the op records' ``diagram`` field (:mod:`archlang.ops`).
Colours follow Figure 3 of the GoogLeNet paper (convolution blue, pooling red, softmax
yellow, other green), plus purple for normalisation, softened to pastel fills so black
text stays readable in print.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

import graphviz

from archlang.graph.shape_text import format_shape
from archlang.ops import Op
from archlang.ops.records import RECORDS

FONT = "Helvetica"


@dataclass(frozen=True)
class Category:
    name: str  # legend text
    fill: str
    border: str


CONV = Category("convolution", "#dae8f8", "#2f6db5")
POOL = Category("pooling", "#f9d9d5", "#c0392b")
NORM = Category("normalization", "#e8def4", "#7452a5")
CLASSIFIER = Category("classifier", "#fdf1c7", "#b58a00")
OTHER = Category("other", "#dcefd8", "#4a8c3f")
# Not an op: a whole block instance in the blocks view.
BLOCK = Category("block (module)", "#f3f3f3", "#4d4d4d")
LEGEND_ORDER = (CONV, POOL, NORM, CLASSIFIER, OTHER, BLOCK)

# The records' diagram.category, drawn in these colours.
CATEGORIES = {"conv": CONV, "pool": POOL, "norm": NORM, "classifier": CLASSIFIER, "other": OTHER}
CATEGORY: dict[Op, Category] = {op: CATEGORIES[r.diagram.category] for op, r in RECORDS.items()}


# ---- paper-style labels ("1x1 conv, 64", "3x3 max pool"): the records' diagram.label ----

PAPER_LABEL: dict[Op, Callable[[dict], str]] = {op: r.diagram.label for op, r in RECORDS.items()}


def op_label(data: dict) -> str:
    return PAPER_LABEL[data.op](data.attrs)


def fmt_shape(shape) -> str:
    return format_shape(shape) if shape else "?"


def fmt_count(n: int) -> str:
    """1234567 -> '1.23M', as papers print parameter and operation counts."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if n >= limit:
            return f"{n / limit:.3g}{suffix}"
    return str(n)


# ---- costs: from archlang.analysis (params as torch counts them; MACs of conv and linear) --


def cost_text(analysis, nids) -> str:
    """'159K params, 128M MACs' for a group of nodes, from an ``archlang.analysis`` result."""
    params = sum(analysis.nodes[n].params for n in nids)
    macs = sum(analysis.nodes[n].macs for n in nids)
    return f"{fmt_count(params)} params, {fmt_count(macs)} MACs"


# ---- Graphviz attributes ---------------------------------------------------------------


# Spec names are free text (a quoted label can hold anything but '/' and control
# characters): every string that reaches DOT goes through one of the two escapes below, each
# for its context, and is capped so that a 1 MiB name still gives a diagram dot can draw.
MAX_TEXT = 120


def cap(text: str) -> str:
    text = str(text)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def esc(text: str) -> str:
    """Text inside an HTML-like label: entities for ``<>&"'``, so a name adds no markup."""
    return html.escape(cap(text), quote=True)


def dot_text(text: str) -> graphviz.quoting.NoHtml:
    """A plain-string attribute (tooltip, cluster or edge label) as DOT's quoted string wants it.

    Backslashes are doubled (DOT reads ``\\N``, ``\\l``, ``\\"`` as escapes; a trailing one
    would swallow the closing quote), quotes escaped, and ``nohtml`` keeps ``<...>`` from
    being read as an HTML-like label. The SVG writer escapes the result for XML itself.
    """
    escaped = cap(text).replace("\\", "\\\\").replace('"', '\\"')
    return graphviz.nohtml(escaped)


# Where the inputs of a merge node enter, per rankdir: (side of the label, compass point);
# outputs leave from the opposite side.
PORT_SIDE = {"TB": ("top", "n"), "BT": ("bottom", "s"), "LR": ("left", "w"), "RL": ("right", "e")}
OPPOSITE = {"TB": "BT", "BT": "TB", "LR": "RL", "RL": "LR"}
_TABLE = '<table border="0" cellborder="0" cellspacing="0" cellpadding="1">'


def html_label(
    lines: list[tuple[str, str]], ports: int = 0, rankdir: str = "TB", prefix: str = "i", port_width: int = 0
) -> str:
    """An HTML-like label from (style, text) lines; style is 'b' (bold), 'small' or ''.

    ``ports`` > 0 adds that many empty cells ``i0``, ``i1``, ... along the side the inputs
    come from (``prefix="o"``: the side outputs leave from), so edges can aim at one slot
    each (see ``diagram_views.merge_port``); ``port_width`` (points) spreads them out.
    """
    # One table row per line: renderers then space lines by their own metrics, where
    # <br/> lines can overlap when the substituted font is taller than Helvetica.
    rows = []
    for style, text in lines:
        if style == "b":
            cell = f"<b>{esc(text)}</b>"
        elif style == "small":
            cell = f'<font point-size="9" color="#444444">{esc(text)}</font>'
        else:
            cell = esc(text)
        rows.append(f"<tr><td>{cell}</td></tr>")
    body = _TABLE + "".join(rows) + "</table>"
    if not ports:
        return f"<{body}>"
    side = PORT_SIDE[rankdir if prefix == "i" else OPPOSITE[rankdir]][0]
    if side in ("top", "bottom"):
        width = f' width="{port_width}"' if port_width else ""
        slots = "<tr>" + "".join(f'<td port="{prefix}{i}" height="2"{width}></td>' for i in range(ports)) + "</tr>"
        text = f'<tr><td colspan="{ports}">{body}</td></tr>'
        inner = slots + text if side == "top" else text + slots
    else:
        slots = "".join(f'<tr><td port="{prefix}{i}" width="2"></td></tr>' for i in range(ports))
        slot_col = f"<td>{_TABLE}{slots}</table></td>"
        inner = "<tr>" + (slot_col + f"<td>{body}</td>" if side == "left" else f"<td>{body}</td>" + slot_col) + "</tr>"
    return f"<{_TABLE}{inner}</table>>"


def port(node_id: str, slot: int, rankdir: str = "TB", prefix: str = "i") -> str:
    compass = PORT_SIDE[rankdir if prefix == "i" else OPPOSITE[rankdir]][1]
    return f"{node_id}:{prefix}{slot}:{compass}"


def node_style(category: Category, aux: bool = False) -> dict[str, str]:
    style = "rounded,filled,dashed" if aux else "rounded,filled"
    return {"shape": "box", "style": style, "fillcolor": category.fill, "color": category.border}


GRAPH_ATTRS = {"fontname": FONT, "fontsize": "11", "nodesep": "0.25", "ranksep": "0.35", "bgcolor": "white"}
NODE_ATTRS = {"fontname": FONT, "fontsize": "11", "penwidth": "1.2", "margin": "0.12,0.05", "height": "0.35"}
EDGE_ATTRS = {"fontname": FONT, "fontsize": "9", "color": "#555555", "arrowsize": "0.6", "penwidth": "1.0"}
AUX_EDGE = {"style": "dashed", "label": "aux (train only)", "fontcolor": "#555555"}


def legend_label(categories) -> str:
    """A small HTML table: one coloured swatch per category drawn."""
    rows = ['<tr><td colspan="2"><b>Legend</b></td></tr>']
    for cat in LEGEND_ORDER:
        if cat in categories:
            rows.append(
                f'<tr><td bgcolor="{cat.fill}" color="{cat.border}" border="1" width="18"> </td>'
                f'<td align="left">{esc(cat.name)}</td></tr>'
            )
    return '<<table border="0" cellborder="0" cellspacing="3" cellpadding="2">' + "".join(rows) + "</table>>"


def add_legend(dot, categories) -> None:
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="", style="rounded", color="#bbbbbb")
        legend.node("legend", label=legend_label(categories), shape="plaintext", fontsize="9")
