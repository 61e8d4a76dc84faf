"""`archc specs/inception_v3.arch --report` against fvcore's flop_count_table on torchvision's
inception_v3: wall time and peak RSS of each as a fresh process, side by side (prints
figures, asserts nothing). Also checks that the report imports no torch (-X importtime).

Floors for ours: median <= 0.4 s and <= 80 MiB.

    python benchmarks/bench_report.py [-n 7] [--fvcore-runs 3] [--no-fvcore]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = [sys.executable, "-m", "archlang.cli.main", "specs/inception_v3.arch", "--report"]
FVCORE = [
    sys.executable,
    "-c",
    """
import torch, torchvision
from fvcore.nn import FlopCountAnalysis, flop_count_table
model = torchvision.models.inception_v3(aux_logits=True, init_weights=False).eval()
flops = FlopCountAnalysis(model, torch.zeros(1, 3, 299, 299))
flops.unsupported_ops_warnings(False)
print(flop_count_table(flops))
print("total", flops.total())
""",
]


def run_measured(cmd: list[str]) -> tuple[float, int, str, str]:
    """Wall seconds, peak RSS in bytes of this child alone (reaped with os.wait4), stdout, stderr."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{stderr[-2000:]}")
    return wall, usage.ru_maxrss * 1024, stdout, stderr  # ru_maxrss is in KiB on Linux


def summarise(name: str, runs: list[tuple[float, int]]) -> tuple[float, int]:
    walls = [w for w, _ in runs]
    rss = max(r for _, r in runs)
    print(
        f"{name:28s} median {statistics.median(walls):7.3f} s  (min {min(walls):.3f}, max {max(walls):.3f}, "
        f"n={len(walls)})  peak RSS {rss / 2**20:7.1f} MiB"
    )
    return statistics.median(walls), rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=7, help="runs of archc")
    parser.add_argument("--fvcore-runs", type=int, default=3)
    parser.add_argument("--no-fvcore", action="store_true")
    args = parser.parse_args()

    _, _, report, imports = run_measured([sys.executable, "-X", "importtime", *OURS[1:]])
    modules = [line.split("|")[-1].strip() for line in imports.splitlines() if line.startswith("import time:")]
    heavy = sorted({m.split(".")[0] for m in modules} & {"torch", "torchvision", "fvcore", "numpy"})
    print(
        f"archc --report imports {len(modules)} modules; torch/torchvision/fvcore/numpy imported: "
        f"{', '.join(heavy) or 'none'}"
    )

    # Where the time goes: interpreter start, importing the CLI, compiling (archc check), reporting.
    baselines = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import archlang.cli.main": [sys.executable, "-c", "import archlang.cli.main"],
        "archc check": [sys.executable, "-m", "archlang.cli.main", "check", "specs/inception_v3.arch"],
    }
    print()
    for name, cmd in baselines.items():
        summarise(name, [run_measured(cmd)[:2] for _ in range(args.n)])
    ours = [run_measured(OURS)[:2] for _ in range(args.n)]
    print()
    print("--- archc specs/inception_v3.arch --report (head) ---")
    print("\n".join(report.splitlines()[:12]))
    print()
    t_ours, rss_ours = summarise("archc --report", ours)
    print(
        f"{'':28s} floors: 0.4 s -> {'ok' if t_ours <= 0.4 else 'OVER'}, "
        f"80 MiB -> {'ok' if rss_ours <= 80 * 2**20 else 'OVER'}"
    )
    if args.no_fvcore:
        return
    theirs = []
    table = ""
    for _ in range(args.fvcore_runs):
        wall, rss, table, _ = run_measured(FVCORE)
        theirs.append((wall, rss))
    print()
    print("--- fvcore flop_count_table(FlopCountAnalysis(torchvision inception_v3)) (head) ---")
    print("\n".join(table.splitlines()[:12]))
    print(table.splitlines()[-1])
    print()
    t_fv, rss_fv = summarise("fvcore flop_count_table", theirs)
    print(f"ratio fvcore / archc: time {t_fv / t_ours:.1f}x, peak RSS {rss_fv / rss_ours:.1f}x")


if __name__ == "__main__":
    main()
