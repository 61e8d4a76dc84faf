"""ResNet-18 and ResNet-50 written from docs/language.md (tests/data/resnet/): residual
blocks whose instances differ in structure (`if downsample`) inside `nn.Sequential` layers.

Before the fix, `archc --emit torch` defined `class BasicBlock_0` twice (ruff F811) and
gave every block the downsample structure; ResNet-50's conv3 width was a fixed number.
Expected values come from torchvision's resnet18 / resnet50 (weights=None: no download)."""

from __future__ import annotations

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torchvision.models as models
from archlang.backends.torch import optimize as torch_optimize
from archlang.backends.torch.codegen import emit
from generated import import_source

import archlang

SPECS = Path(__file__).parent / "data" / "resnet"
CASES = {"resnet18": models.resnet18, "resnet50": models.resnet50}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
    """(name, compiled at 64x64, emitted source, the file imported, torchvision's model)."""
    name = request.param
    compiled = archlang.compile_spec(SPECS / f"{name}.arch", input_shape=(3, 64, 64))
    source = emit(compiled)
    module = import_source(source, tmp_path_factory.mktemp(name), name)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = CASES[name](weights=None)
    _randomize_bn(theirs)
    return name, compiled, source, module, theirs.double()


def _randomize_bn(model) -> None:
    """BN statistics and affine parameters far from the identity, so a wrong wiring shows."""
    g = torch.Generator().manual_seed(5)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def test_every_class_is_defined_once_and_the_file_is_ruff_clean(case, tmp_path):
    name, _, source, _, _ = case
    classes = [n.name for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]
    assert len(classes) == len(set(classes)), classes
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "E,F,W,I,B,UP", str(path)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run([sys.executable, "-m", "ruff", "format", "--isolated", "--check", str(path)])
    assert fmt.returncode == 0


def test_generated_code_reads_like_torchvision(case):
    """torchvision: `BasicBlock(inplanes, planes, stride=1, downsample=None)` with
    `if self.downsample is not None: identity = self.downsample(x)`; one class per block."""
    name, _, source, _, _ = case
    block = "BasicBlock" if name == "resnet18" else "Bottleneck"
    assert source.count("\nclass ") == 2 and f"\nclass {block}(nn.Module):" in source
    assert "        stride: int = 1,\n        downsample: bool = False,\n    ) -> None:" in source
    assert "        if downsample:\n            self.downsample = nn.Sequential(" in source
    assert "        else:\n            self.downsample = None\n" in source
    assert "        if self.downsample is not None:\n            downsample = self.downsample(x)" in source
    if name == "resnet50":
        # torchvision: conv3 = conv1x1(width, planes * self.expansion)
        assert "self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)" in source
        assert "            Bottleneck(64, 64, downsample=True),\n            Bottleneck(256, 64),\n" in source
        assert "            Bottleneck(256, 128, stride=2, downsample=True),\n" in source
    else:
        assert "            BasicBlock(64, 64),\n            BasicBlock(64, 64),\n" in source
        assert "            BasicBlock(64, 128, stride=2, downsample=True),\n" in source
    assert "def __init__(self, num_classes: int = 1000) -> None:" in source


@pytest.mark.parametrize("path", ["emitted", "built"])
def test_loads_torchvision_weights_and_computes_its_outputs(case, path):
    name, compiled, _, module, theirs = case
    network = compiled.graph.network
    ours = (getattr(module, network)() if path == "emitted" else archlang.build(compiled)).double()
    mine = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    assert mine == [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for mode in ("eval", "train"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), rtol=1e-9, atol=0)


def test_num_classes_is_a_constructor_argument(case):
    name, compiled, _, module, _ = case
    network = getattr(module, compiled.graph.network)
    assert network(num_classes=10).fc.out_features == 10
    built = archlang.build(SPECS / f"{name}.arch", num_classes=10)
    assert [(k, v.shape) for k, v in built.state_dict().items()] == [
        (k, v.shape) for k, v in network(num_classes=10).state_dict().items()
    ]


def test_optimize_equals_plain_model(case):
    """BN folded into every conv (ResNet's BNs are bare `batchnorm` layers after bias-free
    convs; the one in `downsample` becomes nn.Identity) and the eval output unchanged,
    float64."""
    name, compiled, _, _, theirs = case
    plain = archlang.build(compiled).double().eval()
    plain.load_state_dict(theirs.state_dict())
    fast = torch_optimize.optimize(compiled, plain.state_dict(), dtype=torch.float64)
    # every BatchNorm follows a bare conv read by nothing else: all are folded
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert sum(isinstance(m, torch.nn.Conv2d) for m in fast.modules()) == sum(
        isinstance(m, torch.nn.Conv2d) for m in plain.modules()
    )
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-9, atol=1e-12)
