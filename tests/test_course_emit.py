"""``--emit torch`` and ``--optimize`` for the course's networks, against the in-memory
built model (itself checked against torchvision in test_course_specs.py).

The generated-code back end is being rewritten (heterogeneous block instances, such as
ResNet's first block with a downsample and the others without, were emitted as one
class); these tests are the acceptance for that rewrite on the course's specs.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from archlang.backends.torch import optimize as torch_optimize
from click.testing import CliRunner

import archlang
from archlang.cli import main

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


def _emitted(tmp_path, name: str, *extra: str):
    out = tmp_path / f"{name}.py"
    result = CliRunner().invoke(main, [name, "--emit", "torch", *extra, "-o", str(out)])
    assert result.exit_code == 0, result.output
    spec = importlib.util.spec_from_file_location(f"course_emit_{name}_{len(extra)}", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, archlang.compile_spec(name).graph.graph["network"])


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


@pytest.mark.parametrize("name", sorted(CASES))
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


@pytest.mark.parametrize("name", sorted(CASES))
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
    emitted = getattr(module, archlang.compile_spec(str(spec)).graph.graph["network"])()
    torch.manual_seed(3)
    built = archlang.build(str(spec))
    assert list(emitted.state_dict()) == list(built.state_dict())
    for key, value in built.state_dict().items():
        assert torch.equal(emitted.state_dict()[key], value), key
