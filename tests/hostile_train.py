"""Helpers of the hostile training tests: a tiny spec, tiny image folders, and `archc` run in a
subprocess as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# 16×16 grey images, one conv: a 1-epoch run on 8 images takes about a second after start-up
TINY = """network Tiny(num_classes: int = 10) {
  input 1x16x16
  conv1: conv(4, 3)
  relu
  flatten
  fc: linear(num_classes)
}
"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
FAST = ["--no-progress", "--batch-size", "4", "--max-epochs", "1", "--recipe-set", "schedule.name=constant"]


def tiny_spec(tmp: Path, text: str = TINY) -> str:
    path = tmp / "tiny.arch"
    path.write_text(text)
    return str(path)


def image_folder(root: Path, classes=("cat", "dog"), per_class: int = 4, side: int = 8) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                pixels = (rng.random((side, side)) * 255).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def archc(*args, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    options = {"capture_output": True, "text": True, "env": ENV, "timeout": timeout, "stdin": subprocess.DEVNULL}
    if "stdout" in kwargs or "stderr" in kwargs:
        options.pop("capture_output")
    options.update(kwargs)
    with tempfile.TemporaryDirectory(prefix="archc-") as cwd:  # a run without --out writes runs/ here
        return subprocess.run([sys.executable, "-m", "archlang.cli.main", *map(str, args)], cwd=cwd, **options)


def refused(run: subprocess.CompletedProcess, code: str, *words: str, rc: int = 1) -> str:
    """Assert ``run`` stopped with exit ``rc``, diagnostic ``code`` and ``words``, and no traceback."""
    assert run.returncode == rc, (run.returncode, run.stderr[-3000:])
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert f"[{code}]" in run.stderr, run.stderr[-3000:]
    for word in words:
        assert word in run.stderr, (word, run.stderr[-3000:])
    return run.stderr
