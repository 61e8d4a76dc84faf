"""Issue 14, findings 1, 4, 5: what a hostile spec or command line does to the
outputs — diagrams (DOT/SVG/HTML), the files written, the terminal — and how FILE is read.

Every test here failed before the fix: an `<a xlink:href="javascript:...">` in the SVG, DOT
that Graphviz rejects, a FIFO or a link to /dev/null replaced by a regular file, the spec
overwritten by its own diagram, a traceback, /etc/passwd echoed, a raw ESC on the terminal,
a file name parsed as spec text.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading

import pytest
from hostile import NET, SIMPLE, XLINK_HREF, archc, no_traceback, spec_file, svg_nodes

from archlang.atomic import write_atomic

# ---- 1. diagram injection ----------------------------------------------------------------

# Each name is a quoted label; the spec language allows any text but '/' and control chars.
INJECTIONS = [
    # Before: a tooltip `<...>` went out unquoted as an HTML string, the rest as attributes:
    # `<a xlink:href="javascript:alert(document.domain)">` in the SVG.
    r'"<x> URL=\"javascript:alert(document.domain)\" tooltip=<y>": conv(4, 3)',
    r'"x\" URL=\"javascript:alert(document.domain)\" y=\"": conv(4, 3)',
    r'"a\\\"]; pwned [label=INJECTED URL=\"javascript:alert(1)\"]; b [c=\"": conv(4, 1)',
    r'"<<b>html<b> URL=\"javascript:alert(2)\">>": conv(4, 1)',
    r'"ends in a backslash\\": conv(4, 1)',
]


@pytest.mark.parametrize("view", ["blocks", "layers"])
def test_names_cannot_add_dot_statements_or_links(tmp_path, view):
    spec = spec_file(tmp_path, "".join(f"  {line}\n" for line in INJECTIONS))
    out = tmp_path / "net.svg"
    result = archc(spec, "--emit", "svg", "--view", view, "-o", out)
    assert result.exit_code == 0, result.output
    titles, elements = svg_nodes(out.read_bytes())
    # input, the five convs, the legend: no node `pwned`, nothing else
    assert len(titles) == 7 and "pwned" not in titles, titles
    for element in elements:
        assert XLINK_HREF not in element.attrib and "href" not in element.attrib, element.attrib
        assert "URL" not in element.attrib
    # the names are shown as text, whole
    text = "".join(e.text or "" for e in elements)
    assert 'x" URL="javascript:alert(document.domain)" y="' in text
    assert "ends in a backslash\\" in text
    assert '<x> URL="javascript:alert(document.domain)" tooltip=<y>' in text


@pytest.mark.parametrize("line", INJECTIONS)
def test_each_injection_alone_draws_without_links(tmp_path, line):
    result = archc(spec_file(tmp_path, f"  {line}\n"), "--emit", "svg")
    assert result.exit_code == 0, result.output
    titles, elements = svg_nodes(result.stdout_bytes)
    assert len(titles) == 3  # input, the conv, the legend
    assert not any("href" in k or k == "URL" for e in elements for k in e.attrib)


def test_the_longest_names_give_a_diagram_with_capped_labels(tmp_path):
    from archlang.lower.layer_names import MAX_NAME

    long = "w" * (MAX_NAME - 2)
    spec = spec_file(tmp_path, f'  "{long}\\\\": conv(4, 3)\n  "{long}x": conv(4, 1)\n')
    out = tmp_path / "net.svg"
    result = archc(spec, "--emit", "svg", "-o", out)
    assert result.exit_code == 0, result.output
    titles, elements = svg_nodes(out.read_bytes())
    assert len(titles) == 4 and len(set(titles)) == 4  # the two long names stay two nodes
    assert any((e.text or "").endswith("…") and (e.text or "").startswith("www") for e in elements)


def test_a_huge_name_is_refused_located(tmp_path):
    spec = spec_file(tmp_path, f'  "{"w" * (1 << 20)}": conv(4, 3)\n')
    result = archc(spec, "--emit", "svg", "-o", tmp_path / "net.svg")
    no_traceback(result)
    assert result.exit_code == 1 and "net.arch:" in result.output
    assert not (tmp_path / "net.svg").exists()


def test_html_report_escapes_names(tmp_path):
    spec = spec_file(tmp_path, '  "<img src=x onerror=alert(1)>\'": conv(4, 3)\n')
    result = archc(spec, "--emit", "html")
    assert result.exit_code == 0, result.output
    assert "<img" not in result.output and "&lt;img src=x onerror=alert(1)&gt;" in result.output


def _deep_listspec_file(tmp_path, depth: int):
    # A list nested `depth` levels, one level per constant: no syntax depth, but `repr` recursed.
    consts = "".join(f"  const a{i} = [a{i - 1}]\n" for i in range(1, depth))
    spec = tmp_path / "deep.arch"
    spec.write_text(
        "block B(x) {\n  conv(8, 3)\n}\nnetwork D {\n  input 3x8x8\n  const a0 = [1]\n"
        + consts
        + f"  B(a{depth - 1})\n  B(a{depth - 1})\n}}\n"
    )
    return spec


def test_the_deepest_list_argument_draws(tmp_path):
    from archlang.frontend.value_budget import MAX_VALUE_DEPTH

    result = archc(_deep_listspec_file(tmp_path, MAX_VALUE_DEPTH - 1), "--emit", "dot")
    no_traceback(result)
    assert result.exit_code == 0, result.output[-2000:]
    assert "B × 2" in result.output  # the two identical instances still collapse
    subprocess.run(["dot", "-Tsvg"], input=result.output.encode(), check=True, capture_output=True)


def test_a_6000_deep_list_argument_is_refused_located(tmp_path):
    result = archc(_deep_listspec_file(tmp_path, 6000), "--emit", "dot")
    no_traceback(result)
    assert result.exit_code == 1 and "E601" in result.output and "deep.arch:" in result.output


# ---- 4. files the user did not name as output --------------------------------------------


def test_output_over_the_spec_or_an_import_is_refused(tmp_path):
    (tmp_path / "lib.arch").write_text("block L() {\n  conv(4, 1)\n}\n")
    spec = tmp_path / "net.arch"
    spec.write_text('import "lib.arch"\n' + NET.format(body="  L()\n"))
    before = {p: p.read_bytes() for p in (spec, tmp_path / "lib.arch")}
    for target in (spec, tmp_path / "lib.arch", tmp_path / "." / "net.arch"):
        result = archc(spec, "--emit", "dot", "-o", target)
        assert result.exit_code == 2, result.output
        assert "refusing to write over" in result.output and "input" in result.output
    assert {p: p.read_bytes() for p in before} == before


def test_a_fifo_is_written_in_place(tmp_path):
    spec = spec_file(tmp_path, SIMPLE)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    result = archc(spec, "--emit", "dot", "-o", fifo)
    reader.join(timeout=20)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got and got[0].startswith(b"digraph N")


def test_a_link_to_a_device_stays_a_link_to_the_device(tmp_path):
    spec = spec_file(tmp_path, SIMPLE)
    link = tmp_path / "null"
    link.symlink_to(os.devnull)
    result = archc(spec, "--emit", "dot", "-o", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and stat.S_ISCHR(os.stat(link).st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_device_is_a_clean_error(tmp_path):
    spec = spec_file(tmp_path, SIMPLE)
    link = tmp_path / "full"
    link.symlink_to("/dev/full")
    result = archc(spec, "--emit", "dot", "-o", link)
    no_traceback(result)
    assert result.exit_code == 1 and "error[E110]" in result.output and "no space left" in result.output
    assert link.is_symlink() and stat.S_ISCHR(os.stat(link).st_mode)
    with pytest.raises(OSError):
        write_atomic(link, "x")


def test_a_link_to_a_regular_file_keeps_the_link(tmp_path):
    target = tmp_path / "real.dot"
    target.write_text("old")
    link = tmp_path / "link.dot"
    link.symlink_to(target)
    write_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


# ---- 5. tracebacks -----------------------------------------------------------------------

SURROGATE = '  "a\\ud800b": conv(4, 3)\n'  # the escape, in ASCII: the spec file is valid UTF-8


@pytest.mark.parametrize(
    "args",
    [
        ["check"],
        ["--report"],
        ["--report", "--format", "json"],
        ["--report", "--format", "md"],
        ["--report", "--format", "csv"],
        ["--report", "--format", "latex"],
        ["--emit", "dot"],
        ["--emit", "svg"],
        ["--emit", "ir", "-o", "OUT"],
    ],
)
def test_a_lone_surrogate_is_a_located_error(tmp_path, args):
    spec = spec_file(tmp_path, SURROGATE)
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = archc(*args[:1], spec, *args[1:]) if args[0] == "check" else archc(spec, *args)
    no_traceback(result)
    assert result.exit_code == 1, result.output
    assert "error[E102]" in result.output and "lone surrogate \\ud800" in result.output
    assert f"{spec}:3:3" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [["--emit", "svg"], ["--emit", "dot", "-o", "OUT"], ["--report", "--format", "md"]])
def test_undecodable_set_values_are_a_usage_error(tmp_path, args):
    # A byte the locale cannot decode reaches Python as a lone surrogate (surrogateescape).
    spec = tmp_path / "p.arch"
    spec.write_text('network P(tag: str = "a") {\n  input 3x8x8\n  "{tag}": conv(4, 3)\n}\n')
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = archc(spec, "--set", "tag=\udcff", *args)
    no_traceback(result)
    assert result.exit_code == 2 and "not valid text" in result.output, result.output
    assert not (tmp_path / "out").exists()


HUGE = "9" * 201


@pytest.mark.parametrize(
    "command, dims",
    [
        (["--report"], f"3x{HUGE}x{HUGE}"),
        (["--report", "--format", "md"], f"3x{HUGE}x{HUGE}"),
        (["lint"], f"3x{HUGE}x{HUGE}"),
        (["check"], "3x2000000x2000000"),
        (["--report"], "3x2000000x2000000"),
    ],
)
def test_input_has_the_limits_of_the_input_statement(tmp_path, command, dims):
    spec = spec_file(tmp_path, SIMPLE)
    args = [*command[:1], spec, *command[1:]] if command[0] in ("lint", "check") else [spec, *command]
    result = archc(*args, "--input", dims)
    no_traceback(result)
    assert result.exit_code == 2, result.output
    assert "at most 1,048,576" in result.output  # ops.MAX_DIM, as for `input 3x2000000x2000000`
