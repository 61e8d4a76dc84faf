"""Import -> train: an imported classifier's last linear reads `num_classes`, so `archc
train` sets it from the data (issue 20, item 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import archlang

ROOT = Path(__file__).resolve().parent.parent


def _archc(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", *args], capture_output=True, text=True, cwd=cwd, env=env
    )
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    return run


def _folder(root: Path, classes=("cat", "dog", "fox")) -> Path:
    for split in ("train", "val"):
        for index, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (20, 20), (40 * index + i, 100, 200)).save(folder / f"{i}.png")
    return root


def test_last_linear_width_is_a_num_classes_parameter():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 7))
    text = archlang.from_module(model, (3, 8, 8))
    assert "network Sequential(num_classes: int = 7) {" in text and "linear(num_classes)" in text, text
    assert archlang.build(text, num_classes=3)(torch.zeros(1, 3, 8, 8)).shape == (1, 3)
    rebuilt = archlang.build(text)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert archlang.from_module(rebuilt, (3, 8, 8)).splitlines()[2:] == text.splitlines()[2:]


def test_a_linear_that_does_not_end_the_network_stays_a_number():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU())
    text = archlang.from_module(model, (3, 2, 2))
    assert "num_classes" not in text and "linear(5)" in text


@pytest.mark.slow  # imports torchvision and Lightning in children (~30 s of CPU)
def test_import_then_train_with_num_classes(tmp_path):
    data = _folder(tmp_path / "data")
    run = _archc("import", "torchvision.models.resnet18", "-o", "r.arch", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    common = ["--data", str(data), "--max-epochs", "1", "--no-progress", "--input", "3x32x32", "--batch-size", "3"]
    run = _archc("train", "r.arch", *common, "--num-classes", "3", "--out", "run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    run = _archc("train", "r.arch", *common, "--num-classes", "5", "--out", "run2", cwd=tmp_path)
    assert run.returncode == 1 and "error[E807]: --num-classes 5, but" in run.stderr and "has 3 classes" in run.stderr
