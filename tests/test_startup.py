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
import pydantic
from archlang.cli.main import main
try:
    main(["specs/inception_v3.arch", "--report"], standalone_mode=False)
except SystemExit:
    pass
from archlang import diagnostics
from archlang.frontend import ir
models = [c for c in [*vars(ir).values(), *vars(diagnostics).values()]
          if isinstance(c, type) and issubclass(c, pydantic.BaseModel) and c is not pydantic.BaseModel]
print(json.dumps({
    "validators_built": sorted(c.__name__ for c in models if c.__pydantic_complete__),
    "models": len(models),
    "modules": sorted(sys.modules),
}))
"""


def _probe() -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_report_builds_no_pydantic_validator_and_imports_no_rich_console():
    probe = _probe()
    # Building a validator for one IR model (e.g. `ir.Label(...)` instead of
    # `model_construct`) costs ~30 ms: its schema, plus pydantic's plugin scan of every
    # installed package's entry points.
    assert probe["models"] > 20
    assert probe["validators_built"] == []
    assert "pydantic.plugin._loader" not in probe["modules"]
    # rich's Console and Table take ~16 ms to import; the text report does not use them.
    assert not {"rich.console", "rich.table"} & set(probe["modules"])
    assert "torch" not in probe["modules"]
