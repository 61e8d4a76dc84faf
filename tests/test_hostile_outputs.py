"""Issue 14, findings 1, 4, 5, 7, 8, 9: what a hostile spec or command line does to the
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
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hostile import archc

from archlang import compile_spec
from archlang.atomic import write_atomic
from archlang.diagnostics import SpecError

NET = "network N {{\n  input 3x8x8\n{body}}}\n"
SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def _spec(tmp_path: Path, body: str, name: str = "net.arch") -> Path:
    path = tmp_path / name
    path.write_text(NET.format(body=body), encoding="utf-8")
    return path


def _no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


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


def _svg_nodes(svg: bytes) -> tuple[list[str], list[ET.Element]]:
    root = ET.fromstring(svg)
    titles = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    return titles, list(root.iter())


@pytest.mark.parametrize("view", ["blocks", "layers"])
def test_names_cannot_add_dot_statements_or_links(tmp_path, view):
    spec = _spec(tmp_path, "".join(f"  {line}\n" for line in INJECTIONS))
    out = tmp_path / "net.svg"
    result = archc(spec, "--emit", "svg", "--view", view, "-o", out)
    assert result.exit_code == 0, result.output
    titles, elements = _svg_nodes(out.read_bytes())
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
    result = archc(_spec(tmp_path, f"  {line}\n"), "--emit", "svg")
    assert result.exit_code == 0, result.output
    titles, elements = _svg_nodes(result.stdout_bytes)
    assert len(titles) == 3  # input, the conv, the legend
    assert not any("href" in k or k == "URL" for e in elements for k in e.attrib)


def test_the_longest_names_give_a_diagram_with_capped_labels(tmp_path):
    from archlang.lower.names import MAX_NAME

    long = "w" * (MAX_NAME - 2)
    spec = _spec(tmp_path, f'  "{long}\\\\": conv(4, 3)\n  "{long}x": conv(4, 1)\n')
    out = tmp_path / "net.svg"
    result = archc(spec, "--emit", "svg", "-o", out)
    assert result.exit_code == 0, result.output
    titles, elements = _svg_nodes(out.read_bytes())
    assert len(titles) == 4 and len(set(titles)) == 4  # the two long names stay two nodes
    assert any((e.text or "").endswith("…") and (e.text or "").startswith("www") for e in elements)


def test_a_huge_name_is_refused_located(tmp_path):
    spec = _spec(tmp_path, f'  "{"w" * (1 << 20)}": conv(4, 3)\n')
    result = archc(spec, "--emit", "svg", "-o", tmp_path / "net.svg")
    _no_traceback(result)
    assert result.exit_code == 1 and "net.arch:" in result.output
    assert not (tmp_path / "net.svg").exists()


def test_html_report_escapes_names(tmp_path):
    spec = _spec(tmp_path, '  "<img src=x onerror=alert(1)>\'": conv(4, 3)\n')
    result = archc(spec, "--emit", "html")
    assert result.exit_code == 0, result.output
    assert "<img" not in result.output and "&lt;img src=x onerror=alert(1)&gt;" in result.output


def _deep_list_spec(tmp_path, depth: int):
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
    from archlang.value_budget import MAX_VALUE_DEPTH

    result = archc(_deep_list_spec(tmp_path, MAX_VALUE_DEPTH - 1), "--emit", "dot")
    _no_traceback(result)
    assert result.exit_code == 0, result.output[-2000:]
    assert "B × 2" in result.output  # the two identical instances still collapse
    subprocess.run(["dot", "-Tsvg"], input=result.output.encode(), check=True, capture_output=True)


def test_a_6000_deep_list_argument_is_refused_located(tmp_path):
    result = archc(_deep_list_spec(tmp_path, 6000), "--emit", "dot")
    _no_traceback(result)
    assert result.exit_code == 1 and "E601" in result.output and "deep.arch:" in result.output


# ---- 4. files the user did not name as output --------------------------------------------

SIMPLE = "  conv(4, 3)\n"


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
    spec = _spec(tmp_path, SIMPLE)
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
    spec = _spec(tmp_path, SIMPLE)
    link = tmp_path / "null"
    link.symlink_to(os.devnull)
    result = archc(spec, "--emit", "dot", "-o", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and stat.S_ISCHR(os.stat(link).st_mode)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_device_is_a_clean_error(tmp_path):
    spec = _spec(tmp_path, SIMPLE)
    link = tmp_path / "full"
    link.symlink_to("/dev/full")
    result = archc(spec, "--emit", "dot", "-o", link)
    _no_traceback(result)
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
    spec = _spec(tmp_path, SURROGATE)
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = archc(*args[:1], spec, *args[1:]) if args[0] == "check" else archc(spec, *args)
    _no_traceback(result)
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
    _no_traceback(result)
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
    spec = _spec(tmp_path, SIMPLE)
    args = [*command[:1], spec, *command[1:]] if command[0] in ("lint", "check") else [spec, *command]
    result = archc(*args, "--input", dims)
    _no_traceback(result)
    assert result.exit_code == 2, result.output
    assert "at most 1,048,576" in result.output  # ops.MAX_DIM, as for `input 3x2000000x2000000`


# ---- 7. reading what was not meant to be read ----------------------------------------------

SECRET = "root:x:0:0:root:/root:/bin/bash\n"


def _project(tmp_path: Path, link_target: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "lib.arch").symlink_to(link_target)
    spec = project / "net.arch"
    spec.write_text('import "lib.arch"\n' + NET.format(body=SIMPLE))
    return spec


def test_an_import_linked_outside_the_spec_folder_is_refused_unread(tmp_path):
    secret = tmp_path / "passwd"
    secret.write_text(SECRET)
    spec = _project(tmp_path, secret)
    result = archc("check", spec)
    assert result.exit_code == 1, result.output
    assert "error[E108]" in result.output and f"{spec}:1:1" in result.output
    assert "root:x" not in result.output


def test_a_non_spec_file_behind_an_import_is_never_echoed(tmp_path):
    secret = tmp_path / "project" / "secret.txt"  # inside the folder, or allowed from outside
    spec = _project(tmp_path, Path("secret.txt"))
    secret.write_text(SECRET)
    for flags in ([], ["--allow-outside-imports"]):
        result = archc("check", spec, *flags)
        assert result.exit_code == 1 and "error[E101]" in result.output, result.output
        assert "root:x" not in result.output and "lib.arch:1:" in result.output


def test_outside_imports_are_allowed_by_the_flag(tmp_path):
    shared = tmp_path / "shared.arch"
    shared.write_text("block L() {\n  conv(4, 1)\n}\n")
    spec = _project(tmp_path, shared)
    (spec.parent / "up.arch").write_text('import "../shared.arch"\n' + NET.format(body="  L()\n"))
    for path in (spec, spec.parent / "up.arch"):
        assert archc("check", path).exit_code == 1
        result = archc("check", path, "--allow-outside-imports")
        assert result.exit_code == 0, result.output
    with pytest.raises(SpecError):
        compile_spec(spec.parent / "up.arch")
    assert compile_spec(spec.parent / "up.arch", allow_outside_imports=True).graph.number_of_nodes() == 2  # input, conv


def test_bundled_specs_import_their_libraries():
    assert archc("check", "googlenet").exit_code == 0


# ---- 8. terminal escapes -------------------------------------------------------------------


def test_control_characters_in_echoed_lines_are_escaped(tmp_path):
    spec = tmp_path / "esc.arch"
    spec.write_text(NET.format(body="  conv(8, 3, bogus=1)  # \x1b]0;PWNED\x07 \x1b[2J \x9b31m \x7f\n"))
    result = archc("check", spec)
    assert result.exit_code == 1, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "\x9b" not in result.output
    assert "\\x1b]0;PWNED\\x07 \\x1b[2J \\x9b31m \\x7f" in result.output
    lines = result.output.split("\n")
    echoed = next(i for i, line in enumerate(lines) if "bogus=1" in line)
    assert lines[echoed].index("bogus") == lines[echoed + 1].index("^")


def test_a_long_line_is_echoed_cut_around_the_caret(tmp_path):
    spec = tmp_path / "long.arch"
    spec.write_text(NET.format(body="  " + " " * 500_000 + "conv(8, 3, bogus=1)  # " + "x" * 500_000 + "\n"))
    result = archc("check", spec)
    assert result.exit_code == 1 and len(result.output) < 1500, len(result.output)
    lines = result.output.split("\n")
    echoed = next(i for i, line in enumerate(lines) if "bogus=1" in line)
    assert "…" in lines[echoed] and lines[echoed].index("bogus") == lines[echoed + 1].index("^")


def test_the_file_name_in_the_summary_is_escaped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a\x1b[2J.arch").write_text(NET.format(body=SIMPLE))
    result = archc("check", "a\x1b[2J.arch")
    assert result.exit_code == 0 and "(a\\x1b[2J.arch)" in result.output


@pytest.mark.parametrize("name", ["\x9b2J", "a\x7fb", "\x1b]0;x"])
def test_names_with_control_characters_are_refused(tmp_path, name):
    spec = tmp_path / "n.arch"
    spec.write_text(NET.format(body=f'  "{name}": conv(4, 3)\n'), encoding="utf-8")
    result = archc(spec, "--report")
    assert result.exit_code == 1 and "error[E207]" in result.output
    assert not any(ch in result.output for ch in "\x9b\x7f\x1b")


# ---- 9. a file name is a file name ---------------------------------------------------------


@pytest.mark.parametrize("name", ["x{1}.arch", "two\nlines.arch", "network N {"])
def test_an_existing_file_is_read_as_a_file(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    Path(name).write_text(NET.format(body=SIMPLE))
    result = archc("check", name)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: N (")
    assert compile_spec(name).program.files == [(tmp_path / name).resolve()]


def test_inline_text_needs_e_or_stdin():
    text = NET.format(body=SIMPLE)
    assert archc("check", "-e", text).output.startswith("ok: N (<-e>)")
    from click.testing import CliRunner

    from archlang.cli import main

    result = CliRunner().invoke(main, ["check", "-"], input=text, env={"NO_COLOR": "1"})
    assert result.exit_code == 0 and result.output.startswith("ok: N (<stdin>)")
    # text given as FILE is a (missing) file, not a spec
    result = archc("check", text)
    assert result.exit_code == 1 and "error[E104]" in result.output and "not found" in result.output


def test_spec_text_still_compiles_from_python():
    assert compile_spec(NET.format(body=SIMPLE)).graph.number_of_nodes() == 2


# ---- the fuzzer's hostile names (fuzz/generate.py) -----------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import generate  # noqa: E402

REFUSALS = ("error[E102]", "error[E207]", "error[E302]")


@pytest.mark.parametrize("seed", range(12))
def test_hostile_names_draw_or_are_refused_located(tmp_path, seed):
    import random

    spec = tmp_path / "h.arch"
    spec.write_text(generate.gen_hostile_names(random.Random(seed)), encoding="utf-8")
    result = archc(spec, "--emit", "svg", "--view", "layers")
    _no_traceback(result)
    if result.exit_code:
        assert result.exit_code == 1 and result.output.startswith(REFUSALS), result.output
        assert not any(ch in result.output for ch in "\x1b\x9b\x07")
        return
    titles, elements = _svg_nodes(result.stdout_bytes)
    assert len(titles) == 6 and "pwned" not in titles  # input, 3 convs, flatten, legend
    assert not any("href" in k or k == "URL" for e in elements for k in e.attrib)


def test_special_outputs_of_the_fuzzer_stay_special(tmp_path):
    import random

    (tmp_path / "link-to-null").symlink_to(os.devnull)
    spec = _spec(tmp_path, SIMPLE)
    for seed in range(8):
        target = generate.special_output(random.Random(seed), str(tmp_path))
        if target.endswith("fifo"):
            continue  # needs a reader: test_a_fifo_is_written_in_place
        if not os.path.exists(target):
            continue
        result = archc(spec, "--emit", "dot", "-o", target)
        _no_traceback(result)
        assert result.exit_code in (0, 1), result.output
        assert stat.S_ISCHR(os.stat(target).st_mode)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
