"""What a new user meets off the main path (issue 22): a missing extra is one E114 line, a
spec whose output does not match the data's classes is one located E807, training says
what it chose (replaced head, frozen counts) and what will hurt (short epochs for
BatchNorm, dropped images), `archc eval` prints tables for people, and a whole session —
spec, report, diagram, train, eval, export, import, fmt — runs without a traceback."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

# A BatchNorm spec small enough to train in a second. Its parameters, counted by hand for 2
# classes: conv 4·3·3·3 + 4 = 112, batchnorm 2·4 = 8, linear 4·2 + 2 = 10: 130.
BN_SPEC = """\
network Tiny(num_classes: int = 10) {
  input 3x16x16
  conv(4, 3)
  batchnorm
  relu
  global_avgpool
  flatten
  fc: linear(num_classes)
}
"""

# The body of a child process that cannot import `blocked` (a venv without the extra).
BLOCKED_RUNNER = """\
import sys
blocked = set(sys.argv.pop(1).split(","))
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Blocker())
from archlang.cli.main import main
main()
"""


def archc(*args, cwd=None, columns=None, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if columns:
        env["COLUMNS"] = str(columns)
    run = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", *args], capture_output=True, text=True, cwd=cwd, env=env
    )
    if check:
        assert run.returncode == 0, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    return run


def image_folder(root: Path, per_class: dict[str, int], val: int = 2) -> Path:
    for split, counts in (("train", per_class), ("val", dict.fromkeys(per_class, val))):
        for index, (name, count) in enumerate(counts.items()):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                Image.new("RGB", (20, 20), (120 * index, 10 * i, 90)).save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize(
    ("args", "missing", "extra"),
    [
        (["train", "lenet5", "--data", "digits"], "lightning", "train"),
        (["eval", "lenet5", "--weights", "w.ckpt"], "torch", "train"),
        (["export", "lenet5", "-o", "m.onnx"], "torch", "train"),
        (["import", "torchvision.models.resnet18"], "torch", "torch"),
    ],
)
def test_a_missing_extra_is_one_e114_with_the_pip_command(tmp_path, args, missing, extra):
    run = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUNNER, "torch,lightning", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert run.stderr.startswith(f"error[E114]: `archc {args[0]}` needs {missing}, which is not installed")
    assert f"help: pip install 'archlang[{extra}]'" in run.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_blocked_child_still_checks_specs_without_torch(tmp_path):
    """The blocker hides only the extras: the torch-free commands keep working under it."""
    run = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUNNER, "torch,lightning", "check", "lenet5"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 0 and run.stdout.startswith("ok: "), run.stderr


IMPORTED_1000 = "network Imported {\n  input 3x16x16\n  conv(4, 3)\n  global_avgpool\n  flatten\n  linear(1000)\n}\n"


def test_check_outputs_points_at_the_layer_making_the_output():
    from archlang.compiler import compile_spec
    from archlang.diagnostics import SpecError
    from archlang.train.run import TrainOptions, check_outputs

    with pytest.raises(SpecError) as caught:
        check_outputs(compile_spec(IMPORTED_1000), TrainOptions(data="pets"), 2)
    (problem,) = caught.value.diagnostics
    assert problem.message == "the spec outputs 1000 classes, but `pets` has 2"
    assert (problem.span.line, problem.span.col) == (6, 3)
    check_outputs(compile_spec(IMPORTED_1000), TrainOptions(data="pets"), 1000)  # matching: no error


@pytest.mark.slow  # imports Lightning in a child (~5 s of CPU)
def test_a_spec_with_1000_outputs_on_2_class_data_is_one_located_line(tmp_path):
    spec = tmp_path / "imported.arch"
    spec.write_text(
        "network Imported {\n  input 3x16x16\n  conv(4, 3)\n  global_avgpool\n  flatten\n  linear(1000)\n}\n"
    )
    data = image_folder(tmp_path / "data", {"cat": 2, "dog": 2})
    run = archc("train", str(spec), "--data", str(data), "--out", str(tmp_path / "run"), check=False)
    assert run.returncode == 1
    first, where, *_ = run.stderr.splitlines()
    assert first == f"error[E807]: the spec outputs 1000 classes, but `{data}` has 2"
    assert where.strip() == f"--> {spec}:6:3"
    assert "num_classes" in run.stderr and "linear(2)" in run.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # imports Lightning in a child (~5 s of CPU)
def test_set_num_classes_against_the_data_names_both_numbers(tmp_path):
    spec = tmp_path / "tiny.arch"
    spec.write_text(BN_SPEC)
    data = image_folder(tmp_path / "data", {"cat": 2, "dog": 2})
    run = archc("train", str(spec), "--data", str(data), "--set", "num_classes=1000", check=False)
    assert run.returncode == 1
    assert run.stderr.startswith(f"error[E807]: --set num_classes=1000, but `{data}` has 2 classes")


def test_settle_steps_is_where_the_start_weighs_under_five_percent():
    from archlang.train.notes import settle_steps

    # 0.9^28 = 0.0523 > 0.05 > 0.9^29 = 0.0471
    assert settle_steps(0.1) == 29
    assert settle_steps(0.5) == 5  # 0.5^4 = 0.0625, 0.5^5 = 0.03125


def _tiny_model(classes=2):
    import archlang

    return archlang.build(archlang.compile_spec(BN_SPEC, {"num_classes": classes}))


def test_start_lines_name_the_counts_and_what_to_do():
    from archlang.train.notes import start_lines

    model = _tiny_model()
    for p in model.fc.parameters():
        p.requires_grad_(False)
    lines = start_lines(
        model,
        replaced={"fc": (1000, 2)},
        init="resnet.pth",
        frozen_norms=[],
        images=80,
        batch=32,
        steps=2,
        dropped=16,
    )
    text = "\n".join(lines)
    assert "replaced the head `fc` of `resnet.pth`: 1000 -> 2 classes" in text
    assert "130 parameters: 120 trainable, 10 frozen" in text
    assert "an epoch is 2 steps (80 images, batch 32)" in text and "about 29 steps" in text
    assert "16 of the 80 training images are left out of every epoch" in text and "--batch-size 40 or 20" in text


def test_start_lines_stay_quiet_when_nothing_hurts():
    from archlang.train.notes import start_lines

    model = _tiny_model(10)
    # the digits demo: 44 steps settle BatchNorm; 29 of 1,437 images (2 %) are not worth a warning
    lines = start_lines(model, replaced={}, init=None, frozen_norms=[], images=1437, batch=32, steps=44, dropped=29)
    assert lines == ["note: 170 parameters: 170 trainable, 0 frozen"]
    # a frozen BatchNorm keeps its statistics: a short epoch does not matter to it
    lines = start_lines(
        model, replaced={}, init=None, frozen_norms=["batchnorm"], images=8, batch=8, steps=1, dropped=0
    )
    assert not any("BatchNorm" in line for line in lines)


def test_start_lines_say_when_aux_heads_are_not_trained():
    from archlang.train.notes import start_lines

    lines = start_lines(
        _tiny_model(),
        replaced={},
        init=None,
        frozen_norms=[],
        images=None,
        batch=None,
        steps=None,
        dropped=None,
        untrained_aux=["aux1", "aux2"],
    )
    assert lines[-1].startswith("note: the aux heads aux1, aux2 are not trained: the recipe's aux_loss_weight is 0")
    assert "--recipe-set aux_loss_weight=" in lines[-1]


def test_the_demo_recipe_says_its_aux_heads_are_not_trained():
    from archlang.train.recipes import bundled_recipes, load_recipe

    path = bundled_recipes()["demo"]
    assert load_recipe(path).aux_loss_weight == 0
    assert "aux head" in Path(path).read_text() and "--recipe-set aux_loss_weight=" in Path(path).read_text()


def test_quiet_lightning_drops_the_tip_and_the_leafspec_warning_then_restores_everything():
    from archlang.train.notes import _LIGHTNING_LOGGERS, quiet_lightning

    logger = logging.getLogger(_LIGHTNING_LOGGERS[0])
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    filters_before, warning_filters_before = list(logger.filters), list(warnings.filters)
    try:
        with quiet_lightning(), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # below quiet_lightning's filter: ours must still win
            with quiet_lightning():
                logger.info("💡 Tip: For seamless cloud logging, try installing litlogger")
                logger.info("GPU available: False")
                warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=1)
                warnings.warn("something else", UserWarning, stacklevel=1)
        assert seen == ["GPU available: False"]
        assert [str(w.message) for w in caught] == ["something else"]
        assert logger.filters == filters_before and warnings.filters == warning_filters_before
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


EVAL_RESULT = {
    "spec": "tiny.arch",
    "weights": "runs/x/checkpoints/best.ckpt",
    "data": "pets",
    "samples": 12,
    "top1": 0.75,
    "top5": 1.0,
    "loss": 0.5,
    "classes": ["cat", "dog", "a very long class folder name indeed, longer than any terminal would show"],
    "per_class": {
        "cat": 1.0,
        "dog": 0.5,
        "a very long class folder name indeed, longer than any terminal would show": 0.75,
    },
    "confusion": [[4, 0, 0], [1, 2, 1], [0, 1, 3]],
}


@pytest.mark.parametrize("width", [40, 60, 120])
def test_eval_table_reads_as_tables_within_the_terminal(width):
    from archlang.train.eval_table import eval_table

    text = eval_table(EVAL_RESULT, width)
    lines = text.splitlines()
    assert max(map(len, lines)) <= width
    assert "top-1 0.7500  top-5 1.0000  loss 0.5000" in lines
    rows = {line.split()[1]: line.split() for line in lines if line.startswith("  ") and line.split()[0] in "012"}
    assert rows["cat"][-2:] == ["1.0000", "4"] and rows["dog"][-2:] == ["0.5000", "4"]
    at = lines.index("(rows: true class, columns: predicted)")
    assert lines[at - 1] == "confusion matrix" and lines[at + 1].split() == ["0", "1", "2"]
    assert [line.split() for line in lines[at + 2 : at + 5]] == [
        ["0", "4", "0", "0"],
        ["1", "1", "2", "1"],
        ["2", "0", "1", "3"],
    ]


def test_eval_table_summarises_many_classes():
    from archlang.train.eval_table import MAX_CLASS_ROWS, eval_table

    n = 120
    classes = [f"class_{i:03d}" for i in range(n)]
    confusion = [[10 if i == j else 0 for j in range(n)] for i in range(n)]
    confusion[7][7], confusion[7][99] = 2, 8  # class 7 is the worst, mostly taken for class 99
    result = {
        **EVAL_RESULT,
        "classes": classes,
        "per_class": {c: confusion[i][i] / 10 for i, c in enumerate(classes)},
        "confusion": confusion,
    }
    lines = eval_table(result, 80).splitlines()
    assert max(map(len, lines)) <= 80
    assert f"the {MAX_CLASS_ROWS} classes with the lowest accuracy (of {n}):" in lines
    worst = next(line for line in lines if "class_" in line)
    assert worst.split()[:3] == ["7", "class_007", "0.2000"]
    assert f"  … {n - MAX_CLASS_ROWS} more classes in --format json" in lines
    assert "  8× class_007 (#7) taken for class_099 (#99)" in lines
    assert len(lines) < 40


@pytest.mark.slow  # seven CLI runs, two of them training
def test_a_newcomers_session_runs_end_to_end(tmp_path):
    spec = tmp_path / "tiny.arch"
    spec.write_text(BN_SPEC.replace("  conv(4, 3)", "  conv( 4,3 )"))  # as typed, before fmt
    image_folder(tmp_path / "pets", {"cat": 40, "dog": 40})  # 80 images, batch 32: the case
    archc("check", str(spec))
    report = archc("tiny.arch", "--report", cwd=tmp_path, columns=80).stdout
    assert "conv2d" in report and "fc" in report
    diagram = "svg" if shutil.which("dot") else "dot"  # rendering needs Graphviz's `dot`
    archc("tiny.arch", "--emit", diagram, "-o", f"tiny.{diagram}", cwd=tmp_path)
    assert "fc" in (tmp_path / f"tiny.{diagram}").read_text()
    train = archc("train", "tiny.arch", "--data", "pets", "--max-epochs", "2", "--no-progress", cwd=tmp_path)
    assert "note: 130 parameters: 130 trainable, 0 frozen" in train.stderr
    assert "an epoch is 2 steps (80 images, batch 32)" in train.stderr
    assert "16 of the 80 training images are left out" in train.stderr
    assert "Tip" not in train.stderr and "LeafSpec" not in train.stderr
    best = "runs/train/checkpoints/best.ckpt"
    assert (tmp_path / best).is_file()
    shown = archc("eval", "tiny.arch", "--weights", best, "--data", "pets", cwd=tmp_path, columns=50).stdout
    assert max(map(len, shown.splitlines())) <= 50
    assert "top-1" in shown and "per class:" in shown and "confusion matrix" in shown
    figures = json.loads(
        archc("eval", "tiny.arch", "--weights", best, "--data", "pets", "--format", "json", cwd=tmp_path).stdout
    )
    assert figures["classes"] == ["cat", "dog"] and figures["samples"] == 4
    archc("export", "tiny.arch", "--weights", best, "-o", "tiny.onnx", cwd=tmp_path)
    assert (tmp_path / "tiny.onnx").stat().st_size > 0
    (tmp_path / "model.py").write_text(
        "from torch import nn\n\n\ndef make():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 2))\n"
    )
    archc("import", "model.py:make", "--input", "3x16x16", "-o", "imported.arch", cwd=tmp_path)
    archc("check", "imported.arch", cwd=tmp_path)
    formatted = archc("fmt", "tiny.arch", "imported.arch", cwd=tmp_path)
    assert "reformatted tiny.arch" in formatted.stderr
    assert "conv(4, 3)" in spec.read_text()
    archc("fmt", "--check", "tiny.arch", "imported.arch", cwd=tmp_path)
