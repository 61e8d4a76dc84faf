"""``archc``: summaries, exit codes (0 ok, 1 spec errors, 2 usage errors), atomic -o, and no
torch import on the check path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, SPECS

from archlang import __version__

V3 = str(SPECS / "inception_v3.arch")
GOOGLENET = str(SPECS / "googlenet.arch")


def test_check_summary_inception_v3(run):
    result = run("check", V3)
    assert result.exit_code == 0, result.output
    # FACTS.md: torchvision inception_v3 has 23,834,568 parameters without its aux head,
    # 27,161,264 with AuxLogits (the docs' figure)
    assert result.stdout.startswith("ok: Inception3 (")
    assert "23,834,568 parameters (27,161,264 with aux head AuxLogits)" in result.stdout
    assert "input 3×299×299 -> output 1000" in result.stdout


def test_check_bundled_spec_by_name(run):
    result = run("check", "googlenet")
    assert result.exit_code == 0, result.output
    # FACTS.md: torchvision googlenet without aux heads 6,624,904 parameters (the docs' and
    # README's figure); GoogLeNet() with both aux heads 13,004,888
    assert "GoogLeNet" in result.stdout
    assert "6,624,904 parameters (13,004,888 with aux heads aux1, aux2)" in result.stdout


def test_check_with_set_paper_variant(run):
    result = run("check", GOOGLENET, "--set", "variant=paper", "--set", "aux_logits=false")
    assert result.exit_code == 0, result.output
    # FACTS.md: GoogLeNet as in the paper (Caffe bvlc_googlenet), main path: 6,998,552
    assert "6,998,552 parameters," in result.stdout
    assert "aux" not in result.stdout


def test_check_with_input_override(run):
    result = run("check", V3, "--set", "aux_logits=false", "--input", "3x75x75")
    assert result.exit_code == 0, result.output
    assert "input 3×75×75 -> output 1000" in result.stdout


def test_version_and_help(run):
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.stdout
    result = run("--help")
    assert result.exit_code == 0
    for word in ("check", "lint", "--emit", "--list-specs"):
        assert word in result.stdout
    result = run("check", "--help")
    assert result.exit_code == 0 and "--input" in result.stdout and "--set" in result.stdout


def test_list_specs(run):
    result = run("--list-specs")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert {"googlenet", "inception_v3"} <= set(names)


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", V3, "--input", "3xfoo"], "--input wants dimensions"),
        (["check", V3, "--input", "3x0x299"], "positive sizes"),
        (["check", V3, "--set", "novalue"], "--set wants NAME=VALUE"),
        (["check"], "Missing argument"),
        ([V3], "nothing to do"),
        ([V3, "--emit", "nosuch"], "Invalid value"),
        ([V3, "--emit", "ir", "--report"], "either --emit or --report"),
    ],
)
def test_usage_errors_exit_2(run, args, message):
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert "compile" not in result.output  # the hidden default command is never named


def test_spec_error_exit_1(run, tmp_path):
    spec = tmp_path / "bad.arch"
    spec.write_text("network N {\n  input 3x32x32\n  conv(8, 3, strid=2)\n}\n")
    result = run("check", str(spec))
    assert result.exit_code == 1
    assert f"{spec}:3:14" in result.stderr and "error[E202]" in result.stderr
    assert "1 error emitted" in result.stderr


def test_unknown_set_parameter_exit_1(run):
    result = run("check", V3, "--set", "num_clases=10")
    assert result.exit_code == 1
    assert "error[E505]" in result.stderr and "did you mean `num_classes`?" in result.stderr


def test_missing_file_exit_1(run, tmp_path):
    result = run("check", str(tmp_path / "nope.arch"))
    assert result.exit_code == 1
    assert "error[E104]" in result.stderr and "not found" in result.stderr


def test_emit_ir_stdout(run):
    result = run(V3, "--emit", "ir")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["main"]["file"] == V3
    assert [i["kind"] for i in doc["main"]["items"]] == ["import", "network"]


def test_output_file_written_atomically(run, tmp_path):
    out = tmp_path / "v3.json"
    result = run(V3, "--emit", "ir", "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    first = out.read_bytes()
    assert json.loads(first)["main"]["file"] == V3
    # a failing compile leaves the previous output untouched and no temporary files behind
    bad = tmp_path / "bad.arch"
    bad.write_text("network N {\n  input 3x8x8\n  convv(8, 3)\n}\n")
    result = run(str(bad), "--emit", "ir", "-o", str(out))
    assert result.exit_code == 1
    assert out.read_bytes() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.arch", "v3.json"]
    # and a successful one replaces it whole
    result = run(GOOGLENET, "--emit", "ir", "-o", str(out))
    assert result.exit_code == 0
    assert json.loads(out.read_text())["main"]["file"] == GOOGLENET


def test_output_into_missing_folder_is_an_error(run, tmp_path):
    result = run(V3, "--emit", "ir", "-o", str(tmp_path / "no" / "such" / "dir.json"))
    assert result.exit_code == 1
    assert "error[E110]" in result.stderr and "Traceback" not in result.output


# ---- whole processes --------------------------------------------------------------------


def _archc(*args, **kwargs):
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
        **kwargs,
    )


def test_archc_check_does_not_import_torch():
    proc = _archc("-X", "importtime", "-m", "archlang.cli.main", "check", "specs/inception_v3.arch")
    assert proc.returncode == 0, proc.stderr
    modules = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "archlang.compiler" in modules  # the measurement did see our imports
    assert not [m for m in modules if m == "torch" or m.startswith("torch.")]


def test_archc_process_exit_codes():
    assert _archc("-m", "archlang.cli.main", "check", "specs/googlenet.arch").returncode == 0
    usage = _archc("-m", "archlang.cli.main", "check", "specs/googlenet.arch", "--input", "3xfoo")
    assert usage.returncode == 2
    spec = _archc("-m", "archlang.cli.main", "check", "tests/bad/unknown_layer.arch")
    assert spec.returncode == 1 and "tests/bad/unknown_layer.arch:4:3" in spec.stderr


# ---- help and errors name only what a user can type --------------------------------------


def test_report_without_file_names_the_visible_form(run):
    result = run("--report")
    assert result.exit_code == 2
    assert "Usage: archc [OPTIONS] FILE" in result.output and "Missing argument 'FILE'" in result.output
    assert "Try 'archc --help' for help." in result.output
    assert "compile" not in result.output


def test_help_lists_visible_commands_and_the_file_form_options(run):
    result = run("--help")
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1].split()
    assert "check" in commands and "lint" in commands and "compile" not in commands
    assert "Options of archc FILE:" in result.output and "--report" in result.output and "--block" in result.output
    result = run(V3, "--help")
    assert result.exit_code == 0 and result.output.startswith("Usage: archc [OPTIONS] FILE")


@pytest.mark.parametrize(
    "args, hint",
    [
        (["check", "googlenet", "--report"], "run `archc googlenet --report`"),
        (["check", "googlenet", "--emit", "svg"], "run `archc googlenet --emit dot|html|ir|pdf|plot|png|svg|torch`"),
        (["lint", "--depth", "1", "googlenet"], "run `archc googlenet --depth VALUE`"),
    ],
)
def test_file_form_option_on_a_command_points_to_the_right_form(run, args, hint):
    result = run(*args)
    assert result.exit_code == 2
    assert f"is an option of `archc FILE`, not of `archc {args[0]}`" in result.output and hint in result.output


def test_command_typo_is_not_taken_for_a_file(run):
    result = run("chek", "googlenet")
    assert result.exit_code == 2 and "no command `chek`: did you mean `archc check`?" in result.output
    result = run("googlenet", "--report", "--depth", "0")  # a spec name is never a typo
    assert result.exit_code == 0


# ---- binary output and the terminal ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "pdf"])
def test_binary_emit_to_a_terminal_is_refused(fmt, tmp_path):
    import pty

    main_fd, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "archlang.cli.main", "googlenet", "--emit", fmt],
            stdout=terminal,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
    finally:
        os.close(terminal)
        os.close(main_fd)
    assert proc.returncode == 2
    assert f"--emit {fmt} writes binary data" in proc.stderr and f"-o googlenet.{fmt}" in proc.stderr


def test_binary_emit_to_a_pipe_is_not_refused():
    import shutil

    proc = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", "googlenet", "--emit", "png"],
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    if shutil.which("dot"):
        assert proc.returncode == 0 and proc.stdout.startswith(b"\x89PNG\r\n"), proc.stderr
    else:  # without Graphviz the diagnostic, not the refusal
        assert proc.returncode == 1 and b"E111" in proc.stderr
