"""Per-op compute rows against independent numbers: the ``ALL_OPS`` rows of ADD, LRN,
SOFTMAX, BATCHNORM and TRANSFORM_INPUT, and conv/linear/adaptive pooling on maps that are
not square, against counts worked out by hand below; the ``FLOPS`` rows against fvcore run
on the equivalent hand-written torch layer. Conventions: docs/analysis.md, "Three ways to
count compute".

Shapes have distinct factors (3×4×5 = 60 elements) and the cases tell the plausible slips
apart (two vs three add branches, affine vs not, LRN size 3 vs 5, H vs W, groups, bias).
"""

from __future__ import annotations

import fvcore.nn
import pytest
import torch
from torch import nn

import archlang


def costs(body: str, input_shape: str = "3x4x5"):
    return archlang.analyze(f"network T() {{\n  input {input_shape}\n{body}\n}}").nodes


def fvcore_flops(module: nn.Module, shape: tuple[int, ...]) -> int:
    counter = fvcore.nn.FlopCountAnalysis(module.eval(), (torch.zeros(1, *shape),))
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return counter.total()


# ---- batch norm ------------------------------------------------------------------------


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_counts(affine):
    nodes = costs(f"  b: batchnorm(affine={str(affine).lower()})")
    bn = nodes["b"]
    # fvcore's batchnorm_flop_jit in eval mode: 2 per element with gamma/beta, 1 without;
    # 3 * 4 * 5 = 60 elements
    assert bn.flops == (120 if affine else 60)
    assert bn.flops == fvcore_flops(nn.BatchNorm2d(3, affine=affine), (3, 4, 5))
    # all ops: at inference BN is x * scale_c + shift_c whatever `affine` is (the running
    # statistics alone give a scale and a shift): 2 per element
    assert bn.all_ops == 120
    assert bn.macs == 0
    # parameters: gamma and beta (3 + 3) only with affine; buffers: mean, var (3 + 3) and
    # the one-element num_batches_tracked either way
    assert bn.params == (6 if affine else 0)
    assert bn.buffers == 7
    assert bn.buffers == sum(b.numel() for b in nn.BatchNorm2d(3, affine=affine).buffers())


# ---- add -------------------------------------------------------------------------------


@pytest.mark.parametrize("branches", [2, 3, 4])
def test_add_counts_one_add_per_extra_branch(branches):
    body = "  s: add {\n" + "\n".join(["    identity"] * branches) + "\n  }"
    nodes = costs(body)
    add = nodes["s/add"]
    # summing k tensors of 60 elements takes k - 1 additions per element
    assert add.all_ops == {2: 60, 3: 120, 4: 180}[branches]
    assert add.macs == add.flops == 0


def test_add_is_free_in_fvcore():
    class Sum3(nn.Module):
        def forward(self, x):
            return x + x * 1 + x  # aten::add and aten::mul: not in fvcore's supported set

    assert fvcore_flops(Sum3(), (3, 4, 5)) == 0
    assert costs("  s: add {\n    identity\n    identity\n  }")["s/add"].flops == 0


# ---- local response normalisation -------------------------------------------------------


@pytest.mark.parametrize("size", [3, 5])
def test_lrn_counts(size):
    nodes = costs(f"  n: lrn({size})", "6x4x5")
    # per element (PyTorch's LocalResponseNorm): square 1, sum over `size` channels
    # size - 1, times alpha/size 1, plus k 1, pow beta 1, divide 1 -> size + 4
    per_element = {3: 1 + 2 + 1 + 1 + 1 + 1, 5: 1 + 4 + 1 + 1 + 1 + 1}[size]
    assert nodes["n"].all_ops == per_element * 6 * 4 * 5
    assert nodes["n"].flops == 0 == fvcore_flops(nn.LocalResponseNorm(size), (6, 4, 5))
    assert nodes["n"].params == nodes["n"].buffers == nodes["n"].macs == 0


# ---- softmax ---------------------------------------------------------------------------


def test_softmax_counts():
    nodes = costs("  flatten\n  fc: linear(7)\n  p: softmax")
    # 7 outputs: exp 7, sum 7 (six adds plus the first into the accumulator), divide 7
    assert nodes["p"].all_ops == 21
    assert nodes["p"].flops == 0 == fvcore_flops(nn.Softmax(dim=1), (7,))
    # the linear layer before it: 60 inputs x 7 outputs, with bias -> 2 ops per MAC
    assert nodes["fc"].macs == nodes["fc"].flops == 420
    assert nodes["fc"].flops == fvcore_flops(nn.Linear(60, 7), (60,))
    assert nodes["fc"].all_ops == 840


# ---- transform_input -------------------------------------------------------------------


class TransformInput(nn.Module):
    """torchvision's GoogLeNet/Inception3 ``_transform_input``, written out."""

    def forward(self, x):
        x_ch0 = torch.unsqueeze(x[:, 0], 1) * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
        x_ch1 = torch.unsqueeze(x[:, 1], 1) * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
        x_ch2 = torch.unsqueeze(x[:, 2], 1) * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
        return torch.cat((x_ch0, x_ch1, x_ch2), 1)


def test_transform_input_counts():
    nodes = costs("  t: transform_input")
    # one multiply and one add per element: 2 * 60
    assert nodes["t"].all_ops == 120
    assert nodes["t"].flops == 0 == fvcore_flops(TransformInput(), (3, 4, 5))
    assert nodes["t"].macs == nodes["t"].params == 0


def test_googlenet_transform_input_adds_its_ops_to_the_total():
    plain = archlang.analyze("googlenet", aux_logits=False).totals
    with_transform = archlang.analyze("googlenet", aux_logits=False, transform_input=True).totals
    assert with_transform.all_ops - plain.all_ops == 2 * 3 * 224 * 224
    assert with_transform.flops == plain.flops and with_transform.macs == plain.macs


# ---- conv, linear and adaptive pooling on a map that is not square ---------------------------


def test_conv_counts_on_a_non_square_map():
    nodes = costs("  c: conv2d(2, 3, padding=1)\n  g: conv2d(4, 1, groups=2, bias=false)")
    c, g = nodes["c"], nodes["g"]
    # c: weight 2 x 3 x 3 x 3 = 54 elements, applied at 4 x 5 = 20 output positions
    assert c.shape == (2, 4, 5)
    assert c.macs == c.flops == 54 * 20 == 1080
    assert c.flops == fvcore_flops(nn.Conv2d(3, 2, 3, padding=1), (3, 4, 5))
    assert c.params == 54 + 2 and c.all_ops == 2 * 1080
    # g: 2 groups of 1 input channel -> weight 4 x 1 x 1 x 1 = 4 elements, 20 positions;
    # no bias: 80 outputs of a 1-term dot product -> 80 multiplies, no add
    grouped = nn.Conv2d(2, 4, 1, groups=2, bias=False)
    assert g.params == 4 == sum(p.numel() for p in grouped.parameters())
    assert g.macs == g.flops == 80 == fvcore_flops(grouped, (2, 4, 5))
    assert g.all_ops == 80


def test_linear_without_bias():
    fc = costs("  flatten\n  fc: linear(7, bias=false)")["fc"]
    # 60 x 7 weights and nothing else; each of the 7 outputs: 60 multiplies and 59 adds
    assert fc.params == 420 == sum(p.numel() for p in nn.Linear(60, 7, bias=False).parameters())
    assert fc.macs == fc.flops == 420
    assert fc.all_ops == 7 * (60 + 59)


def test_adaptive_pooling_to_a_non_square_size():
    g = costs("  g: adaptive_avgpool((2, 3))")["g"]
    # PyTorch's bins [floor(i*n/o), ceil((i+1)*n/o)): H 4 -> 2: [0,2) [2,4), 4 rows in all;
    # W 5 -> 3: [0,2) [1,4) [3,5), 2 + 3 + 2 = 7 columns; one op per binned element
    assert g.shape == (3, 2, 3)
    assert g.all_ops == 3 * 4 * 7
    assert g.flops == 60 == fvcore_flops(nn.AdaptiveAvgPool2d((2, 3)), (3, 4, 5))  # input numel


# ---- zero rows ---------------------------------------------------------------------------


def test_views_and_copies_cost_nothing():
    nodes = costs("  c: concat {\n    identity\n    identity\n  }\n  d: dropout(0.5)\n  flatten")
    for node in ("c/concat", "d", "flatten"):
        assert (nodes[node].all_ops, nodes[node].flops, nodes[node].macs) == (0, 0, 0), node


def test_relu_is_one_comparison_per_element():
    nodes = costs("  r: relu")
    assert nodes["r"].all_ops == 60
    assert nodes["r"].flops == 0 == fvcore_flops(nn.ReLU(), (3, 4, 5))
