"""Python run from the repository root, with archlang installed (editable or not).

There the checkout's `archlang/` is imported before the installed package, while
`backends/` and `specs/` sit next to it instead of inside (installed, they are
`archlang/backends`, `archlang/specs`). A non-editable install used to end in
`No module named 'archlang.specs'`; archlang/__init__.py now finds the checkout's own.

The non-editable install is laid out here as setuptools' package-dir lays it out (pyproject:
`archlang.backends` = backends/, `archlang.specs` = specs/) rather than by pip: pip without
build isolation depends on this environment's setuptools (65.x cannot build a wheel without
`wheel`), with it on an index. tests/test_packaging.py builds and installs the real wheel.
The editable install is the one this test session runs in.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import archlang, archlang.specs, archlang.backends.report.tables
result = archlang.analyze("inception_v3")
print(archlang.__file__, archlang.specs.__file__, archlang.backends.__file__, result.totals.params)
"""
PARAMS = "23834568"  # FACTS.md: Inception v3 without its aux head (torchvision: 27,161,264 - 3,326,696)


def _copy(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))


def _run(args, cwd: Path, pythonpath: Path | None = None):
    env = {**os.environ, "NO_COLOR": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)


def _probe(cwd: Path, pythonpath: Path | None = None) -> list[Path]:
    proc = _run(["-c", PROBE], cwd, pythonpath)
    assert proc.returncode == 0, proc.stderr
    *files, params = proc.stdout.split()
    assert params == PARAMS
    return [Path(f) for f in files]


def test_repo_root_with_a_non_editable_install(tmp_path):
    repo, site = tmp_path / "repo", tmp_path / "site-packages"
    for name in ("archlang", "backends", "specs"):
        _copy(ROOT / name, repo / name)
    _copy(ROOT / "archlang", site / "archlang")
    _copy(ROOT / "backends", site / "archlang" / "backends")
    _copy(ROOT / "specs", site / "archlang" / "specs")

    # From the repository root: the checkout, all three packages of it (not a mix with the
    # installed package, nor with the checkout this environment's editable install points at).
    assert _probe(repo, site) == [
        repo / "archlang" / "__init__.py",
        repo / "specs" / "__init__.py",
        repo / "backends" / "__init__.py",
    ]
    proc = _run(["-m", "archlang.cli.main", "check", "googlenet"], repo, site)
    assert proc.returncode == 0 and proc.stdout.startswith("ok: GoogLeNet"), proc.stderr

    # From elsewhere: the installed package, whole.
    assert _probe(tmp_path, site) == [
        site / "archlang" / "__init__.py",
        site / "archlang" / "specs" / "__init__.py",
        site / "archlang" / "backends" / "__init__.py",
    ]


def test_repo_root_with_the_editable_install():
    assert _probe(ROOT) == [
        ROOT / "archlang" / "__init__.py",
        ROOT / "specs" / "__init__.py",
        ROOT / "backends" / "__init__.py",
    ]
