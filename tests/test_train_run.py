"""`archc train` end to end on the offline digits: the acceptance run (val_acc ≥ 0.97), its
outputs, `archc eval` and `archc export` checked against the checkpoint, transfer learning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest
import torch
from conftest import quick_only

import archlang
from archlang.train.data import DigitsDataset
from archlang.train.transfer import freeze, head_parameters

ROOT = Path(__file__).resolve().parent.parent
LENET = str(ROOT / "examples" / "lenet5_small.arch")
TINY = str(ROOT / "examples" / "tiny_inception.arch")


def archc(*args, check=True):
    run = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if check:
        assert run.returncode == 0, run.stderr[-3000:]
    return run


def model_state(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}


def digits_accuracy(model: torch.nn.Module, size: int, channels: int = 1) -> float:
    val = DigitsDataset("val", channels, (size, size))
    with torch.inference_mode():
        predictions = model.eval()(val.images).argmax(1)
    return (predictions == val.targets).float().mean().item()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The README's third command: the demo recipe for 10 epochs on 2 CPU cores at most."""
    out = tmp_path_factory.mktemp("demo")
    archc(
        "train", LENET, "--data", "digits", "--recipe", "demo", "--max-epochs", "10", "--out", str(out), "--no-progress"
    )
    return out


@pytest.mark.slow
def test_demo_recipe_reaches_97_percent_on_digits(demo_run):
    summary = json.loads((demo_run / "summary.json").read_text())
    assert summary["val_acc"] >= 0.97, summary
    assert summary["epochs"] == 10 and summary["params"] == 61_706  # LeNet-5: LeCun et al. 1998's count
    for key in ("val_acc5", "val_loss", "train_loss", "seconds"):
        assert isinstance(summary[key], float)
    assert 0 <= summary["val_acc"] <= summary["val_acc5"] <= 1


@pytest.mark.slow  # needs demo_run: 10 epochs of training
def test_summary_is_the_checkpoint_accuracy_computed_independently(demo_run):
    # best.ckpt is the epoch with the highest val_acc; recompute its accuracy without Lightning
    model = archlang.build(LENET)
    model.load_state_dict(model_state(demo_run / "checkpoints" / "best.ckpt"))
    rows = (demo_run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    accs = [float(r.split(",")[header.index("val_acc")]) for r in rows[1:] if r.split(",")[header.index("val_acc")]]
    assert len(accs) == 10
    assert digits_accuracy(model, 32) == pytest.approx(max(accs), abs=1e-6)


@pytest.mark.slow  # needs demo_run: 10 epochs of training
def test_curves_are_images_of_the_run(demo_run):
    image = matplotlib.image.imread(demo_run / "curves.png")
    assert image.ndim == 3 and image.shape[0] > 200
    svg = (demo_run / "curves.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "val_acc" in svg


@pytest.mark.slow  # needs demo_run: 10 epochs of training
def test_eval_reports_top1_top5_per_class_and_confusion(demo_run, tmp_path):
    best = str(demo_run / "checkpoints" / "best.ckpt")
    run = archc("eval", LENET, "--weights", best, "--out", str(tmp_path), "--format", "json")
    result = json.loads(run.stdout)
    model = archlang.build(LENET)
    model.load_state_dict(model_state(demo_run / "checkpoints" / "best.ckpt"))
    assert result["top1"] == pytest.approx(digits_accuracy(model, 32), abs=1e-6)
    confusion = torch.tensor(result["confusion"])
    assert confusion.sum() == result["samples"] == 360  # 20 % of scikit-learn's 1,797 digits
    assert confusion.trace().item() / 360 == pytest.approx(result["top1"], abs=1e-6)
    per_class = confusion.diag() / confusion.sum(1)
    assert [result["per_class"][str(c)] for c in range(10)] == pytest.approx(per_class.tolist())
    assert result["top1"] <= result["top5"] <= 1
    assert json.loads((tmp_path / "eval.json").read_text())["top1"] == result["top1"]
    assert matplotlib.image.imread(tmp_path / "confusion.png").ndim == 3


@pytest.mark.slow  # needs demo_run: 10 epochs of training
def test_onnx_export_gives_the_checkpoint_outputs_under_onnxruntime(demo_run, tmp_path):
    import onnxruntime as ort

    path = tmp_path / "lenet.onnx"
    archc("export", LENET, "--weights", str(demo_run / "checkpoints" / "last.ckpt"), "-o", str(path))
    model = archlang.build(LENET).eval()
    model.load_state_dict(model_state(demo_run / "checkpoints" / "last.ckpt"))
    x = DigitsDataset("val", 1, (32, 32)).images[:7]  # batch 7: the batch axis is dynamic
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.inference_mode():
        expected = model(x).numpy()
    assert got.shape == (7, 10)
    assert abs(got - expected).max() <= 1e-4


@pytest.mark.slow  # needs demo_run: 10 epochs of training
def test_pt2_export_runs_under_torch_export_load(demo_run, tmp_path):
    path = tmp_path / "lenet.pt2"
    archc("export", LENET, "--weights", str(demo_run / "checkpoints" / "last.ckpt"), "-o", str(path))
    program = torch.export.load(str(path))
    model = archlang.build(LENET).eval()
    model.load_state_dict(model_state(demo_run / "checkpoints" / "last.ckpt"))
    x = torch.randn(5, 1, 32, 32)
    torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)


def pretrained_on_five_digits(steps: int = 150) -> torch.nn.Module:
    """TinyInception trained by hand (plain SGD) on the digits 0-4 only."""
    torch.manual_seed(1)
    model = archlang.build(TINY, num_classes=5)
    train = DigitsDataset("train", 1, (16, 16))
    keep = train.targets < 5
    images, targets = train.images[keep], train.targets[keep]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(steps):
        batch = torch.randint(0, len(targets), (64,))
        out = model(images[batch])
        loss = sum(torch.nn.functional.cross_entropy(o, targets[batch]) for o in out)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@pytest.mark.slow
def test_transfer_init_num_classes_freeze(tmp_path):
    source = pretrained_on_five_digits()  # the "released weights" of another (5-class) task
    init = tmp_path / "released.pth"
    torch.save(source.state_dict(), init)
    released = {k: v.clone() for k, v in source.state_dict().items()}
    out = tmp_path / "run"
    run = archc(
        "train", TINY, "--init", str(init), "--num-classes", "10", "--freeze", "mix1",
        "--max-epochs", "2", "--out", str(out), "--no-progress",
    )  # fmt: skip
    for head in ("fc", "aux1.fc2"):  # said when training starts, not only in summary.json
        assert f"note: replaced the head `{head}` of `{init}`: 5 -> 10 classes" in run.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["replaced_heads"]) == {"fc.weight", "fc.bias", "aux1.fc2.weight", "aux1.fc2.bias"}
    trained = model_state(out / "checkpoints" / "last.ckpt")
    frozen = [k for k in released if k.split(".")[0] in ("stem", "mix1")]
    assert len(frozen) > 20
    for key in frozen:  # parameters and BN running statistics, bit for bit
        assert torch.equal(trained[key], released[key]), key
    # mix2 = Mix(16, 24) concatenates 16 + 24 + 16 = 56 channels; the aux head's fc1 has 32
    assert trained["fc.weight"].shape == (10, 56) and trained["aux1.fc2.weight"].shape == (10, 32)
    assert not torch.equal(trained["mix2.one.conv.weight"], released["mix2.one.conv.weight"])
    assert not torch.equal(trained["aux1.fc1.weight"], released["aux1.fc1.weight"])  # aux head trains
    # accuracy rises: the released trunk with a fresh 10-way head is at chance; after 2 epochs it is not
    start = archlang.build(TINY, num_classes=10)
    start.load_state_dict({k: v for k, v in released.items() if k not in summary["replaced_heads"]}, strict=False)
    before = digits_accuracy(start, 16)
    assert before < 0.3 and summary["val_acc"] > before + 0.5, (before, summary["val_acc"])


def test_linear_probe_freezes_all_but_the_classifiers():
    model = archlang.build(TINY, num_classes=10)
    heads = head_parameters(TINY, {}, 10)
    assert heads == {"fc.weight", "fc.bias", "aux1.fc2.weight", "aux1.fc2.bias"}
    freeze(model, None, heads, linear_probe=True)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == heads


@pytest.mark.slow  # a whole `archc train` process
def test_freeze_unknown_layer_and_bad_init_are_diagnosed(tmp_path):
    run = archc("train", TINY, "--freeze", "mix3", "--max-epochs", "1", "--out", str(tmp_path), check=False)
    assert run.returncode == 1 and "E806" in run.stderr and "mix1" in run.stderr and "Traceback" not in run.stderr
    wrong = tmp_path / "wrong.pth"
    torch.save(archlang.build(LENET).state_dict(), wrong)
    run = archc("train", TINY, "--init", str(wrong), "--out", str(tmp_path), check=False)
    assert run.returncode == 1 and "E805" in run.stderr and "Traceback" not in run.stderr
    run = archc("train", TINY, "--init", str(tmp_path / "none.pth"), "--out", str(tmp_path), check=False)
    assert run.returncode == 1 and "no weights file" in run.stderr


@pytest.mark.parametrize("name", quick_only(["googlenet", "inception_v3"], {"googlenet"}))
def test_heads_of_the_bundled_specs_are_torchvision_classifiers(name):
    import torchvision

    def shapes(classes):
        with torch.device("meta"):
            model = getattr(torchvision.models, name)(num_classes=classes, aux_logits=True, init_weights=False)
        return {k: p.shape for k, p in model.named_parameters()}

    small, large = shapes(10), shapes(11)
    expected = {k for k in small if small[k] != large[k]}  # torchvision's own classifier tensors
    assert expected >= {"fc.weight", "fc.bias"}
    assert head_parameters(name, {}, 10) == expected


def test_freeze_until_mixed_6e_leaves_the_aux_head_and_the_top_trainable():
    with torch.device("meta"):
        model = archlang.build("inception_v3", num_classes=10)
    frozen = set(freeze(model, "Mixed_6e", head_parameters("inception_v3", {}, 10)))
    tops = {n.split(".")[0] for n in frozen}
    assert tops == {"Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"} | {
        f"Mixed_{m}" for m in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e")
    }
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"AuxLogits", "Mixed_7a", "Mixed_7b", "Mixed_7c", "fc"}
