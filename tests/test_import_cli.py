"""``archc import``: writes a spec that builds and loads the model's weights; usage errors
exit 2, models archlang cannot express and targets that cannot be loaded exit 1 with a
diagnostic, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision
from conftest import ROOT

import archlang


def test_import_resnet18_to_a_file(run, tmp_path):
    out = tmp_path / "x.arch"
    result = run(
        "import", "torchvision.models.resnet18", "-o", str(out), "--input", "3x32x32", "--kw", "num_classes=10"
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# ResNet, imported from torchvision.models.resnet18(num_classes=10)\n")
    assert "input 3x32x32" in text and "fc: linear(num_classes)" in text
    assert "network ResNet(num_classes: int = 10) {" in text
    model = torchvision.models.resnet18(num_classes=10)
    built = archlang.build(str(out))
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(built.eval()(x), model.eval()(x))


def test_import_to_stdout_with_name(run):
    result = run("import", "torchvision.models.squeezenet1_1", "--name", "Squeeze", "--input", "3x64x64")
    assert result.exit_code == 0, result.output
    assert "network Squeeze {" in result.output


_LSTM_FILE = """
import torch
from torch import nn


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ReflectionPad2d(1))

    def forward(self, x):
        return self.features(x)


def make_model(width=8):
    return Odd()
"""


def test_unsupported_module_exits_1_with_a_located_message(run, tmp_path):
    path = tmp_path / "odd.py"
    path.write_text(textwrap.dedent(_LSTM_FILE))
    result = run("import", f"{path}:make_model", "--kw", "width=4")
    assert result.exit_code == 1
    assert "error[E720]: `features.2` (torch.nn.ReflectionPad2d): no archlang op for this module" in result.output
    assert "Traceback" not in result.output


def test_module_colon_factory_form(run):
    result = run("import", "torchvision.models:alexnet", "--input", "3x64x64")
    assert result.exit_code == 0, result.output
    assert "network AlexNet(num_classes: int = 1000) {" in result.output


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("torchvision.models.no_such_model", "`torchvision.models` has no `no_such_model`"),
        ("no_such_package_xyz.make", "cannot load `no_such_package_xyz.make`"),
        ("missing_file.py:make", "no file `missing_file.py`"),
        ("torchvision.models.resnet.model_urls", "cannot load"),
        ("torchvision.__version__", "is not callable"),
    ],
)
def test_bad_targets_exit_1(run, target, message):
    result = run("import", target)
    assert result.exit_code == 1
    assert "error[E726]" in result.output and message in result.output


def test_factory_raising_or_returning_no_module(run, tmp_path):
    path = tmp_path / "f.py"
    path.write_text("def bad(x):\n    raise ValueError('nope')\n\ndef number():\n    return 3\n")
    result = run("import", f"{path}:bad", "--kw", "x=1")
    assert result.exit_code == 1 and "raised ValueError: nope" in result.output
    result = run("import", f"{path}:number")
    assert result.exit_code == 1 and "returned a value of type `int`, not a torch.nn.Module" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["import"],
        ["import", "torchvision.models.resnet18", "--kw", "novalue"],
        ["import", "torchvision.models.resnet18", "--input", "3x0x5"],
        ["import", "torchvision.models.resnet18", "--name", "not a name"],
        ["import", "resnet18"],
    ],
)
def test_usage_errors_exit_2(run, args):
    assert run(*args).exit_code == 2


def test_output_over_the_source_file_is_refused(run, tmp_path):
    path = tmp_path / "m.py"
    path.write_text(textwrap.dedent(_LSTM_FILE))
    result = run("import", f"{path}:make_model", "-o", str(path))
    assert result.exit_code == 2 and "source file" in result.output
    assert path.read_text() == textwrap.dedent(_LSTM_FILE)


def test_kw_values_are_python_literals():
    from archlang.cli.import_command import parse_kw

    assert parse_kw(("num_classes=10", "aux_logits=False", "weights=None", "name=abc", "p=0.5")) == {
        "num_classes": 10,
        "aux_logits": False,
        "weights": None,
        "name": "abc",
        "p": 0.5,
    }


def test_help_does_not_import_torch():
    code = "import sys; from archlang.cli.main import main\ntry:\n main(['import', '--help'])\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip().endswith("False")
