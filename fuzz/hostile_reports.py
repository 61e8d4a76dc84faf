"""Hostile layer names through every report format, read back as its reader would (issue 21,
item 3): the Markdown report rendered by a CommonMark renderer (markdown-it-py, when it is
installed) and the HTML it gives, the HTML report and the SVG diagram parsed as a browser's
HTML/XML parser builds them, the CSV and JSON read by their parsers, the LaTeX un-escaped,
the terminal table scanned for control and bidi characters, the generated Python parsed.

A case fails when a page grows an element or an attribute that a name put there (an
``<img onerror>``, a ``javascript:`` link, an emphasis, a code span), when a reader does not
show the name exactly as written (or, in the text formats, as its escape), or when the
command ends in a traceback. A located refusal (E207 bad name, E701 not a submodule name)
is an acceptable outcome.

    python fuzz/hostile_reports.py --cases 200 --seed 0     # prints failures (goal 0) and counts
    python fuzz/hostile_reports.py --only 17 --seed 0       # one case: its spec and its findings

``tests/test_hostile_reports.py`` runs :func:`check_spec` on fixed names and a few seeds.
"""

from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import random
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner

from archlang.cli.main import main
from archlang.diagnostics import printable

# Pieces of names: HTML and script, Markdown syntax, TeX specials, spreadsheet formulas,
# bidi controls (as characters: the spec source gets them as \u escapes).
PIECES = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<a href='javascript:alert(1)'>x</a>",
    "<!--",
    "&amp;",
    "&lt;b&gt;",
    "`code`",
    "``",
    "$x$",
    "$",
    "$$\\frac12$$",
    "\\",
    "\\\\",
    "*em*",
    "**strong**",
    "_u_",
    "~~del~~",
    "[link](javascript:alert(1))",
    "![img](x)",
    "<https://example.com>",
    "|",
    "#",
    "=HYPERLINK(1)",
    "@SUM(1)",
    "-",
    "+",
    "%",
    "^",
    '"',
    "'",
    " ",
    "é",
    "☃",
    "\u202e",
    "\u2066",
    "\u200f",
    "\u061c",
]
# What a reader of each format may see besides the page's own markup.
MD_TAGS = {"h3", "table", "thead", "tbody", "tr", "th", "td", "strong", "ul", "li", "p"}
LINKS = {"href", "xlink:href", "src", "action", "formaction", "data"}  # where a URL runs


def spec_literal(label: str) -> str:
    """``label`` as a quoted label of spec source (Python-style escapes)."""
    out = []
    for ch in label:
        if ch in '\\"':
            out.append("\\" + ch)
        elif not ch.isprintable() or printable(ch) != ch:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def gen_labels(rng: random.Random, count: int = 3) -> list[str]:
    labels: list[str] = []
    while len(labels) < count:
        label = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 4)))
        if label.strip() and "/" not in label and label not in labels:
            labels.append(label)
    return labels


def spec_text(labels: list[str]) -> str:
    layers = "".join(f"  {spec_literal(label)}: conv(4, 3, padding=1)\n" for label in labels)
    return f"network Net {{\n  input 3x8x8\n{layers}  flatten\n}}\n"


class _Dom(HTMLParser):
    """Elements, attributes and text as a browser's tokenizer sees them (entities decoded)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def _dom(html_text: str) -> _Dom:
    dom = _Dom()
    dom.feed(html_text)
    dom.close()
    return dom


def _dangerous(name: str, value: str | None) -> bool:
    """An event handler (any ``on...`` attribute: the pages have none of their own), or a
    link that runs script. Names shown in ``title`` or ``data-*`` attributes are text."""
    url = re.sub(r"[\s\x00-\x1f]", "", value or "").lower()
    return name.lower().startswith("on") or (name.lower() in LINKS and url.startswith(("javascript:", "data:")))


def _bad_attributes(tags) -> list[str]:
    bad = []
    for tag, attrs in tags:
        for name, value in attrs:
            if _dangerous(name, value):
                bad.append(f"<{tag} {name}={value!r}>")
    return bad


def markdown_to_html(text: str) -> str | None:
    """CommonMark with GFM tables and strikethrough, as GitHub-like renderers show it; None
    without markdown-it-py."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return None
    return MarkdownIt("commonmark").enable("table").enable("strikethrough").render(text)


def _run(args: list[str]):
    result = CliRunner().invoke(main, args, env={"NO_COLOR": "1"})
    problem = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        problem = f"traceback: {type(result.exception).__name__}: {result.exception}"
    elif "Traceback" in result.output:
        problem = "traceback in the output"
    return result, problem


def _refused(result) -> bool:
    """A located refusal: exit 1 with an error[E...] diagnostic."""
    return result.exit_code == 1 and re.search(r"error\[E\d{3}\]", result.output) is not None


def check_spec(path: Path, labels: list[str], formats=None) -> list[str]:
    """What each report format of ``path`` (whose layers are named ``labels``) gets wrong."""
    failures: list[str] = []
    formats = formats or ["md", "text", "csv", "json", "latex", "html", "svg", "torch"]
    shown = [printable(label, keep_newlines=False) for label in labels]

    for fmt in formats:
        args = [str(path), "--report", "--format", fmt] if fmt in ("md", "text", "csv", "json", "latex") else []
        if not args:
            args = [str(path), "--emit", fmt]
        result, problem = _run(args)
        if problem:
            failures.append(f"{fmt}: {problem}")
            continue
        if result.exit_code != 0:
            if not _refused(result):
                failures.append(
                    f"{fmt}: exit {result.exit_code} without a located diagnostic: {result.output[-300:]!r}"
                )
            continue
        out = result.stdout
        failures += [f"{fmt}: {f}" for f in CHECKS[fmt](out, labels, shown)]
    return failures


def _check_md(out, labels, shown):
    failures = []
    page = markdown_to_html(out)
    if page is None:  # no renderer: no raw `<` may reach a reader
        if "<" in out:
            failures.append("a raw `<` in the Markdown")
        return failures
    dom = _dom(page)
    extra = {tag for tag, _ in dom.tags} - MD_TAGS
    if extra:
        failures.append(f"rendered Markdown has elements {sorted(extra)}")
    failures += _bad_attributes(dom.tags)
    failures += [
        f"style attribute {a!r}"
        for t, attrs in dom.tags
        for a in attrs
        if a[0] == "style" and "text-align" not in (a[1] or "")
    ]
    cells = _first_cells(page)
    for label, want in zip(labels, shown):
        if want not in cells:
            failures.append(f"the name {label!r} is shown as none of {cells[:8]!r}")
    return failures


def _first_cells(page: str) -> list[str]:
    """The text of each table row's first cell, as a browser shows it."""

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.cells, self.depth, self.first = [], 0, False

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.first = True
            elif tag in ("td", "th") and self.first:
                self.cells.append("")
                self.depth, self.first = 1, False
            elif tag in ("td", "th"):
                self.depth = 0

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.depth = 0

        def handle_data(self, data):
            if self.depth:
                self.cells[-1] += data

    parser = Cells()
    parser.feed(page)
    return parser.cells


def _check_text(out, labels, shown):
    failures = []
    if printable(out) != out:
        failures.append("control or bidi characters reach the terminal")
    for label, want in zip(labels, shown):
        if want not in out:
            failures.append(f"the name {label!r} is not shown as {want!r}")
    return failures


def _check_csv(out, labels, shown):
    names = [row["name"] for row in csv.DictReader(io.StringIO(out))]
    failures = []
    for label in labels:
        want = "'" + label if label[:1] in "=+-@" else label
        if want not in names:
            failures.append(f"the name {label!r} is not a CSV cell ({want!r})")
    return failures


def _check_json(out, labels, shown):
    data = json.loads(out)
    names = [row["name"] for s in data["sections"] for row in s["rows"]]
    return [f"the name {label!r} is not in the JSON" for label in labels if label not in names]


_TEX = {
    r"\textbackslash{}": "\\",
    r"\textasciitilde{}": "~",
    r"\textasciicircum{}": "^",
    r"\ensuremath{\times}": "×",
    r"\ensuremath{\neq}": "≠",
    r"\ensuremath{\approx}": "≈",
    r"\checkmark{}": "✓",
    **{f"\\{c}": c for c in "&%$#_{}"},
}
_TEX_TOKEN = re.compile("|".join(re.escape(k) for k in sorted(_TEX, key=len, reverse=True)) + r"|[\\&%$#_{}~^]|.", re.S)


def _check_latex(out, labels, shown):
    failures = []
    rows = [line for line in out.splitlines() if not line.startswith("%") and " & " in line]
    cells = []
    for row in rows:
        first = row.split(" & ", 1)[0]
        text = []
        for tok in _TEX_TOKEN.findall(first):
            if tok in _TEX:
                text.append(_TEX[tok])
            elif len(tok) == 1 and tok in "\\&%$#_{}~^":
                failures.append(f"an unescaped {tok!r} in the LaTeX cell {first!r}")
            else:
                text.append(tok)
        cells.append("".join(text))
    for label in labels:
        if label not in cells:
            failures.append(f"the name {label!r} does not read back from LaTeX")
    return failures


def _check_html(out, labels, shown):
    dom = _dom(out)
    failures = _bad_attributes(dom.tags)
    counts = {t: sum(tag == t for tag, _ in dom.tags) for t in ("script", "style", "img", "iframe", "object", "embed")}
    if counts != {"script": 1, "style": 1, "img": 0, "iframe": 0, "object": 0, "embed": 0}:
        failures.append(f"the page's elements changed: {counts}")
    text = "".join(dom.text)
    failures += [f"the name {label!r} is not in the page's text" for label in labels if label not in text]
    return failures


def _check_svg(out, labels, shown):
    root = ET.fromstring(out.encode("utf-8"))
    failures = []
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag in ("script", "foreignObject", "iframe"):
            failures.append(f"an SVG <{tag}>")
        for name, value in el.attrib.items():
            local = name.rsplit("}", 1)[-1]
            if _dangerous(local, value):
                failures.append(f"<{tag} {local}={value!r}>")
    return failures


def _check_torch(out, labels, shown):
    tree = ast.parse(out)
    # A name that is an identifier becomes an attribute; any other, a string (add_module).
    names = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    return [f"the name {label!r} is not in the module" for label in labels if label not in names]


CHECKS = {
    "md": _check_md,
    "text": _check_text,
    "csv": _check_csv,
    "json": _check_json,
    "latex": _check_latex,
    "html": _check_html,
    "svg": _check_svg,
    "torch": _check_torch,
}


def run_case(rng: random.Random, folder: Path, formats=None) -> tuple[str, list[str]]:
    labels = gen_labels(rng)
    source = spec_text(labels)
    path = folder / "net.arch"
    path.write_text(source, encoding="utf-8")
    return source, check_spec(path, labels, formats)


def main_cli(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", type=int, default=None, help="replay case N: print its spec and findings")
    args = parser.parse_args(argv)
    start, failed = time.perf_counter(), 0
    cases = [args.only] if args.only is not None else range(args.cases)
    with tempfile.TemporaryDirectory(prefix="archlang-hostile-reports-") as tmp:
        for case in cases:
            source, failures = run_case(random.Random(f"{args.seed}:{case}"), Path(tmp))
            if args.only is not None:
                print(source)
            if failures:
                failed += 1
                print(f"case {case}: {len(failures)} findings\n  " + "\n  ".join(failures[:10]))
    renderer = "markdown-it-py" if markdown_to_html("x") is not None else "none (raw `<` check)"
    print(f"{len(cases)} cases, {failed} failed, {time.perf_counter() - start:.1f} s; Markdown renderer: {renderer}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main_cli())
