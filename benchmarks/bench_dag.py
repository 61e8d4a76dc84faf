"""Named values keep lowering, analysis and codegen linear: a chain of N layers against a
DAG of N layers where every third layer reads a value far back (`from`) and every fourth
merges two distant values (`add from`), both at 4×4×4. Each figure is one `archc` process
(wall seconds, best of --repeat), chain and DAG measured side by side; the ratio is the
figure to hold (about 1: a DAG costs what a chain of the same size costs), and µs/layer
should stay flat from one size to the next.

    python benchmarks/bench_dag.py [--layers 2500 5000 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def chain(n: int) -> str:
    lines = ["network N {", "  input 4x4x4"]
    lines += [f"  v{i}: conv2d(4, 1)" if i % 2 == 0 else f"  v{i}: relu" for i in range(n)]
    return "\n".join([*lines, "}"]) + "\n"


def dag(n: int, skip: int = 500) -> str:
    """Every value is read: each layer reads the one before (`from` said explicitly on every
    third), and every fourth adds a value up to `skip` layers back."""
    lines = ["network N {", "  input 4x4x4"]
    for i in range(n):
        if i % 4 == 3:
            lines.append(f"  v{i}: add from v{i - 1}, v{max(0, i - skip) if i > skip else 0}")
        elif i % 3 == 2:
            lines.append(f"  v{i}: conv2d(4, 1) from v{i - 1}")
        else:
            lines.append(f"  v{i}: relu" if i % 2 else f"  v{i}: conv2d(4, 1)")
    return "\n".join([*lines, "}"]) + "\n"


def timed(spec: Path, args: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "archlang.cli", str(spec), *args], check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="*", default=[2500, 5000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    modes = {"report": ["--report", "--format", "csv"], "torch": ["--emit", "torch", "-o", "/dev/null"]}
    print(f"{'layers':>7} {'mode':>7} {'chain s':>8} {'dag s':>8} {'dag/chain':>10} {'dag µs/layer':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.layers:
            a, b = Path(tmp) / f"chain{n}.arch", Path(tmp) / f"dag{n}.arch"
            a.write_text(chain(n))
            b.write_text(dag(n))
            for mode, flags in modes.items():
                ta, tb = timed(a, flags, args.repeat), timed(b, flags, args.repeat)
                print(f"{n:>7} {mode:>7} {ta:>8.2f} {tb:>8.2f} {tb / ta:>10.2f} {tb / n * 1e6:>13.0f}")


if __name__ == "__main__":
    main()
