"""Issue 21, items 3, 5 and 9: hostile layer names through every report format, the terminal's
bidi controls, and the sizes `archc diff` and `--emit plot` must stay linear or bounded in.
Each case runs `archc` in a subprocess, as a user would.

Before the fixes: a layer named `<img src=x onerror=alert(1)>` went raw into the Markdown
table (script once rendered); a U+202E reached the terminal raw (the row read backwards);
`archc diff` of two `repeat 100000` specs took 102 s (quadratic merge); `--emit plot` on
`repeat 10000 { relu }` ran for minutes towards a PNG 192,423 px wide.
"""

from __future__ import annotations

import os
import random
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fuzz"))
import hostile_reports  # noqa: E402

# One name per attack: HTML with a handler, Markdown syntax of every kind, TeX specials, a
# spreadsheet formula, a right-to-left override (the name reads `exe.txt` reversed).
NAMES = [
    "<img src=x onerror=alert(1)>",
    "a`b`$x$\\y*z*_u_[l](javascript:alert(1))&amp;|~~s~~![i](x)#",
    '=HYPERLINK("evil-example")',
    "rtl\u202etxt_exe",
    " $ ",
]


def archc(*args, cwd=None, stdin=None, timeout=120, preexec_fn=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", *map(str, args)],
        cwd=cwd,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="surrogateescape",
        env=env,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def no_traceback(proc) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-2000:]


@pytest.fixture
def hostile_spec(tmp_path) -> Path:
    path = tmp_path / "net.arch"
    path.write_text(hostile_reports.spec_text(NAMES), encoding="utf-8")
    return path


FORMATS = {
    "md": ["--report", "--format", "md"],
    "text": ["--report"],
    "csv": ["--report", "--format", "csv"],
    "json": ["--report", "--format", "json"],
    "latex": ["--report", "--format", "latex"],
    "html": ["--emit", "html"],
    "svg": ["--emit", "svg"],
    "torch": ["--emit", "torch"],
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_shows_hostile_names_as_text(hostile_spec, fmt):
    """Read back as its reader would (Markdown rendered as CommonMark and parsed as a
    browser's tokenizer does; HTML/SVG parsed; CSV/JSON/LaTeX/Python decoded): no element or
    handler a name put there, and every name shown whole."""
    proc = archc(hostile_spec, *FORMATS[fmt])
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    shown = [hostile_reports.printable(n, keep_newlines=False) for n in NAMES]
    assert hostile_reports.CHECKS[fmt](proc.stdout, NAMES, shown) == []


def test_markdown_has_no_raw_html_even_unrendered(hostile_spec):
    md = archc(hostile_spec, "--report", "--format", "md").stdout
    assert "<" not in md and ">" not in md  # both are entities, whoever renders it
    row = next(line for line in md.splitlines() if "img" in line)
    assert row.startswith("| &lt;img src=x onerror=alert(1)&gt; | conv2d |")
    assert row.count(" | ") == 7  # 8 columns: the `|` in a name is escaped, not a new cell
    spec_row = next(line for line in md.splitlines() if "HYPERLINK" in line)
    assert spec_row.startswith('| =HYPERLINK("evil-example") |')


def test_markdown_renders_as_a_browser_shows_it(hostile_spec):
    page = hostile_reports.markdown_to_html(archc(hostile_spec, "--report", "--format", "md").stdout)
    if page is None:
        pytest.skip("markdown-it-py is not installed (the raw-`<` test above still runs)")
    assert "<img" not in page and "<a " not in page and "<code>" not in page and "<em>" not in page
    cells = hostile_reports._first_cells(page)
    assert "<img src=x onerror=alert(1)>" in cells
    assert "a`b`$x$\\y*z*_u_[l](javascript:alert(1))&amp;|~~s~~![i](x)#" in cells
    assert " $ " in cells  # the spaces a name starts and ends with survive the cell trimming
    assert "rtl\\u202etxt_exe" in cells  # the override is escaped, as on the terminal


def test_terminal_report_and_diagnostics_escape_bidi_controls(tmp_path, hostile_spec):
    text = archc(hostile_spec, "--report").stdout
    assert "\u202e" not in text and "rtl\\u202etxt_exe" in text
    # every bidi control, in a diagnostic's message and quoted line too
    controls = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    label = hostile_reports.spec_literal("x" + controls)
    spec = tmp_path / "dup.arch"
    spec.write_text(f"network N {{\n  input 3x8x8\n  {label}: relu\n  {label}: relu\n}}\n", encoding="utf-8")
    proc = archc("check", spec)
    assert proc.returncode == 1 and "error[E302]" in proc.stderr
    assert not set(controls) & set(proc.stderr), proc.stderr
    assert "x\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c" in proc.stderr
    # and a raw override in the source line quoted under a diagnostic
    raw = tmp_path / "raw.arch"
    raw.write_text('network N {\n  input 3x8x8\n  "a\u202eb": nosuchop\n}\n', encoding="utf-8")
    proc = archc("check", raw)
    assert proc.returncode == 1 and "\u202e" not in proc.stderr and "a\\u202eb" in proc.stderr


def test_diff_escapes_a_bidi_file_name_and_a_hostile_name_in_every_format(tmp_path, hostile_spec):
    other = tmp_path / "o\u202egpj.arch"
    other.write_text("network M {\n  input 3x8x8\n  conv(4, 3)\n}\n", encoding="utf-8")
    text = archc("diff", hostile_spec, other).stdout
    assert "\u202e" not in text and "o\\u202egpj.arch" in text and "<img src=x onerror=alert(1)>" in text
    md = archc("diff", hostile_spec, other, "--format", "md").stdout
    assert "<" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md and "\u202e" not in md


def test_csv_names_a_spreadsheet_would_run_get_an_apostrophe(hostile_spec):
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(archc(hostile_spec, "--report", "--format", "csv").stdout)))
    names = [r["name"] for r in rows]
    assert "'" + NAMES[2] in names and NAMES[2] not in names
    assert all(not n.startswith(("=", "+", "-", "@")) for n in names)
    assert int(rows[-1]["params"]) == 3 * 4 * 9 + 4 + 4 * (4 * 9 + 1) * 4  # numbers stay exact


def test_fuzzed_hostile_names_hold_in_every_format(tmp_path):
    """A few seeded cases of fuzz/hostile_reports.py's campaign (in process; the campaign
    itself runs hundreds)."""
    for case in range(3):
        source, failures = hostile_reports.run_case(random.Random(f"test:{case}"), tmp_path, ["md", "text", "csv"])
        assert failures == [], source


# ---- item 5: diff linear, plot bounded ---------------------------------------------------------


def _merged_order_reference(a, b):
    """The quadratic original (list.insert after list.index), kept as the specification."""
    order, present, after = list(a), set(a), None
    for name in b:
        if name not in present:
            order.insert(order.index(after) + 1 if after is not None else 0, name)
            present.add(name)
        after = name
    return order


def test_merged_order_is_the_original_order():
    from archlang.backends.report.diff import merged_order
    from hypothesis import given, settings
    from hypothesis import strategies as st

    names = st.lists(st.sampled_from("abcdefghij"), unique=True, max_size=10)

    @settings(max_examples=300, deadline=None)
    @given(names, names)
    def check(a, b):
        assert merged_order(a, b) == _merged_order_reference(a, b)

    check()


def _repeat_specs(tmp_path, n: int) -> tuple[Path, Path]:
    a, b = tmp_path / "a.arch", tmp_path / "b.arch"
    a.write_text(f"network A {{\n  input 3x8x8\n  repeat {n} {{ relu }}\n}}\n")
    b.write_text(f"network B {{\n  input 3x8x8\n  repeat {n} {{ tanh }}\n}}\n")
    return a, b


def test_diff_of_blocks_only_one_side_has_lists_them_all(tmp_path):
    a, b = _repeat_specs(tmp_path, 3000)
    proc = archc("diff", a, b, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()[1:]
    assert sum(",only A," in r for r in rows) == 3000 and sum(",only B," in r for r in rows) == 3000
    order = [r.split(",")[1] for r in rows if ",only " in r]
    assert order[:3] == ["tanh", "tanh_2", "tanh_3"] and order[3000:3002] == ["relu", "relu_2"]


@pytest.mark.slow
def test_diff_of_two_60_byte_repeat_100000_specs_finishes(tmp_path):
    a, b = _repeat_specs(tmp_path, 100_000)
    assert a.stat().st_size < 60 and b.stat().st_size < 60
    # A hang guard, not a timing: linear takes ~10 s of CPU here, the quadratic merge 102 s.
    proc = archc("diff", a, b, "-o", tmp_path / "d.txt", timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "d.txt").read_text()
    assert "blocks: 1 same, 0 changed, 100000 only A, 100000 only B" in text, text[-500:]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("n", [300, pytest.param(10_000, marks=pytest.mark.slow)])
def test_plot_of_many_blocks_draws_at_most_100_bars_and_says_so(tmp_path, n):
    spec = tmp_path / "r.arch"
    spec.write_text(f"network R {{\n  input 3x8x8\n  repeat {n} {{ relu }}\n}}\n")
    out = tmp_path / "r.png"
    proc = archc(spec, "--emit", "plot", "-o", out, timeout=300)
    assert proc.returncode == 0, proc.stderr
    width, height = _png_size(out)
    assert width <= 6000 and height <= 1500  # 192,423 px wide at 10,000 before
    blocks = n + 1  # the input is a block too
    size = -(-blocks // 100)
    assert f"note: the plot draws {blocks:,} top-level blocks as {-(-blocks // size)} bars" in proc.stderr
    if n > 1000:
        svg = archc(spec, "--emit", "plot", timeout=300).stdout
        bars = re.findall(r'id="macs-([^"]*)"', svg)
        assert len(bars) == 100 and bars[0] == f"input … relu_{size - 1} ({size} blocks)"


def test_plot_groups_runs_of_blocks_by_hand():
    from archlang.backends.plot.costs import grouped_rows

    rows = [{"name": f"b{i}", "macs": i, "params": 2 * i, "rf": i + 1, "height": 7} for i in range(250)]
    bars, note = grouped_rows(rows)
    assert len(bars) == 84 and note.startswith("the plot draws 250 top-level blocks as 84 bars of up to 3")
    assert bars[0] == {"name": "b0 … b2 (3 blocks)", "macs": 3, "params": 6, "rf": 3, "height": 7}
    assert bars[-1]["name"] == "b249" and bars[-1]["macs"] == 249  # the last run is one block
    assert sum(b["macs"] for b in bars) == sum(range(250))
    assert grouped_rows(rows[:100]) == (rows[:100], None)


def test_plot_names_with_dollars_are_text_not_mathtext(tmp_path):
    spec = tmp_path / "d.arch"
    labels = ["$", "a$b", "$x_$", "$^$", "$$", "$ $", "\\$"]  # the middle four are bad mathtext
    spec.write_text(hostile_reports.spec_text(labels), encoding="utf-8")
    proc = archc(spec, "--emit", "plot", "-o", tmp_path / "d.svg")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    svg = (tmp_path / "d.svg").read_text()
    assert all(f'id="macs-{label}"' in svg for label in labels)
