"""Library calls and `archc` commands leave the interpreter as they found it: the cyclic
garbage collector's switch and thresholds, ``torch.fx.Proxy`` and ``sys.modules`` are the
same during and after the call, so a notebook, a test session or an hours-long training run
behaves as the user set it up.

"During" is checked by sampling the state at every Python function call of the work
(``sys.setprofile``): a change that is undone before returning is still seen."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
SPEC = str(ROOT / "specs" / "inception_v3.arch")
LENET = str(ROOT / "examples" / "lenet5_small.arch")


def _gc_state() -> tuple:
    return gc.isenabled(), gc.get_threshold()


def _states_during(fn, probe, where=lambda frame: True) -> set:
    """Every value ``probe()`` took at a Python call (in frames ``where`` accepts) while
    ``fn`` ran, and once after it returned."""
    seen = set()

    def profile(frame, event, arg):
        if event == "call" and where(frame):
            seen.add(probe())

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    seen.add(probe())
    return seen


@pytest.fixture
def odd_gc():
    """Thresholds no library would pick, so that a reset to the defaults shows too."""
    saved = gc.get_threshold()
    gc.set_threshold(1234, 11, 13)
    yield _gc_state()
    gc.set_threshold(*saved)


def _compile():
    import archlang

    archlang.compile_spec(SPEC)


def _analyze():
    import archlang

    archlang.analyze(SPEC)


def _report():
    from archlang.backends.report.tables import report_cli

    from archlang.compiler import compile_spec

    report_cli(compile_spec(SPEC), {})


def _cli(*args, codes=(0,)):
    def invoke():
        from archlang.cli.main import main

        result = CliRunner().invoke(main, list(args), env={"NO_COLOR": "1"})
        assert result.exit_code in codes, result.output

    return invoke


@pytest.mark.parametrize(
    "work",
    [
        _compile,
        _analyze,
        _report,
        _cli(SPEC, "--report"),
        _cli("check", SPEC),
        _cli("lint", SPEC, codes=(0, 1)),  # 1: it has findings
        _cli("diff", SPEC, "googlenet"),
    ],
    ids=["compile_spec", "analyze", "report", "archc --report", "archc check", "archc lint", "archc diff"],
)
def test_compiling_and_reporting_leave_the_collector_alone(odd_gc, work):
    assert _states_during(work, _gc_state) == {odd_gc}


def test_training_runs_with_the_collector_as_the_user_left_it(odd_gc, tmp_path, monkeypatch):
    # `archc train` in-process, with a callback that records the collector's state at each step
    import lightning as L

    from archlang.cli.main import main
    from archlang.train import run

    seen = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(_gc_state())

    real = run._callbacks
    monkeypatch.setattr(run, "_callbacks", lambda *args: [*real(*args), Record()])
    args = ["train", LENET, "--input", "1x16x16", "--max-epochs", "1", "--batch-size", "512", "--accelerator", "cpu"]
    result = CliRunner().invoke(main, [*args, "--no-progress", "--out", str(tmp_path)], env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert seen and set(seen) == {odd_gc}
    assert _gc_state() == odd_gc


def _accumulating_net():
    """A module whose forward adds in place: the importer records ``+=`` as a mutation."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 4, 3, padding=1)
            self.b = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            y = self.a(x)
            y += self.b(x)
            return torch.flatten(y, 1)

    return Net()


def test_importing_leaves_torch_fx_proxy_alone():
    import torch.fx as fx

    import archlang

    before = dict(vars(fx.Proxy))
    model = _accumulating_net()
    spec = []
    seen = _states_during(
        lambda: spec.append(archlang.from_module(model, (3, 8, 8))),
        lambda: frozenset(vars(fx.Proxy).items()),
        where=lambda frame: frame.f_globals.get("__name__", "").startswith(("archlang.importer", "torch.fx")),
    )
    assert seen == {frozenset(before.items())}
    assert dict(vars(fx.Proxy)) == before
    assert "add {" in spec[0]


def test_only_the_importers_tracer_records_in_place_adds():
    import operator

    import torch.fx as fx

    from archlang.importer.trace import _Tracer

    model = _accumulating_net()

    def targets(tracer):
        return {n.target for n in tracer.trace(model).nodes if n.op == "call_function"}

    assert operator.iadd in targets(_Tracer((), model, (3, 8, 8)))  # what E724's check needs to see
    assert operator.iadd not in targets(fx.Tracer())  # torch.fx as torch ships it: `y = y + ...`


PARSE_PROBE = """
import json, sys
planted = set()
def profile(frame, event, arg):
    # at the start of each module body (every import) and of each parse
    if event == "call" and frame.f_code.co_name in ("<module>", "parse"):
        planted.update(k for k, v in list(sys.modules.items()) if v is None)
before = {k for k, v in sys.modules.items() if v is None}
sys.setprofile(profile)
from archlang.frontend.parser import parse
parse(open(sys.argv[1]).read(), sys.argv[1])
import archlang
archlang.compile_spec(sys.argv[1])
sys.setprofile(None)
after = {k for k, v in sys.modules.items() if v is None}
print(json.dumps({"during": sorted(planted - before), "after": sorted(after - before)}))
"""


def test_parsing_plants_no_none_in_sys_modules():
    # A `sys.modules[name] = None` makes `import name` fail for everyone meanwhile (archlang
    # once hid the `regex` package from Lark that way); a fresh interpreter shows it.
    proc = subprocess.run([sys.executable, "-c", PARSE_PROBE, SPEC], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"during": [], "after": []}
