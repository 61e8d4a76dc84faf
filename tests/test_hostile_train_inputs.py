"""Hostile recipes, image folders, options and outputs of `archc train/eval/export/import`
(issue 21, items 5 and 7; issue 22, item 1): each is one located line and exit 1 (or 2), a
bounded refusal, or the right result; never a traceback, a hang or a memory blow-up.

The recipe and output cases run without torch (a fraction of a second); the others start
torch and Lightning (5-10 s a command on a busy machine) and are marked slow."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import textwrap
from pathlib import Path

import pytest
from hostile_train import FAST, archc, image_folder, refused, tiny_spec

RECIPE = textwrap.dedent(
    """\
    name = "x"
    source = "-"
    max_epochs = 1
    batch_size = 4
    [optimizer]
    name = "sgd"
    lr = 0.1
    """
)
GIB = 1 << 30


def memory_limit(gib: float):
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (int(gib * GIB), int(gib * GIB)))

    return limit


def recipe_file(tmp: Path, extra: str) -> Path:
    path = tmp / "r.toml"
    path.write_text(RECIPE + extra)
    return path


# --------------------------------------------------------------------------- recipes (no torch)


def test_deep_recipe_arrays_and_tables_are_one_located_line(tmp_path):
    spec = tiny_spec(tmp_path)
    arrays = tmp_path / "arrays.toml"
    arrays.write_text(
        RECIPE.replace("batch_size = 4\n", "batch_size = 4\nspec = { a = " + "[" * 5000 + "]" * 5000 + " }\n")
    )
    refused(archc("train", spec, "--recipe", arrays), "E801", "arrays.toml:5:1", "more than 16 deep")
    tables = tmp_path / "tables.toml"
    tables.write_text(RECIPE + "[" + ".".join(["t"] * 3000) + "]\nx = 1\n")
    refused(archc("train", spec, "--recipe", tables), "E801", "tables.toml:8:1", "more than 16 deep")


@pytest.mark.parametrize(
    "extra, words",
    [
        ("[augment]\nscale_jitter = [512, 256]\n", ["r.toml:8:1", "512 > 256"]),
        ("[augment.random_resized_crop]\nscale = [0.9, 0.1]\n", ["0.9 > 0.1"]),
        ("[augment.color_jitter]\nbrightness = 1e308\n", ["r.toml:9:14", "less than or equal to 10"]),
        ("[augment]\nresize = 10000000\n", ["r.toml:9:10", "less than or equal to 8192"]),
        ("[augment]\nreference_size = 32\nresize = 4000\n", ["more than 8 × reference_size (32) = 256"]),
        ("[augment]\nmean = [nan]\nstd = [1.0]\n", ["augment.mean", "finite"]),
        ('[schedule]\nname = "cosine"\nmin_lr = inf\n', ["schedule.min_lr", "finite"]),
    ],
)
def test_recipe_values_are_bounded(tmp_path, extra, words):
    refused(archc("train", tiny_spec(tmp_path), "--recipe", recipe_file(tmp_path, extra)), "E803", *words)


def test_a_seed_beyond_32_bits_is_refused(tmp_path):
    refused(archc("train", tiny_spec(tmp_path), "--seed", 2**32), "E803", "seed", "4294967295")


def test_special_recipe_files_are_refused_with_a_bound(tmp_path):
    spec = tiny_spec(tmp_path)
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for special in ("/dev/zero", fifo):
        run = archc("train", spec, "--recipe", special, timeout=30, preexec_fn=memory_limit(1))
        refused(run, "E804", str(special), "not a regular file")
    big = tmp_path / "big.toml"
    big.write_text(RECIPE + "#" * (2 << 20))
    refused(archc("train", spec, "--recipe", big, preexec_fn=memory_limit(1)), "E603", "1,048,576 bytes")


# --------------------------------------------------------------------------- stdin and stdout (no torch)


def test_a_closed_stdin_is_one_line(tmp_path):
    run = archc("check", "-", stdin=subprocess.DEVNULL, preexec_fn=lambda: os.close(0))
    refused(run, "E104", "standard input is closed")


def test_stdout_that_cannot_be_written_is_one_line(tmp_path):
    spec = tiny_spec(tmp_path)
    for args in (["check", spec], [spec, "--report"], [spec, "--emit", "torch"], ["--help"]):
        with open("/dev/full", "w") as full:
            run = archc(*args, stdout=full, stderr=subprocess.PIPE)
        refused(run, "E110", "cannot write standard output: no space left on device")


# --------------------------------------------------------------------------- image folders (torch)


@pytest.mark.slow
def test_data_folders_without_classes_or_images_name_the_folder(tmp_path):
    spec = tiny_spec(tmp_path)
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    (empty / "val").mkdir()
    stderr = refused(archc("train", spec, "--data", empty, *FAST), "E807", "empty/train", "no class folders")
    assert "E205" not in stderr
    data = image_folder(tmp_path / "data")
    (data / "train" / "emu").mkdir()
    (data / "val" / "emu").mkdir()
    stderr = refused(archc("train", spec, "--data", data, *FAST), "E807", "data/train/emu", "has no images")
    assert "FileNotFoundError" not in stderr


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that says it is width × height (a 400-megapixel "bomb" in a few bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, content, reason",  # a cut-short or text file takes zero.png's path (UnidentifiedImageError)
    [
        ("zero.png", b"", "not an image PIL can read"),
        ("bomb.png", png_header_only(20000, 20000), "400000000 pixels"),
    ],
)
def test_a_bad_image_stops_training_naming_it(tmp_path, name, content, reason):
    data = image_folder(tmp_path / "data")
    (data / "val" / "dog" / name).write_bytes(content)
    run = archc(
        "train", tiny_spec(tmp_path), "--data", data, "--out", tmp_path / "run", *FAST, preexec_fn=memory_limit(6)
    )
    refused(run, "E811", f"val/dog/{name}", reason)


@pytest.mark.slow
def test_an_image_folder_with_a_symlink_loop_trains(tmp_path):
    data = image_folder(tmp_path / "data")
    for split in ("train", "val"):
        (data / split / "cat" / "loop").symlink_to("..")
        (data / split / "cat" / "again").symlink_to(".")
    run = archc(
        "train",
        tiny_spec(tmp_path),
        "--data",
        data,
        "--out",
        tmp_path / "run",
        *FAST,
        timeout=120,
        preexec_fn=memory_limit(6),
    )
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]


# --------------------------------------------------------------------------- options (torch)


@pytest.mark.slow
def test_lightning_options_lightning_refuses_are_one_line(tmp_path):
    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    # --accelerator gpu and --strategy bogus take the same path (the Trainer's constructor refuses)
    # found by fuzz/train_campaign.py: --accelerator tpu without torch_xla (a ModuleNotFoundError),
    # --devices 10000 on the CPU (Lightning started that many processes)
    for option in (["--devices", "0"], ["--precision", "bogus"], ["--accelerator", "tpu"], ["--devices", "10000"]):
        run = archc("train", spec, "--data", data, "--out", tmp_path / "run", *FAST, *option)
        refused(run, "E812", " ".join(option))
    assert not (tmp_path / "run" / "metrics.csv").exists()


@pytest.mark.slow
def test_a_large_seed_trains_and_out_naming_a_file_is_refused(tmp_path):
    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    run = archc("train", spec, "--data", data, "--out", tmp_path / "run", *FAST, "--seed", 20000000)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    taken = tmp_path / "taken"
    taken.write_text("mine")
    refused(archc("train", spec, "--data", data, "--out", taken, *FAST), "E110", "is a file")
    assert taken.read_text() == "mine"


@pytest.mark.slow
def test_export_opset_beyond_torchs_is_one_line(tmp_path):
    refused(archc("export", tiny_spec(tmp_path), "--opset", 99, "-o", tmp_path / "m.onnx"), "E813", "--opset 99")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_import_of_a_3000_deep_sequential_is_one_line(tmp_path):
    model = tmp_path / "deep.py"
    model.write_text(
        "import torch.nn as nn\n\ndef make():\n    m = nn.Conv2d(1, 2, 3)\n"
        "    for _ in range(3000):\n        m = nn.Sequential(m)\n    return m\n"
    )
    refused(archc("import", f"{model}:make", "--input", "1x8x8"), "E724", "recursion limit")


# --------------------------------------------------------------------------- eval (torch)


def classes_folder(root: Path, names: list[str]) -> Path:
    from PIL import Image

    for split in ("train", "val"):
        for name in names:
            (root / split / name).mkdir(parents=True)
            Image.new("L", (8, 8), 128).save(root / split / name / "0.png")
    return root


@pytest.mark.slow
def test_eval_on_many_classes_with_dollar_names_is_bounded(tmp_path):
    import torch

    import archlang

    names = ["$x^$", "a$b$c", *(f"c{i:03d}" for i in range(198))]
    data = classes_folder(tmp_path / "data", names)
    spec = tiny_spec(tmp_path)
    weights = tmp_path / "w.pt"
    torch.save(archlang.build(spec, num_classes=len(names)).state_dict(), weights)
    out = tmp_path / "eval"
    run = archc(
        "eval",
        spec,
        "--data",
        data,
        "--weights",
        weights,
        "--set",
        "num_classes=200",
        "--out",
        out,
        preexec_fn=memory_limit(6),
    )
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert len(json.loads((out / "eval.json").read_text())["confusion"]) == 200
    from PIL import Image

    width, height = Image.open(out / "confusion.png").size
    assert max(width, height) < 2500  # 30 classes drawn, not 200
    assert "30 of 200 classes" in (out / "confusion.svg").read_text()


@pytest.mark.slow
def test_eval_with_a_checkpoint_recipe_of_a_later_version(tmp_path):
    import torch

    import archlang

    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    model = archlang.build(spec, num_classes=2)
    recipe = {"name": "x", "source": "-", "max_epochs": 1, "batch_size": 4, "optimizer": {"name": "sgd", "lr": 0.1}}
    checkpoint = {
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "pytorch-lightning_version": "2.6.0",
        "hyper_parameters": {
            "spec_params": {"num_classes": 2},
            "classes": ["cat", "dog"],
            "recipe": {**recipe, "mixup": 0.2},
        },
    }
    torch.save(checkpoint, tmp_path / "later.ckpt")
    refused(archc("eval", spec, "--data", data, "--weights", tmp_path / "later.ckpt"), "E814", "mixup", "--recipe")
    run = archc("eval", spec, "--data", data, "--weights", tmp_path / "later.ckpt", "--recipe", "demo")
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.slow
def test_curves_with_dollar_in_the_recipe_name(tmp_path):
    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    recipe = recipe_file(tmp_path, "").read_text().replace('name = "x"', 'name = "$\\\\frac{a$"')
    (tmp_path / "r.toml").write_text(recipe)
    run = archc(
        "train", spec, "--data", data, "--out", tmp_path / "run", "--recipe", tmp_path / "r.toml", "--no-progress"
    )
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0


@pytest.mark.slow
def test_eval_and_import_to_a_full_stdout(tmp_path):
    spec, data = tiny_spec(tmp_path), image_folder(tmp_path / "data")
    import torch

    import archlang

    torch.save(archlang.build(spec, num_classes=2).state_dict(), tmp_path / "w.pt")
    model = tmp_path / "small.py"
    model.write_text("import torch.nn as nn\n\ndef make():\n    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())\n")
    for args in (
        ["eval", spec, "--data", data, "--weights", tmp_path / "w.pt", "--set", "num_classes=2"],
        ["import", f"{model}:make", "--input", "1x8x8"],
    ):
        with open("/dev/full", "w") as full:
            run = archc(*args, stdout=full, stderr=subprocess.PIPE)
        refused(run, "E110", "no space left on device")
