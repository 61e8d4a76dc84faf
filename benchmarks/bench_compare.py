"""Front-end CPU time of this tree against a git revision, side by side (prints figures,
asserts nothing). CPU time of the measuring thread, not wall time, so that other load on a
shared machine does not swamp a difference of a few percent.

Measures inception_v3.arch cold parse (texts re-parsed, Lark parser built) and lowering,
and compile / analyze / text report of bench_scale.py's 10,000-layer spec.

    python benchmarks/bench_compare.py --rev HEAD~5 [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEASURE = r"""
import gc, statistics, sys, time
sys.path.insert(0, {bench!r})
from pathlib import Path
import bench_scale
from archlang import syntax
from archlang.analysis import run_passes
from archlang.backends.report.tables import report_cli
from archlang.compiler import compile_spec
from archlang.frontend.loader import load_file
from archlang.lower import lower

spec = Path({spec!r})
syntax.parser(); lower(load_file(spec))
parse, low = [], []
for _ in range(60):
    syntax._parse_cached.cache_clear()
    t0 = time.thread_time(); program = load_file(spec); t1 = time.thread_time(); lower(program)
    parse.append(t1 - t0); low.append(time.thread_time() - t1)
big = bench_scale.make_spec(10_000)
stages = {{"compile": [], "analyze": [], "report_text": []}}
for _ in range(2):
    gc.collect()
    t0 = time.thread_time(); compiled = compile_spec(big); t1 = time.thread_time()
    run_passes(compiled.graph); t2 = time.thread_time()
    report_cli(compiled, dict(bench_scale.OPTIONS)); t3 = time.thread_time()
    for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2)):
        stages[k].append(v)
    del compiled
print(f"inception_v3 parse {{min(parse) * 1e3:5.1f}} ms  lower {{min(low) * 1e3:4.1f}} ms   10k layers: "
      + "  ".join(f"{{k}} {{min(v):.2f}} s" for k, v in stages.items()))
"""


def _run(pythonpath: str | None) -> str:
    code = MEASURE.format(bench=str(ROOT / "benchmarks"), spec=str(ROOT / "specs" / "inception_v3.arch"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir()
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", required=True, help="the git revision to compare against")
    ap.add_argument("--rounds", type=int, default=3)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", opts.rev, "archlang", "backends"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        archive_path = Path(tmp) / "rev.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(tmp)  # noqa: S202 - our own repository's archive
        # The old tree's back ends sit inside its package, as an installed wheel has them.
        (Path(tmp) / "backends").rename(Path(tmp) / "archlang" / "backends")
        for _ in range(opts.rounds):
            print(f"{opts.rev[:12]:>12}: {_run(tmp)}")
            print(f"{'this tree':>12}: {_run(None)}")


if __name__ == "__main__":
    main()
