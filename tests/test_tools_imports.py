"""The tools' heavy libraries load only in their own commands: `--report`, `check`, `fmt`
and `diff` never import matplotlib, Pygments, Selenium or torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

HEAVY = ("matplotlib", "pygments", "selenium", "torch")


@pytest.mark.parametrize(
    "args",
    [
        ["specs/googlenet.arch", "--report"],
        ["check", "specs/googlenet.arch"],
        ["fmt", "--check", "specs/googlenet.arch"],
        ["diff", "googlenet", "googlenet", "--set-b", "variant=paper"],
    ],
    ids=lambda a: a[0] if a[0] != "specs/googlenet.arch" else "report",
)
def test_command_imports_no_heavy_library(args):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "archlang.cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "archlang.cli.main" in modules or "archlang" in modules  # the measurement saw our imports
    assert not [m for m in modules if m.split(".")[0] in HEAVY]
