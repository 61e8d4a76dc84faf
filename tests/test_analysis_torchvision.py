"""Differential tests: our static counts against torchvision's modules (params, buffers)
and fvcore's FlopCountAnalysis (eval FLOPs), computed here, not copied. torch is imported
only inside this module."""

import fvcore.nn as fvcore_nn
import pytest
import torch
import torchvision
from conftest import quick_only

import archlang

CASES = {
    # name: (torchvision constructor kwargs, our spec, our params, input)
    "googlenet": (
        {"aux_logits": False, "init_weights": False},
        "specs/googlenet.arch",
        {"aux_logits": False},
        (3, 224, 224),
    ),
    "inception_v3": ({"aux_logits": True, "init_weights": False}, "specs/inception_v3.arch", {}, (3, 299, 299)),
    "mobilenet_v2": ({}, "specs/mobilenet_v2.arch", {}, (3, 224, 224)),
    "densenet121": ({}, "specs/densenet.arch", {"depth": 121}, (3, 224, 224)),
}


@pytest.fixture(scope="module", params=quick_only(sorted(CASES), {"googlenet"}))
def pair(request):
    """(ours, torchvision model, fvcore analysis): one fvcore trace per model per module."""
    kwargs, spec, params, shape = CASES[request.param]
    torch.manual_seed(0)
    model = getattr(torchvision.models, request.param)(**kwargs).eval()
    flops = fvcore_nn.FlopCountAnalysis(model, torch.zeros(1, *shape))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    return archlang.analyze(spec, **params), model, flops


def _all(a, field):
    return getattr(a.totals, field) + sum(getattr(t, field) for t in a.aux_totals.values())


def test_params_match_torchvision(pair):
    ours, model, _ = pair
    assert _all(ours, "params") == sum(p.numel() for p in model.parameters())
    assert _all(ours, "buffers") == sum(b.numel() for b in model.buffers())


def test_flops_match_fvcore(pair):
    ours, _, flops = pair
    assert ours.totals.flops == flops.total()


def test_flops_by_module_match_fvcore(pair):
    ours, model, flops = pair
    by_module = flops.by_module()
    for name, _ in model.named_children():
        if name in ours.aux_totals:  # aux heads do not run in eval mode
            assert by_module[name] == 0
            continue
        assert ours.block(name).flops == by_module[name], name


def test_rf_matches_gradient_support():
    """Receptive field = support of d(output unit)/d(input) for positive weights (no
    cancellation); the support starts at ``i * stride - padding``."""
    spec = """network T() {
      input 1x96x96
      c1: conv2d(2, 3, stride=2, padding=1)
      p1: avgpool(3, stride=2)
      c2: conv2d(2, 3, dilation=2, padding=2)
      c3: conv2d(1, (1, 7), padding=(0, 3))
    }"""
    rf = archlang.analyze(spec).nodes["c3"].rf
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3, stride=2, padding=1),
        nn.AvgPool2d(3, stride=2),
        nn.Conv2d(2, 2, 3, dilation=2, padding=2),
        nn.Conv2d(2, 1, (1, 7), padding=(0, 3)),
    )
    for m in model:
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0)
            nn.init.zeros_(m.bias)
    x = torch.ones(1, 1, 96, 96, requires_grad=True)
    y = model(x)
    i = j = 10  # an interior unit: its field lies inside the input
    y[0, 0, i, j].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    assert (int(rows[-1] - rows[0] + 1), int(rows[0])) == (rf.h.size, i * rf.h.stride - rf.h.padding)
    assert (int(cols[-1] - cols[0] + 1), int(cols[0])) == (rf.w.size, j * rf.w.stride - rf.w.padding)
