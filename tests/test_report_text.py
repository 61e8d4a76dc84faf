"""The terminal table of `archc --report`: its layout, written out by hand, and its speed
(it is laid out directly, without rich's Table: see backends/report/formats.py)."""

import time

import pytest
from archlang.backends.report.formats import Column, ReportTable, Section, cell_len, render_text
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


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("conv1", 5),  # ASCII
        ("名前", 4),  # CJK ideographs: East Asian Wide (EastAsianWidth.txt: 540D;W, 524D;W)
        ("한국어", 6),  # Hangul syllables: Wide
        ("ＡＢ", 4),  # fullwidth Latin: F
        ("ü", 1),  # precomposed: Neutral
        ("u\u0308", 1),  # u + COMBINING DIAERESIS (Mn): the mark takes no column
        ("e\u0301\u0302x", 2),  # two combining marks on one letter
        ("😀", 2),  # U+1F600: Wide
        ("❤\ufe0f", 2),  # U+2764 is Neutral; VARIATION SELECTOR-16 asks for the emoji glyph
        ("❤", 1),
        ("👍\U0001f3fd", 2),  # an emoji and its skin tone: one glyph
        ("👨\u200d👩\u200d👧", 2),  # a ZWJ sequence: one glyph
        ("a\u200bb", 2),  # ZERO WIDTH SPACE (Cf)
    ],
)
def test_cell_widths(text, columns):
    assert cell_len(text) == columns


def test_ten_thousand_rows_in_well_under_two_seconds():
    # rich's Table took ~1.1 ms per row (11 s here); the direct layout ~10 µs.
    a = archlang.analyze("specs/inception_v3.arch")
    table = layers_table(a, None)
    table.sections[0].rows = table.sections[0].rows * 32  # ~10,000 rows
    t0 = time.perf_counter()
    text = render_text(table)
    assert time.perf_counter() - t0 < 2.0
    assert text.count("\n") > 10_000
