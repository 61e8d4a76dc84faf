"""``archc diff A B``: two specs (or one spec under two ``--set``s) side by side, one row per
top-level block of the inference path, matched by name: output shape, params, MACs, FLOPs
and receptive field of each side, with the differences and the differences in percent of
A. Blocks on one side only are marked; the totals are the two ``--report`` totals (so they
include every block, matched or not). Aux heads (training only) are compared in their own
section. Rendered by the report's renderers (:mod:`.formats`). Never imports torch.
"""

from __future__ import annotations

from archlang.analysis import Analysis, run_passes
from archlang.analysis.grouping import group_nodes
from archlang.diagnostics import printable

from .formats import RENDERERS, Column, ReportTable, Section, render_text

FIGURES = (("params", "params"), ("macs", "MACs"), ("flops", "FLOPs"))
COLUMNS = [
    Column("name", "name"),
    Column("status", "A vs B"),
    Column("shape_a", "output A", "shape"),
    Column("shape_b", "output B", "shape"),
    *(
        col
        for key, title in FIGURES
        for col in (
            Column(f"{key}_a", f"{title} A", "int"),
            Column(f"{key}_b", f"{title} B", "int"),
            Column(f"{key}_delta", f"Δ {title}", "delta"),
            Column(f"{key}_pct", f"Δ% {title}", "percent"),
        )
    ),
    Column("rf_a", "RF A", "rf"),
    Column("rf_b", "RF B", "rf"),
]
# Panels of a table cut to the terminal's width keep each figure's A, B and Δs together.
GROUPS = [
    ("status", "shape_a", "shape_b"),
    *((f"{k}_a", f"{k}_b", f"{k}_delta", f"{k}_pct") for k, _ in FIGURES),
    ("rf_a", "rf_b"),
]
SAME, CHANGED, ONLY_A, ONLY_B = "same", "changed", "only A", "only B"


def _figures(group) -> dict:
    t, out = group.totals, group.output
    return {"shape": out.shape, "params": t.params, "macs": t.macs, "flops": t.flops, "rf": out.rf}


def _totals(totals, rf) -> dict:
    return {"shape": None, "params": totals.params, "macs": totals.macs, "flops": totals.flops, "rf": rf}


def _pct(a: int, b: int) -> float | None:
    return None if not a else (b - a) * 100 / a


def compare_row(name: str, a: dict | None, b: dict | None) -> dict:
    """One table row from each side's figures (``None``: the block is not on that side)."""
    row = {"name": name}
    for side, figures in (("a", a), ("b", b)):
        for key in ("shape", "params", "macs", "flops", "rf"):
            row[f"{key}_{side}"] = None if figures is None else figures[key]
    if a is None or b is None:
        row["status"] = ONLY_B if a is None else ONLY_A
        return row
    for key, _ in FIGURES:
        row[f"{key}_delta"] = b[key] - a[key]
        row[f"{key}_pct"] = _pct(a[key], b[key])
    differs = any(a[k] != b[k] for k in ("shape", "params", "macs", "flops")) or a["rf"].text() != b["rf"].text()
    row["status"] = CHANGED if differs else SAME
    return row


def merged_order(a: list[str], b: list[str]) -> list[str]:
    """A's names in A's order, each name only in B placed after the B name before it.

    Linear: a name only in B is chained to the B name before it (each name has at most one
    such successor, the next name of B), and the chains are spliced in while A is walked.
    (Inserting into a list, with a search for the place, was quadratic: two 60-byte specs
    with ``repeat 100000`` took 102 s.)"""
    present = set(a)
    follower: dict[str | None, str] = {}
    after = None
    for name in b:
        if name not in present:
            follower[after] = name
            present.add(name)
        after = name
    order: list[str] = []

    def chain(name: str | None) -> None:
        while name in follower:
            name = follower[name]
            order.append(name)

    chain(None)
    for name in a:
        order.append(name)
        chain(name)
    return order


def _blocks(analysis: Analysis) -> dict[str, dict]:
    return {g.id: _figures(g) for g in group_nodes(analysis, 1)}


def diff_table(a: Analysis, b: Analysis, labels: tuple[str, str]) -> ReportTable:
    blocks_a, blocks_b = _blocks(a), _blocks(b)
    rows = [compare_row(n, blocks_a.get(n), blocks_b.get(n)) for n in merged_order(list(blocks_a), list(blocks_b))]
    main = Section(None, rows)
    main.total = compare_row("total (inference)", _totals(a.totals, a.output_rf), _totals(b.totals, b.output_rf))
    sections = [main]
    heads = merged_order(list(a.aux_totals), list(b.aux_totals))
    if heads:

        def head(analysis, name):
            if name not in analysis.aux_totals:
                return None
            out = analysis.graph.aux_outputs[name]
            return _totals(analysis.aux_totals[name], analysis.nodes[out].rf)

        sections.append(Section("aux heads (training only)", [compare_row(n, head(a, n), head(b, n)) for n in heads]))
    counts = {s: sum(r["status"] == s for r in rows) for s in (SAME, CHANGED, ONLY_A, ONLY_B)}
    notes = [  # the labels are the command line's paths: shown without control or bidi characters
        f"A = {printable(labels[0], False)} ({a.network}, input {'×'.join(map(str, a.input_shape))})",
        f"B = {printable(labels[1], False)} ({b.network}, input {'×'.join(map(str, b.input_shape))})",
        "blocks: " + ", ".join(f"{n} {s}" for s, n in counts.items()),
        "Δ = B − A; Δ% in percent of A; totals are each side's `--report` totals",
    ]
    meta = {
        "a": {"spec": labels[0], "network": a.network, "input": list(a.input_shape), "totals": a.totals.as_dict()},
        "b": {"spec": labels[1], "network": b.network, "input": list(b.input_shape), "totals": b.totals.as_dict()},
        "counts": counts,
    }
    return ReportTable(
        f"{a.network} vs {b.network}: per-block differences",
        COLUMNS,
        sections,
        notes,
        meta,
        key_columns=1,
        column_groups=GROUPS,
    )


def diff_cli(compiled_a, compiled_b, labels: tuple[str, str], fmt: str, width: int | None = None) -> str:
    """The rendered table; ``width`` (text only): the terminal's columns, which it fits."""
    table = diff_table(run_passes(compiled_a.graph), run_passes(compiled_b.graph), labels)
    return render_text(table, width) if fmt == "text" else RENDERERS[fmt](table)
