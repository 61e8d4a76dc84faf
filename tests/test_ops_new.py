"""The ops of issue 19, each one record (archlang/ops/<family>.py): for each, a tiny spec
whose shapes and parameters are compared with the torch module it stands for, FLOPs with
fvcore's ``FlopCountAnalysis`` run on that module (where fvcore has no handle for the op,
the count is 0 there too, and archlang's all-ops count is checked against a hand count
written out here), and the built model (the emitted code, executed) computes the module's
function in float64 with the module's weights loaded strictly.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from fractions import Fraction

import fvcore.nn
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
import torchvision.transforms.functional as TF  # noqa: N812
from graph_reference import depth_to_space, evaluate, space_to_depth
from torch import nn

import archlang
from archlang.diagnostics import SpecError


class Blur(nn.Module):
    """Zhang's BlurPool written out: the normalised binomial filter as a fixed buffer (not in
    the state_dict), pad, then a depthwise conv at the stride."""

    def __init__(self, channels, taps, stride=2, padding=1, mode="reflect"):
        super().__init__()
        row = torch.tensor(taps) / sum(taps)
        self.register_buffer("filt", (row[:, None] * row[None, :]).repeat(channels, 1, 1, 1), persistent=False)
        self.stride, self.padding, self.mode, self.channels = stride, padding, mode, channels

    def forward(self, x):
        x = F.pad(x, (self.padding,) * 4, mode=self.mode)
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.channels)


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


# (spec call, input C×H×W, the torch module it stands for, all-ops by hand per sample)
CASES = [
    # a copy: no arithmetic
    ("pixel_shuffle(2)", (8, 3, 5), nn.PixelShuffle(2), 0),
    ("pixel_shuffle(3)", (18, 2, 2), nn.PixelShuffle(3), 0),
    ("pixel_unshuffle(2)", (3, 4, 6), nn.PixelUnshuffle(2), 0),
    ("pixel_unshuffle(3)", (2, 6, 3), nn.PixelUnshuffle(3), 0),
    # blur pool: fvcore's conv handle counts k² per output; all-ops k² multiplies, k² - 1 adds
    ("blur_pool", (6, 9, 10), Blur(6, [1, 2, 1]), 6 * 5 * 5 * 17),
    ("blur_pool(5, stride=1, padding=2)", (6, 9, 10), Blur(6, [1, 4, 6, 4, 1], 1, 2), 6 * 9 * 10 * 49),
    ('blur_pool(pad_mode="constant")', (6, 9, 10), Blur(6, [1, 2, 1], mode="constant"), 6 * 5 * 5 * 17),
    # ONNX's SpaceToDepth / DepthToSpace (DCR) by their definition (graph_reference.py)
    ("space_to_depth(2)", (3, 4, 6), Fn(lambda x: space_to_depth(x, 2)), 0),
    ("space_to_depth(3)", (2, 6, 3), Fn(lambda x: space_to_depth(x, 3)), 0),
    ("depth_to_space(2)", (12, 3, 5), Fn(lambda x: depth_to_space(x, 2)), 0),
    # activations: no fvcore handle (0 FLOPs); all-ops per element as written in each record
    ("leaky_relu", (6, 4, 5), nn.LeakyReLU(), 2 * 120),  # comparison, multiply
    ("leaky_relu(0.2)", (6, 4, 5), nn.LeakyReLU(0.2), 2 * 120),
    ("elu(alpha=0.5)", (6, 4, 5), nn.ELU(0.5), 4 * 120),  # comparison, exp, subtract, multiply
    ("softplus(beta=2, threshold=10)", (6, 4, 5), nn.Softplus(2, 10), 6 * 120),  # ×β, >, exp, +1, log, ÷β
    ("hardtanh(-2, 3)", (6, 4, 5), nn.Hardtanh(-2, 3), 2 * 120),  # two comparisons
    ("mish", (6, 4, 5), nn.Mish(), 10 * 120),  # softplus 4, tanh 5, multiply 1
    ("prelu", (6, 4, 5), nn.PReLU(), 2 * 120),
    ("prelu(6, init=0.1)", (6, 4, 5), nn.PReLU(6, 0.1), 2 * 120),
    ("dropout2d(0.3)", (6, 4, 5), nn.Dropout2d(0.3), 0),  # the identity at inference
    # norms: fvcore's norm_flop_counter (5 per element with affine, 4 without); all-ops 7 / 5
    ("group_norm(3)", (6, 4, 5), nn.GroupNorm(3, 6), 7 * 120),
    ("group_norm(2, affine=false)", (6, 4, 5), nn.GroupNorm(2, 6, affine=False), 5 * 120),
    ("instance_norm", (6, 4, 5), nn.InstanceNorm2d(6), 5 * 120),
    ("instance_norm(affine=true)", (6, 4, 5), nn.InstanceNorm2d(6, affine=True), 7 * 120),
    # eval with running statistics: x * scale + shift, 2 per element
    ("instance_norm(track_running_stats=true)", (6, 4, 5), nn.InstanceNorm2d(6, track_running_stats=True), 2 * 120),
    # max pooling: n - 1 comparisons per n-element bin; aten::adaptive_max_pool2d has no fvcore handle
    ("global_maxpool", (6, 4, 5), nn.AdaptiveMaxPool2d(1), 6 * 19),
    ("adaptive_maxpool(2)", (6, 4, 6), nn.AdaptiveMaxPool2d(2), 6 * 4 * (6 - 1)),  # 2×3 bins
    # H 4 -> 3: bins [0, 2), [1, 3), [2, 4); W 5 -> 2: [0, 3), [2, 5): 36 elements in 6 bins
    # transposed conv: fvcore's conv handle with transposed=True counts prod(weight) × input H×W;
    # all-ops: each product multiplied and added into the output (scatter form)
    (
        "conv_transpose(4, 3, stride=2, padding=1, output_padding=1)",
        (6, 4, 5),
        nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1),
        2 * (6 * 4 * 9) * 20,
    ),
    (
        "conv_transpose(6, 2, stride=2, groups=3, bias=false)",
        (6, 4, 5),
        nn.ConvTranspose2d(6, 6, 2, stride=2, groups=3, bias=False),
        2 * (6 * 2 * 4) * 20,
    ),
    (
        "conv_transpose(4, (3, 2), dilation=2)",
        (6, 4, 5),
        nn.ConvTranspose2d(6, 4, (3, 2), dilation=2),
        2 * 6 * 4 * 6 * 20,
    ),
    # upsampling: fvcore's elementwise handles, 1 (nearest) or 4 (bilinear) per output element;
    # all-ops: nearest a gather (0), bilinear 4 multiplies and 3 adds per output element
    ("upsample(scale_factor=2)", (6, 4, 5), nn.Upsample(scale_factor=2), 0),
    ("upsample(size=(8, 10))", (6, 4, 5), nn.Upsample(size=(8, 10)), 0),
    ('upsample(size=(7, 9), mode="bilinear")', (6, 4, 5), nn.Upsample(size=(7, 9), mode="bilinear"), 7 * 6 * 7 * 9),
    (
        'interpolate(scale_factor=1.5, mode="bilinear", align_corners=true)',
        (6, 4, 5),
        nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True),
        7 * 6 * 6 * 7,  # output 6×7: floor(4 × 1.5), floor(5 × 1.5)
    ),
    # centre crop: a slice (no fvcore handle, no arithmetic); torchvision's center_crop starts
    # at int(round((in - out) / 2)): round(2.5) = 2, round(3.0) = 3, round(1.5) = 2, round(3.5) = 4
    ("crop(3)", (6, 8, 9), Fn(lambda x: x[..., 2:5, 3:6]), 0),
    ("crop((5, 4))", (6, 8, 9), Fn(lambda x: x[..., 2:7, 2:6]), 0),
    ("crop((8, 2))", (6, 8, 9), Fn(lambda x: x[..., 0:8, 4:6]), 0),
    ("adaptive_maxpool((3, 2))", (6, 4, 5), nn.AdaptiveMaxPool2d((3, 2)), 6 * ((2 + 2 + 2) * (3 + 3) - 3 * 2)),
]
IDS = [c[0] for c in CASES]


def _fvcore(module: nn.Module, shape: tuple) -> int:
    logging.disable(logging.WARNING)
    try:
        counter = fvcore.nn.FlopCountAnalysis(module.eval(), (torch.randn(2, *shape),))
        counter.unsupported_ops_warnings(False)
        counter.uncalled_modules_warnings(False)
        return counter.total() // 2  # per sample
    finally:
        logging.disable(logging.NOTSET)


def _randomise(model: nn.Module) -> None:
    # away from the default init (PReLU's 0.25, norms' 1 and 0), so a swapped weight shows
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
        saved = model.state_dict(keep_vars=True)  # not a fixed, non-persistent one (the blur's filter)
        for name, b in model.named_buffers():
            if b.is_floating_point() and name in saved:
                b.copy_(torch.rand(b.shape, generator=g, dtype=b.dtype) + 0.5)


def _spec(call: str, shape: tuple) -> str:
    return f"network T() {{\n  input {'x'.join(map(str, shape))}\n  x: {call}\n}}"


@pytest.mark.parametrize(("call", "shape", "module", "all_ops"), CASES, ids=IDS)
def test_shape_params_flops_match_torch_and_fvcore(call, shape, module, all_ops):
    node = archlang.analyze(_spec(call, shape)).nodes["x"]
    out = module.eval()(torch.randn(3, *shape))
    assert tuple(node.shape) == tuple(out.shape[1:])
    assert node.params == sum(p.numel() for p in module.parameters())
    assert node.buffers == sum(b.numel() for b in module.buffers())
    assert node.flops == _fvcore(module, shape)
    assert node.all_ops == all_ops


@pytest.mark.parametrize(("call", "shape", "module", "all_ops"), CASES, ids=IDS)
def test_built_model_computes_the_module(call, shape, module, all_ops):
    built = archlang.build(_spec(call, shape)).double().eval()
    _randomise(built)
    reference = nn.Module()
    reference.x = module.double()
    reference.load_state_dict(built.state_dict(), strict=True)  # same keys and shapes
    x = torch.randn(2, *shape, dtype=torch.float64)
    torch.testing.assert_close(built(x), module.double().eval()(x), rtol=0, atol=1e-12)


def _error(body: str, shape: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        archlang.compile_spec(f"network T() {{\n  input {shape}\n{body}\n}}")
    return info.value


def test_pixel_shuffle_refuses_channels_not_divisible_by_r_squared():
    err = _error("  x: pixel_shuffle(2)", "6x4x4")
    assert err.diagnostics[0].code == "E405" and "divisible by 4" in err.diagnostics[0].message


@pytest.mark.parametrize(
    ("call", "shape", "message"),
    [
        ("pixel_unshuffle(2)", "3x4x5", "pixel_unshuffle(2) needs H and W divisible by 2, got 4×5"),
        ("space_to_depth(4)", "3x6x8", "space_to_depth(4) needs H and W divisible by 4, got 6×8"),
        ("depth_to_space(2)", "6x4x4", "depth_to_space(2) needs channels divisible by 4, got 6"),
    ],
)
def test_depth_space_moves_refuse_sizes_the_factor_does_not_divide(call, shape, message):
    err = _error(f"  x: {call}", shape)
    assert err.diagnostics[0].code == "E405" and err.diagnostics[0].message.startswith(message)


def test_blur_pool_reflect_padding_needs_a_larger_input():
    # torch's reflection pad takes at most size - 1 values from each side
    err = _error("  x: blur_pool(5, padding=2)", "6x2x8")
    assert err.diagnostics[0].code == "E403" and "reflect padding 2×2" in err.diagnostics[0].message
    archlang.compile_spec(_spec('blur_pool(5, padding=2, pad_mode="constant")', (6, 2, 8)))


def test_space_to_depth_receptive_field_is_one_block():
    # after a 3×3 conv (field 3, jump 1) a 2×2 block of its units: field 4, jump 2
    a = archlang.analyze(_spec("conv2d(8, 3)\n  y: space_to_depth(2)\n  z: pixel_unshuffle(2)", (3, 18, 18)))
    y, z = a.nodes["y"].rf.h, a.nodes["z"].rf.h
    assert (y.size, y.stride) == (4, 2) and (z.size, z.stride) == (6, 4)


def test_pixel_shuffle_receptive_field_jump_is_one_over_r():
    # stride-2 conv (jump 2), then pixel_shuffle(2): neighbouring outputs are 1 input pixel apart
    a = archlang.analyze(_spec("conv2d(8, 3, stride=2, padding=1)\n  y: pixel_shuffle(2)", (3, 8, 8)))
    assert a.nodes["x"].rf.h.stride == 2 and a.nodes["y"].rf.h.stride == 1
    assert a.nodes["y"].rf.h.size == a.nodes["x"].rf.h.size == 3


def test_import_maps_the_new_modules_and_round_trips():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.LeakyReLU(0.2),
        nn.GroupNorm(2, 8),
        nn.PReLU(8, init=0.1),
        nn.ELU(0.5),
        nn.Softplus(beta=2),
        nn.Hardtanh(-2, 2),
        nn.Mish(),
        nn.Dropout2d(0.1),
        nn.InstanceNorm2d(8, affine=True),
        nn.PixelShuffle(2),
        nn.ConvTranspose2d(2, 4, 2, stride=2),
        nn.Upsample(scale_factor=2.0, mode="bilinear"),
        nn.AdaptiveMaxPool2d(3),
    ).eval()
    text = archlang.from_module(model, (3, 10, 10))
    for call in (
        "leaky_relu(negative_slope=0.2)",
        "group_norm(2)",
        "prelu(num_parameters=8, init=0.1",
        "elu(alpha=0.5)",
    ):
        assert call in text
    for call in ("hardtanh(min_val=-2.0, max_val=2.0)", "mish", "dropout2d(0.1)", "pixel_shuffle(2)"):
        assert call in text
    assert "adaptive_maxpool(3)" in text and "instance_norm(affine=true)" in text
    assert "conv_transpose(4, 2, stride=2)" in text and 'upsample(scale_factor=2, mode="bilinear")' in text
    built = archlang.build(text).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 10, 10)
    torch.testing.assert_close(built(x), model(x))


def test_upsampling_receptive_fields_have_a_stride_below_one():
    body = (
        "conv2d(8, 3, padding=1)\n  d: maxpool(2)\n  u: upsample(scale_factor=2)\n"
        '  t: conv_transpose(4, 2, stride=2)\n  b: upsample(scale_factor=2, mode="bilinear")'
    )
    a = archlang.analyze(_spec(body, (3, 16, 16)))
    x, d, u, t, b = (a.nodes[n].rf.h for n in "xdutb")
    assert (x.size, x.stride, x.padding) == (3, 1, 1)  # centred on pixel 0
    assert (d.size, d.stride, d.padding) == (4, 2, 1)  # unit 0 centred on pixel 0.5
    # nearest ×2: units 0 and 1 copy the same unit (centred 0.5), a stride of 1, centres 0 and 1
    assert (u.size, u.stride, u.centre2) == (4, 1, 0)
    # 2×2 / 2 transposed conv: one input unit per output; 0 and 1 come from u's unit 0
    # (centre 0), so -1/4 and 1/4 at a stride of 1/2
    assert (t.size, t.stride, t.centre2) == (4, Fraction(1, 2), Fraction(-1, 2))
    # bilinear mixes two neighbours: one more jump of t; half-pixel mapping moves unit 0 by
    # -1/4 of t's jump
    assert (b.size, b.stride, b.centre2) == (Fraction(9, 2), Fraction(1, 4), Fraction(-3, 4))
    assert a.nodes["b"].rf.text() == "4.5×4.5"  # as the text report prints it
    # the report's JSON prints the fractions as numbers
    out = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", "-e", _spec(body, (3, 16, 16)), "--report", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert '"stride": 0.25' in out.stdout and '"size": 4.5' in out.stdout


def test_upsample_needs_size_or_scale_factor():
    err = _error("  x: upsample", "6x4x4")
    assert err.diagnostics[0].code == "E303" and "scale_factor or size" in err.diagnostics[0].message
    err = _error("  x: upsample(scale_factor=2, align_corners=true)", "6x4x4")
    assert "bilinear" in err.diagnostics[0].message


def test_conv_transpose_refuses_output_padding_not_below_stride():
    err = _error("  x: conv_transpose(4, 3, output_padding=1)", "6x4x4")
    assert err.diagnostics[0].code == "E303" and "output_padding" in err.diagnostics[0].message


def test_crop_round_trips_through_import_both_ways():
    # torchvision's CenterCrop module (U-Net's cropped skips are written with it) -> crop
    model = nn.Sequential(nn.Conv2d(3, 4, 3), torchvision.transforms.CenterCrop((5, 6)), nn.ReLU()).eval()
    text = archlang.from_module(model, (3, 10, 11))
    assert "crop((5, 6))" in text
    built = archlang.build(text)
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 10, 11)
    torch.testing.assert_close(built(x), model(x))
    torch.testing.assert_close(built(x), model[2](TF.center_crop(model[0](x), [5, 6])))
    # the generated file's own center_crop, read back as the op it stands for
    again = archlang.from_module(built, (3, 10, 11))
    assert "crop((5, 6))" in again
    # fvcore traces the generated helper (torchvision's center_crop does not trace)
    assert _fvcore(built, (3, 10, 11)) == 4 * 3 * 9 * 8 * 9


def test_crop_moves_the_receptive_field_grid():
    a = archlang.analyze(_spec("conv2d(4, 3, padding=1)\n  y: crop(4)", (3, 9, 9)))
    # unit 0 of the crop is unit round((9 - 4) / 2) = 2 of the conv (torchvision rounds half to even)
    assert a.nodes["y"].rf.h.centre2 == a.nodes["x"].rf.h.centre2 + 2 * 2
    assert a.nodes["y"].rf.h.size == a.nodes["x"].rf.h.size == 3


def test_crop_refuses_to_grow():
    err = _error("  x: crop(5)", "6x4x8")
    assert err.diagnostics[0].code == "E403" and "larger than its 4×8 input" in err.diagnostics[0].message


def test_crop_in_a_sequential_is_the_generated_module_and_reads_back():
    spec = "network T() {\n  input 3x10x11\n  features: {\n    conv2d(4, 3)\n    crop((5, 4))\n    relu\n  }\n}"
    built = archlang.build(spec).eval()
    assert type(built.features[1]).__name__ == "CenterCrop"
    x = torch.randn(2, 3, 10, 11)
    # 8×9 -> 5×4: rows from round(1.5) = 2, columns from round(2.5) = 2
    torch.testing.assert_close(built(x), torch.relu(built.features[0](x)[..., 2:7, 2:6]))
    assert "crop((5, 4))" in archlang.from_module(built, (3, 10, 11))


@pytest.mark.parametrize(
    "layer",
    [
        "conv_transpose(2, 3, stride=2, padding=1)",
        "conv_transpose(2, 4, stride=2, padding=1)",
        "conv_transpose(2, 2, stride=2)",
        "conv_transpose(2, 3, stride=3, dilation=2)",
        "upsample(scale_factor=2)",
        'upsample(scale_factor=2, mode="bilinear")',
        'upsample(scale_factor=3, mode="bilinear")',
        "pixel_shuffle(2)",
        "depth_to_space(2)",
    ],
)
def test_upsampling_field_size_is_the_widest_gradient_support(layer):
    """After a 3×3 conv (a field of 3), the field size is the most input pixels any output
    unit away from the borders depends on: the support of its gradient, all weights 1."""
    spec = _spec(f"conv2d(4, 3)\n  y: {layer}", (1, 14, 14))
    rf = archlang.analyze(spec).nodes["y"].rf.h
    model = archlang.build(spec).double()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0 if p.dim() > 1 else 0.0)
    out_h = archlang.analyze(spec).nodes["y"].shape[1]
    sizes = []
    for i in range(out_h // 4, out_h - out_h // 4):  # interior units: no border clipping
        x = torch.ones(1, 1, 14, 14, dtype=torch.float64, requires_grad=True)
        model(x)[0, 0, i, out_h // 2].backward()
        rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
        sizes.append(int(rows[-1] - rows[0] + 1))
    assert rf.size == max(sizes)


def test_a_decoder_of_the_new_ops_equals_the_independent_reference():
    """Built (the emitted code) against tests/graph_reference.py, which evaluates the graph
    node by node with torch.nn.functional and shares nothing with the code generator."""
    spec = """network Dec() {
  input 4x9x10
  a: conv2d(8, 3, padding=1)
  g: group_norm(4)
  p: prelu(8)
  t: conv_transpose(8, 3, stride=2, padding=1, output_padding=1, groups=2)
  i: instance_norm(affine=true, track_running_stats=true)
  l: leaky_relu(0.2)
  c: crop((15, 16))
  u: upsample(scale_factor=2, mode="bilinear")
  e: elu(0.5)
  s: softplus(beta=2)
  h: hardtanh(-1.5, 2)
  m: mish
  d: dropout2d(0.2)
  ps: pixel_shuffle(2)
  pu: pixel_unshuffle(2)
  sd: space_to_depth(2)
  ds: depth_to_space(2)
  n: upsample(size=(20, 21))
  bp: blur_pool
  q: adaptive_maxpool((5, 4))
}"""
    compiled = archlang.compile_spec(spec)
    built = archlang.build(compiled).double().eval()
    _randomise(built)
    x = torch.randn(2, 4, 9, 10, dtype=torch.float64)
    expected = evaluate(compiled.graph, built.state_dict(), x)
    torch.testing.assert_close(built(x), expected, rtol=0, atol=1e-10)
    assert tuple(expected.shape[1:]) == compiled.graph.nodes["q"].shape


def test_a_bad_record_is_refused_where_it_is_written():
    from archlang.ops import RECORDS, Op
    from archlang.ops.record import OpRecord
    from archlang.ops.torch_form import TorchOp

    good = RECORDS[Op.PRELU]
    with pytest.raises(ValueError, match="role"):
        OpRecord(Op.PRELU, good.signature, good.shape, good.torch, good.diagram, role="activation")
    with pytest.raises(ValueError, match="no functional form"):
        OpRecord(Op.PRELU, good.signature, good.shape, TorchOp("nn.PReLU", functional="F.prelu"), good.diagram,
                 params=good.params)  # fmt: skip
    with pytest.raises(ValueError, match="width"):
        OpRecord(Op.PRELU, good.signature, good.shape, TorchOp("nn.PReLU", width="double"), good.diagram)
