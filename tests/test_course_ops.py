"""The ops, inits and padding forms added for the course's networks, each run through both
the static analysis and PyTorch: no form is accepted by one and refused or changed by the
other. Expected weights come from ``torch.nn.init`` called here; expected shapes from
running the module."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from fvcore.nn import FlopCountAnalysis
from torch import nn

import archlang
from archlang.cli.main import main
from archlang.diagnostics import SpecError


def _net(body: str, input_shape: str = "4x10x12") -> str:
    return f"network Form() {{\n  input {input_shape}\n  {body}\n}}\n"


FORMS = [
    "tanh",
    "sigmoid",
    "pad(1)",
    "pad((1, 2))",  # (h, w): 1 row above and below, 2 columns left and right
    "pad((0, 1, 2, 3))",  # (top, bottom, left, right)
    "pad((0, 1, 0, 1)); conv2d(6, 3, stride=2)",  # TF-SAME for a 3×3/2 conv on an even input
    'conv2d(6, 3, padding="same", dilation=2)',
    'conv2d(6, (1, 5), padding="same")',
    'conv2d(6, 3, padding="valid")',
    "conv2d(6, 3, groups=2, padding=1)",
    "conv2d(8, 3, groups=4, stride=2)",
    "batchnorm(zero_init=true)",
    "avgpool(2, stride=2); tanh; sigmoid",
]


@pytest.mark.parametrize("body", FORMS)
def test_form_has_the_same_shape_params_and_flops_in_the_analysis_and_in_torch(body):
    spec = _net(body)
    analysis = archlang.analyze(spec)
    model = archlang.build(spec).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 4, 10, 12))
    assert tuple(out.shape[1:]) == analysis.nodes[analysis.graph.output].shape
    assert analysis.totals.params == sum(p.numel() for p in model.parameters())
    flops = FlopCountAnalysis(model, torch.randn(1, 4, 10, 12))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert analysis.totals.flops == flops.total()  # tanh, sigmoid, pad: unsupported in fvcore, 0


def test_pad_values_and_receptive_field_offset():
    spec = _net("p: pad((0, 1, 2, 3))")
    model = archlang.build(spec)
    x = torch.randn(1, 4, 10, 12)
    expected = nn.functional.pad(x, (2, 3, 0, 1))  # PyTorch's order: left, right, top, bottom
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
    rf = archlang.analyze(spec).nodes["p"].rf
    # unit (0, 0) of the padded map sits 0 rows above and 2 columns left of the input
    assert (rf.h.size, rf.h.stride, rf.h.padding) == (1, 1, 0)
    assert (rf.w.size, rf.w.stride, rf.w.padding) == (1, 1, 2)


def test_tf_same_stride_2_equals_tensorflow_padding_rule():
    # TensorFlow's SAME for k=3, s=2 on 10: out = ceil(10 / 2) = 5, total pad
    # max((5 - 1)·2 + 3 - 10, 0) = 1, all of it at the bottom / right.
    a = archlang.analyze(_net("pad((0, 1, 0, 1)); c: conv2d(6, 3, stride=2)", "4x10x10"))
    assert a.nodes["c"].shape == (6, 5, 5)
    assert a.nodes["c"].macs == 5 * 5 * 6 * 4 * 9


def test_same_padding_with_stride_is_refused_by_both():
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        nn.Conv2d(4, 6, 3, stride=2, padding="same")
    with pytest.raises(SpecError) as err:
        archlang.compile_spec(_net('conv2d(6, 3, stride=2, padding="same")'))
    assert err.value.diagnostics[0].code == "E304"


def test_pool_padding_beyond_half_the_kernel_is_refused_by_both():
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        nn.MaxPool2d(2, padding=2)(torch.zeros(1, 1, 8, 8))
    with pytest.raises(SpecError):
        archlang.compile_spec(_net("maxpool(2, padding=2)"))


INITS = [
    ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal", {}),
    ("kaiming_uniform", {"mode": "fan_in", "nonlinearity": "leaky_relu", "a": 0.2}),
    ("xavier_normal", {"gain": 2.0}),
    ("xavier_uniform", {}),
    ("normal", {"std": 0.02}),
    ("trunc_normal", {"std": 0.1, "a": -0.2, "b": 0.2}),
]


def _show(v):
    return f'"{v}"' if isinstance(v, str) else repr(v)


@pytest.mark.parametrize("scheme, kwargs", INITS)
@pytest.mark.parametrize("bias", [None, 0.25])
def test_init_draws_what_torch_nn_init_draws(scheme, kwargs, bias):
    args = ", ".join(f"{k}={_show(v)}" for k, v in {**kwargs, **({"bias": bias} if bias is not None else {})}.items())
    spec = _net(f"init {scheme}({args})\n  c: conv2d(6, 3)\n  flatten\n  f: linear(5)")
    torch.manual_seed(0)
    model = archlang.build(spec)
    # The reference: the same modules made in the same order, then torch.nn.init's call.
    torch.manual_seed(0)
    conv, fc = nn.Conv2d(4, 6, 3), nn.Linear(6 * 8 * 10, 5)
    mean = {"mean": 0.0} if "normal" in scheme and "kaiming" not in scheme and "xavier" not in scheme else {}
    for m in (conv, fc):
        getattr(nn.init, scheme + "_")(m.weight, **mean, **kwargs)
        if bias is not None:
            nn.init.constant_(m.bias, bias)
    torch.testing.assert_close(model.c.weight, conv.weight, rtol=0, atol=0)
    torch.testing.assert_close(model.c.bias, conv.bias, rtol=0, atol=0)
    torch.testing.assert_close(model.f.weight, fc.weight, rtol=0, atol=0)
    torch.testing.assert_close(model.f.bias, fc.bias, rtol=0, atol=0)


def test_init_scope_switches_between_convs_and_linears():
    spec = _net(
        'init kaiming_normal(mode="fan_out", nonlinearity="relu", bias=0)\n  c: conv2d(6, 3)\n  flatten\n'
        "  init normal(std=0.01, bias=0)\n  f: linear(5)\n  init default\n  g: linear(3)"
    )
    g = archlang.compile_spec(spec).graph
    assert g.nodes["c"].init["scheme"] == "kaiming_normal"
    assert g.nodes["f"].init["scheme"] == "normal"
    assert g.nodes["g"].init is None


# ---- lenet5 and the AlexNet paper variant: check, report, train -------------------------


@pytest.mark.parametrize(
    "name, params",
    [
        # C1 (5·5+1)·6 + C3 (5·5·6+1)·16 + C5 (5·5·16+1)·120 + F6 (120+1)·84 + (84+1)·10
        ("lenet5", 156 + 2_416 + 48_120 + 10_164 + 850),
        ("lenet5_modern", 61_706),
        ("alexnet_paper", 60_965_224),
    ],
)
def test_check_and_report(name, params):
    runner = CliRunner()
    check = runner.invoke(main, ["check", name])
    assert check.exit_code == 0, check.output
    assert f"{params:,} parameters" in check.output
    report = runner.invoke(main, [name, "--report", "--format", "json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.output)["totals"]["params"] == params


def test_lenet5_shapes_follow_the_paper():
    a = archlang.analyze("lenet5")
    shapes = {n: a.nodes[n].shape for n in ("c1", "s2", "c3", "s4", "c5", "f6", "output")}
    assert shapes == {
        "c1": (6, 28, 28),
        "s2": (6, 14, 14),
        "c3": (16, 10, 10),
        "s4": (16, 5, 5),
        "c5": (120, 1, 1),
        "f6": (84,),
        "output": (10,),
    }


def _eval_loss(model, x, y):
    model.eval()
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


@pytest.mark.parametrize(
    "name, shape, steps, lr", [("lenet5", (1, 32, 32), 30, 0.05), ("alexnet_paper", (3, 227, 227), 4, 0.01)]
)
def test_trains_loss_falls(name, shape, steps, lr):
    torch.manual_seed(0)
    model = archlang.build(name, num_classes=4)
    x, y = torch.randn(4, *shape), torch.arange(4)
    before = _eval_loss(model, x, y)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)  # the papers' optimiser
    for _ in range(steps):
        model.train()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert _eval_loss(model, x, y) < before
