"""One table model, five renderings: text (a terminal table), Markdown, CSV, JSON and LaTeX (booktabs).

A :class:`ReportTable` holds raw cell values (ints, shapes, receptive fields); each column's
``kind`` decides how a value is shown: humanised for people (text, md, latex), exact for
machines (csv, json: every count an exact integer).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from archlang.analysis.results import AxisRF, ReceptiveField
from archlang.diagnostics import printable
from archlang.graph.shape_text import format_shape

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = "text"  # a key of KINDS

    @property
    def numeric(self) -> bool:
        return KINDS[self.kind].numeric


@dataclass
class Section:
    title: str | None
    rows: list[dict] = field(default_factory=list)
    total: dict | None = None


@dataclass
class ReportTable:
    title: str
    columns: list[Column]
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)  # extra JSON fields (exact figures)
    # How the text rendering cuts a table too wide for the terminal into panels: the first
    # ``key_columns`` columns repeat in each, the keys of each group stay together.
    key_columns: int = 1
    column_groups: list[tuple[str, ...]] = field(default_factory=list)


# ---- cell kinds -----------------------------------------------------------------------


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _axis_json(a: AxisRF):
    return None if a.whole else {"size": _number(a.size), "stride": _number(a.stride), "padding": _number(a.padding)}


def _number(x):
    # after upsampling the jump (and what follows from it) can be a fraction of a pixel
    return x if isinstance(x, int) else float(x)


def rf_json(rf: ReceptiveField) -> dict:
    return {"h": _axis_json(rf.h), "w": _axis_json(rf.w), "misaligned": list(rf.misaligned)}


@dataclass(frozen=True)
class Kind:
    display: Callable  # for people (text, md, latex)
    csv: Callable
    json: Callable
    numeric: bool = False


def _text(v):
    return "" if v is None else str(v)


def _int_display(v):
    return "" if v is None else f"{v:,}"


def _scaled(v, scale: int, suffix: str) -> str:
    # The paper's style: "2.7K", "112K", "34M"; one decimal below 10K, and below 1M.
    if v is None:
        return ""
    x = v / scale
    precise = x < 1 or (suffix == "K" and x < 10)
    return f"{x:.1f}{suffix}" if precise else f"{round(x)}{suffix}"


def _shape(v, sep="×"):
    return "" if v is None else format_shape(v, sep)


KINDS: dict[str, Kind] = {
    "text": Kind(_text, _text, lambda v: v),
    "int": Kind(_int_display, _text, lambda v: v, numeric=True),
    "bytes": Kind(lambda v: "" if v is None else _bytes(v), _text, lambda v: v, numeric=True),
    "kilo": Kind(lambda v: _scaled(v, 1000, "K"), _text, lambda v: v, numeric=True),
    "mega": Kind(lambda v: _scaled(v, 1_000_000, "M"), _text, lambda v: v, numeric=True),
    "shape": Kind(_shape, lambda v: _shape(v, "x"), lambda v: None if v is None else list(v)),
    # `archc diff`: signed differences, and differences in percent of the first side.
    "delta": Kind(lambda v: "" if v is None else f"{v:+,}", _text, lambda v: v, numeric=True),
    "percent": Kind(
        lambda v: "" if v is None else f"{v:+.1f}%", _text, lambda v: None if v is None else round(v, 4), numeric=True
    ),
    "rf": Kind(
        lambda v: "" if v is None else v.text(),
        lambda v: "" if v is None else v.text().replace("×", "x"),
        lambda v: None if v is None else rf_json(v),
    ),
}


def _cells(table: ReportTable, row: dict, how: str) -> list[str]:
    return [getattr(KINDS[c.kind], how)(row.get(c.key)) for c in table.columns]


def _all_rows(table: ReportTable):
    for section in table.sections:
        for row in section.rows:
            yield section, row, False
        if section.total is not None:
            yield section, section.total, True


# ---- renderers --------------------------------------------------------------------------


def shown(text: str) -> str:
    """Text as the terminal may show it: control and bidi characters escaped (a U+202E in a
    layer name would reverse the rest of its row), one line."""
    return text if text.isascii() and text.isprintable() else printable(text, keep_newlines=False)


def _shown_text(v) -> str:
    return shown(_text(v))


def _text_rows(table: ReportTable):
    """(cells, separator_before) per table row: section titles, rows, totals. Text cells
    (names) are escaped for the terminal; the other kinds are figures we format."""
    blank = [""] * (len(table.columns) - 1)
    show = [(c.key, _shown_text if c.kind == "text" else KINDS[c.kind].display) for c in table.columns]
    for i, section in enumerate(table.sections):
        if section.title:
            yield [f"[{shown(section.title)}]", *blank], i > 0
        for row in section.rows:
            yield [fn(row.get(key)) for key, fn in show], False
        if section.total is not None:
            yield [fn(section.total.get(key)) for key, fn in show], True


def cell_len(text: str) -> int:
    """Terminal columns ``text`` takes: two per East Asian wide or fullwidth character (CJK,
    most emoji), none per combining mark, variation selector or zero-width format character,
    one per other character. Emoji sequences on top: a narrow symbol followed by U+FE0F is
    drawn as an emoji (two columns: ``❤️``); a skin tone after an emoji and a character after
    a zero-width joiner are drawn into the glyph before them (``👍🏽``, ``👨‍👩‍👧`` take two)."""
    if text.isascii():
        return len(text)
    total, last, joined = 0, 0, False
    for ch in text:
        if joined:
            joined = False
        elif ch == "\u200d":
            joined = True
        elif ch == "\ufe0f" and last == 1:
            total, last = total + 1, 2
        elif "\U0001f3fb" <= ch <= "\U0001f3ff" and last == 2:
            pass  # a skin tone modifies the emoji before it
        else:
            width = _char_width(ch)
            total += width
            last = width or last
    return total


@functools.lru_cache(maxsize=4096)
def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def render_text(table: ReportTable, width: int | None = None) -> str:
    """The terminal table: the title, a header over a rule, one line per row (numbers right-
    aligned, columns three spaces apart), a blank line before each total and aux section;
    then the notes.

    ``width``: the terminal's columns. A table wider than that is cut into panels, one
    under the other, each repeating the table's first ``table.key_columns`` columns (the
    row's name) and holding as many of the other column groups (``table.column_groups``,
    else single columns) as fit; notes are wrapped to it.

    Laid out directly: through rich's Table it looked the same but took ~1.1 ms per row
    (0.4 s for Inception v3's 325 rows, minutes at 10,000 layers) and 16 ms to import; see
    README's benchmarks."""
    rows = [(cells, [cell_len(x) for x in cells], separated) for cells, separated in _text_rows(table)]
    header = [c.title for c in table.columns]
    header_lens = [cell_len(x) for x in header]
    widths = [max(col) for col in zip(header_lens, *(lens for _, lens, _ in rows))]
    panels = _panels(table, widths, width)
    out = [table.title]
    for panel in panels:
        out.append("")
        out += _panel_lines(table, panel, widths, header, header_lens, rows)
    out.append("")
    notes = [" ".join(n.split()) for n in table.notes]
    if width is not None:
        import textwrap

        notes = [line for n in notes for line in textwrap.wrap(n, width, subsequent_indent="  ") or [""]]
    out += notes
    return "\n".join(out) + "\n"


def _line_width(widths: list[int]) -> int:
    """The columns the widest line takes: the rule, one past the cells' two-space margin
    and three-space gaps."""
    return sum(widths) + 3 * len(widths)


def _panels(table: ReportTable, widths: list[int], width: int | None) -> list[list[int]]:
    """Column indices of each panel (one panel, every column, when it fits or no width is given)."""
    every = list(range(len(table.columns)))
    if width is None or _line_width(widths) <= width:
        return [every]
    keys = every[: table.key_columns]
    index = {c.key: i for i, c in enumerate(table.columns)}
    grouped = [[index[k] for k in group] for group in table.column_groups or []]
    seen = {i for g in grouped for i in g}
    groups = grouped + [[i] for i in every[table.key_columns :] if i not in seen]
    groups.sort(key=lambda g: g[0])
    key_width = [widths[i] for i in keys]
    # a group wider than the terminal on its own is laid out column by column
    groups = [
        part
        for group in groups
        for part in ([group] if _line_width(key_width + [widths[i] for i in group]) <= width else [[i] for i in group])
    ]
    panels: list[list[int]] = []
    for group in groups:
        if panels and _line_width([widths[i] for i in panels[-1] + group]) <= width:
            panels[-1] += group
        else:
            panels.append(keys + group)
    return panels


def _panel_lines(table, panel, widths, header, header_lens, rows) -> list[str]:
    right = [c.numeric for c in table.columns]

    def line(cells, lens) -> str:
        padded = [
            (" " * (widths[i] - lens[i]) + cells[i]) if right[i] else (cells[i] + " " * (widths[i] - lens[i]))
            for i in panel
        ]
        return ("  " + "   ".join(padded)).rstrip()

    out = [line(header, header_lens), " " + "─" * (_line_width([widths[i] for i in panel]) - 1)]
    for cells, lens, separated in rows:
        if separated:
            out.append("")
        out.append(line(cells, lens))
    return out


# What a CommonMark (+ GFM tables, strikethrough, and the `$` math of GitHub and many
# renderers) reader would interpret in a cell: raw HTML and autolinks (`<`; `&` starts an
# entity), code spans, emphasis, links and images, table pipes, math, and backslash escapes
# themselves. `<`, `>` and `&` become entities (understood by every Markdown renderer, and
# inert in HTML); the rest are backslash-escaped (CommonMark shows an escaped ASCII
# punctuation character literally). A layer named `<img src=x onerror=...>` stays text.
_MD_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_MD_PUNCTUATION = set("\\`*_[]|~$!#")


def md_escape(s: str) -> str:
    s = printable(" ".join(s.splitlines()), keep_newlines=False)  # one table row; no bidi spoofing
    out = "".join(_MD_ENTITIES.get(ch) or ("\\" + ch if ch in _MD_PUNCTUATION else ch) for ch in s)
    core = out.strip(" ")
    if core == out:
        return out
    # A table cell is trimmed before it is read: the spaces a name starts or ends with are kept
    # as character references.
    left = len(out) - len(out.lstrip(" "))
    return "&#32;" * left + core + "&#32;" * (len(out) - left - len(core))


def render_md(table: ReportTable) -> str:
    lines = [f"### {md_escape(table.title)}", ""]
    lines.append("| " + " | ".join(md_escape(c.title) for c in table.columns) + " |")
    lines.append("|" + "|".join("---:" if c.numeric else "---" for c in table.columns) + "|")
    for section in table.sections:
        if section.title:
            lines.append("| **" + md_escape(section.title) + "** |" + " |" * (len(table.columns) - 1))
        for row in section.rows:
            lines.append("| " + " | ".join(md_escape(x) for x in _cells(table, row, "display")) + " |")
        if section.total is not None:
            cells = [f"**{md_escape(x)}**" if x else x for x in _cells(table, section.total, "display")]
            lines.append("| " + " | ".join(cells) + " |")
    if table.notes:
        lines.append("")
        lines.extend(f"- {md_escape(n)}" for n in table.notes)
    return "\n".join(lines) + "\n"


def render_csv(table: ReportTable) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["section", *(c.key for c in table.columns)])
    text = [c.kind == "text" for c in table.columns]
    for section, row, is_total in _all_rows(table):
        name = section.title or "main"
        cells = [_csv_text(x) if t else x for x, t in zip(_cells(table, row, "csv"), text)]
        writer.writerow([f"{name} total" if is_total else name, *cells])
    return buf.getvalue()


def _csv_text(s: str) -> str:
    """A name a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``@SUM``, ``+``,
    ``-``) gets OWASP's leading apostrophe; numbers are never text cells, so stay exact.
    The JSON report keeps every name as it is."""
    return "'" + s if s[:1] in ("=", "+", "-", "@", "\t", "\r") else s


def render_json(table: ReportTable) -> str:
    """Indented JSON with one row per line (json's C encoder per row: indent=2 on the whole
    document goes through the pure-Python encoder, ~0.2 ms per row)."""

    def dump(value) -> str:
        return json.dumps(value, ensure_ascii=False)

    def row_json(row) -> str:
        return dump({c.key: KINDS[c.kind].json(row.get(c.key)) for c in table.columns})

    head = {
        "schema_version": SCHEMA_VERSION,
        "title": table.title,
        **table.meta,
        "columns": [{"key": c.key, "title": c.title, "kind": c.kind} for c in table.columns],
    }
    lines = ["{"] + [f"  {dump(k)}: {dump(v)}," for k, v in head.items()] + ['  "sections": [']
    for i, section in enumerate(table.sections):
        rows = ",\n".join(f"      {row_json(r)}" for r in section.rows)
        total = "null" if section.total is None else row_json(section.total)
        lines.append(
            f'    {{"title": {dump(section.title)}, "rows": [\n{rows}\n    ], "total": {total}}}'
            + ("," if i < len(table.sections) - 1 else "")
        )
    lines += ["  ],", f'  "notes": {dump(table.notes)}', "}"]
    return "\n".join(lines) + "\n"


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "×": r"\ensuremath{\times}",
    "≠": r"\ensuremath{\neq}",
    "≈": r"\ensuremath{\approx}",
    "–": "--",
    "—": "---",
    "✓": r"\checkmark{}",
}


def latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in s)


def render_latex(table: ReportTable) -> str:
    spec = "".join("r" if c.numeric else "l" for c in table.columns)
    lines = [
        f"% {latex_escape(table.title)}",
        "% needs \\usepackage{booktabs} (and amssymb for \\checkmark)",
        f"\\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(latex_escape(c.title) for c in table.columns) + r" \\",
        r"\midrule",
    ]
    for i, section in enumerate(table.sections):
        if section.title:
            if i:
                lines.append(r"\midrule")
            lines.append(f"\\multicolumn{{{len(table.columns)}}}{{l}}{{\\emph{{{latex_escape(section.title)}}}}} \\\\")
        for row in section.rows:
            lines.append(" & ".join(latex_escape(x) for x in _cells(table, row, "display")) + r" \\")
        if section.total is not None:
            lines.append(r"\midrule")
            lines.append(" & ".join(latex_escape(x) for x in _cells(table, section.total, "display")) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"% {' '.join(n.split())}" for n in table.notes]  # comments: no escaping needed
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[ReportTable], str]] = {
    "text": render_text,
    "md": render_md,
    "csv": render_csv,
    "json": render_json,
    "latex": render_latex,
}
