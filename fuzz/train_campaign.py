"""Hostile recipes, image folders and checkpoints for `archc train` / `archc eval` (issue 21).

    python fuzz/train_campaign.py --cases 60 --seed 0 [--save DIR]
    python fuzz/train_campaign.py --seed 0 --only 17      # replay one case, print its output

Each case builds a tiny run folder (a one-conv spec on 16×16 grey images, 1 epoch, batch 4),
plants one hostile thing in it, runs the CLI in a subprocess with a time and memory bound,
and classifies the outcome:

- ``ok``: exit 0;
- ``refused``: exit 1 or 2 with an ``error[`` line on stderr and no traceback;
- a failure otherwise: ``traceback``, ``timeout``, ``killed`` (a signal: memory), ``unlocated``
  (exit 1/2 without a diagnostic), ``code ran`` (a planted checkpoint ran its pickle).

Families: ``recipe`` (a field of the demo recipe set to an extreme: inf, nan, huge, negative,
reversed ranges, wrong types, deep nesting, special files), ``images`` (empty, cut short, text,
decompression bombs, symlink loops, classes without images or folders, names with `$` and
control characters), ``checkpoint`` (planted pickles, truncated files, other specs' tensors,
plain state_dicts, recipes with unknown fields, non-dicts) and ``options`` (Lightning options,
seeds, --out on a file). A case is a function of ``(seed, index)`` alone. Each case starts
torch and Lightning: count 5-10 s a case on a busy 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPEC = "network Tiny(num_classes: int = 10) {\n  input 1x16x16\n  conv1: conv(4, 3)\n  relu\n  flatten\n  fc: linear(num_classes)\n}\n"
RECIPE = 'name = "x"\nsource = "-"\nmax_epochs = 1\nbatch_size = 4\n[optimizer]\nname = "sgd"\nlr = 0.1\n'
FAST = ["--no-progress", "--max-epochs", "1", "--batch-size", "4"]
MEMORY = 6 << 30
TIMEOUT = 180

EXTREMES = [
    "inf",
    "-inf",
    "nan",
    "1e308",
    "-1",
    "0",
    "1e-320",
    "99999999999999999999",
    '"x"',
    "[]",
    "[1, 2, 3]",
    "true",
]
FIELDS = [
    "max_epochs",
    "batch_size",
    "seed",
    "label_smoothing",
    "aux_loss_weight",
    "gradient_clip",
    "optimizer.lr",
    "optimizer.momentum",
    "optimizer.weight_decay",
    "schedule.gamma",
    "schedule.min_lr",
    "augment.reference_size",
    "augment.resize",
    "augment.scale_jitter",
    "augment.translate",
    "augment.pca_lighting",
    "augment.eval_resize",
    "augment.mean",
    "augment.std",
    "augment.color_jitter.brightness",
    "augment.color_jitter.hue",
    "augment.random_resized_crop.scale",
    "augment.random_resized_crop.ratio",
]


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def image_folder(root: Path, classes=("cat", "dog"), per_class: int = 4) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in classes:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")).save(root / split / name / f"{i}.png")
    return root


class Planted:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


# --------------------------------------------------------------------------- families


def recipe_case(rng: random.Random, tmp: Path) -> list[str]:
    kind = rng.choice(["set", "file", "deep", "special"])
    if kind == "set":
        field, value = rng.choice(FIELDS), rng.choice(EXTREMES + ["[512, 256]", "[0.9, 0.1]", "10000000"])
        return ["--recipe-set", f"{field}={value}"]
    if kind == "file":
        field, value = rng.choice(FIELDS), rng.choice(EXTREMES)
        (tmp / "r.toml").write_text(_with(field, value))
        return ["--recipe", str(tmp / "r.toml")]
    if kind == "deep":
        depth = rng.choice([20, 500, 5000])
        body = ("[" * depth + "]" * depth) if rng.random() < 0.5 else None
        text = RECIPE + (f"[spec]\na = {body}\n" if body else "[" + ".".join(["t"] * depth) + "]\nx = 1\n")
        (tmp / "r.toml").write_text(text)
        return ["--recipe", str(tmp / "r.toml")]
    special = rng.choice(["/dev/zero", "/dev/urandom", "fifo", "dir", "big"])
    if special == "fifo":
        os.mkfifo(tmp / "fifo.toml")
        return ["--recipe", str(tmp / "fifo.toml")]
    if special == "dir":
        return ["--recipe", str(tmp)]
    if special == "big":
        (tmp / "big.toml").write_text(RECIPE + "#" * (4 << 20))
        return ["--recipe", str(tmp / "big.toml")]
    return ["--recipe", special]


def _with(field: str, value: str) -> str:
    """The base recipe with ``field = value`` in its table (TOML: keys before sub-tables)."""
    *tables, key = field.split(".")
    if not tables:
        return f"{key} = {value}\n" + RECIPE
    if tables == ["optimizer"]:
        return RECIPE + f"{key} = {value}\n"
    return RECIPE + f"[{'.'.join(tables)}]\n{key} = {value}\n"


def images_case(rng: random.Random, tmp: Path) -> list[str]:
    data = tmp / "data"
    kind = rng.choice(["zero", "cut", "text", "bomb", "loop", "empty_class", "no_classes", "names"])
    if kind == "no_classes":
        (data / "train").mkdir(parents=True)
        (data / "val").mkdir()
        return ["--data", str(data)]
    if kind == "names":
        names = [rng.choice(["$x^$", "a$b", "\x1b[31mred", "\u202eevil", "é", "-dash", " space"]), "ok"]
        image_folder(data, classes=names)
        return ["--data", str(data)]
    image_folder(data)
    split, cls = rng.choice(["train", "val"]), rng.choice(["cat", "dog"])
    target = data / split / cls
    good = (target / "0.png").read_bytes()
    if kind == "zero":
        (target / "z.png").write_bytes(b"")
    elif kind == "cut":
        (target / "c.png").write_bytes(good[: rng.randint(1, len(good) - 1)])
    elif kind == "text":
        (target / "t.jpg").write_text("not an image")
    elif kind == "bomb":
        side = rng.choice([10000, 14000, 20000, 60000])
        (target / "b.png").write_bytes(png_header_only(side, side))
    elif kind == "loop":
        (target / "loop").symlink_to("..")
        (target / "self").symlink_to(".")
    elif kind == "empty_class":
        for s in ("train", "val"):
            (data / s / "emu").mkdir()
    return ["--data", str(data)]


def checkpoint_case(rng: random.Random, tmp: Path) -> list[str]:
    import torch

    out = tmp / "run"
    last = out / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    kind = rng.choice(["planted", "truncated", "other_spec", "state_dict", "future_recipe", "not_dict", "empty"])
    state = {"model.conv1.weight": torch.zeros(4, 1, 3, 3), "model.conv1.bias": torch.zeros(4)}
    state.update({"model.fc.weight": torch.zeros(2, 784), "model.fc.bias": torch.zeros(2)})
    lightning = {"optimizer_states": [], "lr_schedulers": [], "loops": {}, "epoch": 0, "global_step": 1}
    if kind == "planted":
        torch.save({"state_dict": Planted(str(tmp / "pwned")), **lightning}, last)
    elif kind == "truncated":
        torch.save({"state_dict": state, **lightning}, last)
        data = last.read_bytes()
        last.write_bytes(data[: rng.randint(0, len(data) - 1)])
    elif kind == "other_spec":
        torch.save({"state_dict": {"model.conv1.weight": torch.zeros(8, 1, 5, 5)}, **lightning}, last)
    elif kind == "state_dict":
        torch.save({k.removeprefix("model."): v for k, v in state.items()}, last)
    elif kind == "future_recipe":
        recipe = {"name": "x", "source": "-", "max_epochs": 1, "batch_size": 4, "optimizer": {"name": "sgd", "lr": 1}}
        hparams = {"spec_params": {"num_classes": 2}, "classes": ["cat", "dog"], "recipe": {**recipe, "mixup": 1}}
        torch.save({"state_dict": state, "pytorch-lightning_version": "2.6.0", "hyper_parameters": hparams}, last)
    elif kind == "not_dict":
        torch.save([1, 2, 3], last)
    else:
        last.write_bytes(b"")
    image_folder(tmp / "data")
    command = rng.choice(["resume", "init", "eval"])
    if command == "resume":
        return ["--data", str(tmp / "data"), "--out", str(out), "--resume"]
    if command == "init":
        return ["--data", str(tmp / "data"), "--out", str(tmp / "new"), "--init", str(last)]
    return ["EVAL", "--data", str(tmp / "data"), "--weights", str(last)]


def options_case(rng: random.Random, tmp: Path) -> list[str]:
    image_folder(tmp / "data")
    option = rng.choice(
        [
            ["--accelerator", rng.choice(["gpu", "tpu", "bogus", "mps"])],
            ["--devices", rng.choice(["0", "-1", "bogus", "99", "0,1"])],
            ["--strategy", rng.choice(["bogus", "fsdp", "deepspeed"])],
            ["--precision", rng.choice(["bogus", "8", "16-true"])],
            ["--seed", str(rng.choice([2**31, 2**32 - 1, 2**32, 2**63, -1, 20000000]))],
            ["--out", "FILE"],
        ]
    )
    if option == ["--out", "FILE"]:
        (tmp / "file").write_text("x")
        option = ["--out", str(tmp / "file")]
    return ["--data", str(tmp / "data"), *option]


FAMILIES = {"recipe": recipe_case, "images": images_case, "checkpoint": checkpoint_case, "options": options_case}


# --------------------------------------------------------------------------- running


def _limits():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run_case(seed: int, index: int, keep: Path | None = None) -> tuple[str, str, str]:
    """``(family, outcome, stderr)`` of case ``index``."""
    rng = random.Random(f"{seed}/{index}")
    family = rng.choice(sorted(FAMILIES))
    tmp = Path(tempfile.mkdtemp(prefix=f"train-fuzz-{index}-"))
    try:
        (tmp / "tiny.arch").write_text(SPEC)
        args = FAMILIES[family](rng, tmp)
        command = ["eval", str(tmp / "tiny.arch"), *args[1:]] if args[:1] == ["EVAL"] else None
        if command is None:
            has_out = "--out" in args
            command = ["train", str(tmp / "tiny.arch"), *FAST, *args, *([] if has_out else ["--out", str(tmp / "out")])]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "archlang.cli.main", *command],
                capture_output=True,
                text=True,
                env=env,
                timeout=TIMEOUT,
                preexec_fn=_limits,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return family, "timeout", " ".join(command)
        stderr = done.stderr
        if (tmp / "pwned").exists():
            outcome = "code ran"
        elif "Traceback" in stderr:
            outcome = "traceback"
        elif done.returncode < 0:
            outcome = "killed"
        elif done.returncode == 0:
            outcome = "ok"
        elif done.returncode in (1, 2) and ("error[" in stderr or "Error:" in stderr):
            outcome = "refused"
        else:
            outcome = "unlocated"
        if keep is not None and outcome not in ("ok", "refused"):
            shutil.copytree(tmp, keep / f"case-{index}", symlinks=True, dirs_exist_ok=True)
            (keep / f"case-{index}" / "command.txt").write_text(" ".join(command) + "\n\n" + stderr)
        return family, outcome, " ".join(command) + "\n" + stderr[-2000:]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--start", type=int, default=0, help="first case index (to go on after an interrupted run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", type=int, help="replay one case and print its output")
    parser.add_argument("--save", type=Path, help="copy failing cases' folders here")
    args = parser.parse_args()
    if args.only is not None:
        family, outcome, output = run_case(args.seed, args.only)
        print(f"case {args.only} ({family}): {outcome}\n{output}")
        return 0 if outcome in ("ok", "refused") else 1
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter()
    failures = []
    start = time.perf_counter()
    for index in range(args.start, args.start + args.cases):
        family, outcome, output = run_case(args.seed, index, args.save)
        counts[family, outcome] += 1
        if outcome not in ("ok", "refused"):
            failures.append((index, family, outcome, output))
            print(f"case {index} ({family}): {outcome}\n{output}\n", flush=True)
    for (family, outcome), count in sorted(counts.items()):
        print(f"{family:11s} {outcome:10s} {count}")
    print(f"{args.cases} cases, {len(failures)} failures, {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
