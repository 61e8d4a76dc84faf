"""DDP on CPU: 2 processes (gloo) through Lightning's `ddp` strategy.

Both ranks end with bit-identical weights (SHA-256 of every tensor, gathered from each rank
into summary.json), and the run equals a single-process run with the same global batch
(32 = 2 × 16) up to float rounding: each rank's loss is the mean over its 16 samples and DDP
averages the two gradients, which is the mean over the 32 in another summation order.
Stated tolerance: weights within 1e-5 (measured 2.2e-7 after 2 epochs), losses within 1e-5
relative, accuracies equal to one validation sample (1/360).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
LENET = str(ROOT / "examples" / "lenet5_small.arch")
ARGS = ["--max-epochs", "2", "--batch-size", "32", "--accelerator", "cpu", "--no-progress"]


def train(out: Path, *extra: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", "train", LENET, *ARGS, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


def weights(out: Path) -> dict[str, torch.Tensor]:
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith("model.")}


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without torch.distributed")
def test_ddp_two_cpu_processes_match_one_process(tmp_path):
    ddp = train(tmp_path / "ddp", "--devices", "2", "--strategy", "ddp")
    single = train(tmp_path / "single", "--devices", "1")
    assert ddp["world_size"] == 2 and single["world_size"] == 1
    assert len(ddp["replica_sha256"]) == 2 and ddp["replicas_identical"]  # rank 0 == rank 1, bit for bit
    assert ddp["global_step"] == single["global_step"] == 2 * (1437 // 32)
    a, b = weights(tmp_path / "ddp"), weights(tmp_path / "single")
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-5
    for key in ("val_loss", "train_loss"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-5), key
    for key in ("val_acc", "val_acc5", "train_acc"):
        assert abs(ddp[key] - single[key]) <= 1 / 360 + 1e-9, key
