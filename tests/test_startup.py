"""What `archc --report` does before its first byte of output: nothing it can skip.

The figures are in benchmarks/bench_startup.py (a whole `--report` process against the bare
import of lark + pydantic + networkx); these tests pin the causes of the slow start-ups it
found, each of which costs a measurable part of that budget."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from archlang.cli.main import main
try:
    main(["specs/inception_v3.arch", "--report"], standalone_mode=False)
except SystemExit:
    pass
print(json.dumps({"modules": sorted(sys.modules)}))
"""


def _probe() -> dict:
    # The report compiles the spec (parser, IR, lowering): there is no cache to skip it.
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_report_imports_neither_pydantic_nor_rich_nor_torch():
    modules = set(_probe()["modules"])
    assert {"archlang.frontend.parser", "archlang.frontend.ir"} <= modules  # it did compile
    # The IR is plain dataclasses (docs/architecture.md): pydantic, ~45 ms to import and more
    # per model class, is for recipes only.
    assert not {m for m in modules if m.split(".")[0] == "pydantic"}
    assert not {m for m in modules if m.split(".")[0] == "rich"}
    assert "torch" not in modules
    # The parser is generated ahead of time (archlang/frontend/lalr_parser.py): building it from
    # grammar.lark with Lark takes longer than the rest of the front end, and Lark's runtime
    # would import the optional `regex` package (~0.1 s).
    assert not {m.partition(".")[0] for m in modules} & {"lark", "regex"}
