"""Start-up: `archc specs/inception_v3.arch --report` as a whole process vs the bare import of
the required stack, `python -c "import lark, pydantic, networkx"` (prints figures, asserts nothing).

Goal: the report process takes at most 2x the bare import, with nothing kept between runs:
archlang has no disk cache, so every run is a first run (what each new user and CI sees). The
two commands run interleaved (bare, report, bare, report, ...) so that load on the machine hits
both alike; the figures are medians of wall time and of CPU time (user + system of the child,
steadier on a busy machine).

Before timing, one run writes the bytecode (as `pip install` does; PYTHONDONTWRITEBYTECODE is
dropped for it).

    python benchmarks/bench_startup.py [--runs 15] [--spec specs/inception_v3.arch] [--instructions]

`--instructions` also counts the instructions each process executes under valgrind's
callgrind (user space only, ~1 min): a figure the machine's load cannot move.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE = [sys.executable, "-c", "import lark, pydantic, networkx"]


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


def _instructions(cmd: list[str], env: dict) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", *cmd],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    match = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode != 0 or match is None:
        raise SystemExit(f"valgrind failed: {proc.stderr[-500:]}")
    return int(match.group(1).replace(",", ""))


def _median(samples: list[tuple[float, float]], i: int) -> float:
    return statistics.median(s[i] for s in samples)


def _min(samples: list[tuple[float, float]], i: int) -> float:
    return min(s[i] for s in samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--spec", default="specs/inception_v3.arch")
    ap.add_argument("--instructions", action="store_true", help="also count instructions with valgrind")
    opts = ap.parse_args()

    env = {**os.environ, "NO_COLOR": "1"}
    # What the `archc` script runs, with the archlang of this checkout (`-c` puts the current
    # folder first on sys.path), so that a copy of the repository at another commit is
    # measured the same way. (`-m archlang.cli.main` would compile cli.py afresh each run.)
    report = [
        sys.executable,
        "-c",
        "import sys; from archlang.cli.main import main; sys.exit(main())",
        opts.spec,
        "--report",
    ]
    warm_env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for _ in range(2):  # bytecode; the OS's file cache
        _run(report, warm_env)
        _run(BARE, warm_env)

    bare, runs = [], []
    for _ in range(opts.runs):
        bare.append(_run(BARE, env))
        runs.append(_run(report, env))

    print(f"archc {' '.join(report[-2:])} vs bare `import lark, pydantic, networkx` ({opts.runs} interleaved runs)")
    print(f"{'':26s} {'wall median':>12s} {'CPU median':>12s} {'wall min':>10s} {'CPU min':>10s}")
    for label, samples in (("bare import of the stack", bare), ("archc --report", runs)):
        figures = [f(samples, i) for f, i in ((_median, 0), (_median, 1), (_min, 0), (_min, 1))]
        print(f"{label:26s} {figures[0]:10.3f} s {figures[1]:10.3f} s {figures[2]:8.3f} s {figures[3]:8.3f} s")
    # Minima are the runs the machine's other load disturbed least.
    ratios = [f(runs, i) / f(bare, i) for f, i in ((_median, 0), (_median, 1), (_min, 0), (_min, 1))]
    print(f"{'ratio':26s} " + " ".join(f"{r:10.2f}x " for r in ratios) + "  (goal <= 2x)")
    print(f"ratio of wall-time medians: {ratios[0]:.2f}x")

    if opts.instructions:
        counts = [_instructions(cmd, env) for cmd in (BARE, report)]
        print(
            f"instructions (callgrind): bare {counts[0]:,}, archc --report {counts[1]:,}: {counts[1] / counts[0]:.2f}x"
        )


if __name__ == "__main__":
    main()
