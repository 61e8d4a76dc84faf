"""`pad` with a fill value and negative (cropping) amounts, as PyTorch's ``F.pad`` /
``nn.ConstantPad2d`` / ``nn.ZeroPad2d`` take them: timm's ``MaxPool2dSame`` pads with
``-inf`` before its max pool, NASNet's ``path_2`` crops with ``nn.ZeroPad2d((-1, 1, -1, 1))``.
Expected values come from torch's own ``F.pad`` on the same input, receptive fields by hand;
the imports are hand-written modules of those patterns (no timm)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from fvcore.nn import FlopCountAnalysis
from hostile_models import SHAPE, refused, roundtrip
from torch import nn

import archlang
from archlang.diagnostics import SpecError
from archlang.tools.fmt import format_source


def _net(body: str, input_shape: str = "2x6x7") -> str:
    return f"network P {{\n  input {input_shape}\n  {body}\n}}\n"


# (spec line, PyTorch's F.pad arguments: (left, right, top, bottom), value)
FORMS = [
    ("p: pad(1, value=-inf)", (1, 1, 1, 1), -math.inf),
    ("p: pad((-1, 1, -1, 1))", (-1, 1, -1, 1), 0.0),  # NASNet's path_2 shift
    ("p: pad((2, -3, 0, 1), value=0.5)", (0, 1, 2, -3), 0.5),
    ("p: pad(-1)", (-1, -1, -1, -1), 0.0),
    ("p: pad((1, -2), value=inf)", (-2, -2, 1, 1), math.inf),
    ("p: pad((0, 1, 0, 1), value=-2)", (0, 1, 0, 1), -2.0),
]


@pytest.mark.parametrize(("line", "sides", "value"), FORMS, ids=[f[0] for f in FORMS])
def test_pad_equals_torch_f_pad_in_values_shape_and_flops(line, sides, value):
    spec = _net(line)
    x = torch.randn(3, 2, 6, 7)
    want = F.pad(x, sides, value=value)
    model = archlang.build(spec).eval()
    torch.testing.assert_close(model(x), want, rtol=0, atol=0)
    analysis = archlang.analyze(spec)
    assert analysis.nodes["p"].shape == tuple(want.shape[1:])
    assert analysis.totals.flops == FlopCountAnalysis(model, x[:1]).unsupported_ops_warnings(False).total() == 0


def test_max_pool_after_a_minus_inf_pad_is_tensorflow_same_max_pool():
    # a -inf border never wins a max: TF's SAME max pool, equal to torch's own padded pool
    spec = _net("pad(1, value=-inf); maxpool(3, stride=2)", "2x9x9")
    x = torch.randn(1, 2, 9, 9) - 10  # all negative: a zero border would win
    got = archlang.build(spec)(x)
    torch.testing.assert_close(got, F.max_pool2d(x, 3, 2, padding=1), rtol=0, atol=0)
    assert got.max() < 0


def test_crop_moves_the_receptive_field_grid():
    # unit (0, 0) of the cropped map is input unit (1, 2): its field starts 1 row and 2
    # columns in, a padding of -1 and -2
    rf = archlang.analyze(_net("conv2d(2, 3, padding=1); p: pad((-1, 0, -2, 1))")).nodes["p"].rf
    assert (rf.h.size, rf.h.stride, rf.h.padding) == (3, 1, 0)
    assert (rf.w.size, rf.w.stride, rf.w.padding) == (3, 1, 1 - 2)
    rf = archlang.analyze(_net("conv2d(2, 3, stride=2); p: pad((-1, 0, 1, 0))", "2x9x9")).nodes["p"].rf
    assert (rf.h.padding, rf.w.padding) == (-1 * 2, 1 * 2)  # in input pixels: the jump is 2


@pytest.mark.parametrize(
    ("sides", "line"), [((0, 0, -5, 3), "pad((-5, 3, 0, 0))"), ((-8, 2, 0, 0), "pad((0, 0, -8, 2))")]
)
def test_a_crop_beyond_the_input_is_refused_as_torch_refuses_it(sides, line):
    with pytest.raises(RuntimeError):
        F.pad(torch.zeros(1, 2, 4, 7), sides)
    with pytest.raises(SpecError) as err:
        archlang.compile_spec(_net(line, "2x4x7"))
    (diag,) = err.value.diagnostics
    assert diag.code == "E403" and "crops more than its 4×7 input" in diag.message
    assert (diag.span.line, diag.span.col) == (3, 3)


@pytest.mark.parametrize(
    ("line", "code", "fragment"),
    [
        ("pad((0, 0, -4, -3))", "E403", "the output would be 6×0"),  # torch: an empty map
        ("pad(1, value=inf - inf)", "E305", "not a number"),
        ('pad(1, value="-inf")', "E205", "value must be a number"),
        ("conv2d(4, 3, stride=inf)", "E205", "integer"),
        ("pad((1, 2, 3))", "E205", "(top, bottom, left, right)"),
        ("pad(1.5)", "E205", "(top, bottom, left, right)"),
    ],
)
def test_bad_fills_and_amounts_are_located_errors(line, code, fragment):
    with pytest.raises(SpecError) as err:
        archlang.compile_spec(_net(line))
    (diag,) = err.value.diagnostics
    assert diag.code == code and fragment in diag.message, diag.message
    assert diag.span.line == 3


def test_inf_is_a_constant_a_spec_may_redefine():
    x = torch.randn(1, 2, 6, 7)
    shadowed = "const inf = 2\n" + _net("pad(1, value=-inf)")
    torch.testing.assert_close(archlang.build(shadowed)(x), F.pad(x, (1, 1, 1, 1), value=-2.0))
    assert format_source(_net("pad(1, value=-inf)")) == _net("pad(1, value=-inf)")


class MaxPoolSame(nn.Module):
    """timm's MaxPool2dSame: TF's SAME padding with -inf, then a max pool without padding."""

    def __init__(self, k=3, s=2):
        super().__init__()
        self.k, self.s = k, s

    def forward(self, x):
        ih, iw = x.shape[-2:]
        ph = max((math.ceil(ih / self.s) - 1) * self.s + self.k - ih, 0)
        pw = max((math.ceil(iw / self.s) - 1) * self.s + self.k - iw, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=-float("inf"))
        return F.max_pool2d(x, self.k, self.s)


class NasPaths(nn.Module):
    """NASNet's cell stem path_2: a crop-and-shift by a negative zero pad, a 1×1/2 average pool;
    and a constant pad of another value, asymmetric."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3)
        self.pool = MaxPoolSame()
        self.path_2 = nn.Sequential(nn.ZeroPad2d((-1, 1, -1, 1)), nn.AvgPool2d(1, stride=2, count_include_pad=False))
        self.fill = nn.ConstantPad2d((0, 2, 1, 0), 0.25)
        with torch.no_grad():
            self.conv.bias.fill_(-8.0)  # negative maps: a border of zeros instead of -inf would win the max

    def forward(self, x):
        y = self.conv(x)
        return self.fill(torch.cat([self.pool(y), self.path_2(y)], 1))


def _body(text: str) -> str:
    return text[text.index("network") :]


def test_same_max_pool_crop_and_constant_pads_import_exactly_and_reimport_to_themselves():
    model = NasPaths()
    text = roundtrip(model, shape=(4, 12, 12))
    assert "pad((0, 1, 0, 1), value=-inf)" in text  # 10×10, k3 s2: TF pads one row below, one column right
    assert "pad((-1, 1, -1, 1))" in text
    assert "pad((1, 0, 0, 2), value=0.25)" in text
    again = roundtrip(archlang.build(text), shape=(4, 12, 12))
    assert _body(again) == _body(text)
    assert _body(archlang.from_module(archlang.build(again), (4, 12, 12))) == _body(text)


class PadPool(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return F.max_pool2d(F.pad(x, (1, 1, 1, 1), value=self.value), 3, 1)


class Fills(nn.Module):
    """One class padding with -inf in two instances and with 0 in a third: a block whose
    fill is a parameter, -inf its default or an argument."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.a, self.b, self.c = PadPool(-math.inf), PadPool(0.0), PadPool(-math.inf)
        with torch.no_grad():
            self.conv.bias.fill_(-8.0)

    def forward(self, x):
        return self.c(self.b(self.a(self.conv(x))))


def test_a_fill_value_can_be_a_block_parameter_and_its_default():
    text = roundtrip(Fills())
    assert "value=-inf" not in text and "inf" in text  # the block reads a parameter
    again = archlang.from_module(archlang.build(text), SHAPE)
    assert _body(again) == _body(text)


def test_a_nan_fill_and_other_pad_modes_stay_refused():
    nan_pad = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ConstantPad2d(1, float("nan")))
    refused(nan_pad, "E722", "`1`", "has no spec literal", help=False)

    class Reflect(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return F.pad(self.conv(x), (1, 1, 1, 1), mode="reflect")

    refused(Reflect(), "E722", "mode='reflect'", help=False)


@pytest.mark.slow  # ~30 s on a loaded core: NASNet-A at a small width (the table runs the full one)
def test_timm_nasnet_imports_exactly_and_reimports_to_itself():
    import timm

    model = timm.create_model("nasnetalarge", num_classes=5, stem_size=8, num_features=96)
    text = roundtrip(model, shape=(3, 64, 64))
    assert "value=-inf" in text and "pad((-1, 1, -1, 1))" in text
    assert _body(archlang.from_module(archlang.build(text), (3, 64, 64))) == _body(text)


@pytest.mark.slow  # the ONNX exporter's start-up: ~10 s on a loaded core
def test_onnx_export_of_a_minus_inf_fill_compares_equal_infinities_as_equal():
    from archlang.backends.torch.onnx_export import to_onnx

    from archlang.train.export import check_onnx

    # the -inf border reaches the output: onnxruntime and torch both give -inf there
    model = archlang.build(_net("conv2d(3, 1); pad((0, 1, 2, 0), value=-inf)")).eval()
    x = torch.randn(2, 2, 6, 7)
    assert torch.isinf(model(x)).any()
    err = check_onnx(to_onnx(model, x, None), model, x)
    assert 0 <= err < 1e-5
