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
