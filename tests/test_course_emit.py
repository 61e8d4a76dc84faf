"""``--emit torch`` and ``--optimize`` for the course's networks, against the in-memory
built model (itself checked against torchvision in test_course_specs.py).

Heterogeneous block instances (ResNet's first block with a downsample, the others
without) were once emitted as one class; these tests are the acceptance for the rewritten
generator on the course's specs, its init (kaiming, bias constants, zero_init_residual)
and --optimize with the course's ops.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from archlang.backends.torch import optimize as torch_optimize
from click.testing import CliRunner
from conftest import quick_only

import archlang
from archlang.cli.main import main

# name -> input size for the float64 comparisons
CASES = {
    "lenet5": 32,
    "lenet5_modern": 32,
    "alexnet": 64,
    "alexnet_paper": 227,
    "vgg11_bn": 32,
    "resnet18": 32,
    "resnet50": 32,
    "resnet50_v1": 32,
    "resnext50_32x4d": 32,
}
# the 50-layer ResNets and VGG are `slow` (seconds each on a CPU); the quick loop keeps the rest
QUICK = {"lenet5", "lenet5_modern", "alexnet", "alexnet_paper", "resnet18"}


def _emitted(tmp_path, name: str, *extra: str):
    out = tmp_path / f"{name}.py"
    result = CliRunner().invoke(main, [name, "--emit", "torch", *extra, "-o", str(out)])
    assert result.exit_code == 0, result.output
    spec = importlib.util.spec_from_file_location(f"course_emit_{name}_{len(extra)}", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, archlang.compile_spec(name).graph.network)


def _random_state(model):
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, t in model.state_dict().items():
            if t.is_floating_point():
                low, high = (0.5, 1.0) if key.endswith("running_var") else (-0.1, 0.1)
                t.uniform_(low, high, generator=gen)


def _input(name):
    channels = 1 if name.startswith("lenet") else 3
    return torch.randn(2, channels, CASES[name], CASES[name], dtype=torch.float64)


@pytest.mark.parametrize("name", quick_only(sorted(CASES), QUICK))
def test_emitted_module_equals_built_model(tmp_path, name):
    cls = _emitted(tmp_path, name)
    torch.manual_seed(0)
    emitted = cls()
    torch.manual_seed(0)
    built = archlang.build(name)
    for key, value in built.state_dict().items():  # the same init under the same seed
        assert torch.equal(emitted.state_dict()[key], value), key
    _random_state(built)
    emitted.load_state_dict(built.state_dict(), strict=True)
    x = _input(name)
    with torch.no_grad():
        torch.testing.assert_close(emitted.double().eval()(x), built.double().eval()(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", quick_only(sorted(CASES), QUICK))
def test_optimized_module_is_exact_in_eval(name):
    built = archlang.build(name).double()
    _random_state(built)
    optimized = torch_optimize.optimize(name, built.state_dict(), dtype=torch.float64)
    x = _input(name)
    with torch.no_grad():
        torch.testing.assert_close(optimized(x), built.eval()(x), rtol=1e-9, atol=1e-9)


INIT_SPECS = {
    # two conv inits: written as a table by module name
    "per_name": """network Mixed() {
  input 3x16x16
  init kaiming_uniform(a=0.1, bias=0.5)
  a: conv2d(4, 3)
  init xavier_normal(2.0)
  b: conv2d(4, 3)
  flatten
  init normal(std=0.02, bias=0)
  fc: linear(5)
}""",
    # one init per module type, and a zero-initialised batch norm
    "per_type": """network Typed() {
  input 3x16x16
  init kaiming_normal(mode="fan_out", nonlinearity="relu")
  a: conv2d(4, 3, bias=false)
  bn: batchnorm(zero_init=true)
  b: conv2d(4, 3)
  flatten
  init xavier_uniform
  fc: linear(5)
}""",
}


@pytest.mark.parametrize("case", sorted(INIT_SPECS))
def test_emitted_init_equals_built_init_under_the_same_seed(tmp_path, case):
    spec = tmp_path / f"{case}.arch"
    spec.write_text(INIT_SPECS[case])
    out = tmp_path / f"{case}.py"
    result = CliRunner().invoke(main, [str(spec), "--emit", "torch", "-o", str(out)])
    assert result.exit_code == 0, result.output
    module_spec = importlib.util.spec_from_file_location(f"course_emit_init_{case}", out)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    torch.manual_seed(3)
    emitted = getattr(module, archlang.compile_spec(str(spec)).graph.network)()
    torch.manual_seed(3)
    built = archlang.build(str(spec))
    assert list(emitted.state_dict()) == list(built.state_dict())
    for key, value in built.state_dict().items():
        assert torch.equal(emitted.state_dict()[key], value), key


def test_emitted_resnet_takes_zero_init_residual_like_torchvision(tmp_path):
    """One emitted file: `ResNet(zero_init_residual=...)` draws torchvision's initial weights
    for either value under the same seed (the flag is an argument of `_initialize_weights`)."""
    import torchvision

    cls = _emitted(tmp_path, "resnet18")
    for flag in (False, True):
        torch.manual_seed(0)
        theirs = torchvision.models.resnet18(weights=None, zero_init_residual=flag).state_dict()
        torch.manual_seed(0)
        ours = cls(zero_init_residual=flag).state_dict()
        assert [k for k, v in theirs.items() if not torch.equal(ours[k], v)] == [], flag
        assert ours["layer1.0.bn2.weight"].any() != flag


# pad before a conv, a bare conv + BN (ResNet's stem, folded), tanh / sigmoid passed through
NEW_OPS = """
network NewOps() {
  input 3x10x12
  pad((1, 0, 2, 1))
  conv1: conv2d(6, 3, bias=false)
  bn1: batchnorm
  tanh
  seq: { pad((1, 1, 0, 2)); conv2d(5, 3); batchnorm; sigmoid }
  global_avgpool
  flatten
  fc: linear(4)
}
"""


def test_optimize_folds_batchnorm_around_pad_tanh_and_sigmoid():
    compiled = archlang.compile_spec(NEW_OPS)
    torch.manual_seed(0)
    plain = archlang.build(compiled).double()
    _random_state(plain)
    plain.eval()
    fast = torch_optimize.optimize(compiled, plain.state_dict(), dtype=torch.float64)
    assert not [m for m in fast.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    kinds = {type(m).__name__ for m in fast.modules()}
    assert {"ZeroPad2d", "Sigmoid"} <= kinds  # inside the sequential: modules
    x = torch.randn(2, 3, 10, 12, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-9, atol=1e-12)
    # bn1 folded into the bare conv1 before it (ResNet's stem)
    assert fast.conv1.bias is not None and not hasattr(fast, "bn1")
