"""The crash test: a training process killed with SIGKILL mid-epoch, then `--resume`, ends
with exactly the weights and metrics of an uninterrupted run with the same seed.

Granularity: `--checkpoint-every N` saves `last.ckpt` every N optimizer steps (and at every
epoch end); a resumed run continues from the last one saved, at the same epoch and batch,
with the optimizer, scheduler, metric accumulators, RNG states and data order restored.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from archlang.train.plots import epoch_rows

ROOT = Path(__file__).resolve().parent.parent
LENET = str(ROOT / "examples" / "lenet5_small.arch")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TRAIN_BATCHES = 44  # 1,437 training digits // batch 32 (the last partial batch is dropped)
KILL_AT_STEP = 63  # epoch 1, batch 19: 3 steps after the checkpoint at step 60

KILLED_RUN = f"""
import os, signal, sys
from lightning.pytorch.callbacks import Callback
from archlang.train.recipes import load_recipe
from archlang.train.run import TrainOptions, fit

class KillMidEpoch(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == {KILL_AT_STEP}:
            os.kill(os.getpid(), signal.SIGKILL)

options = TrainOptions(out=sys.argv[1], input_shape=(1, 16, 16), checkpoint_every=10, progress=False,
                       callbacks=[KillMidEpoch()])
fit({LENET!r}, load_recipe("demo", {{"max_epochs": 3}}), options)
"""

ARGS = ["--input", "1x16x16", "--max-epochs", "3", "--checkpoint-every", "10", "--no-progress"]


def archc_train(out: Path, *extra: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", "train", LENET, *ARGS, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    crashed = tmp_path / "crashed"
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(crashed)], capture_output=True, text=True, env=ENV)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (crashed / "summary.json").exists()
    checkpoint = torch.load(crashed / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 60 and checkpoint["epoch"] == 1  # mid-epoch: 16 of 44 batches
    assert checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 1, "batches": 60 - TRAIN_BATCHES}
    ]

    resumed = archc_train(crashed, "--resume")
    straight = archc_train(tmp_path / "straight")
    assert resumed["epochs"] == straight["epochs"] == 3
    assert resumed["global_step"] == straight["global_step"] == 3 * TRAIN_BATCHES
    for key in ("val_acc", "val_acc5", "val_loss", "train_loss", "train_acc"):
        assert resumed[key] == straight[key], key
    assert resumed["replica_sha256"] == straight["replica_sha256"]  # bit-identical weights
    rows = {r["epoch"]: r for r in epoch_rows(crashed / "metrics.csv")}
    for row in epoch_rows(tmp_path / "straight" / "metrics.csv"):
        assert rows[row["epoch"]] == row  # every epoch's logged metrics, before and after the crash


def test_resume_without_a_checkpoint_is_diagnosed(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", "train", LENET, "--resume", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert run.returncode == 1 and "E809" in run.stderr and "Traceback" not in run.stderr
