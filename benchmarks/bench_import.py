"""How long `archc import` takes (prints figures, asserts nothing): a whole `archc import`
process per model (torch and torchvision imported, the model built, traced, printed), with
the threads limited to the issue's 2 cores (`OMP_NUM_THREADS=2`, `taskset` where present).
The issue's bound: resnet50 within 10 s.

    python benchmarks/bench_import.py [--models resnet50 densenet121 inception_v3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(model: str, out: Path) -> float:
    cmd = [sys.executable, "-m", "archlang.cli.main", "import", f"torchvision.models.{model}", "-o", str(out)]
    if model.startswith("inception"):
        cmd += ["--input", "3x299x299"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0,1", *cmd]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet50", "densenet121", "inception_v3", "googlenet"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            out = Path(tmp) / f"{model}.arch"
            seconds = run(model, out)
            print(f"{model:16s} {seconds:6.2f} s  {len(out.read_text().splitlines()):5d} lines")


if __name__ == "__main__":
    main()
