"""torchvision's segmentation models, bundled by name (specs/fcn.arch, deeplabv3.arch,
lraspp.arch): against ``torchvision.models.segmentation.*(weights=None,
weights_backbone=None)`` built here — the same state_dict keys, a strict load, float64-equal
outputs (every tensor of the returned OrderedDict), torch's parameter count, fvcore's FLOPs,
``archc check --against`` and the report, run as a user runs them.

The quick cases run at 3×32×32 with 3 classes (the heads resize to any input); the full
size (520×520, 21 classes) is `slow`."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import fvcore.nn
import pytest
import torch
import torchvision
from bn_stats import randomize_bn
from conftest import ROOT
from test_torch_differential import check_emitted_equals_built, ruff_clean

import archlang
from archlang.analysis import analyze

# float64 depthwise convs run PyTorch's per-group slow path: MobileNetV3 at 64×64 takes
# tens of seconds on 2 cores, at 32×32 a few
SMALL = (3, 32, 32)
# bundled name: (torchvision constructor, its weights enum, has an aux head)
NETWORKS = {
    "fcn_resnet50": ("fcn_resnet50", "FCN_ResNet50_Weights", True),
    "deeplabv3_resnet50": ("deeplabv3_resnet50", "DeepLabV3_ResNet50_Weights", True),
    "lraspp_mobilenet_v3_large": ("lraspp_mobilenet_v3_large", "LRASPP_MobileNet_V3_Large_Weights", False),
}
NAMES = list(NETWORKS)
# ResNet-50 backbones take seconds to build, trace and run on 2 cores: the quick loop keeps
# their state_dict / outputs check and runs the rest in the full suite.
LIGHT = {"lraspp_mobilenet_v3_large"}


def _slow_unless_light(names):
    return [n if n in LIGHT else pytest.param(n, marks=pytest.mark.slow) for n in names]


def _kwargs(name: str, aux: bool, num_classes: int) -> dict:
    """torchvision's constructor parameters, which are the spec's parameters too."""
    return {"num_classes": num_classes, **({"aux_loss": True} if aux and NETWORKS[name][2] else {})}


def _torchvision(name: str, **kwargs):
    torch.manual_seed(0)
    factory = getattr(torchvision.models.segmentation, NETWORKS[name][0])
    return factory(weights=None, weights_backbone=None, **kwargs)


def _archc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "archlang.cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


@pytest.fixture(scope="module", params=NAMES)
def pair(request):
    """(name, our model, torchvision's model) at the small size with the aux head, float64,
    torchvision's weights (random BN statistics and affine) loaded strictly into ours."""
    name = request.param
    kwargs = _kwargs(name, aux=True, num_classes=3)
    theirs = _torchvision(name, **kwargs).double()
    randomize_bn(theirs, seed=7, affine=True)
    ours = archlang.build(name, input_shape=SMALL, **kwargs).double()
    return name, ours, theirs


def test_same_state_dict_keys_strict_load_and_float64_equal_outputs(pair):
    name, ours, theirs = pair
    mine, ref = ours.state_dict(), theirs.state_dict()
    assert [(k, v.shape) for k, v in mine.items()] == [(k, v.shape) for k, v in ref.items()]
    ours.load_state_dict(ref, strict=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    torch.manual_seed(3)
    x = torch.randn(1, *SMALL, dtype=torch.float64)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        got, expected = ours(x), theirs(x)
    assert type(got) is type(expected) and list(got) == list(expected)  # OrderedDict: out (, aux)
    assert list(expected) == (["out", "aux"] if NETWORKS[name][2] else ["out"])
    for key in expected:
        assert got[key].shape == expected[key].shape == (1, 3, 32, 32)
        scale = float(expected[key].abs().max())
        torch.testing.assert_close(got[key], expected[key], rtol=1e-12, atol=1e-12 * scale, msg=key)


PUBLISHED = {
    **{name: (weights, aux) for name, (_, weights, aux) in NETWORKS.items()},
    "fcn_resnet101": ("FCN_ResNet101_Weights", True),
    "deeplabv3_resnet101": ("DeepLabV3_ResNet101_Weights", True),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_params_and_macs_equal_torchvisions_published_figures(name):
    """The weights' metadata (21 classes, the aux head where the weights have one, 520×520):
    numbers from outside archlang and outside this test; no torch model is built.
    torchvision's `_ops` is GMACs (conv multiply-accumulates), rounded to 3 decimals."""
    weights, aux = PUBLISHED[name]
    meta = getattr(torchvision.models.segmentation, weights).COCO_WITH_VOC_LABELS_V1.meta
    result = analyze(archlang.compile_spec(name, {"aux_loss": True} if aux else {}))
    assert result.totals.params == meta["num_params"]
    assert round(result.totals.macs / 1e9, 3) == meta["_ops"]


def _fvcore(model, shape) -> int:
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    counter = fvcore.nn.FlopCountAnalysis(model.eval(), torch.randn(1, *shape))
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return int(counter.total())


@pytest.mark.parametrize("name", _slow_unless_light(NAMES))
def test_params_and_flops_equal_torch_and_fvcore_small(name):
    kwargs = _kwargs(name, aux=True, num_classes=3)
    model = _torchvision(name, **kwargs)
    result = analyze(archlang.compile_spec(name, kwargs, input_shape=SMALL))
    assert result.totals.params == sum(p.numel() for p in model.parameters())
    assert result.totals.buffers == sum(b.numel() for b in model.buffers())
    assert result.totals.flops == _fvcore(model, SMALL)  # the aux head runs in eval too


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("aux", [False, True])
def test_params_and_flops_equal_torch_and_fvcore_full_size(name, aux):
    """torchvision's defaults: 21 classes, 520×520 (its transforms' resize)."""
    if aux and not NETWORKS[name][2]:
        pytest.skip("torchvision's LR-ASPP has no aux head")
    kwargs = _kwargs(name, aux=aux, num_classes=21)
    model = _torchvision(name, **kwargs)
    compiled = archlang.compile_spec(name, kwargs)
    assert compiled.graph.input_shape == (3, 520, 520)
    result = analyze(compiled)
    assert result.totals.params == sum(p.numel() for p in model.parameters())
    assert result.totals.flops == _fvcore(model, (3, 520, 520))


@pytest.mark.parametrize("name", _slow_unless_light(NAMES))
def test_archc_check_against_torchvision(name):
    aux = ["--set", "aux_loss=true", "--kw", "aux_loss=True"] if NETWORKS[name][2] else []
    ref = f"torchvision.models.segmentation.{NETWORKS[name][0]}"
    result = _archc("check", name, "--against", ref, "--kw", "weights=None", "--kw", "weights_backbone=None", *aux)
    assert result.returncode == 0, result.stderr
    assert f"match `{ref}` (keys and shapes)" in result.stdout


@pytest.mark.slow
def test_archc_check_against_names_a_wrong_head_width():
    # not vacuous: 5 classes against torchvision's 21 are mismatched entries, exit 1
    ref = "torchvision.models.segmentation.lraspp_mobilenet_v3_large"
    result = _archc(
        "check",
        "lraspp_mobilenet_v3_large",
        "--set",
        "num_classes=5",
        "--against",
        ref,
        "--kw",
        "weights=None",
        "--kw",
        "weights_backbone=None",
    )
    assert result.returncode == 1
    assert "classifier.low_classifier.weight" in result.stderr and "E732" in result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_report_has_receptive_field_and_peak_memory(name):
    text = _archc(name, "--report")
    assert text.returncode == 0, text.stderr
    assert "RF (h×w)" in text.stdout and "\npeak live activations at inference: " in text.stdout
    result = _archc(name, "--report", "--format", "json")
    report = json.loads(result.stdout)
    rows = {row["name"]: row for row in report["sections"][0]["rows"]}
    assert rows["out"]["op"] == "upsample" and rows["out"]["shape"] == [21, 520, 520]
    rf = rows["out"]["rf"]
    if not name.startswith("fcn"):  # LR-ASPP's pooled gate, ASPP's image pooling: the whole image
        assert rf["h"] is None and rf["w"] is None
    else:  # a finite window, larger than the backbone's last stage alone
        backbone = [row for row in rows.values() if row["name"].startswith("backbone/")][-1]
        assert rf["h"]["size"] == rf["w"]["size"] > backbone["rf"]["h"]["size"] > 200
    assert report["peak_activation_bytes"] > 0 and report["peak_at"] in rows


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_emitted_file_equals_built(name, tmp_path):
    compiled = archlang.compile_spec(name, _kwargs(name, aux=True, num_classes=3), input_shape=SMALL)
    check_emitted_equals_built(compiled, tmp_path)
    ruff_clean(tmp_path)


def test_an_init_with_a_bias_constant_skips_bias_less_convs_in_the_per_module_table():
    """MobileNetV3's `init kaiming_normal(mode="fan_out", bias=0)` over convs with and without
    a bias, next to a head under PyTorch's default init (so the generated
    `_initialize_weights` is a table by module name): the build used to call
    `constant_(None, 0)` for the bias-less conv."""
    spec = """network N {
      input 3x8x8
      init kaiming_normal(mode="fan_out", bias=0)
      a: conv2d(4, 3, padding=1, bias=false)
      b: conv2d(4, 1)
      init default
      c: conv2d(2, 1)
    }"""
    torch.manual_seed(0)
    model = archlang.build(spec)
    assert model.a.bias is None
    assert torch.count_nonzero(model.b.bias) == 0  # the scheme's bias constant still applies
    assert torch.count_nonzero(model.c.bias) == 2  # PyTorch's default bias
