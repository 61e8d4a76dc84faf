"""Issue 14, findings 7, 8, 9 and the fuzzer's hostile names: what a hostile spec reads
(imports outside its folder, files that are not specs), echoes (terminal escapes) and how FILE
is read (a path, never spec text). Every test here failed before the fix."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from hostile import NET, SIMPLE, archc, no_traceback, spec_file, svg_nodes

from archlang import compile_spec
from archlang.diagnostics import SpecError

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
    assert len(compile_spec(spec.parent / "up.arch", allow_outside_imports=True).graph) == 2  # input, conv


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

    from archlang.cli.main import main

    result = CliRunner().invoke(main, ["check", "-"], input=text, env={"NO_COLOR": "1"})
    assert result.exit_code == 0 and result.output.startswith("ok: N (<stdin>)")
    # text given as FILE is a (missing) file, not a spec
    result = archc("check", text)
    assert result.exit_code == 1 and "error[E104]" in result.output and "not found" in result.output


def test_spec_text_still_compiles_from_python():
    assert len(compile_spec(NET.format(body=SIMPLE)).graph) == 2


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
    no_traceback(result)
    if result.exit_code:
        assert result.exit_code == 1 and result.output.startswith(REFUSALS), result.output
        assert not any(ch in result.output for ch in "\x1b\x9b\x07")
        return
    titles, elements = svg_nodes(result.stdout_bytes)
    assert len(titles) == 6 and "pwned" not in titles  # input, 3 convs, flatten, legend
    assert not any("href" in k or k == "URL" for e in elements for k in e.attrib)


def test_special_outputs_of_the_fuzzer_stay_special(tmp_path):
    import random

    (tmp_path / "link-to-null").symlink_to(os.devnull)
    spec = spec_file(tmp_path, SIMPLE)
    for seed in range(8):
        target = generate.special_output(random.Random(seed), str(tmp_path))
        if target.endswith("fifo"):
            continue  # needs a reader: test_a_fifo_is_written_in_place
        if not os.path.exists(target):
            continue
        result = archc(spec, "--emit", "dot", "-o", target)
        no_traceback(result)
        assert result.exit_code in (0, 1), result.output
        assert stat.S_ISCHR(os.stat(target).st_mode)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
