"""Front-end speed: parse + lower + shape inference of inception_v3.arch, in process and as a
whole `archc check` process (prints figures, asserts nothing).

Floors this project aims for: in-process median <= 50 ms (parser already built), whole
process median <= 0.4 s, and `archc check` never importing torch.

    python benchmarks/bench_frontend.py [--runs 30] [--process-runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from archlang.frontend.loader import load_file
from archlang.frontend.parser import _parse_cached, parser
from archlang.graph.shape_pass import infer_shapes
from archlang.graph.verify import verify
from archlang.lower import lower

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "inception_v3.arch"


def _front_end(cold_parse: bool) -> dict[str, float]:
    """One compilation, timed per stage (seconds)."""
    if cold_parse:
        _parse_cached.cache_clear()  # re-parse the texts; the Lark parser object stays built
    t0 = time.perf_counter()
    program = load_file(SPEC)
    t1 = time.perf_counter()
    graph = lower(program)
    t2 = time.perf_counter()
    problems = verify(graph) + infer_shapes(graph)
    t3 = time.perf_counter()
    assert not problems
    return {"parse": t1 - t0, "lower": t2 - t1, "shapes": t3 - t2, "total": t3 - t0}


def _median_ms(samples: list[dict], key: str) -> float:
    return statistics.median(s[key] for s in samples) * 1000


def _process(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{proc.stderr}")
    return elapsed, proc.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--process-runs", type=int, default=10)
    opts = ap.parse_args()

    t0 = time.perf_counter()
    parser()
    build = time.perf_counter() - t0
    _front_end(cold_parse=True)  # warm imports and pydantic
    print(f"inception_v3.arch front end, in process ({opts.runs} runs; Lark parser built once: {build * 1000:.1f} ms)")
    for cold in (True, False):
        samples = [_front_end(cold) for _ in range(opts.runs)]
        parts = "  ".join(f"{k} {_median_ms(samples, k):6.1f}" for k in ("parse", "lower", "shapes"))
        label = "texts re-parsed   " if cold else "parse memo (API)  "
        print(f"  {label} median total {_median_ms(samples, 'total'):6.1f} ms   ({parts} ms)   floor 50 ms")

    check = ["-m", "archlang.cli.main", "check", str(SPEC.relative_to(ROOT))]
    times = [_process(check)[0] for _ in range(opts.process_runs)]
    print(
        f"\n`archc check specs/inception_v3.arch` whole process ({opts.process_runs} runs): "
        f"median {statistics.median(times):.3f} s, min {min(times):.3f} s   floor 0.4 s"
    )
    bare = [_process(["-c", "pass"])[0] for _ in range(opts.process_runs)]
    print(f"  python -c pass (interpreter start-up alone): median {statistics.median(bare):.3f} s")

    _, importtime = _process(["-X", "importtime", *check])
    modules = [line.rsplit("|", 1)[-1].strip() for line in importtime.splitlines() if line.startswith("import time:")]
    torch_seen = any(m == "torch" or m.startswith("torch.") for m in modules)
    print(f"  torch imported by `archc check`: {'YES' if torch_seen else 'no'} ({len(modules)} modules imported)")


if __name__ == "__main__":
    main()
