"""Start-up: `archc specs/inception_v3.arch --report` as a whole process vs the bare import of
the required stack, `python -c "import lark, pydantic, networkx"` (prints figures, asserts nothing).

Goal: the report process takes at most 1.5x the bare import. The two commands run interleaved
(bare, report, bare, report, ...) so that load on the machine hits both alike; the figures are
medians of wall time and of CPU time (user + system of the child, steadier on a busy machine).

Before timing, one run writes the bytecode (as `pip install` does; PYTHONDONTWRITEBYTECODE is
dropped for it) and fills the user's cache (Lark's grammar and the parsed-IR cache,
archlang/ircache.py). A second series times the report with an empty cache (a fresh TMPDIR per
run): the very first run on a machine.

    python benchmarks/bench_startup.py [--runs 15] [--spec specs/inception_v3.arch]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE = [sys.executable, "-c", "import lark, pydantic, networkx"]


def _archc() -> list[str]:
    script = Path(sys.executable).with_name("archc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "archlang.cli"]


def _run(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _median(samples: list[tuple[float, float]], i: int) -> float:
    return statistics.median(s[i] for s in samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--spec", default="specs/inception_v3.arch")
    opts = ap.parse_args()

    env = {**os.environ, "NO_COLOR": "1"}
    report = [*_archc(), opts.spec, "--report"]
    warm_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for _ in range(2):  # bytecode, grammar cache, IR cache; the OS's file cache
        _run(report, warm_env)
        _run(BARE, warm_env)

    bare, warm, cold = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(opts.runs):
            bare.append(_run(BARE, env))
            warm.append(_run(report, env))
            fresh = Path(tmp) / str(i)
            fresh.mkdir()
            cold.append(_run(report, {**env, "TMPDIR": str(fresh)}))

    print(f"{' '.join(report[-2:])} vs bare `import lark, pydantic, networkx` ({opts.runs} interleaved runs)")
    print(f"{'':32s} {'wall (median)':>14s} {'CPU (median)':>14s}")
    rows = [("bare import of the stack", bare), ("archc --report", warm), ("archc --report, empty cache", cold)]
    for label, samples in rows:
        print(f"{label:32s} {_median(samples, 0):12.3f} s {_median(samples, 1):12.3f} s")
    for label, samples in rows[1:]:
        ratio_wall = _median(samples, 0) / _median(bare, 0)
        ratio_cpu = _median(samples, 1) / _median(bare, 1)
        print(f"ratio, {label:25s} {ratio_wall:12.2f}x  {ratio_cpu:12.2f}x   (goal <= 1.5x)")


if __name__ == "__main__":
    main()
