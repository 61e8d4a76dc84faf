"""The cost plot: one bar per top-level block of the inference path (``--depth 1`` rows of
the report), in network order.

* top panel: MACs per block (bars) and the receptive field of the block's output (line,
  right axis, input pixels), with the input size for reference;
* bottom panel: parameters per block (bars) and the spatial size (H) of its output (line).

Output is deterministic: a fixed SVG hash salt, no dates in the metadata, and the figure
built without pyplot (no global state, no GUI backend). Each bar carries an id
(``macs-<block>``, ``params-<block>``) so a reader (or a test) can find it in the SVG.
"""

from __future__ import annotations

import io
import math

import matplotlib
from matplotlib.figure import Figure

from archlang.analysis import Analysis, run_passes
from archlang.analysis.grouping import group_nodes

MACS_COLOR = "#2f6db5"  # the diagrams' convolution blue
PARAMS_COLOR = "#7452a5"
LINE_COLOR = "#c0392b"
METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}, "png": {}}


def block_rows(analysis: Analysis) -> list[dict]:
    """name, MACs, params, receptive field (px, the larger axis; None when global) and
    output height (None for vectors) per top-level block of the inference path."""
    rows = []
    for group in group_nodes(analysis, 1):
        out = group.output
        sizes = [a.size for a in (out.rf.h, out.rf.w) if not a.whole]
        rows.append(
            {
                "name": group.id,
                "macs": group.totals.macs,
                "params": group.totals.params,
                "rf": max(sizes) if sizes else None,
                "height": out.shape[1] if len(out.shape) == 3 else None,
            }
        )
    return rows


UNITS = ((1e9, "billions"), (1e6, "millions"), (1e3, "thousands"))


def scale(values) -> tuple[float, str]:
    """The divisor and unit word that put an axis's largest value between 1 and 1000
    (LeNet-5's 61,706 parameters read "60" on a "thousands" axis, not "0.06 millions")."""
    top = max(values, default=0)
    return next(((d, word) for d, word in UNITS if top >= d), (1.0, ""))


def _label(what: str, unit: str) -> str:
    return f"{what} ({unit})" if unit else what


def _line(values) -> list[float]:
    return [math.nan if v is None else v for v in values]


# Bars drawn at most: ~0.32 in each, so the figure stays under ~35 in (5,200 px at 150 dpi).
# `repeat 10000 { relu }` would otherwise draw a PNG 192,423 px wide in minutes and 2.5 GB.
MAX_BARS = 100
MAX_TICK = 48  # characters of a bar's label (names run to 256; the bar's id keeps it whole)


def grouped_rows(rows: list[dict], limit: int = MAX_BARS) -> tuple[list[dict], str | None]:
    """At most ``limit`` bars: more blocks are drawn as runs of consecutive blocks (one bar
    per run, named ``first … last (k blocks)``), MACs and params summed, the receptive field
    and output height of the run's last block. Returns the bars and a note saying so."""
    if len(rows) <= limit:
        return rows, None
    size = -(-len(rows) // limit)  # ceil: at most `limit` runs
    bars = []
    for start in range(0, len(rows), size):
        run = rows[start : start + size]
        name = run[0]["name"] if len(run) == 1 else f"{run[0]['name']} … {run[-1]['name']} ({len(run)} blocks)"
        bars.append(
            {
                "name": name,
                "macs": sum(r["macs"] for r in run),
                "params": sum(r["params"] for r in run),
                "rf": run[-1]["rf"],
                "height": run[-1]["height"],
            }
        )
    note = (
        f"the plot draws {len(rows):,} top-level blocks as {len(bars)} bars of up to {size} consecutive blocks "
        f"(MACs and params summed; RF and height of each run's last block); `--report --depth 1` lists them all"
    )
    return bars, note


def build_figure(analysis: Analysis, notes: list[str] | None = None) -> Figure:
    rows, note = grouped_rows(block_rows(analysis))
    if note and notes is not None:
        notes.append(note)
    input_shape = analysis.input_shape
    names = [r["name"] for r in rows]
    xs = list(range(len(rows)))
    fig = Figure(figsize=(max(6.4, 0.32 * len(rows) + 2.5), 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    grouped = f" ({note.split(' (')[0].removeprefix('the plot draws ')})" if note else ""
    fig.suptitle(f"{analysis.network}: cost and receptive field per block{grouped}", parse_math=False)

    divisor, unit = scale(r["macs"] for r in rows)
    bars = top.bar(xs, [r["macs"] / divisor for r in rows], color=MACS_COLOR, label="MACs")
    for bar, name in zip(bars, names):
        bar.set_gid(f"macs-{name}")
    top.set_ylabel(_label("MACs", unit))
    rf_axis = top.twinx()
    rf_axis.plot(xs, _line(r["rf"] for r in rows), color=LINE_COLOR, marker="o", ms=3, label="receptive field")
    rf_axis.set_ylabel("receptive field (px)", color=LINE_COLOR)
    rf_axis.set_ylim(bottom=0)
    if len(input_shape) == 3:
        size = max(input_shape[1:])
        rf_axis.axhline(size, color=LINE_COLOR, ls=":", lw=1)
        # Headroom above the line for its label: when the receptive field tops out at the
        # input size (LeNet-5's 32 px) the line is the axis's top and the label was clipped.
        rf_axis.set_ylim(top=max(rf_axis.get_ylim()[1], size * 1.15))
        rf_axis.annotate(
            f"input {size} px",
            (0, size),
            textcoords="offset points",
            xytext=(2, 3),
            color=LINE_COLOR,
            fontsize=8,
            gid="input-size",
        )

    divisor, unit = scale(r["params"] for r in rows)
    bars = bottom.bar(xs, [r["params"] / divisor for r in rows], color=PARAMS_COLOR, label="params")
    for bar, name in zip(bars, names):
        bar.set_gid(f"params-{name}")
    bottom.set_ylabel(_label("parameters", unit))
    size_axis = bottom.twinx()
    size_axis.plot(xs, _line(r["height"] for r in rows), color=LINE_COLOR, marker="s", ms=3)
    size_axis.set_ylabel("output height (px)", color=LINE_COLOR)
    size_axis.set_ylim(bottom=0)

    # parse_math=False: a `$` in a layer name is text, not the start of mathtext (an unpaired
    # one made matplotlib raise).
    ticks = [n if len(n) <= MAX_TICK else n[: MAX_TICK - 1] + "…" for n in names]
    bottom.set_xticks(xs, ticks, rotation=60, ha="right", fontsize=8, parse_math=False)
    bottom.set_xlim(-0.6, len(rows) - 0.4)
    for ax in (top, bottom):
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    return fig


DEFAULT_DPI = 150


def plot_bytes(compiled, fmt: str, notes: list[str] | None = None, dpi: int | None = None) -> bytes:
    """The plot as SVG, PDF or PNG bytes; the same spec gives the same bytes. What the
    figure leaves out is appended to ``notes``. ``dpi`` sizes the PNG (6.4 inches wide at
    least: 960 px at the default 150)."""
    fig = build_figure(run_passes(compiled.graph), notes)
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "archlang", "svg.fonttype": "path"}):
        fig.savefig(buf, format=fmt, metadata=METADATA[fmt], dpi=dpi or DEFAULT_DPI)
    return buf.getvalue()
