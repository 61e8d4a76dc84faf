"""Hostile checkpoints and a run's history (issue 21, items 1, 2 and 8): every user file that
`archc train/eval/export` loads is read without running its code, a bad one is one line naming
the file and the reason, metrics.csv only grows, and a diverged run's summary stays JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hostile_train import ENV, FAST, archc, image_folder, refused, tiny_spec

from archlang.train.plots import epoch_rows


class Planted:
    """Unpickling this runs ``os.mkdir(marker)``: a load that runs code leaves the folder."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def plant(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "epoch": 0, "payload": Planted(marker)}, path)
    return path


def lightning_like(path: Path, state: dict, **extra) -> Path:
    """What Lightning's restore reads, around ``state`` (no code, so it loads safely)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": state,
        "optimizer_states": [],
        "lr_schedulers": [],
        "loops": {},
        "epoch": 0,
        "global_step": 1,
        "pytorch-lightning_version": "2.6.0",
        **extra,
    }
    torch.save(checkpoint, path)
    return path


@pytest.mark.slow  # torch and Lightning start-up: 5-10 s a command on 2 busy cores
def test_a_planted_checkpoint_runs_no_code_anywhere(tmp_path):
    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    marker = tmp_path / "pwned"
    out = tmp_path / "run"
    planted = plant(out / "checkpoints" / "last.ckpt", marker)
    cases = [
        ("E809", ["train", spec, "--data", data, "--out", out, "--resume", *FAST]),
        ("E805", ["train", spec, "--data", data, "--out", tmp_path / "other", "--init", planted, *FAST]),
        ("E805", ["eval", spec, "--data", data, "--weights", planted]),
        ("E805", ["export", spec, "--weights", planted, "-o", tmp_path / "m.onnx"]),
    ]
    for code, args in cases:
        stderr = refused(archc(*args), code, str(planted), "safe load")
        assert len([line for line in stderr.splitlines() if line.startswith("error")]) == 1
        assert not marker.exists(), args
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
@pytest.mark.parametrize("content, reason", [(b"", "empty or truncated"), (b"PK\x03\x04" + b"\0" * 40, "corrupt")])
def test_a_truncated_or_foreign_checkpoint_is_one_line(tmp_path, content, reason):
    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes(content)
    (out / "metrics.csv").write_text("epoch,step,val_acc\n0,1,0.5\n")
    refused(archc("train", spec, "--data", data, "--out", out, "--resume", *FAST), "E809", "last.ckpt", reason)
    assert (out / "metrics.csv").read_text() == "epoch,step,val_acc\n0,1,0.5\n"


@pytest.mark.slow  # torch and Lightning start-up: 5-10 s a command on 2 busy cores
def test_resume_with_another_specs_checkpoint_keeps_the_history(tmp_path):
    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    out = tmp_path / "run"
    other = {"model.conv1.weight": torch.zeros(8, 1, 3, 3), "model.conv1.bias": torch.zeros(8)}
    lightning_like(out / "checkpoints" / "last.ckpt", other)
    history = "epoch,lr,step,train_loss\n0,0.05,1,0.69\n"
    (out / "metrics.csv").write_text(history)
    stderr = refused(
        archc("train", spec, "--data", data, "--out", out, "--resume", *FAST),
        "E809",
        "another spec",
        "model.conv1.weight",
        "(8, 1, 3, 3)",
    )
    assert "(4, 1, 3, 3)" in stderr
    assert (out / "metrics.csv").read_text() == history  # a failed resume removes nothing


@pytest.mark.slow  # torch and Lightning start-up: 5-10 s a command on 2 busy cores
def test_a_non_regular_weights_file_is_refused_without_blocking(tmp_path):
    spec = tiny_spec(tmp_path)
    fifo = tmp_path / "weights.pt"
    os.mkfifo(fifo)
    refused(archc("export", spec, "--weights", fifo, "-o", tmp_path / "m.onnx", timeout=60), "E805", "regular file")


KILL_IN_EPOCH_2 = """
import os, signal, sys
from lightning.pytorch.callbacks import Callback
from archlang.train.recipes import load_recipe
from archlang.train.run import TrainOptions, fit

class KillInEpoch2(Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 2:  # epoch 1's rows are logged by now
            os.kill(os.getpid(), signal.SIGKILL)

recipe = load_recipe("demo", {"max_epochs": 3, "batch_size": 4, "schedule.name": "constant"})
fit(sys.argv[1], recipe, TrainOptions(data=sys.argv[2], out=sys.argv[3], resume=True, progress=False,
                                      callbacks=[KillInEpoch2()]))
"""


def history_rows(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


@pytest.mark.slow  # three trainings
def test_a_killed_resumed_run_keeps_every_earlier_row(tmp_path):
    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    out = tmp_path / "run"
    first = archc("train", spec, "--data", data, "--out", out, *FAST)
    assert first.returncode == 0, first.stderr[-3000:]
    before = epoch_rows(out / "metrics.csv")
    assert [r["epoch"] for r in before] == [0]

    killed = subprocess.run(
        [sys.executable, "-c", KILL_IN_EPOCH_2, spec, str(data), str(out)], capture_output=True, text=True, env=ENV
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    after_kill = epoch_rows(out / "metrics.csv")
    assert after_kill[0] == before[0]  # the first run's epoch survives the resumed run's start
    assert [r["epoch"] for r in after_kill] == [0, 1]

    last = archc("train", spec, "--data", data, "--out", out, "--resume", *FAST[:-4], "--max-epochs", "3", *FAST[-2:])
    assert last.returncode == 0, last.stderr[-3000:]
    rows = epoch_rows(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert rows[0] == before[0] and rows[1]["train_loss"] == after_kill[1]["train_loss"]


def test_infinite_lr_and_momentum_are_refused(tmp_path):
    spec = tiny_spec(tmp_path)
    recipe = tmp_path / "inf.toml"
    recipe.write_text('name = "x"\nsource = "-"\nmax_epochs = 1\nbatch_size = 4\n[optimizer]\nname = "sgd"\nlr = inf\n')
    stderr = refused(archc("train", spec, "--recipe", recipe), "E803", "optimizer.lr", "finite")
    assert "inf.toml:7:6" in stderr
    refused(archc("train", spec, "--recipe-set", "optimizer.momentum=inf"), "E803", "optimizer.momentum", "finite")
    refused(archc("train", spec, "--lr", "inf"), "E803", "optimizer.lr", "finite")
    refused(archc("train", spec, "--recipe-set", "optimizer.lr=nan"), "E803", "optimizer.lr", "finite")


def strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.slow  # a training
def test_a_diverged_run_writes_json_with_null_and_says_so(tmp_path):
    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    out = tmp_path / "run"
    run = archc("train", spec, "--data", data, "--out", out, *FAST, "--lr", "1e30")
    assert run.returncode == 0, run.stderr[-3000:]
    summary = strict_json((out / "summary.json").read_text())
    assert summary["val_loss"] is None and "val_loss" in summary["diverged"]
    assert "diverged" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow  # two trainings
def test_extending_a_finished_run(tmp_path):
    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    out = tmp_path / "run"
    assert archc("train", spec, "--data", data, "--out", out, *FAST).returncode == 0
    last = out / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)["state_dict"]
    longer = [*FAST[:-4], "--max-epochs", "2"]

    # the same finished run, had its schedule been cosine (laid out over 1 epoch): refused
    cosine = tmp_path / "cosine" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["hyper_parameters"]["recipe"]["schedule"] = {"name": "cosine"}
    cosine.parent.mkdir(parents=True)
    torch.save(checkpoint, cosine)
    run = archc(
        "train",
        spec,
        "--data",
        data,
        "--out",
        cosine.parent.parent,
        "--resume",
        *longer,
        "--recipe-set",
        "schedule.name=cosine",
    )
    refused(run, "E809", "cosine schedule", "spans 1 epochs", "--init")

    run = archc("train", spec, "--data", data, "--out", out, "--resume", *longer, *FAST[-2:])
    assert run.returncode == 0 and "extends the run from 1 to 2 epochs" in run.stderr, run.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["epochs"] == 2
    after = torch.load(last, weights_only=True)["state_dict"]
    assert not torch.equal(after["model.fc.weight"], state["model.fc.weight"])  # epoch 2 trained
