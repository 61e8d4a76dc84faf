"""How diagrams look: per-op categories, colours, paper-style labels and cost figures.

Everything per op is a table keyed by :class:`archlang.ops.Op` (a test checks each table
has a row for every op). Colours follow Figure 3 of the GoogLeNet paper (convolution
blue, pooling red, softmax yellow, other green), plus purple for normalisation, softened
to pastel fills so black text stays readable in print.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

import graphviz

from archlang.graph.shape_text import format_shape
from archlang.ops import Op

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

CATEGORY: dict[Op, Category] = {
    Op.INPUT: OTHER,
    Op.TRANSFORM_INPUT: OTHER,
    Op.CONV2D: CONV,
    Op.BATCHNORM: NORM,
    Op.RELU: OTHER,
    Op.TANH: OTHER,
    Op.SIGMOID: OTHER,
    Op.RELU6: OTHER,
    Op.SILU: OTHER,
    Op.HARDSWISH: OTHER,
    Op.HARDSIGMOID: OTHER,
    Op.GELU: OTHER,
    Op.STOCHASTIC_DEPTH: OTHER,
    Op.CHANNEL_SHUFFLE: OTHER,
    Op.SPLIT: OTHER,
    Op.SPATIAL_MEAN: POOL,  # a global average pool
    Op.MAXPOOL: POOL,
    Op.AVGPOOL: POOL,
    Op.ADAPTIVE_AVGPOOL: POOL,
    Op.LRN: NORM,
    Op.DROPOUT: CLASSIFIER,
    Op.FLATTEN: CLASSIFIER,
    Op.LINEAR: CLASSIFIER,
    Op.SOFTMAX: CLASSIFIER,
    Op.IDENTITY: OTHER,
    Op.PAD: OTHER,
    Op.CONCAT: OTHER,
    Op.ADD: OTHER,
    Op.MUL: OTHER,
    Op.LAYER_SCALE: OTHER,
    Op.PERMUTE: OTHER,
    Op.LAYERNORM: NORM,
    Op.LAYERNORM2D: NORM,
}


# ---- paper-style labels ("1x1 conv, 64", "3x3 max pool") --------------------------------


def _kxk(pair) -> str:
    return f"{pair[0]}x{pair[1]}"


def _stride_suffix(stride) -> str:
    # ResNet-paper style: ", /2" marks a strided layer.
    if stride is None or max(stride) == 1:
        return ""
    return f", /{stride[0]}" if stride[0] == stride[1] else f", /{_kxk(stride)}"


def _conv_label(a: dict) -> str:
    groups = f", g{a['groups']}" if a["groups"] > 1 else ""
    return f"{_kxk(a['kernel_size'])} conv, {a['out_channels']}{groups}{_stride_suffix(a['stride'])}"


def _pool_label(kind: str) -> Callable[[dict], str]:
    def label(a: dict) -> str:
        stride = a["stride"] or a["kernel_size"]
        return f"{_kxk(a['kernel_size'])} {kind} pool{_stride_suffix(stride)}"

    return label


def _adaptive_label(a: dict) -> str:
    size = a["output_size"]
    return "global avg pool" if tuple(size) == (1, 1) else f"avg pool to {_kxk(size)}"


def _percent(p: float) -> str:
    return f"{p * 100:g}%"


def _permute_label(a: dict) -> str:
    dims = a["dims"]
    if dims == (0, 2, 3, 1):
        return "to channels-last"
    return "to channels-first" if dims == (0, 3, 1, 2) else "permute " + ", ".join(map(str, dims))


PAPER_LABEL: dict[Op, Callable[[dict], str]] = {
    Op.INPUT: lambda a: "input",
    Op.TRANSFORM_INPUT: lambda a: "transform input",
    Op.CONV2D: _conv_label,
    Op.BATCHNORM: lambda a: "batch norm",
    Op.RELU: lambda a: "ReLU",
    Op.TANH: lambda a: "tanh",
    Op.SIGMOID: lambda a: "sigmoid",
    Op.RELU6: lambda a: "ReLU6",
    Op.SILU: lambda a: "SiLU",
    Op.HARDSWISH: lambda a: "hard swish",
    Op.HARDSIGMOID: lambda a: "hard sigmoid",
    Op.GELU: lambda a: "GELU" if a["approximate"] == "none" else "GELU (tanh)",
    Op.STOCHASTIC_DEPTH: lambda a: f"stochastic depth ({_percent(a['p'])}, {a['mode']})",
    Op.CHANNEL_SHUFFLE: lambda a: f"channel shuffle, g{a['groups']}",
    Op.SPLIT: lambda a: f"split {a['index'] + 1}/{a['chunks']}",
    Op.SPATIAL_MEAN: lambda a: "global mean",
    Op.MAXPOOL: _pool_label("max"),
    Op.AVGPOOL: _pool_label("avg"),
    Op.ADAPTIVE_AVGPOOL: _adaptive_label,
    Op.LRN: lambda a: f"local response norm, {a['size']}",
    Op.DROPOUT: lambda a: f"dropout ({_percent(a['p'])})",
    Op.FLATTEN: lambda a: "flatten",
    Op.LINEAR: lambda a: f"fc, {a['out_features']}",
    Op.SOFTMAX: lambda a: "softmax",
    Op.IDENTITY: lambda a: "identity",
    Op.PAD: lambda a: "zero pad " + ", ".join(map(str, a["padding"])),
    Op.CONCAT: lambda a: "concat",
    Op.ADD: lambda a: "sum",
    Op.MUL: lambda a: "×",
    Op.LAYER_SCALE: lambda a: "layer scale",
    Op.PERMUTE: _permute_label,
    Op.LAYERNORM: lambda a: "layer norm",
    Op.LAYERNORM2D: lambda a: "layer norm",
}


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
