"""How `archc diff` and `--emit plot` scale with the number of top-level blocks (issue 21,
item 5). Prints figures side by side; asserts nothing.

* diff: two ~55-byte specs, ``repeat N { relu }`` against ``repeat N { tanh }`` (every block
  on one side only: the case the quadratic merge made take 102 s at N = 100,000);
* plot: ``repeat N { relu }`` to PNG (more than 100 blocks are drawn as 100 bars).

Each row is one whole `archc` process: its CPU time (user + system, so the figures hold on a
shared machine), its peak RSS, and CPU µs per block; a linear path keeps that last column
flat. ``--rev REV`` runs the diff rows of a git revision too (checked out into a temporary
folder), e.g. ``--rev e356556`` for the quadratic merge
(give it small sizes: 100,000 blocks took 102 s there).

    python benchmarks/bench_scaling.py [--sizes 10000,30000,100000] [--plot-sizes 1000,10000] [--rev REV]
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], tree: Path, timeout: float) -> tuple[float, int, bool]:
    """CPU seconds and peak RSS (KiB) of one `archc` process run from ``tree``; ok."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "archlang.cli.main", *args],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree.parent,  # not this checkout: `python -m` puts the working directory first on sys.path
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)  # this process's own rusage, not all children's
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode == 0


def checkout(rev: str, folder: Path) -> Path:
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    target = folder / rev
    target.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target)  # noqa: S202 - our own repository's archive
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--plot-sizes", default="100,1000,10000")
    parser.add_argument("--rev", default=None)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="archlang-bench-") as tmp:
        tmp = Path(tmp)
        trees = [("this tree", ROOT)]
        if args.rev:
            trees.append((args.rev, checkout(args.rev, tmp)))
        print("archc diff A B (every block on one side only)")
        print(f"  {'tree':12s} {'blocks':>8s} {'CPU s':>8s} {'µs/block':>9s} {'peak RSS':>10s}")
        for n in map(int, args.sizes.split(",")):
            a, b = tmp / f"a{n}.arch", tmp / f"b{n}.arch"
            a.write_text(f"network A {{\n  input 3x8x8\n  repeat {n} {{ relu }}\n}}\n")
            b.write_text(f"network B {{\n  input 3x8x8\n  repeat {n} {{ tanh }}\n}}\n")
            for label, tree in trees:
                cpu, rss, ok = run(["diff", str(a), str(b), "-o", str(tmp / "d.txt")], tree, args.timeout)
                state = "" if ok else "  (timed out or failed)"
                print(f"  {label:12s} {2 * n:8,d} {cpu:8.2f} {cpu * 1e6 / (2 * n):9.1f} {rss / 1024:8.0f} MiB{state}")
        print("\narchc R --emit plot -o r.png  (repeat N { relu })")
        print(f"  {'blocks':>8s} {'CPU s':>8s} {'peak RSS':>10s} {'PNG px':>12s}")
        for n in map(int, args.plot_sizes.split(",")):
            spec, png = tmp / f"r{n}.arch", tmp / f"r{n}.png"
            spec.write_text(f"network R {{\n  input 3x8x8\n  repeat {n} {{ relu }}\n}}\n")
            cpu, rss, _ = run([str(spec), "--emit", "plot", "-o", str(png)], ROOT, args.timeout)
            size = "x".join(map(str, struct.unpack(">II", png.read_bytes()[16:24]))) if png.exists() else "-"
            print(f"  {n + 1:8,d} {cpu:8.2f} {rss / 1024:8.0f} MiB {size:>12s}")


if __name__ == "__main__":
    main()
