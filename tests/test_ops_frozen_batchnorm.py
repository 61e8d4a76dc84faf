"""``frozen_batchnorm``: torchvision's ``FrozenBatchNorm2d`` (the detection backbones' default
norm) as one op. Everything expected comes from torchvision's module: its state_dict keys,
its buffers (γ, β and the statistics, no ``num_batches_tracked``) and no parameters, fvcore's
count on it, and its outputs, bit for bit in float64, in training mode as in eval."""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys

import fvcore.nn
import pytest
import torch
from archlang.backends.torch.codegen import emit
from conftest import assert_ruff_clean
from graph_reference import evaluate
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

import archlang
from archlang.diagnostics import SpecError

SPEC = """network T() {
  input 6x5x7
  conv: conv2d(6, 3, padding=1, bias=false)
  bn: frozen_batchnorm(eps=0.001)
  relu
}
"""


def _random(module: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) + (0.5 if "var" in name else -0.5))


def _fvcore(module: nn.Module, shape: tuple) -> int:
    logging.disable(logging.WARNING)
    try:
        counter = fvcore.nn.FlopCountAnalysis(module.eval(), (torch.randn(1, *shape),))
        counter.unsupported_ops_warnings(False)
        counter.uncalled_modules_warnings(False)
        return counter.total()
    finally:
        logging.disable(logging.NOTSET)


def _reference() -> nn.Module:
    return nn.Sequential(nn.Conv2d(6, 6, 3, padding=1, bias=False), FrozenBatchNorm2d(6, eps=1e-3), nn.ReLU())


def test_costs_are_torchvisions_buffers_and_fvcores_count():
    node = archlang.analyze(SPEC).nodes["bn"]
    module = FrozenBatchNorm2d(6, eps=1e-3)
    assert node.shape == (6, 5, 7)
    assert node.params == sum(p.numel() for p in module.parameters()) == 0
    assert node.buffers == sum(b.numel() for b in module.buffers()) == 4 * 6
    assert node.flops == _fvcore(module, (6, 5, 7)) == 0  # fvcore has no handle for its mul / add
    assert node.all_ops == 2 * 6 * 5 * 7  # x * scale_c + shift_c
    assert node.rf.h.size == 3 and node.rf.w.size == 3  # the conv's; the norm adds none


def test_archc_check_accepts_it_and_refuses_bad_arguments(tmp_path):
    spec = tmp_path / "t.arch"
    spec.write_text(SPEC)
    cmd = [sys.executable, "-m", "archlang.cli.main", "check", str(spec)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    with pytest.raises(SpecError) as info:
        archlang.compile_spec(SPEC.replace("eps=0.001", "eps=0"))
    assert info.value.diagnostics[0].code == "E205"
    with pytest.raises(SpecError) as info:
        archlang.compile_spec(SPEC.replace("relu", "flatten\n  frozen_batchnorm"))
    assert info.value.diagnostics[0].code.startswith("E4")  # a flat vector has no channels map


def test_built_model_is_torchvisions_module_bit_for_bit():
    built = archlang.build(SPEC).double()
    assert type(built.bn).__name__ == "FrozenBatchNorm2d"
    assert [n for n, _ in built.named_parameters()] == ["conv.weight"]  # γ and β do not train
    reference = _reference().double()
    assert list(built.bn.state_dict()) == list(reference[1].state_dict())
    _random(reference)
    built.load_state_dict(
        {k.replace("0.", "conv.").replace("1.", "bn."): v for k, v in reference.state_dict().items()}, strict=True
    )
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        want = reference.eval()(x)
        assert torch.equal(built.eval()(x), want)
        assert torch.equal(built.train()(x), want)  # no batch statistics in training mode either
        graph = archlang.compile_spec(SPEC).graph  # tests/graph_reference.py, node by node
        torch.testing.assert_close(evaluate(graph, built.state_dict(), x), want, rtol=0, atol=1e-13)
    assert built.bn.running_mean.equal(reference[1].running_mean)  # and nothing moved


def test_a_batchnorm_state_dict_loads_as_into_torchvisions():
    """Pretrained BatchNorm2d weights (with ``num_batches_tracked``) load strictly, as
    torchvision's module takes them: that is how detection backbones get ImageNet weights."""
    bn = nn.BatchNorm2d(6)
    _random(bn, seed=3)
    built = archlang.build(SPEC)
    frozen = FrozenBatchNorm2d(6, eps=1e-3)
    frozen.load_state_dict(bn.state_dict(), strict=True)
    built.bn.load_state_dict(bn.state_dict(), strict=True)
    for key, value in frozen.state_dict().items():
        assert torch.equal(built.bn.state_dict()[key], value), key


def test_emitted_file_defines_the_module_without_torchvision(tmp_path):
    text = emit(archlang.compile_spec(SPEC))
    assert "torchvision" not in text.replace("torchvision's", "")
    assert "self.bn = FrozenBatchNorm2d(6, eps=0.001)" in text
    # the class archlang.build instantiates is the emitted file's, which is ruff-clean
    assert inspect.getsource(type(archlang.build(SPEC).bn).forward) in text
    (tmp_path / "t.py").write_text(text)
    assert_ruff_clean(tmp_path / "t.py")


def test_import_maps_torchvisions_module_and_round_trips():
    model = _reference().double().eval()
    _random(model)
    text = archlang.from_module(model, (6, 5, 7))
    assert "frozen_batchnorm(eps=0.001)" in text, text
    built = archlang.build(text).double().eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(3, 6, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))
    assert archlang.from_module(built, (6, 5, 7)).split("\n\n", 1)[1] == text.split("\n\n", 1)[1]


def test_a_class_of_that_name_with_other_code_is_traced_through():
    class FrozenBatchNorm2d(nn.Module):  # noqa: N801 - the helper's name, not its code
        def forward(self, x):
            return torch.relu(x)

    text = archlang.from_module(nn.Sequential(nn.Conv2d(3, 4, 1), FrozenBatchNorm2d()), (3, 4, 4))
    assert "frozen_batchnorm" not in text and "relu" in text, text
