"""``archc FILE --report``: the cost / receptive-field report.

Consumes the compiled graph (never re-parses), runs :mod:`archlang.analysis`, lays the
results out as a :class:`ReportTable` (per layer, or the GoogLeNet paper's Table 1 with
``--table paper``) and renders it in the requested format. Never imports torch.
"""

from __future__ import annotations

import importlib
from collections import Counter

from archlang.analysis import Analysis, run_passes
from archlang.analysis.grouping import group_nodes
from archlang.graph.shape_text import format_shape

from .formats import RENDERERS, Column, ReportTable, Section, render_text, shown

CONVENTIONS = {
    "macs": "multiply-accumulates of conv and linear layers (bias adds not counted)",
    "flops": "fvcore's FlopCountAnalysis convention (eval): MACs + 2 per batch-norm element + 5 per "
    "layer-norm element (4 without affine) + adaptive avg-pool input elements; max/avg pooling, ReLU, add, mul, "
    "concat count 0 (fvcore#148)",
    "all_ops": "every multiply, add, comparison, divide, exp at inference (a multiply-add is 2); see docs/analysis.md",
    "memory": "bytes of the activations each row produces, at the report's dtype and batch",
}

LAYER_COLUMNS = [
    Column("name", "name"),
    Column("op", "op"),
    Column("shape", "output", "shape"),
    Column("params", "params", "int"),
    Column("macs", "MACs", "int"),
    Column("flops", "FLOPs", "int"),
    Column("rf", "RF (h×w)", "rf"),
    Column("memory", "memory", "bytes"),
]
# Extra exact figures in machine formats only (no room on a terminal).
MACHINE_COLUMNS = [Column("all_ops", "all ops", "int"), Column("buffers", "buffers", "int")]


def _row(name: str, label: str, group) -> dict:
    t, out = group.totals, group.output
    return {
        "name": name,
        "op": label,
        "shape": out.shape,
        "params": t.params,
        "macs": t.macs,
        "flops": t.flops,
        "rf": out.rf,
        "memory": t.out_bytes,
        "all_ops": t.all_ops,
        "buffers": t.buffers,
    }


def _total_row(name: str, totals, rf) -> dict:
    return {
        "name": name,
        "op": "",
        "shape": None,
        "params": totals.params,
        "macs": totals.macs,
        "flops": totals.flops,
        "rf": rf,
        "memory": totals.out_bytes,
        "all_ops": totals.all_ops,
        "buffers": totals.buffers,
    }


MAX_OUTPUT_NOTES = 16


def layers_table(analysis: Analysis, depth: int | None, machine: bool = False) -> ReportTable:
    network = analysis.network
    main = Section(None, [_row(grp.id or network, grp.label, grp) for grp in group_nodes(analysis, depth)])
    main.total = _total_row("total (inference)", analysis.totals, analysis.output_rf)
    sections = [main]
    for name, totals in analysis.aux_totals.items():
        rows = [_row(grp.id, grp.label, grp) for grp in group_nodes(analysis, depth, aux=name)]
        out_rf = analysis.nodes[analysis.graph.aux_outputs[name]].rf
        sections.append(
            Section(f"aux head {name} (training only)", rows, _total_row(f"total ({name})", totals, out_rf))
        )

    t = analysis.totals
    notes = [
        f"input {format_shape(analysis.input_shape)}, batch {analysis.batch}, {analysis.dtype}; "
        f"costs per sample, memory for the batch",
        f"params {t.params:,} (+ {t.buffers:,} buffer elements); MACs {t.macs:,}; FLOPs {t.flops:,}; "
        f"all ops {t.all_ops:,}",
        f"peak live activations at inference: {analysis.peak_activation_bytes:,} bytes"
        + (f" (at {analysis.peak_at})" if analysis.peak_at else ""),
    ]
    returns = analysis.graph.returns
    if returns:  # `outputs dict(...)`: every value the network returns has its own field
        notes.append(
            "outputs (receptive field): "
            + ", ".join(f"{key} {analysis.nodes[nid].rf.text()}" for key, nid in returns[:MAX_OUTPUT_NOTES])
            + (f", and {len(returns) - MAX_OUTPUT_NOTES:,} more" if len(returns) > MAX_OUTPUT_NOTES else "")
        )
    if analysis.aux_totals:
        aux_params = sum(a.params for a in analysis.aux_totals.values())
        notes.append(f"with aux heads (training): params {t.params + aux_params:,}")
    notes += [f"{key}: {text}" for key, text in CONVENTIONS.items()]
    misaligned = [c for c in analysis.nodes.values() if c.rf.misaligned]
    for cost in misaligned:
        notes.append(f"misaligned receptive fields at {cost.id}: " + "; ".join(cost.rf.misaligned))
    meta = {
        "network": network,
        "input": list(analysis.input_shape),
        "batch": analysis.batch,
        "dtype": analysis.dtype,
        "depth": depth,
        "conventions": CONVENTIONS,
        "totals": t.as_dict(),
        "aux_totals": {name: a.as_dict() for name, a in analysis.aux_totals.items()},
        "peak_activation_bytes": analysis.peak_activation_bytes,
        "peak_at": analysis.peak_at,
    }
    columns = LAYER_COLUMNS + (MACHINE_COLUMNS if machine else [])
    title = f"{network}: cost and receptive-field report" + (f" (depth {depth})" if depth is not None else "")
    return ReportTable(title, columns, sections, notes, meta)


def lint_summary(compiled, analysis: Analysis | None = None) -> str | None:
    """``lint: 3 findings (2 W101, 1 W204)`` if the lint package is there, else ``None``."""
    try:
        run_lint = importlib.import_module("archlang.lint").run_lint
    except (ImportError, AttributeError):
        return None
    diagnostics = run_lint(compiled, analysis=analysis)
    if not diagnostics:
        return "lint: no findings"
    counts = Counter(d.code for d in diagnostics)
    detail = ", ".join(f"{n} {code}" for code, n in sorted(counts.items()))
    return f"lint: {len(diagnostics)} finding{'s' if len(diagnostics) != 1 else ''} ({detail}); see `archc lint`"


def report_cli(compiled, options: dict) -> str:
    return _report(compiled, options)


def _report(compiled, options: dict) -> str:
    fmt = options.get("fmt") or "text"
    analysis = run_passes(compiled.graph, dtype=options.get("dtype") or "float32", batch=options.get("batch") or 1)
    if options.get("table") == "paper":
        from .paper import paper_table

        table = paper_table(analysis)
    else:
        table = layers_table(analysis, options.get("depth"), machine=fmt in ("csv", "json"))
    if fmt in ("text", "md") and options.get("lint", True):
        summary = lint_summary(compiled, analysis)
        if summary:
            table.notes.append(summary)
    if fmt == "text":  # a note may quote a layer name (the peak's): no bidi or control character raw
        table.notes = [shown(n) for n in table.notes]
        return render_text(table, options.get("width"))
    return RENDERERS[fmt](table)
