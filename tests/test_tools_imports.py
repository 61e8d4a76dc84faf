"""The tools' heavy libraries load only in their own commands: `--report`, `check`, `fmt`
and `diff` never import matplotlib, Pygments, Selenium or torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

HEAVY = ("matplotlib", "pygments", "selenium", "torch")
COMMANDS = {
    "report": ["specs/googlenet.arch", "--report"],
    "check": ["check", "specs/googlenet.arch"],
    "fmt": ["fmt", "--check", "specs/googlenet.arch"],
    "diff": ["diff", "googlenet", "googlenet", "--set-b", "variant=paper"],
}
# One fresh process runs the commands one after the other and lists the heavy modules loaded
# after each: a command that pulls one in is the first whose list is not empty. (One process
# instead of one per command: each start costs about a second.)
PROBE = """
import json, sys
from archlang.cli.main import main
heavy, seen = tuple(sys.argv[2:]), {}
for name, args in json.loads(sys.argv[1]).items():
    try:
        code = main(args, standalone_mode=False)
    except SystemExit as exit:
        code = exit.code
    seen[name] = {"exit": code, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in heavy)}
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def probe() -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(COMMANDS), *HEAVY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("name", COMMANDS)
def test_command_imports_no_heavy_library(probe, name):
    assert probe[name]["exit"] in (0, None), probe[name]
    assert probe[name]["heavy"] == []
