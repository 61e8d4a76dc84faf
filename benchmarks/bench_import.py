"""How long `archc import` takes (prints figures, asserts nothing; the issue's target:
resnet50 in at most 10 s on 2 CPU cores).

Each model is imported twice in one process, as `archc import` runs it: the whole command
(`python -m archlang.cli import torchvision.models.NAME`, interpreter start-up included) and
`archlang.from_module` on a model already built (the import alone), with the stages timed.

    OMP_NUM_THREADS=2 taskset -c 0,1 python benchmarks/bench_import.py [resnet50 densenet121 ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def whole_command(name: str, out: Path) -> float:
    t0 = time.perf_counter()
    archc = [sys.executable, "-m", "archlang.cli", "import", f"torchvision.models.{name}", "-o", str(out)]
    subprocess.run(archc, check=True)
    return time.perf_counter() - t0


def in_process(name: str) -> tuple[float, float]:
    """(seconds to construct the torchvision model, seconds for from_module on it)."""
    import torch
    import torchvision

    import archlang

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    model = torchvision.models.get_model(name, weights=None)
    t1 = time.perf_counter()
    archlang.from_module(model, (3, 224, 224))
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["resnet50", "inception_v3", "densenet121", "efficientnet_b0"])
    args = parser.parse_args()
    print(f"{'model':>18} {'archc import s':>15} {'construct s':>12} {'from_module s':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            command = whole_command(name, Path(tmp) / f"{name}.arch")
            construct, importing = in_process(name)
            print(f"{name:>18} {command:15.2f} {construct:12.2f} {importing:14.2f}", flush=True)


if __name__ == "__main__":
    main()
