"""One test per language construct; expected graph facts (paths, attributes, shapes) are
worked out by hand in each test (conv/pool sizes: floor((H + 2p - d(k-1) - 1) / s) + 1)."""

from __future__ import annotations

import pytest
from spec_graph import attrs, graph, ids, shape

from archlang.diagnostics import SpecError
from archlang.ops import ALIASES, CALLABLE_OPS, Op

# ---- network parameters -----------------------------------------------------------------


def test_typed_parameters_and_defaults():
    g = graph(
        "  conv(width * 2, 3, bias=use_bias)\n  flatten\n  dropout(p)\n  fc: linear(num_classes)",
        header='network N(width: int = 4, p: float = 0.25, use_bias: bool = false, name: str = "n", '
        "num_classes: int = width + 6)",
    )
    assert attrs(g, "conv")["out_channels"] == 8 and attrs(g, "conv")["bias"] is False
    assert attrs(g, "dropout")["p"] == 0.25
    assert shape(g, "fc") == (10,)  # the default 4 + 6 may use an earlier parameter
    assert g.params == {"width": 4, "p": 0.25, "use_bias": False, "name": "n", "num_classes": 10}


def test_set_parameters_via_api_params():
    header = "network N(width: int = 4, deep: bool = false, p: float = 0.5)"
    body = "  conv(width, 1)\n  if deep { conv(width, 1) }\n  dropout(p)"
    g = graph(body, header, params={"width": 16, "deep": True})
    assert attrs(g, "conv")["out_channels"] == 16 and "conv_2" in g
    # the CLI passes strings: they are read as values of the parameter's type
    g = graph(body, header, params={"width": "12", "deep": "true", "p": "0.1"})
    assert attrs(g, "conv_2")["out_channels"] == 12 and attrs(g, "dropout")["p"] == 0.1
    with pytest.raises(SpecError) as info:
        graph(body, header, params={"width": "2.5"})
    assert info.value.diagnostics[0].code == "E205"


def test_input_image_and_vector():
    g = graph("  relu")
    assert g.input == "input" and shape(g, "input") == (3, 32, 32)
    g = graph("  fc: linear(4)", input_line="input 10")
    assert shape(g, "input") == (10,) and shape(g, "fc") == (4,)


# ---- convolutions -----------------------------------------------------------------------


def test_asymmetric_kernels():
    g = graph("  a: conv(8, 1x7, padding=(0, 3))\n  b: conv(8, (7, 1), padding=(3, 0))\n  c: conv(8, 1x3)")
    assert attrs(g, "a")["kernel_size"] == (1, 7) and attrs(g, "a")["padding"] == (0, 3)
    assert shape(g, "a") == (8, 32, 32) and shape(g, "b") == (8, 32, 32)
    assert shape(g, "c") == (8, 32, 30)  # 1x3 valid: W = 32 - 2


@pytest.mark.parametrize(
    "padding, resolved, out",
    [
        ("1", (1, 1), (4, 32, 32)),
        ("(0, 1)", (0, 1), (4, 30, 32)),
        ('"same"', (1, 1), (4, 32, 32)),
        ('"valid"', (0, 0), (4, 30, 30)),
    ],
)
def test_conv_padding_forms(padding, resolved, out):
    g = graph(f"  c: conv(4, 3, padding={padding})")
    assert attrs(g, "c")["padding"] == resolved and shape(g, "c") == out


def test_conv_stride_dilation_groups_bias():
    g = graph(
        '  a: conv(6, 3, stride=2, padding=1)\n  b: conv(6, 3, dilation=2, padding="same")\n'
        "  c: conv(12, 3, groups=3, bias=false)\n  d: conv(4, 5, dilation=2)"
    )
    assert shape(g, "a") == (6, 16, 16)  # floor((32 + 2 - 3) / 2) + 1
    assert attrs(g, "b")["padding"] == (2, 2) and shape(g, "b") == (6, 16, 16)
    assert attrs(g, "c")["groups"] == 3 and attrs(g, "c")["bias"] is False and shape(g, "c") == (12, 14, 14)
    assert shape(g, "d") == (4, 6, 6)  # 14 - 2 * (5 - 1)


# ---- conv units -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "style, nodes, bias",
    [
        ("conv2d", ["a"], True),
        ("conv_relu", ["a/conv", "a/relu"], True),
        ("conv_bn", ["a/conv", "a/bn"], False),
        ("conv_bn_relu", ["a/conv", "a/bn", "a/relu"], False),
    ],
)
def test_unit_styles(style, nodes, bias):
    g = graph(f"  unit conv = {style}\n  a: conv(8, 3)")
    assert ids(g)[1:] == nodes
    assert attrs(g, nodes[0])["bias"] is bias
    if len(nodes) > 1:
        assert g.scopes["a"].kind == "unit"


def test_unit_arguments_and_default_unit():
    g = graph("  unit conv = conv_bn_relu(eps=0.001, momentum=0.2, bias=true)\n  a: conv(8, 3)")
    assert attrs(g, "a/bn")["eps"] == 0.001 and attrs(g, "a/bn")["momentum"] == 0.2
    assert attrs(g, "a/conv")["bias"] is True
    g = graph("  a: conv(8, 3)")  # without a `unit` statement, conv is a plain conv2d with bias
    assert g.nodes["a"].op is Op.CONV2D and attrs(g, "a")["bias"] is True


def test_block_level_unit_override_is_scoped():
    pre = "block Plain() {\n  unit conv = conv2d\n  inner: conv(4, 1)\n}"
    g = graph("  unit conv = conv_bn_relu\n  a: conv(4, 1)\n  p: Plain()\n  b: conv(4, 1)", pre=pre)
    assert "a/bn" in g and "b/bn" in g
    assert g.nodes["p/inner"].op is Op.CONV2D and "p/inner/bn" not in g


# ---- every op ---------------------------------------------------------------------------

OP_CASES = {  # call -> expected output shape on a 3x32x32 input (per sample)
    "transform_input": (3, 32, 32),
    "conv2d(5, 3)": (5, 30, 30),
    "std_conv2d(5, 3)": (5, 30, 30),
    "scaled_std_conv2d(5, 3, padding=1)": (5, 32, 32),
    "eca(3)": (3, 32, 32),
    "batchnorm": (3, 32, 32),
    "relu": (3, 32, 32),
    "tanh": (3, 32, 32),
    "sigmoid": (3, 32, 32),
    "relu6": (3, 32, 32),
    "silu": (3, 32, 32),
    "hardswish": (3, 32, 32),
    "hardsigmoid": (3, 32, 32),
    'gelu(approximate="tanh")': (3, 32, 32),
    "stochastic_depth(0.1)": (3, 32, 32),
    "channel_shuffle(3)": (3, 32, 32),
    "split(2, 1)": (1, 32, 32),  # torch.chunk: 3 channels in chunks of ceil(3 / 2) = 2, then 1
    "spatial_mean": (3,),
    "pad((0, 1, 2, 3))": (3, 33, 37),  # (top, bottom, left, right): 32 + 0 + 1, 32 + 2 + 3
    "maxpool(2)": (3, 16, 16),  # stride defaults to the kernel
    "avgpool(3, stride=2, ceil_mode=true)": (3, 16, 16),  # ceil(29 / 2) + 1 = 16, last window starts at 30 < 32
    "adaptive_avgpool(4)": (3, 4, 4),
    "lrn(5)": (3, 32, 32),
    "dropout(0.3)": (3, 32, 32),
    "flatten": (3072,),
    "softmax": (3, 32, 32),
    "radix_softmax(3)": (3, 32, 32),
    "attention(1)": (1, 32, 32),  # one head: a third of the channels each for q, k, v
    "identity": (3, 32, 32),
    "global_avgpool": (3, 1, 1),
    "max_pool(3, stride=2)": (3, 15, 15),
    "avg_pool(2, stride=2)": (3, 16, 16),
    "batch_norm(eps=0.001)": (3, 32, 32),
    "frozen_batchnorm(eps=0.001)": (3, 32, 32),
    "layer_scale(0.1)": (3, 32, 32),
    "permute((0, 2, 3, 1))": (32, 32, 3),  # channels-last (H, W, C)
    "layernorm2d": (3, 32, 32),
    "pixel_shuffle(1)": (3, 32, 32),
    "pixel_unshuffle(2)": (12, 16, 16),
    "blur_pool": (3, 16, 16),  # reflect-pad 1, 3×3 / 2: (32 + 2 - 3) // 2 + 1
    "space_to_depth(4)": (48, 8, 8),
    "depth_to_space(1)": (3, 32, 32),
    "leaky_relu(0.1)": (3, 32, 32),
    "prelu(3)": (3, 32, 32),
    "elu": (3, 32, 32),
    "mish": (3, 32, 32),
    "softplus": (3, 32, 32),
    "hardtanh(0, 6)": (3, 32, 32),
    "square": (3, 32, 32),
    "star_relu(scale=0.8)": (3, 32, 32),
    "dropout2d": (3, 32, 32),
    "group_norm(3)": (3, 32, 32),
    "instance_norm": (3, 32, 32),
    "adaptive_maxpool(4)": (3, 4, 4),
    "global_maxpool": (3, 1, 1),
    "conv_transpose(8, 2, stride=2)": (8, 64, 64),
    "upsample(scale_factor=2)": (3, 64, 64),
    "interpolate(size=40)": (3, 40, 40),
    "crop((30, 28))": (3, 30, 28),
    "narrow(1, 2)": (2, 32, 32),
    "scale(0.5)": (3, 32, 32),
}


@pytest.mark.parametrize("call", list(OP_CASES))
def test_every_op(call):
    g = graph(f"  x: {call}")
    assert shape(g, "x") == OP_CASES[call]


def test_linear_and_fc():
    g = graph("  flatten\n  a: linear(7)\n  b: fc(3, bias=false)")
    assert shape(g, "a") == (7,) and attrs(g, "b")["bias"] is False and g.nodes["b"].op is Op.LINEAR


def test_op_cases_cover_every_callable_op_and_alias():
    names = {call.split("(")[0] for call in OP_CASES} | {"linear", "fc", "layernorm"}  # layernorm: test_layout
    names |= {"batchnorm1d"}  # needs a flat input: tests/test_import_timm_ops.py
    assert names == set(CALLABLE_OPS) | set(ALIASES)


def test_op_defaults():
    g = graph("  m: maxpool(3)\n  b: batchnorm\n  l: lrn(5)\n  d: dropout")
    assert attrs(g, "m") == {
        "kernel_size": (3, 3),
        "stride": None,
        "padding": (0, 0),
        "dilation": (1, 1),
        "ceil_mode": False,
    }
    assert attrs(g, "b") == {"eps": 1e-5, "momentum": 0.1, "affine": True, "zero_init": False}
    assert attrs(g, "l") == {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}
    assert attrs(g, "d") == {"p": 0.5}


# ---- groups -----------------------------------------------------------------------------


def test_concat_order_and_channels():
    g = graph(
        "  m: concat {\n    a: conv(4, 1)\n    b: conv(6, 3, padding=1)\n    maxpool(3, stride=1, padding=1)\n  }"
    )
    assert g.nodes["m/concat"].inputs == ("m/a", "m/b", "m/maxpool")
    assert shape(g, "m/concat") == (4 + 6 + 3, 32, 32)
    assert g.scopes["m"].kind == "group"


def test_add_group_residual():
    g = graph("  c: conv(3, 1)\n  add {\n    conv(3, 3, padding=1)\n    identity\n  }")
    assert g.nodes["add"].op is Op.ADD
    assert g.nodes["add"].inputs == ("conv", "identity")
    assert g.nodes["conv"].inputs == ("c",) and g.nodes["identity"].inputs == ("c",)
    assert shape(g, "add") == (3, 32, 32)


def test_nested_groups():
    g = graph(
        "  m: concat {\n    conv(2, 1)\n    { conv(4, 1); concat { conv(1, 1x3, padding=(0, 1)); "
        "conv(2, 3x1, padding=(1, 0)) } }\n  }"
    )
    # the inner concat (1 + 2 channels) is auto-named; the outer merge is m/concat
    assert shape(g, "m/concat_2") == (3, 32, 32)
    assert shape(g, "m/concat") == (2 + 3, 32, 32)
    assert g.nodes["m/concat"].inputs == ("m/conv", "m/concat_2")


def test_unnamed_groups_in_a_labelled_sequence():
    # DenseNet's dense block: one unnamed concat per layer in a labelled sequence; the
    # merge nodes are counted by mode (they used to collide as `s/concat`, E302).
    g = graph("  s: {\n    concat { identity; a: conv(4, 1) }\n    concat { identity; b: conv(4, 1) }\n  }")
    assert shape(g, "s/concat") == (3 + 4, 32, 32)
    assert shape(g, "s/concat_2") == (3 + 4 + 4, 32, 32)
    assert g.nodes["s/b"].inputs == ("s/concat",) and g.nodes["s/concat_2"].inputs[1] == "s/b"


# ---- blocks -----------------------------------------------------------------------------

BLOCKS = """
block Pair(c: int, k: int = 3, double: bool = false) {
  const mid = if double then c * 2 else c
  first: conv(mid, k, padding=k // 2)
  second: conv(c, 1)
}
block Stage(c: int) {
  p: Pair(c)
  q: Pair(c + 1, k=5, double=true)
}
"""


def test_blocks_with_params_expressions_defaults_and_nesting():
    g = graph("  s: Stage(4)", pre=BLOCKS)
    assert attrs(g, "s/p/first")["out_channels"] == 4 and attrs(g, "s/p/first")["kernel_size"] == (3, 3)
    assert attrs(g, "s/q/first")["out_channels"] == 10 and attrs(g, "s/q/first")["padding"] == (2, 2)
    assert shape(g, "s/q/second") == (5, 32, 32)
    scopes = g.scopes
    assert scopes["s"].kind == "block" and scopes["s"].template == "Stage" and scopes["s"].args == {"c": 4}
    assert scopes["s/q"].args == {"c": 5, "k": 5, "double": True}


def test_auto_names_count_up():
    g = graph("  conv(4, 1)\n  relu\n  conv(4, 1)\n  relu")
    assert ids(g) == ["input", "conv", "relu", "conv_2", "relu_2"]


# ---- loops ------------------------------------------------------------------------------


def test_repeat_with_name_template():
    g = graph('  repeat 3 as i {\n    "layer{i}": conv(4 * (i + 1), 1)\n  }')
    assert ids(g)[1:] == ["layer0", "layer1", "layer2"]
    assert attrs(g, "layer2")["out_channels"] == 12
    assert g.nodes["layer1"].inputs == ("layer0",)


def test_for_over_tuples_and_range():
    g = graph(
        '  for (name, c) in [("a", 2), ("b", 5)] {\n    "{name}": conv(c, 1)\n  }\n'
        '  for k in range(2) {\n    "x{k}_{k + 1}": relu\n  }'
    )
    assert ids(g)[1:] == ["a", "b", "x0_1", "x1_2"]
    assert shape(g, "b") == (5, 32, 32)


def test_for_builds_concat_branches():
    g = graph("  m: concat {\n    for c in [1, 2, 3] {\n      conv(c, 1)\n    }\n  }")
    assert shape(g, "m/concat") == (6, 32, 32)
    assert len(g.nodes["m/concat"].inputs) == 3


# ---- several names, prelude -------------------------------------------------------------


def test_multi_label_inline_block():
    g = graph("  a, b: factorized(8, 7)")
    # prelude factorized(out, n, mid=out, order="1xn"): 1xn then nx1 with "same" padding
    assert ids(g)[1:] == ["a", "b"]
    assert attrs(g, "a")["kernel_size"] == (1, 7) and attrs(g, "a")["padding"] == (0, 3)
    assert attrs(g, "b")["kernel_size"] == (7, 1) and attrs(g, "b")["padding"] == (3, 0)
    assert shape(g, "b") == (8, 32, 32)


def test_multi_label_inline_sequence():
    g = graph("  x, y: { conv(4, 1); relu }")
    assert ids(g)[1:] == ["x", "y"] and g.nodes["y"].op is Op.RELU


def test_prelude_factorized_order_and_mid():
    g = graph('  a, b: factorized(6, 5, mid=3, order="nx1")')
    assert attrs(g, "a")["kernel_size"] == (5, 1) and attrs(g, "a")["out_channels"] == 3
    assert attrs(g, "b")["kernel_size"] == (1, 5) and attrs(g, "b")["out_channels"] == 6


def test_prelude_stacked3x3():
    g = graph("  a, b: stacked3x3(8, mid=4)\n  c, d: stacked3x3(8, stride=2)")
    assert attrs(g, "a")["out_channels"] == 4 and attrs(g, "b")["padding"] == (1, 1)
    assert shape(g, "b") == (8, 32, 32)
    # stride 2: the second conv is unpadded: floor((32 - 3) / 2) + 1 = 15
    assert attrs(g, "d")["padding"] == (0, 0) and shape(g, "d") == (8, 15, 15)
