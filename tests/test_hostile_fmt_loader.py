"""Issue 21, items 4 and 6: what the loader gives when the files behind a spec change between
runs (the disk caches are gone; these are the properties any cache must keep), and `archc
fmt` on files it may not write or must not read. Each case runs `archc` in a subprocess.

Before the fixes: `fmt` replaced a 0444 file, left root owning another user's 0640 file,
died of MemoryError on /dev/zero, hung on a FIFO and gave a traceback for `fmt - <&-` (and
`check - <&-`); a deleted working directory was a traceback for bundled specs and `-e`.
"""

from __future__ import annotations

import os
import random
import resource
import stat
import sys
from pathlib import Path

import pytest
from test_hostile_reports import archc, no_traceback

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fuzz"))
import loader_properties  # noqa: E402

UNFORMATTED = "network N {\ninput 3x8x8\n    conv(4,3)\n}\n"
FORMATTED = "network N {\n  input 3x8x8\n  conv(4, 3)\n}\n"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _memory_limit():
    # Generous: archc needs ~150 MB; reading /dev/zero to the end would need unbounded memory.
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


# ---- item 6: fmt -----------------------------------------------------------------------------


def test_fmt_refuses_a_read_only_file_and_leaves_it_as_it_was(tmp_path):
    spec = tmp_path / "ro.arch"
    spec.write_text(UNFORMATTED)
    spec.chmod(0o444)
    proc = archc("fmt", spec)
    no_traceback(proc)
    assert proc.returncode == 1
    assert f"error[E110]: cannot write `{spec}`: the file is read-only (mode 0444)" in proc.stderr
    assert "chmod u+w" in proc.stderr
    assert spec.read_text() == UNFORMATTED and stat.S_IMODE(spec.stat().st_mode) == 0o444
    # --check and --diff write nothing, so they still run
    assert archc("fmt", "--check", spec).returncode == 1


def test_outputs_never_replace_a_read_only_file(tmp_path):
    spec = tmp_path / "net.arch"
    spec.write_text(FORMATTED)
    out = tmp_path / "report.txt"
    out.write_text("keep me\n")
    out.chmod(0o444)
    proc = archc(spec, "--report", "-o", out)
    assert proc.returncode == 1 and "error[E110]" in proc.stderr and "read-only" in proc.stderr
    assert out.read_text() == "keep me\n"


def test_fmt_keeps_the_mode_and_formats(tmp_path):
    spec = tmp_path / "net.arch"
    spec.write_text(UNFORMATTED)
    spec.chmod(0o640)
    proc = archc("fmt", spec)
    assert proc.returncode == 0, proc.stderr
    assert spec.read_text() == FORMATTED and stat.S_IMODE(spec.stat().st_mode) == 0o640


@pytest.mark.skipif(not IS_ROOT, reason="only root can give a file to another user")
def test_fmt_as_root_keeps_another_users_owner_and_mode(tmp_path):
    spec = tmp_path / "theirs.arch"
    spec.write_text(UNFORMATTED)
    os.chown(spec, 4321, 4321)
    spec.chmod(0o640)
    proc = archc("fmt", spec)
    assert proc.returncode == 0, proc.stderr
    st = spec.stat()
    assert spec.read_text() == FORMATTED
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4321, 0o640)


@pytest.mark.skipif(IS_ROOT, reason="root may write any file")
def test_fmt_refuses_a_file_its_user_may_not_write(tmp_path):
    spec = tmp_path / "net.arch"
    spec.write_text(UNFORMATTED)
    spec.chmod(0o464)  # group-writable, but not by its owner: os.access says no
    proc = archc("fmt", spec)
    assert proc.returncode == 1 and "error[E110]" in proc.stderr
    assert spec.read_text() == UNFORMATTED


@pytest.mark.parametrize("args", [["fmt", "--check"], ["fmt"], ["fmt", "--diff"], ["check"]])
def test_dev_zero_is_refused_like_check_does(args):
    proc = archc(*args, "/dev/zero", timeout=60, preexec_fn=_memory_limit)
    no_traceback(proc)
    assert proc.returncode == 1 and "error[E104]: `/dev/zero` is not a regular file" in proc.stderr


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.arch"
    os.mkfifo(fifo)
    for args in (["fmt", "--check"], ["fmt"]):
        proc = archc(*args, fifo, timeout=60)  # the guard: an open() would block forever
        assert proc.returncode == 1 and f"error[E104]: `{fifo}` is not a regular file" in proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # not replaced


@pytest.mark.parametrize("command", [["fmt", "-"], ["check", "-"], ["-", "--report"]])
def test_closed_stdin_is_a_located_error(command):
    proc = archc(*command, preexec_fn=lambda: os.close(0))  # the shell's `<&-`
    no_traceback(proc)
    assert proc.returncode == 1 and "error[E104]: cannot read `-`: standard input is closed" in proc.stderr


def test_stdin_from_dev_zero_stops_at_the_size_limit(tmp_path):
    with open("/dev/zero", "rb") as zero:
        proc = archc("check", "-", stdin=zero, timeout=120, preexec_fn=_memory_limit)
    no_traceback(proc)
    assert proc.returncode == 1 and "error[E603]: standard input is larger than the limit" in proc.stderr


def test_fmt_stdin_still_formats(tmp_path):
    spec = tmp_path / "net.arch"
    spec.write_text(UNFORMATTED)
    with open(spec, "rb") as f:
        proc = archc("fmt", "-", stdin=f)
    assert proc.returncode == 0 and proc.stdout == FORMATTED


# ---- item 4: the loader's cache-invalidation properties ----------------------------------------


@pytest.mark.parametrize("kind", loader_properties.KINDS)
def test_a_change_to_a_file_or_path_the_compile_read_gives_the_fresh_result(tmp_path, kind):
    """See fuzz/loader_properties.py: a symlinked folder re-pointed, an import edited with its
    size and mtime kept, an import moved outside the folder (E108), made a FIFO or a link to
    /dev/zero (E104/E108, no hang), deleted (E105)."""
    assert loader_properties.run_case(random.Random(f"test:{kind}"), tmp_path, kind) == []


def test_re_pointed_folder_by_hand(tmp_path):
    for name, width in (("dirA", 4), ("dirB", 8)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lib.arch").write_text(f"block B {{\n  conv({width}, 3)\n}}\n")
        (tmp_path / name / "net.arch").write_text('import "lib.arch"\nnetwork N {\n  input 3x8x8\n  B()\n}\n')
    (tmp_path / "cur").symlink_to("dirA")
    assert "112 parameters" in archc("check", tmp_path / "cur" / "net.arch").stdout  # 3·4·9 + 4
    (tmp_path / "cur").unlink()
    (tmp_path / "cur").symlink_to("dirB")
    assert "224 parameters" in archc("check", tmp_path / "cur" / "net.arch").stdout  # 3·8·9 + 8


DELETED_CWD = """
import os, sys
os.chdir(sys.argv[1]); os.rmdir(sys.argv[1])
sys.argv = ["archc"] + sys.argv[2:]
from archlang.cli.main import main
main()
"""


@pytest.mark.parametrize(
    "args, code",
    [
        (["check", "googlenet"], 0),  # a bundled spec with imports: relpath of the cwd
        (["check", "-e", 'import "lib.arch"\nnetwork N { input 3x8x8 }'], 1),  # imports of text
        (["check", "-e", "network N {\n  input 3x8x8\n  relu\n}"], 0),
        (["check", "net.arch"], 1),
        (["googlenet", "--report", "--format", "csv"], 0),
        (["diff", "googlenet", "googlenet"], 0),
        (["fmt", "--check", "net.arch"], 1),
    ],
)
def test_a_deleted_working_directory_is_no_traceback(tmp_path, args, code):
    import subprocess

    gone = tmp_path / "gone"
    gone.mkdir()
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", DELETED_CWD, str(gone), *args], capture_output=True, text=True, env=env, timeout=120
    )
    no_traceback(proc)
    assert proc.returncode == code, proc.stderr
    if code:
        assert "error[E10" in proc.stderr, proc.stderr
