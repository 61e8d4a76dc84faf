import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
# Tables fit COLUMNS when it is set (as shells and shutil read it); tests that read a table
# whole must not depend on the width of the terminal that runs them (or on a runner that
# sets it): the tests that check the fitting set COLUMNS themselves.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)


def _cores() -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a
    container limited to 2 CPUs on a 64-CPU host still has 64 in its affinity)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            n = min(n, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return n


def pytest_xdist_auto_num_workers(config):
    """``--numprocesses=auto``: one worker per usable core (``--maxprocesses`` caps it)."""
    return _cores()


# The test command runs one pytest-xdist worker per core (up to 4): each worker's torch and
# the archc subprocesses it starts get their share of the cores. Two workers with two
# OpenMP threads each on two cores stall at every op's barrier waiting for a descheduled
# thread (a ResNet-50 forward went from 0.1 s to 2.7 s of wall time). Set before torch is
# imported, which reads it once.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ["OMP_NUM_THREADS"] = str(max(1, _cores() // _WORKERS))

SPECS = ROOT / "specs"
sys.path.insert(0, str(Path(__file__).resolve().parent))


@functools.cache
def tracked(pattern: str) -> tuple[Path, ...]:
    """The checkout's files matching ``pattern`` (a glob relative to the root, ``*`` within one
    folder) that git tracks: a stray ``specs/tmp.arch`` left in the checkout is not a bundled
    spec and must not become a test case. Outside a git checkout (an unpacked sdist), the glob."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", f":(glob){pattern}"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return tuple(sorted(ROOT.glob(pattern)))
    return tuple(sorted(ROOT / name for name in listed.split("\0") if name))


def bundled_names() -> list[str]:
    """Names of the bundled spec files (``googlenet``, ...), tracked ones only (see ``tracked``)."""
    return sorted(p.stem for p in tracked("specs/*.arch"))


# Bundled specs whose torch model takes seconds to build and run on a CPU (VGG's 128M
# parameters, ResNet-50's depth, DenseNet-121's 120 layers, Inception v3 at 299×299, the
# segmentation models at 520×520; and MobileNetV2 / MobileNetV3, whose float64 depthwise
# convs take torch's slow path, from 0.5 s to 30 s on a busy 2-core machine): parametrized
# over every bundled spec, their cases are `slow`; the quick loop keeps the small ones.
HEAVY_SPECS = {
    "deeplabv3",
    "densenet",
    "fcn",
    "inception_v3",
    "lraspp",
    "mobilenet_v2",
    "resnet",
    "resnet50_fpn",
    "unet",
    "vgg",
}


def bundled_params() -> list:
    """``bundled_names()`` as pytest params, the heavy specs marked ``slow``."""
    return quick_only(bundled_names(), set(bundled_names()) - HEAVY_SPECS)


def quick_only(names, quick) -> list:
    """``names`` as pytest params, those not in ``quick`` marked ``slow``: the quick loop
    (``pytest -m "not slow"``) keeps a few small cases of a parametrization, CI runs all."""
    return [n if n in quick else pytest.param(n, marks=pytest.mark.slow) for n in names]


# Hypothesis profiles. `ci` (the default) is reproducible: the examples are derived from each
# test's source, not from a random seed, so a red run is red again on rerun and a green run
# did not just get lucky; no example database. `fuzz` draws fresh random examples, many more
# of them: `HYPOTHESIS_PROFILE=fuzz pytest tests/test_fuzz.py` (see fuzz/README.md), or
# pytest's `--hypothesis-profile=fuzz`. `dev` is `ci` with random seeds.
CI_EXAMPLES = 50
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=CI_EXAMPLES,
    suppress_health_check=_QUIET,
    print_blob=True,
)
settings.register_profile("dev", deadline=None, max_examples=CI_EXAMPLES, suppress_health_check=_QUIET)
settings.register_profile(
    "fuzz", deadline=None, max_examples=40 * CI_EXAMPLES, suppress_health_check=_QUIET, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(ci_budget: int) -> int:
    """A test's example count: ``ci_budget`` under the ci profile, scaled like the profile's
    ``max_examples`` under the others (40 times as many under fuzz)."""
    return max(1, ci_budget * settings.default.max_examples // CI_EXAMPLES)


@pytest.fixture
def run():
    """``run("check", "googlenet")``: archc in-process (click's runner), no colour."""
    from archlang.cli.main import main

    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), env={"NO_COLOR": "1"}, prog_name="archc")

    return invoke


def assert_ruff_clean(*paths, config=(), select="E,F,W,I,B,UP"):
    """``ruff check`` and ``ruff format --check`` over ``paths`` (files or folders), one run
    each. ruff is in the test extra: run as ``python -m ruff`` so a missing ruff fails here
    instead of skipping."""
    for cmd in (["check", "--select", select], ["format", "--check", "--diff"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", cmd[0], "--isolated", *cmd[1:], *config, *map(str, paths)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
