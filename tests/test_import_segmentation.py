"""``archc import`` beyond classification: torchvision's segmentation models (an OrderedDict
of maps resized to the input's size) import exactly. The spec, built, loads torchvision's
state_dict with ``strict=True``, computes the same float64 outputs (BN running statistics
randomised first) at the traced size *and at another one* (the resize follows the input:
``upsample from x, input``, not a size fixed at the trace), counts torch's ``numel``
parameters, and importing its built model gives the same text. Everything expected comes
from the torchvision model."""

import functools
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from bn_stats import randomize_bn
from conftest import quick_only
from torchvision.models import segmentation

import archlang

SHAPE = (3, 64, 64)
OTHER = (1, 3, 96, 80)  # not the traced size, not square: a fixed resize would miss it


def _body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


@functools.cache
def _imported(name: str, aux_loss: bool = False):
    torch.manual_seed(0)
    model = getattr(segmentation, name)(weights=None, weights_backbone=None, aux_loss=aux_loss).double()
    randomize_bn(model, seed=1)
    return model, archlang.from_module(model, SHAPE)


def _loaded(text: str, model):
    """The spec built in float64 with ``model``'s state_dict loaded strictly."""
    built = archlang.build(text).double()
    built.load_state_dict(model.state_dict(), strict=True)
    return built


def _outputs(model, built):
    """(input shape, model's outputs, built's outputs) in eval mode at the traced size and at
    another one (a resize that kept the traced size would show there)."""
    model.eval(), built.eval()
    g = torch.Generator().manual_seed(2)
    for shape in ((2, *SHAPE), OTHER):
        x = torch.randn(shape, generator=g, dtype=torch.float64)
        with torch.no_grad():
            yield shape, model(x), built(x)


@pytest.mark.parametrize("name", quick_only(["fcn_resnet50", "deeplabv3_resnet50", "lraspp_mobilenet_v3_large"], set()))
def test_segmentation_model_imports_exactly(name):
    model, text = _imported(name)
    assert 'upsample(mode="bilinear") from classifier, input' in text
    assert "size=" not in text  # every resize reads its size from a value
    built = _loaded(text, model)
    for shape, want, got in _outputs(model, built):
        assert list(got) == list(want) == ["out"]
        assert got["out"].shape == (shape[0], 21, *shape[2:])
        assert torch.equal(got["out"], want["out"]), name
    assert archlang.analyze(text).totals.params == sum(p.numel() for p in model.parameters())
    assert _body(archlang.from_module(built, SHAPE)) == _body(text)


@pytest.mark.slow
def test_aux_head_is_a_second_output_resized_to_the_input():
    model, text = _imported("fcn_resnet50", aux_loss=True)
    built = _loaded(text, model)
    x = torch.randn(OTHER, dtype=torch.float64)
    with torch.no_grad():
        want, got = model.eval()(x), built.eval()(x)
    assert list(got) == list(want) == ["out", "aux"]
    for key in want:
        assert torch.equal(got[key], want[key]), key


class _Up(nn.Module):
    """A decoder step that brings ``x`` to ``skip``'s size (a U-Net's or an FPN's top-down path)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x, skip):
        return self.conv(F.interpolate(x, size=skip.shape[-2:], mode="nearest")) + skip


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.deeper = nn.Conv2d(4, 4, 3, stride=2, padding=1)
        self.up = _Up()
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        d = self.down(x)
        y = self.up(self.deeper(d), d)
        return F.interpolate(self.head(y), size=x.shape[-2:], mode="bilinear", align_corners=False)


def test_interpolate_to_another_tensors_size_reads_that_tensor():
    torch.manual_seed(0)
    model = _Net().eval()
    text = archlang.from_module(model, (3, 16, 16))
    assert "upsample from x, skip" in text, text  # the block's own input, to its second one
    assert 'upsample(mode="bilinear") from head, input' in text, text
    assert "size=" not in text
    built = archlang.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 21, 30)  # odd sizes: every level rounds differently from 16x16
    with torch.no_grad():
        assert torch.equal(built(x), model(x))
    assert _body(archlang.from_module(built, (3, 16, 16))) == _body(text)


class _SizedHead(nn.Module):
    """Given the size as a value, not a tensor (the caller read it off its input)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 2, 1)

    def forward(self, x, size):
        return F.interpolate(self.conv(x), size=size, mode="bilinear")


class _PassesSize(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.head = _SizedHead()

    def forward(self, x):
        size = [x.shape[2], x.shape[3]]  # a list of sizes, one by one
        return self.head(self.down(x), size)


def test_a_size_passed_to_a_submodule_is_read_from_its_tensor():
    torch.manual_seed(0)
    model = _PassesSize().eval()
    text = archlang.from_module(model, (3, 16, 16))
    assert "head: _SizedHead from down, input" in text and "size=" not in text, text
    built = archlang.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 20, 26)
    with torch.no_grad():
        assert torch.equal(built(x), model(x))
    assert _body(archlang.from_module(built, (3, 16, 16))) == _body(text)


def test_interpolate_to_a_constant_size_stays_a_size():
    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            return F.interpolate(self.conv(x), size=(8, 8))

    text = archlang.from_module(Fixed(), (3, 16, 16))
    assert "upsample(size=8) from" not in text and "upsample(size=8)" in text, text


@pytest.mark.slow
def test_archc_import_writes_a_segmentation_spec(tmp_path):
    out = tmp_path / "lraspp.arch"
    cmd = [
        sys.executable,
        "-m",
        "archlang.cli.main",
        "import",
        "torchvision.models.segmentation.lraspp_mobilenet_v3_large",
    ]
    cmd += ["--kw", "weights=None", "--kw", "weights_backbone=None", "--input", "3x64x64", "-o", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    model = segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None).eval()
    built = archlang.build(str(out)).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 80, 72)
    with torch.no_grad():
        torch.testing.assert_close(built(x)["out"], model(x)["out"])


# ---- detection backbones with a feature pyramid -------------------------------------------


def _fpn(name: str, norm_layer=None):
    from torchvision.models.detection import backbone_utils

    kw = {} if norm_layer is None else {"norm_layer": norm_layer}
    torch.manual_seed(0)
    if name.startswith("resnet"):
        model = backbone_utils.resnet_fpn_backbone(backbone_name=name, weights=None, trainable_layers=3, **kw)
    else:
        model = backbone_utils.mobilenet_backbone(backbone_name=name, weights=None, fpn=True, trainable_layers=3, **kw)
    model = model.double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # statistics and affine away from the identity, BN and frozen BN alike
        for m in model.modules():
            if hasattr(m, "running_var") and m.running_var is not None:
                n = m.running_var.numel()
                m.running_mean.copy_(torch.randn(n, generator=g, dtype=torch.float64))
                m.running_var.copy_(torch.rand(n, generator=g, dtype=torch.float64) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g, dtype=torch.float64) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g, dtype=torch.float64))
    return model


def _fvcore_flops(model) -> int:
    import logging

    import fvcore.nn

    logging.disable(logging.WARNING)
    try:
        counter = fvcore.nn.FlopCountAnalysis(model.eval(), (torch.randn(1, *SHAPE, dtype=torch.float64),))
        counter.unsupported_ops_warnings(False)
        counter.uncalled_modules_warnings(False)
        return counter.total()
    finally:
        logging.disable(logging.NOTSET)


def _check_fpn(model):
    """Imported exactly: strict load, bit-equal float64 outputs at two sizes, params = numel,
    buffers = numel, FLOPs = fvcore's, a fixed point. Returns the text."""
    text = archlang.from_module(model, SHAPE)
    built = _loaded(text, model)
    for _, want, got in _outputs(model, built):
        assert list(got) == list(want)
        for key in want:
            assert torch.equal(got[key], want[key]), key
    totals = archlang.analyze(text).totals
    assert totals.params == sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    assert totals.buffers == sum(b.numel() for b in model.buffers())
    assert totals.flops == _fvcore_flops(model)
    assert _body(archlang.from_module(built, SHAPE)) == _body(text)
    return text


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_large"])
def test_fpn_backbone_with_batchnorm_imports_exactly(name):
    text = _check_fpn(_fpn(name, norm_layer=nn.BatchNorm2d))
    assert "upsample from" in text and "size=" not in text  # the top-down path follows each level
    assert "frozen_batchnorm" not in text


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "mobilenet_v3_large", "mobilenet_v2"])
def test_fpn_backbone_with_frozen_batchnorm_imports_exactly(name):
    """torchvision's default ``FrozenBatchNorm2d`` is ``frozen_batchnorm``: its γ, β and
    statistics are buffers of the built model too (nothing of them trains), and its forward
    rounds as torchvision's does, so the outputs are bit-equal."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    model = _fpn(name)
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    text = _check_fpn(model)
    assert "frozen_batchnorm" in text
    assert not any(line.split(":")[-1].strip().startswith("batchnorm") for line in text.splitlines())
