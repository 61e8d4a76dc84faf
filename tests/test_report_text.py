"""The terminal table of `archc --report`: its layout, written out by hand, and its speed
(it is laid out directly, without rich's Table: see backends/report/formats.py)."""

import time

from archlang.backends.report.formats import Column, ReportTable, Section, render_text
from archlang.backends.report.tables import layers_table

import archlang


def _table(first_name: str = "stem") -> ReportTable:
    columns = [Column("name", "name"), Column("params", "params", "int"), Column("shape", "output", "shape")]
    main = Section(None, [{"name": first_name, "params": 1234, "shape": (64, 7, 7)}, {"name": "fc", "params": 10}])
    main.total = {"name": "total", "params": 1244}
    aux = Section("aux head A (training only)", [{"name": "x", "params": 5, "shape": (3,)}])
    return ReportTable("T: report", columns, [main, aux], notes=["a   note\n  wrapped"])


def test_layout_by_hand():
    # widths: name = len("[aux head A (training only)]") = 28, params = len("params") = 6,
    # output = len("64×7×7") = 6; cells two spaces in, three apart; rule = 28+6+6 + 3*3 - 1.
    expected = [
        "T: report",
        "",
        "  name                           params   output",
        " " + "─" * 48,
        "  stem                            1,234   64×7×7",
        "  fc                                 10",
        "",
        "  total                           1,244",
        "",
        "  [aux head A (training only)]",
        "  x                                   5   3",
        "",
        "a note wrapped",
    ]
    assert render_text(_table()) == "\n".join(expected) + "\n"


def test_wide_characters_count_two_columns():
    # "層" is East Asian Wide: 2 terminal columns, so the name column is 28 wide still and
    # "層層" (4 columns) is padded with 24 spaces, not 26.
    lines = render_text(_table("層層")).splitlines()
    assert lines[4] == "  層層" + " " * 24 + "   " + " 1,234   64×7×7"


def test_ten_thousand_rows_in_well_under_two_seconds():
    # rich's Table took ~1.1 ms per row (11 s here); the direct layout ~10 µs.
    a = archlang.analyze("specs/inception_v3.arch")
    table = layers_table(a, None)
    table.sections[0].rows = table.sections[0].rows * 32  # ~10,000 rows
    t0 = time.perf_counter()
    text = render_text(table)
    assert time.perf_counter() - t0 < 2.0
    assert text.count("\n") > 10_000
