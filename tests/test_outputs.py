"""``archc -o FILE`` writes atomically (archlang/atomic.py): on any error the previous file
stays as it was, and no partial or temporary file is left beside it."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from archlang import atomic
from archlang.cli import main as cli
from archlang.diagnostics import Diagnostic, SpecError

GOOD = "network N {\n  input 3x8x8\n  conv(4, 3)\n}\n"
BAD = "network N {\n  input 3x8x8\n  conv(4, 3, bogus=1)\n}\n"
OLD = "previous contents\n"


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "good.arch").write_text(GOOD)
    (tmp_path / "bad.arch").write_text(BAD)
    out = tmp_path / "out" / "model.json"
    out.parent.mkdir()
    out.write_text(OLD)
    return tmp_path, out


def archc(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args], env={"NO_COLOR": "1"})


def leftovers(out):
    return sorted(p.name for p in out.parent.iterdir() if p.name != out.name)


def test_success_replaces_the_whole_file_and_keeps_its_mode(setup):
    root, out = setup
    out.chmod(0o600)
    result = archc(root / "good.arch", "--emit", "ir", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("{") and out.read_text().endswith("}\n")
    assert '"kind": "network"' in out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600
    assert leftovers(out) == []


def test_spec_error_leaves_the_old_file(setup):
    root, out = setup
    result = archc(root / "bad.arch", "--emit", "ir", "-o", out)
    assert result.exit_code == 1 and "error[E202]" in result.output
    assert out.read_text() == OLD and leftovers(out) == []


def test_emitter_error_leaves_the_old_file(setup, monkeypatch):
    root, out = setup

    def failing_emitter(compiled, fmt, options):
        raise SpecError(Diagnostic(code="E111", message="the emitter cannot do this"))

    monkeypatch.setitem(cli.EMITTERS, "ir", f"{__name__}:_failing")
    monkeypatch.setitem(globals(), "_failing", failing_emitter)
    result = archc(root / "good.arch", "--emit", "ir", "-o", out)
    assert result.exit_code == 1 and "error[E111]" in result.output
    assert out.read_text() == OLD and leftovers(out) == []


def test_an_emitter_bug_leaves_the_old_file(setup, monkeypatch):
    root, out = setup

    def buggy_emitter(compiled, fmt, options):
        raise RuntimeError("bug")

    monkeypatch.setitem(cli.EMITTERS, "ir", f"{__name__}:_buggy")
    monkeypatch.setitem(globals(), "_buggy", buggy_emitter)
    result = archc(root / "good.arch", "--emit", "ir", "-o", out)
    assert isinstance(result.exception, RuntimeError)
    assert out.read_text() == OLD and leftovers(out) == []


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(setup, monkeypatch, fail_at):
    root, out = setup

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, fail_at, disk_full)
    result = archc(root / "good.arch", "--emit", "ir", "-o", out)
    assert result.exit_code == 1 and "error[E110]" in result.output
    assert "no space left on device" in result.output
    assert out.read_text() == OLD and leftovers(out) == []


def test_an_interrupted_write_removes_its_temporary(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_text(OLD)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_atomic(target, "new")
    assert target.read_text() == OLD and os.listdir(tmp_path) == ["f.txt"]


@pytest.mark.parametrize("where", ["missing/dir/out.json", "out"])
def test_unwritable_destinations_are_diagnostics(setup, where):
    root, out = setup
    dest = root / where  # a folder that does not exist; a path that is a folder
    result = archc(root / "good.arch", "--emit", "ir", "-o", dest)
    assert result.exit_code == 1 and "error[E110]" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert out.read_text() == OLD
