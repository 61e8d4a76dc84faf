"""``--table paper``: the layout of Table 1 of "Going deeper with convolutions"
(Szegedy et al., arXiv 1409.4842), computed from the graph and set beside the published
figures.

Rows come from the top-level groups of the inference path (``--depth 1``), generically:

* a block instance whose arguments include the six Inception widths (``ch1x1`` ...
  ``pool_proj``) becomes an inception row with those columns filled from its arguments;
  other block instances become a row named after their template;
* a conv unit / layer becomes a row by its op (table ``PAPER_ROW_TYPE``); a 1×1 stride-1
  convolution directly followed by a 3×3 one is one row with a ``#3×3 reduce`` column,
  as the paper prints conv2/conv3;
* ops without a row in the paper (LRN, flatten, ...) are listed in a note;
* a network ending in a linear layer gets the paper's final softmax row (applied by the
  loss, not part of the graph).

Published figures are compared where the row structure matches Table 1's; rows whose
published figure does not follow from the architecture are named in the notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archlang.analysis import Analysis
from archlang.analysis.grouping import Group, group_nodes
from archlang.ops import Op
from archlang.ops.records import RECORDS

from .formats import Column, ReportTable, Section

# Inception block argument -> Table 1 column.
INCEPTION_COLUMNS = {
    "ch1x1": "n1x1",
    "ch3x3red": "n3x3red",
    "ch3x3": "n3x3",
    "ch5x5red": "n5x5red",
    "ch5x5": "n5x5",
    "pool_proj": "pool_proj",
}

# What a top-level layer is called in Table 1 (None: no row): the records' diagram.paper_row.
PAPER_ROW_TYPE: dict[Op, str | None] = {op: r.diagram.paper_row for op, r in RECORDS.items()}

# Table 1 as published (FACTS.md): type, patch/stride, output, the six widths, params, ops.
# params in thousands ("2.7K"), ops in millions ("34M"), as printed.
_P = None
PUBLISHED: list[tuple] = [
    ("convolution", "7×7/2", "112×112×64", (_P, _P, _P, _P, _P, _P), "2.7K", "34M"),
    ("max pool", "3×3/2", "56×56×64", (_P,) * 6, None, None),
    ("convolution", "3×3/1", "56×56×192", (_P, 64, 192, _P, _P, _P), "112K", "360M"),
    ("max pool", "3×3/2", "28×28×192", (_P,) * 6, None, None),
    ("inception (3a)", None, "28×28×256", (64, 96, 128, 16, 32, 32), "159K", "128M"),
    ("inception (3b)", None, "28×28×480", (128, 128, 192, 32, 96, 64), "380K", "304M"),
    ("max pool", "3×3/2", "14×14×480", (_P,) * 6, None, None),
    ("inception (4a)", None, "14×14×512", (192, 96, 208, 16, 48, 64), "364K", "73M"),
    ("inception (4b)", None, "14×14×512", (160, 112, 224, 24, 64, 64), "437K", "88M"),
    ("inception (4c)", None, "14×14×512", (128, 128, 256, 24, 64, 64), "463K", "100M"),
    ("inception (4d)", None, "14×14×528", (112, 144, 288, 32, 64, 64), "580K", "119M"),
    ("inception (4e)", None, "14×14×832", (256, 160, 320, 32, 128, 128), "840K", "170M"),
    ("max pool", "3×3/2", "7×7×832", (_P,) * 6, None, None),
    ("inception (5a)", None, "7×7×832", (256, 160, 320, 32, 128, 128), "1072K", "54M"),
    ("inception (5b)", None, "7×7×1024", (384, 192, 384, 48, 128, 128), "1388K", "71M"),
    ("avg pool", "7×7/1", "1×1×1024", (_P,) * 6, None, None),
    ("dropout (40%)", None, "1×1×1024", (_P,) * 6, None, None),
    ("linear", None, "1×1×1000", (_P,) * 6, "1000K", "1M"),
    ("softmax", None, "1×1×1000", (_P,) * 6, None, None),
]
PARAMS_TOLERANCE = 0.05  # relative; the published params column is approximate
OPS_TOLERANCE = 1_000_000  # the published ops are rounded to 1M

COLUMNS = [
    Column("type", "type"),
    Column("patch", "patch size/stride"),
    Column("output", "output size"),
    Column("depth", "depth", "int"),
    Column("n1x1", "#1×1", "int"),
    Column("n3x3red", "#3×3 reduce", "int"),
    Column("n3x3", "#3×3", "int"),
    Column("n5x5red", "#5×5 reduce", "int"),
    Column("n5x5", "#5×5", "int"),
    Column("pool_proj", "pool proj", "int"),
    Column("params", "params", "kilo"),
    Column("ops", "ops", "mega"),
    Column("paper_params", "paper params"),
    Column("paper_ops", "paper ops"),
    Column("check", "vs paper"),
    Column("layers", "layers"),
]


@dataclass
class PaperRow:
    type: str
    kind: str  # the type without instance detail, for aligning with the published rows
    layers: list[str]
    output: tuple
    params: int | None = None
    ops: int | None = None
    patch: str | None = None
    depth: int = 0
    widths: dict = field(default_factory=dict)
    inferred: bool = False  # not in the graph (the final softmax)
    conv: dict | None = None  # the attrs of a single-convolution row

    def cells(self) -> dict:
        h, w, c = (1, 1, self.output[0]) if len(self.output) == 1 else (self.output[1], self.output[2], self.output[0])
        return {
            "type": self.type,
            "patch": self.patch,
            "output": f"{h}×{w}×{c}",
            "depth": self.depth,
            **self.widths,
            "params": self.params,
            "ops": self.ops,
            "layers": " + ".join(self.layers),
        }


def _weighted_depth(analysis: Analysis, nodes) -> int:
    """Conv/linear layers on the longest path through ``nodes`` (the paper's "depth")."""
    inside = {c.id for c in nodes}
    depth: dict[str, int] = {}
    for c in nodes:
        srcs = [depth[s] for s in analysis.graph.nodes[c.id].inputs if s in inside]
        depth[c.id] = max(srcs, default=0) + (c.op in (Op.CONV2D, Op.LINEAR))
    return max(depth.values(), default=0)


def _patch(attrs: dict, op: Op, in_shape) -> str | None:
    if op is Op.ADAPTIVE_AVGPOOL:  # a global pool: the patch is the whole input map
        return f"{in_shape[1] // attrs['output_size'][0]}×{in_shape[2] // attrs['output_size'][1]}/1"
    if op is Op.SPATIAL_MEAN:  # the mean over the whole map
        return f"{in_shape[1]}×{in_shape[2]}/1"
    if "kernel_size" not in attrs:
        return None
    kh, kw = attrs["kernel_size"]
    s = attrs["stride"] or attrs["kernel_size"]
    return f"{kh}×{kw}/{s[0]}" if s[0] == s[1] else f"{kh}×{kw}/{s[0]}×{s[1]}"


def _short(instance: str, template: str) -> str:
    low = instance.lower()
    return instance[len(template) :] if low.startswith(template.lower()) and len(low) > len(template) else instance


def _row_for(analysis: Analysis, group: Group) -> PaperRow | None:
    scopes = analysis.graph.scopes
    scope = scopes.get(group.id)
    t = group.totals
    out = group.output.shape
    if scope is not None and scope.kind == "block":
        template = scope.template or "block"
        widths = {col: scope.args[arg] for arg, col in INCEPTION_COLUMNS.items() if arg in scope.args}
        kind = template.lower() if len(widths) == len(INCEPTION_COLUMNS) else template
        return PaperRow(
            f"{kind} ({_short(group.id, template)})",
            kind,
            [group.id],
            out,
            t.params,
            t.macs,
            depth=_weighted_depth(analysis, group.nodes),
            widths=widths if kind != template else {},
        )
    lead = next((c for c in group.nodes if c.op is Op.CONV2D or c.op is Op.LINEAR), group.nodes[0])
    kind = PAPER_ROW_TYPE[lead.op]
    if kind is None:
        return None
    data = analysis.graph.nodes[lead.id]
    in_shape = analysis.graph.nodes[data.inputs[0]].shape if data.inputs else None
    label = kind
    if lead.op is Op.DROPOUT:
        label = f"dropout ({data.attrs['p'] * 100:g}%)"
    weighted = lead.op in (Op.CONV2D, Op.LINEAR)
    single_conv = lead.op is Op.CONV2D and sum(c.op is Op.CONV2D for c in group.nodes) == 1
    return PaperRow(
        label,
        kind,
        [group.id],
        out,
        t.params if weighted else None,
        t.macs if weighted else None,
        _patch(data.attrs, lead.op, in_shape),
        _weighted_depth(analysis, group.nodes),
        conv=data.attrs if single_conv else None,
    )


def _merge_reduce(analysis: Analysis, rows: list[PaperRow]) -> list[PaperRow]:
    """conv 1×1/1 then conv 3×3 -> one row with a #3×3 reduce column (Table 1's conv2/conv3)."""
    merged: list[PaperRow] = []
    for row in rows:
        prev = merged[-1] if merged else None
        a, b = (prev.conv if prev and not prev.widths else None), row.conv
        if a and b and a["kernel_size"] == (1, 1) and a["stride"] == (1, 1) and b["kernel_size"] == (3, 3):
            merged[-1] = PaperRow(
                row.type,
                row.kind,
                prev.layers + row.layers,
                row.output,
                prev.params + row.params,
                prev.ops + row.ops,
                row.patch,
                prev.depth + row.depth,
                {"n3x3red": a["out_channels"], "n3x3": b["out_channels"]},
            )
            continue
        merged.append(row)
    return merged


def _mega(n: int) -> str:
    return f"{max(1, round(n / 1e6))}M"


def _published_value(text: str) -> int:
    scale = {"K": 1_000, "M": 1_000_000}[text[-1]]
    return round(float(text[:-1]) * scale)


def _name(row: PaperRow) -> str:
    return row.type if "(" in row.type else f"{row.type} ({' + '.join(row.layers)})"


def _compare(rows: list[PaperRow], notes: list[str]) -> dict[int, dict]:
    """Pair our rows with Table 1's and say where the published figures differ."""
    ours = [r.kind for r in rows]
    theirs = [p[0].split(" (")[0] for p in PUBLISHED]
    if ours != theirs:
        notes.append(
            "published figures not compared: the row structure differs from Table 1 "
            f"({len(rows)} rows vs {len(PUBLISHED)} published)"
        )
        return {}
    cells: dict[int, dict] = {}
    params_off, ops_off = [], []
    for i, (row, pub) in enumerate(zip(rows, PUBLISHED)):
        _type, _patch_, output, widths, p_params, p_ops = pub
        got = row.cells()
        flags = []
        if p_ops is not None and row.ops is not None and abs(row.ops - _published_value(p_ops)) > OPS_TOLERANCE:
            flags.append("ops ≠")
            ops_off.append(f"{_name(row)}: published {p_ops}, computed {row.ops:,} ({_mega(row.ops)})")
        if p_params is not None and row.params is not None:
            pub_n = _published_value(p_params)
            if abs(row.params - pub_n) > PARAMS_TOLERANCE * pub_n:
                flags.append("params ≈")
                params_off.append(f"{_name(row)}: published {p_params}, computed {row.params:,}")
        if got["output"] != output:
            flags.append("output ≠")
            notes.append(f"{_name(row)}: output {got['output']}, published {output}")
        for col, want in zip(("n1x1", "n3x3red", "n3x3", "n5x5red", "n5x5", "pool_proj"), widths):
            if want is not None and row.widths.get(col) != want:
                flags.append(f"{col} ≠")
        cells[i] = {"paper_params": p_params, "paper_ops": p_ops, "check": ", ".join(flags) or "✓"}
    if ops_off:
        notes.append(
            "published ops that this architecture does not reproduce (beyond the table's 1M "
            "rounding): " + "; ".join(ops_off)
        )
    notes.append(
        "the published params column is approximate (no row states what K means, and some rows "
        "match weights/1024 rather than weights+biases/1000); rows off by more than "
        f"{PARAMS_TOLERANCE:.0%}: " + ("; ".join(params_off) or "none")
    )
    return cells


def paper_rows(analysis: Analysis) -> tuple[list[PaperRow], list[str]]:
    rows, skipped = [], []
    for group in group_nodes(analysis, 1):
        row = _row_for(analysis, group)
        if row is None:
            if group.output.op is not Op.INPUT:
                skipped.append(f"{group.id} ({group.label})")
            continue
        rows.append(row)
    rows = _merge_reduce(analysis, rows)
    if rows and rows[-1].kind == "linear":
        rows.append(PaperRow("softmax", "softmax", ["(loss)"], rows[-1].output, inferred=True))
    return rows, skipped


def paper_table(analysis: Analysis) -> ReportTable:
    rows, skipped = paper_rows(analysis)
    notes: list[str] = []
    compared = _compare(rows, notes)
    body = [{**row.cells(), **compared.get(i, {})} for i, row in enumerate(rows)]
    t = analysis.totals
    total = {"type": "total (inference)", "params": t.params, "ops": t.macs, "check": "", "layers": ""}
    notes.insert(0, f"total (inference): params {t.params:,}; ops (MACs) {t.macs:,}")
    if skipped:
        notes.insert(0, "no row in Table 1's layout: " + ", ".join(skipped))
    if any(r.inferred for r in rows):
        notes.insert(0, "softmax: not a layer of the graph (the loss applies it); shown as in Table 1")
    notes.insert(
        0,
        "ops = MACs (multiply-accumulates of conv and linear layers, as the paper counts); "
        "params as torch counts them (weights + biases + BN affine); depth = conv/linear layers "
        "on the longest path",
    )
    title = (
        f'{analysis.network}: Table 1 of "Going deeper with convolutions" (Szegedy et al., 2014), '
        "computed from the architecture"
    )
    meta = {
        "network": analysis.network,
        "input": list(analysis.input_shape),
        "totals": t.as_dict(),
        "published": [
            {
                "type": p[0],
                "patch": p[1],
                "output": p[2],
                "widths": dict(zip(INCEPTION_COLUMNS.values(), p[3])),
                "params": p[4],
                "ops": p[5],
            }
            for p in PUBLISHED
        ],
    }
    return ReportTable(title, COLUMNS, [Section(None, body, total)], notes, meta)
