"""``archlang.from_module`` through Python that depends only on static shapes (issue 20, item 1)
and functional ops on a module's own state (timm's ``BatchNormAct2d``, ``LayerNorm2d``): each
hand-written module imports to a spec that loads its state_dict strictly and equals it in
float64 (:func:`hostile_models.roundtrip`, on a batch of 2 while the trace ran on 1). Python
that branches on tensor values is still refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from hostile_models import Net, conv, refused, roundtrip
from torch import nn

import archlang


def _flatten_view(s, x):
    return s.fc(s.conv(x).view(x.size(0), -1))


def _flatten_reshape(s, x):
    y = s.conv(x)
    return s.fc(y.reshape(y.shape[0], -1))


def _rank_checks(s, x):
    torch._assert(x.ndim == 4, "4-d input")  # timm's BatchNormAct2d
    if x.dim() != 4:
        raise ValueError("expected a 4-d input")
    y = s.conv(x)
    return s.fc(torch.flatten(y, 1) if y.ndim == 4 else y)


def _channel_guard(s, x):
    if x.shape[1] != 3 or x.shape[-2:] != (16, 16):
        raise ValueError(f"expected 3x16x16, got {tuple(x.shape[1:])}")
    return s.fc(s.conv(x).flatten(1))


def _module_made_in_forward(s, x):
    y = nn.ZeroPad2d(1)(s.conv(x))  # a parameter-free module made on the fly
    return s.fc(F.adaptive_avg_pool2d(y, 4).view(y.size(0), -1))


@pytest.mark.parametrize(
    "forward", [_flatten_view, _flatten_reshape, _rank_checks, _channel_guard, _module_made_in_forward]
)
def test_static_shape_python_imports_exactly(forward):
    width = 4 * 4 * 4 if forward is _module_made_in_forward else 4 * 16 * 16
    text = roundtrip(Net(forward, conv=conv(), fc=nn.Linear(width, 2)))
    assert "flatten" in text


def test_a_module_made_in_forward_becomes_its_op():
    text = roundtrip(Net(_module_made_in_forward, conv=conv(), fc=nn.Linear(64, 2)))
    assert "pad((1, 1, 1, 1))" in text


def test_an_unknown_module_made_in_forward_is_refused_at_its_line():
    diag = refused(
        Net(lambda s, x: nn.ReflectionPad2d(1)(s.conv(x)), conv=conv()),
        "E720",
        "`torch.nn.ReflectionPad2d` made in forward",
    )
    assert diag.span is not None and diag.span.file == __file__


def test_an_input_guard_refuses_the_wrong_size_naming_the_input():
    model = Net(_channel_guard, conv=conv(), fc=nn.Linear(4 * 16 * 16, 2))
    diag = refused(model, "E727", "1x3x12x12", "expected 3x16x16, got (3, 12, 12)", shape=(3, 12, 12))
    assert "--input" in diag.help


def test_a_branch_on_tensor_values_is_still_refused():
    def forward(s, x):
        y = s.conv(x)
        return y if y.mean() > 0 else -y

    refused(Net(forward, conv=conv()), "E723", "torch.fx cannot trace")


def test_a_reshape_that_is_not_a_flatten_is_refused():
    refused(
        Net(lambda s, x: s.conv(x).view(x.size(0), 4, -1), conv=conv()), "E722", "a reshape to (B, 4, -1)", help=False
    )


class _BatchNormAct(nn.BatchNorm2d):
    """timm's BatchNormAct2d, cut down: F.batch_norm on its own state, then its activation."""

    def __init__(self, channels):
        super().__init__(channels)
        self.drop = nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x):
        torch._assert(x.ndim == 4, f"expected 4D input (got {x.ndim}D input)")
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
        x = F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or self.running_mean is None,
            self.momentum,
            self.eps,
        )
        return self.act(self.drop(x))


class _LayerNorm2d(nn.LayerNorm):
    """timm's LayerNorm2d: a layer norm over channels through a permute."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def test_batchnorm_act_imports_as_batchnorm_and_its_activation():
    text = roundtrip(nn.Sequential(conv(), _BatchNormAct(4), conv(4, 4), _BatchNormAct(4)))
    assert '"1": batchnorm\n  relu\n' in text and '"3": batchnorm\n  relu\n' in text
    assert "identity" not in text  # the `drop` placeholder is no layer


def test_tracing_leaves_the_model_and_torch_as_found():
    # the last layer's rank test makes every op before it run on the fake input
    model = nn.Sequential(conv(), _BatchNormAct(4), nn.BatchNorm2d(4), _BatchNormAct(4))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    call, getattr_ = nn.Module.__call__, nn.Module.__getattr__
    archlang.from_module(model, (3, 16, 16))
    assert int(model[1].num_batches_tracked) == int(model[2].num_batches_tracked) == 0  # all ran on fakes
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert model.training and (nn.Module.__call__, nn.Module.__getattr__) == (call, getattr_)


def test_layer_norm_through_a_permute_imports_exactly():
    text = roundtrip(nn.Sequential(conv(), _LayerNorm2d(4, eps=1e-6), nn.ReLU()))
    assert '"1": layernorm(eps=1e-06)' in text


def test_f_batch_norm_on_another_modules_buffers_is_refused():
    bn = nn.BatchNorm2d(4)

    def forward(s, x):
        return F.batch_norm(s.conv(x), s.bn.running_mean, s.bn.running_var, s.bn.weight, s.bn.bias)

    refused(Net(forward, conv=conv(), bn=bn), "E721", "reads tensors besides its input (bn.running_mean")


def _split_sizes(s, x):
    a, b = torch.split(s.conv(x), 2, 1)  # res2net: equal parts by their size
    return torch.cat([s.c1(a), b], 1)


def _split_loop(s, x):
    parts = s.conv(x).split([2, 2], dim=1)
    return torch.cat([conv(part) for conv, part in zip(s.convs, parts)], 1)  # iterating the parts


@pytest.mark.parametrize(
    ("forward", "expected"),
    [
        (lambda s, x: F.leaky_relu(s.conv(x), 0.1), "leaky_relu(negative_slope=0.1)"),
        (lambda s, x: F.interpolate(s.conv(x), scale_factor=2), "upsample(scale_factor=2)"),
        (
            lambda s, x: F.interpolate(s.conv(x), scale_factor=2, mode="bilinear", align_corners=False),
            'upsample(scale_factor=2, mode="bilinear")',
        ),
        (lambda s, x: s.up(s.conv(x)), "  upsample(scale_factor=2)\n"),
        (lambda s, x: F.adaptive_max_pool2d(s.conv(x), 1), "adaptive_maxpool"),
        (lambda s, x: F.pad(s.conv(x), (1, 1, 2, 2)), "pad((2, 2, 1, 1))"),
        (lambda s, x: s.conv(x).mean((2, 3)), "spatial_mean"),
        (_split_sizes, "split(2, 0)"),
        (_split_loop, "split(2, 1)"),
    ],
    ids=[
        "leaky_relu",
        "interpolate",
        "bilinear",
        "upsample_module",
        "adaptive_max",
        "pad",
        "mean",
        "split",
        "split_loop",
    ],
)
def test_functional_forms_import_exactly(forward, expected):
    extra = {
        _split_sizes: {"c1": conv(2, 2)},
        _split_loop: {"convs": nn.ModuleList([conv(2, 3), conv(2, 3)])},
    }.get(forward, {"up": nn.Upsample(scale_factor=2)} if expected.startswith(" ") else {})
    text = roundtrip(Net(forward, conv=conv(), **extra))
    assert expected in text, text


def test_split_with_an_empty_piece_is_refused():
    # unequal parts import (tests/test_split_sizes.py); a piece of no channels has no spec
    refused(Net(lambda s, x: torch.split(s.conv(x), [0, 4], 1)[1], conv=conv()), "E722", "into [0, 4]", help=False)


def test_a_refused_op_points_at_its_python_line():
    def forward(s, x):
        return F.selu(s.conv(x))  # the refused line

    with pytest.raises(archlang.SpecError) as info:
        archlang.from_module(Net(forward, conv=conv()), (3, 16, 16))
    (diag,) = info.value.diagnostics
    assert diag.code == "E721" and diag.span is not None
    assert (diag.span.file, diag.span.line) == (__file__, forward.__code__.co_firstlineno + 1)
    assert "return F.selu(s.conv(x))  # the refused line" in str(info.value)
