"""CUDA + automatic mixed precision through Lightning (`--accelerator gpu --precision
16-mixed`): runs where a GPU exists, skipped otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archlang.train.recipes import load_recipe
from archlang.train.run import TrainOptions, fit

ROOT = Path(__file__).resolve().parent.parent
TINY = str(ROOT / "examples" / "tiny_inception.arch")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available() is False)")
def test_cuda_amp_training_with_aux_heads(tmp_path):
    recipe = load_recipe("demo", {"max_epochs": 3, "batch_size": 64})
    options = TrainOptions(
        out=tmp_path, accelerator="gpu", devices=1, precision="16-mixed", progress=False, deterministic=False
    )
    summary = fit(TINY, recipe, options)
    assert summary["epochs"] == 3 and summary["global_step"] == 3 * (1437 // 64)
    assert summary["val_acc"] > 0.5  # chance is 0.1: the fp16 aux-head network learns
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["MixedPrecision"]["scale"] > 0  # AMP's GradScaler state is checkpointed for --resume
    assert all(v.dtype == torch.float32 for k, v in saved["state_dict"].items() if v.is_floating_point())
