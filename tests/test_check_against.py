"""``archc check SPEC --against REF``, run as a user runs it: keys and shapes compared with a
torchvision model and with checkpoints written here by plain PyTorch."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest
import torch
from conftest import SPECS
from torch import nn

SPEC = """
network Tiny(num_classes: int = 10) {
  input 3x16x16
  features: {
    for i in range(2) {
      "layer{i}": { conv2d(8, 3, padding=1); relu }
    }
  }
  pool: adaptive_avgpool(1)
  flatten
  fc: linear(num_classes)
}
"""


class Tiny(nn.Module):
    """The same network, written in PyTorch (what a checkpoint of it holds)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Module()
        self.features.layer0 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.features.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, num_classes)


def _check(tmp_path, spec: str, *args: str):
    path = tmp_path / "tiny.arch"
    path.write_text(spec)
    return subprocess.run(
        [sys.executable, "-m", "archlang.cli", "check", str(path), *args], capture_output=True, text=True, timeout=300
    )


def test_a_matching_checkpoint_is_ok(tmp_path):
    torch.save(Tiny().state_dict(), tmp_path / "tiny.pt")
    proc = _check(tmp_path, SPEC, "--against", str(tmp_path / "tiny.pt"))
    assert proc.returncode == 0, proc.stderr
    assert "ok: the 6 state_dict entries match" in proc.stdout


def test_a_key_one_off_is_located_with_the_references_name(tmp_path):
    torch.save({"state_dict": Tiny().state_dict()}, tmp_path / "tiny.ckpt")  # a checkpoint dict
    proc = _check(tmp_path, SPEC.replace('"layer{i}"', '"layer{i + 1}"'), "--against", str(tmp_path / "tiny.ckpt"))
    assert proc.returncode == 1
    err = proc.stderr
    # layer2 exists only in the spec, layer0 only in the reference; layer1 matches
    assert "error[E730]: the spec has `features.layer2.0.weight` (8×8×3×3), which the reference lacks" in err
    assert "error[E731]: the reference has `features.layer0.0.weight` (8×3×3×3), which the spec lacks" in err
    assert "error[E732]: `features.layer1.0.weight` is 8×3×3×3 in the spec, 8×8×3×3 in the reference" in err
    assert "tiny.arch:6:25" in err and "tiny.arch:4:13" in err and "Traceback" not in err  # the conv; `features`


def test_a_width_mismatch_against_a_model(tmp_path):
    (tmp_path / "ref.py").write_text(
        "from torch import nn\n"
        "def make(num_classes=10):\n"
        "    m = nn.Module()\n"
        "    m.features = nn.Module()\n"
        "    m.features.layer0 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))\n"
        "    m.features.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1))\n"
        "    m.fc = nn.Linear(8, num_classes)\n"
        "    return m\n"
    )
    ok = _check(tmp_path, SPEC, "--against", f"{tmp_path / 'ref.py'}:make")
    assert ok.returncode == 0, ok.stderr
    bad = _check(tmp_path, SPEC, "--against", f"{tmp_path / 'ref.py'}:make", "--kw", "num_classes=5")
    assert bad.returncode == 1 and "`fc.weight` is 10×8 in the spec, 5×8 in the reference" in bad.stderr
    assert "tiny.arch:11:7" in bad.stderr


class Planted:
    def __reduce__(self):
        return (print, ("planted code ran",))


def test_an_unsafe_or_missing_checkpoint_is_refused_in_one_line(tmp_path):
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"fc.weight": Planted()}))
    proc = _check(tmp_path, SPEC, "--against", str(tmp_path / "evil.pt"))
    assert proc.returncode == 1 and "error[E733]: cannot read" in proc.stderr
    assert "planted code ran" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
    missing = _check(tmp_path, SPEC, "--against", str(tmp_path / "nothere.pt"))
    assert missing.returncode == 1 and "error[E733]: no checkpoint file" in missing.stderr
    usage = _check(tmp_path, SPEC, "--kw", "a=1")
    assert usage.returncode == 2 and "--kw gives arguments to the model of --against" in usage.stderr


@pytest.mark.parametrize(
    ("spec", "reference", "entries"),
    [
        ("mobilenet_v2.arch", "torchvision.models.mobilenet_v2", 314),
        pytest.param("densenet.arch", "torchvision.models.densenet121", 727, marks=pytest.mark.slow),
    ],
)
def test_the_bundled_specs_match_torchvision_by_key_and_shape(spec, reference, entries):
    """The bundled files as a user checks them; entry counts are torchvision's state_dict
    sizes (mobilenet_v2: 314, densenet121: 727)."""
    proc = subprocess.run(
        [sys.executable, "-m", "archlang.cli", "check", str(SPECS / spec), "--against", reference],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"ok: the {entries} state_dict entries match `{reference}` (keys and shapes)" in proc.stdout
