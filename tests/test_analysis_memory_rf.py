"""Activation memory and receptive fields on small networks, against step-by-step hand
counts (docs/analysis.md, "Activation memory") and against the support of the gradient of
one output unit in the equivalent torch layers (the receptive field by definition)."""

from __future__ import annotations

import torch
from torch import nn

import archlang
from archlang.analysis.memory import peak_live
from archlang.ops import Op

# ---- activation memory -------------------------------------------------------------------


def test_views_keep_their_source_alive_and_add_nothing():
    a = archlang.analyze("""network T() {
      input 3x8x8
      c: conv2d(4, 3, padding=1)
      d: dropout(0.5)
      same: identity
      flatten
      fc: linear(10)
    }""")
    # elements per sample: input 192, c 256, d / same / flatten: views of c, fc 10.
    # step input 192 | c 192 + 256 = 448 | d 256 | same 256 | flatten 256 | fc 256 + 10
    # -> peak 448 during c (a view counted as a copy would make 512 at its step)
    assert (a.peak_activation_bytes, a.peak_at) == (448 * 4, "c")


def test_a_tie_goes_to_the_first_node_that_reaches_the_peak():
    a = archlang.analyze("""network T() {
      input 3x8x8
      c: conv2d(3, 3, padding=1)
      r: relu
    }""")
    # step input 192 | c 192 + 192 = 384 | r 192 + 192 = 384
    assert (a.peak_activation_bytes, a.peak_at) == (384 * 4, "c")


def test_the_network_output_stays_live_to_the_end():
    # x feeds y (the output) and z; y is produced first but, being the output, is still
    # held when z runs: step x 10 | y 10 + 100 | z 10 + 100 + 1000 = 1110
    order = ["x", "y", "z"]
    ops = {"x": Op.INPUT, "y": Op.CONV2D, "z": Op.CONV2D}
    inputs = {"x": [], "y": ["x"], "z": ["x"]}
    nbytes = {"x": 10, "y": 100, "z": 1000}
    assert peak_live(order, ops, inputs, nbytes, {"y"}) == (1110, "z")
    assert peak_live(order, ops, inputs, nbytes, {"z"}) == (1010, "z")  # y dies after its step


# ---- receptive fields ----------------------------------------------------------------------


def gradient_support(model: nn.Module, shape: tuple[int, int, int], i: int, j: int):
    """(size, first pixel) along H and W of the input pixels that output unit (i, j) of
    channel 0 depends on, with every weight 1 and every bias 0 (no cancellation)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.constant_(m.weight, 1.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    x = torch.ones(1, *shape, requires_grad=True)
    model(x)[0, 0, i, j].backward()
    grad = x.grad[0].abs().sum(0)
    rows, cols = grad.sum(1).nonzero().flatten(), grad.sum(0).nonzero().flatten()
    return (int(rows[-1] - rows[0] + 1), int(rows[0])), (int(cols[-1] - cols[0] + 1), int(cols[0]))


def test_a_padded_1x1_conv_shifts_the_field():
    rf = archlang.analyze("network T() {\n input 1x6x6\n c: conv2d(2, 1, padding=1)\n}").nodes["c"].rf
    # one pixel seen, stride 1, and unit i sits on input pixel i - 1 (the padding)
    assert rf.h == rf.w == archlang.analysis.AxisRF(1, 1, 1)
    i = j = 3
    h, w = gradient_support(nn.Conv2d(1, 2, 1, padding=1), (1, 6, 6), i, j)
    assert h == (rf.h.size, i * rf.h.stride - rf.h.padding) and w == (rf.w.size, j * rf.w.stride - rf.w.padding)


def test_dilation_per_axis():
    rf = archlang.analyze("network T() {\n input 1x12x12\n c: conv2d(1, 3, dilation=(1, 2))\n}").nodes["c"].rf
    # effective kernel d * (k - 1) + 1: H 1 * 2 + 1 = 3, W 2 * 2 + 1 = 5
    assert (rf.h.size, rf.w.size) == (3, 5)
    i = j = 3
    h, w = gradient_support(nn.Conv2d(1, 1, 3, dilation=(1, 2)), (1, 12, 12), i, j)
    assert h == (rf.h.size, i * rf.h.stride - rf.h.padding) and w == (rf.w.size, j * rf.w.stride - rf.w.padding)


def test_adaptive_pooling_is_global_unless_the_size_divides():
    nodes = archlang.analyze("""network T() {
      input 2x6x6
      even: adaptive_avgpool((3, 4))
    }""").nodes
    # H: 6 -> 3 is the plain pooling k = s = 2; W: 6 -> 4 has uneven, overlapping bins: global
    assert nodes["even"].rf.h == archlang.analysis.AxisRF(2, 2, 0)
    assert nodes["even"].rf.w.whole


def test_a_merge_with_a_global_branch_is_global():
    rf = (
        archlang.analyze("""network T() {
      input 2x5x5
      m: concat {
        adaptive_avgpool(1)
        maxpool(5)
      }
    }""")
        .nodes["m/concat"]
        .rf
    )
    assert rf.h.whole and rf.w.whole
