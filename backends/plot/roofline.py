"""The roofline of ``archc bench SPEC --layers --plot FILE``: each layer's achieved GMAC/s
against its arithmetic intensity (MAC per byte moved), log-log, under the roof this machine
showed on this network.

The roof is measured, not a datasheet's: a flat ceiling at the best GMAC/s any layer
reached, and a slope of the best bytes/s any layer moved (the layers without MACs,
BatchNorm and pooling, count there: they are the memory-bound ones). A layer's distance
below ``min(ceiling, slope × intensity)`` is what it leaves on the table; the layers
furthest below are labelled. Only layers with MACs (convolutions, linear) have a point; a
marker's area follows the layer's share of the forward's time, so the ones that matter
stand out. Each marker carries an id (``layer-<name>``) for a reader or a test.

Built without pyplot and with a fixed SVG hash salt, as :mod:`.costs`.
"""

from __future__ import annotations

import io
import math

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .costs import DEFAULT_DPI, LINE_COLOR, MACS_COLOR, METADATA

LABELLED = 6  # the layers furthest below the roof that get their name on the plot
FLAGGED_COLOR = "#d35400"


def roof(layers: list[dict]) -> tuple[float | None, float | None]:
    """(best GMAC/s, best GB/s) any layer reached: the measured ceiling and slope."""
    peak = max((r["gmacs"] for r in layers if r["gmacs"]), default=None)
    rates = [r["bytes"] / r["ms"] / 1e6 for r in layers if r["bytes"] and r["ms"]]
    return peak, max(rates, default=None)


def attainable(intensity: float, peak: float, bandwidth: float | None) -> float:
    return peak if bandwidth is None else min(peak, bandwidth * intensity)


def points(layers: list[dict]) -> list[dict]:
    """The layers that have a point (MACs and a measured time), with the share of their
    roof they reached (``of_roof``), in the table's order."""
    peak, bandwidth = roof(layers)
    return [
        {**r, "of_roof": r["gmacs"] / attainable(r["intensity"], peak, bandwidth)}
        for r in layers
        if r["gmacs"] and r["intensity"]
    ]


LINE_POINTS = 9  # a label's line height, in points


def label_drops(labelled: list[dict]) -> dict[str, int]:
    """How many lines each label moves down so that labels of points close together (layers
    of the same shape measure alike) do not print over each other: top to bottom, a label
    goes under those already placed near its point."""
    drops: dict[str, int] = {}
    placed: list[tuple[float, float, int]] = []  # log10 x, log10 y, line
    for r in sorted(labelled, key=lambda r: -r["gmacs"]):
        x, y = math.log10(r["intensity"]), math.log10(r["gmacs"])
        near = [line for px, py, line in placed if abs(px - x) < 0.3 and abs(py - y) < 0.05]
        drops[r["name"]] = max(near) + 1 if near else 0
        placed.append((x, y, drops[r["name"]]))
    return drops


def _minor_label(value: float, _) -> str:
    """Label 2, 3 and 5 times a power of ten (the minor ticks an axis spanning about a
    decade needs), no others."""
    mantissa = value / 10 ** math.floor(math.log10(value)) if value > 0 else 0
    return f"{value:g}" if round(mantissa, 6) in (2, 3, 5) else ""


def build_figure(result: dict) -> Figure:
    context, layers = result["context"], result["layers"]
    shown = points(layers)
    peak, bandwidth = roof(layers)
    fig = Figure(figsize=(8.0, 6.0), layout="constrained")
    ax = fig.subplots()
    ax.set_xscale("log")
    ax.set_yscale("log")
    fig.suptitle(
        f"{context['network']}: roofline per layer (eager, batch {context['batch']}, "
        f"{context['threads']} thread{'' if context['threads'] == 1 else 's'})",
        parse_math=False,
    )
    ax.set_title(context["cpu"], fontsize=8, parse_math=False)
    ax.set_xlabel("arithmetic intensity (MAC per byte moved)")
    ax.set_ylabel("achieved GMAC/s")
    if not shown:
        ax.text(0.5, 0.5, "no layer with MACs was measured", transform=ax.transAxes, ha="center", gid="empty")
        return fig

    total = sum(r["ms"] for r in shown) or 1.0
    worst = sorted(shown, key=lambda r: r["of_roof"])[:LABELLED]
    drops = label_drops(worst)
    for r in shown:
        flagged = bool(r["flag"])
        dot = ax.scatter(
            [r["intensity"]],
            [r["gmacs"]],
            s=12 + 400 * r["ms"] / total,
            color=FLAGGED_COLOR if flagged else MACS_COLOR,
            alpha=0.75,
            edgecolors="none",
        )
        dot.set_gid(f"layer-{r['name']}")
        if r["name"] in drops:
            ax.annotate(
                f"{r['name']} ({100 * r['of_roof']:.0f}%)",
                (r["intensity"], r["gmacs"]),
                textcoords="offset points",
                xytext=(5, -3 - LINE_POINTS * drops[r["name"]]),
                fontsize=7,
                parse_math=False,
                annotation_clip=False,
                gid=f"label-{r['name']}",
            )

    xs = [r["intensity"] for r in shown]
    lo, hi = min(xs) / 2, max(xs) * 2
    if bandwidth is not None:
        lo = min(lo, peak / bandwidth / 2)  # the ridge point in view
        ridge = peak / bandwidth
        grid = [lo, ridge, hi] if lo < ridge < hi else [lo, hi]
    else:
        grid = [lo, hi]
    (line,) = ax.plot(
        grid,
        [attainable(x, peak, bandwidth) for x in grid],
        color=LINE_COLOR,
        lw=1.2,
        label=f"measured roof: {peak:.1f} GMAC/s" + (f", {bandwidth:.1f} GB/s" if bandwidth is not None else ""),
    )
    line.set_gid("roof")
    if any(r["flag"] for r in shown):
        ax.scatter([], [], color=FLAGGED_COLOR, label="flagged ◀ in the table (far below the best GMAC/s)")
    ax.set_xlim(lo, hi)
    ys = [r["gmacs"] for r in shown]
    ax.set_ylim(min(ys) / 2, peak * 2)
    for axis in (ax.xaxis, ax.yaxis):  # 20 and 0.5, not 2×10¹ and 5×10⁻¹
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(FuncFormatter(_minor_label))
    ax.grid(which="both", alpha=0.25)
    ax.legend(loc="lower right", fontsize=8)
    hidden = len(layers) - len(shown)
    fig.supxlabel(  # under the axis label, in the space constrained layout leaves for it
        (
            f"{hidden} layers without MACs (BatchNorm, pooling, ...) have no point; they set the slope. "
            if hidden
            else ""
        )
        + f"Labelled: the {min(LABELLED, len(shown))} layers furthest below the roof (the share of it reached).",
        fontsize=7,
        parse_math=False,
    )
    return fig


def plot_bytes(result: dict, fmt: str, dpi: int | None = None) -> bytes:
    """The roofline of a bench result (its ``layers`` filled) as SVG, PDF or PNG bytes."""
    fig = build_figure(result)
    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "archlang", "svg.fonttype": "path"}):
        fig.savefig(buf, format=fmt, metadata=METADATA[fmt], dpi=dpi or DEFAULT_DPI)
    return buf.getvalue()
