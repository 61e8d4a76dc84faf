"""archlang.importer.blocks: repeated module classes become blocks without changing the
network. The law: the spec of ``abstract(tree)`` compiles to the same layers (count, op,
shape, parameters, MACs per layer; the same names for every layer with parameters) and
the same torch state_dict keys as the flat tree's spec."""

from __future__ import annotations

import random

import import_trees as trees
import pytest

import archlang
from archlang.importer import tree
from archlang.importer.blocks import abstract
from archlang.importer.text import network_text


def analysis(net: tree.Network):
    return archlang.analyze(network_text(net))


def layers(result) -> list:
    return sorted((str(c.op.value), c.shape, c.params, c.macs) for c in result.nodes.values())


def named(result) -> dict:
    return {c.id: (c.op, c.shape, c.params, c.macs) for c in result.nodes.values() if c.params}


def assert_same_network(flat: tree.Network, readable: tree.Network, keys: bool = True) -> None:
    a, b = analysis(flat), analysis(readable)
    assert len(a.nodes) == len(b.nodes)
    assert layers(a) == layers(b)
    assert named(a) == named(b)
    assert a.totals == b.totals
    if keys:
        ka = archlang.build(network_text(flat)).state_dict().keys()
        kb = archlang.build(network_text(readable)).state_dict().keys()
        assert list(ka) == list(kb)


@pytest.mark.parametrize("make", [trees.resnet, trees.googlenet_like])
def test_law_hand_made(make):
    flat = make()
    readable = abstract(flat)
    assert readable.blocks, "something was abstracted"
    assert_same_network(flat, readable)


def _calls(items, op):
    out = []
    for it in items:
        if isinstance(it, tree.Call) and it.op == op:
            out.append(it)
        elif isinstance(it, tree.Repeat):
            out += [c for c in _calls(it.body, op) for _ in range(it.count)]
        elif isinstance(it, (tree.Instance, tree.Seq)):
            out += _calls(it.body.items if isinstance(it, tree.Instance) else it.items, op)
    return out


def _bound(blk: tree.BlockDef, call: tree.Call) -> dict:
    """The value of every block parameter at ``call``."""
    values = {name: default for name, _, default in blk.params}
    values.update(zip([name for name, _, _ in blk.params], call.args))
    values.update(dict(call.kwargs))
    return values


def test_resnet_bottleneck_parameters():
    stages = (3, 2, 2)
    readable = abstract(trees.resnet(stages, width=8))
    [blk] = readable.blocks
    assert blk.name == "Bottleneck"
    params = {name: (typ, default) for name, typ, default in blk.params}
    assert params["stride"] == ("int", 1) and params["downsample"] == ("bool", False)
    calls = _calls(readable.body.items, "Bottleneck")
    expected = [(8 * 2**s, 2 if s and j == 0 else 1, j == 0) for s, n in enumerate(stages) for j in range(n)]
    assert [tuple(_bound(blk, c)[k] for k in ("channels", "stride", "downsample")) for c in calls] == expected
    # conv3 is 4x the width: an expression, not another parameter.
    assert any(isinstance(v, tree.Expr) and v.text == "channels * 4" for v in _args(blk.body))
    # layer1's 2nd and 3rd blocks are one `repeat 2`; layer2 has a run of one only.
    layer1 = readable.body.items[3]
    assert isinstance(layer1.body.items[1], tree.Repeat) and layer1.body.items[1].count == 2
    assert not any(isinstance(i, tree.Repeat) for i in readable.body.items[4].body.items)


def _args(items) -> list:
    out = []
    for it in items:
        if isinstance(it, tree.Call):
            out += list(it.args) + [v for _, v in it.kwargs]
        elif isinstance(it, tree.If):
            out += _args(it.then) + _args(it.orelse)
        elif isinstance(it, tree.Seq):
            out += _args(it.items)
        elif isinstance(it, tree.Group):
            out += _args(it.branches)
        elif isinstance(it, tree.Instance):
            out += _args(it.body.items)
    return out


def test_nested_blocks_and_parameters_of_each_instance():
    readable = abstract(trees.googlenet_like())
    assert [b.name for b in readable.blocks] == ["BasicConv2d", "Inception"]
    inception = readable.blocks[1]
    assert "BasicConv2d" in {c.op for c in _calls(inception.body[0].branches, "BasicConv2d")}
    # Every Inception call, expanded, gives back the widths the tree was made with.
    widths = {
        "inception3a": (8, 12, 16, 4, 8, 8),
        "inception3b": (16, 16, 24, 4, 12, 8),
        "inception4a": (24, 12, 26, 4, 12, 8),
    }
    for call in _calls(readable.body.items, "Inception"):
        env = _bound(inception, call)
        convs = [_bound(readable.blocks[0], c) for c in _calls(inception.body[0].branches, "BasicConv2d")]
        got = tuple(_eval(c["channels"], env) for c in convs)
        assert got == widths[call.label]


def _eval(v, env):
    if isinstance(v, tree.Param):
        return env[v.name]
    if isinstance(v, tree.Expr):
        return eval(v.text, {}, dict(env))  # noqa: S307 (our own `p * k` text)
    return v


def _cna(path, label, out, act: bool):
    items = [trees.conv("0", out, 3, padding=1, bias=False), trees.bn("1")] + (
        [tree.Call("relu", label="2")] if act else []
    )
    return tree.Instance("ConvNormAct", path, tree.Seq(items), label)


def test_optional_layer_becomes_if_without_else():
    body = [_cna("a", "a", 8, True), _cna("b", "b", 8, False), _cna("c", "c", 16, True)]
    flat = tree.Network("N", (3, 16, 16), tree.Seq(body))
    readable = abstract(flat)
    [blk] = readable.blocks
    cond = [it for it in blk.body if isinstance(it, tree.If)]
    assert len(cond) == 1 and not cond[0].orelse and [c.op for c in cond[0].then] == ["relu"]
    assert_same_network(flat, readable)


def _unit(path, label, mode):
    branches = [trees.conv("x", 8, 1), trees.conv("y", 8, 3, padding=1)]
    return tree.Instance("Unit", path, tree.Seq([tree.Group(mode, branches)]), label)


def test_incompatible_instances_split():
    modes = ["add", "concat", "add", "concat", "mul"]
    body = [_unit(f"u{i}", f"u{i}", m) for i, m in enumerate(modes)]
    flat = tree.Network("N", (8, 8, 8), tree.Seq(body))
    readable = abstract(flat)
    assert [b.name for b in readable.blocks] == ["Unit", "Unit_2"]
    ops = [getattr(i, "op", None) for i in readable.body.items]
    assert ops == ["Unit", "Unit_2", "Unit", "Unit_2", None]  # the lone `mul` one stays inline


def test_class_nested_in_itself_stays_inline():
    def node(path, label, inner):
        items = [trees.conv("c", 4, 1)] + ([inner] if inner else [])
        return tree.Instance("Node", path, tree.Seq(items), label)

    flat = tree.Network("N", (3, 8, 8), tree.Seq([node("a", "a", node("a.b", "b", None)), node("c", "c", None)]))
    readable = abstract(flat)
    assert readable.blocks == []
    assert_same_network(flat, readable, keys=False)


def test_repeat_needs_positional_labels():
    convs = [trees.conv(name, 8, 1) for name in ("0", "1", "x", "y", "4", "5", "6")]
    flat = tree.Network("N", (3, 8, 8), tree.Seq([tree.Instance("Sequential", "s", tree.Seq(convs), "s", True)]))
    readable = abstract(flat)
    items = readable.body.items[0].body.items
    assert [type(i).__name__ for i in items] == ["Repeat", "Call", "Call", "Repeat"]
    assert [items[0].count, items[3].count] == [2, 3]
    assert_same_network(flat, readable)


def test_deterministic_and_input_untouched():
    flat = trees.googlenet_like()
    before = network_text(flat)
    first = network_text(abstract(flat))
    assert network_text(flat) == before
    assert network_text(abstract(trees.googlenet_like())) == first


def test_counted_labels_become_repeat_with_a_count_parameter():
    flat = trees.densenet((3, 5))
    readable = abstract(flat)
    block = next(b for b in readable.blocks if b.name == "DenseBlock")
    [loop] = block.body
    assert isinstance(loop, tree.Repeat) and isinstance(loop.count, tree.Param) and loop.var
    [param] = block.params
    assert param[0] == loop.count.name and param[1] == "int"
    calls = [c for c in readable.body.items if isinstance(c, tree.Call) and c.op == "DenseBlock"]
    assert [c.args for c in calls] == [(3,), (5,)]
    assert_same_network(flat, readable)


def _cna_seq(path, label, convs):
    """A MobileNet-like residual-free block: optional expansion, depthwise, projection."""
    items = [_cna(f"{path}.conv.{k}", str(k), out, True) for k, out in enumerate(convs)]
    items += [trees.conv(str(len(convs)), 8, 1, bias=False), trees.bn(str(len(convs) + 1))]
    conv = tree.Instance("Sequential", f"{path}.conv", tree.Seq(items), "conv", container=True)
    return tree.Instance("InvertedResidual", path, tree.Seq([conv]), label)


def test_positional_labels_are_implicit_and_optional_layers_align_by_arguments():
    # Block 1 has no expansion conv; its depthwise conv is "0" there and "1" elsewhere.
    body = [_cna_seq("f1", "f1", [8]), _cna_seq("f2", "f2", [16, 8]), _cna_seq("f3", "f3", [24, 8])]
    flat = tree.Network("N", (3, 16, 16), tree.Seq(body))
    readable = abstract(flat)
    block = next(b for b in readable.blocks if b.name == "InvertedResidual")
    [conv] = block.body
    assert all(i.label is None for i in conv.body.items if isinstance(i, tree.Call))
    first = conv.body.items[0]
    assert isinstance(first, tree.If) and not first.orelse and first.then[0].op == "ConvNormAct"
    assert first.cond.name == "with_conv_norm_act"
    # The depthwise conv (8 wide in every instance) is one layer of the template: a literal.
    assert conv.body.items[1].args == (8,)
    assert_same_network(flat, readable)


def test_parameter_names_grow_by_labels_only_where_they_clash():
    readable = abstract(trees.googlenet_like())
    names = [name for name, _, _ in next(b for b in readable.blocks if b.name == "Inception").params]
    assert names[0] == "branch1_channels" and "branch2_channels" in names and "branch2_channels_2" in names
    assert [name for name, _, _ in readable.blocks[0].params] == ["channels", "kernel"]


def test_a_constant_of_an_optional_layer_takes_the_parameter_of_its_name():
    # As in ResNet-18: only strided blocks have a downsample, so its stride is always 2
    # there; written `stride=stride`, as a person would (specs/resnet.arch).
    items = [trees.bottleneck(f"l.{j}", str(j), 8, 2 if j in (1, 3) else 1, j in (1, 3)) for j in range(5)]
    flat = tree.Network("N", (32, 16, 16), tree.Seq([tree.Instance("Sequential", "l", tree.Seq(items), "l", True)]))
    readable = abstract(flat)
    [blk] = readable.blocks
    [cond] = [i for i in blk.body[0].branches if isinstance(i, tree.If)]
    conv = cond.then[0].body.items[0]
    assert dict(conv.kwargs)["stride"] == tree.Param("stride")
    assert "padding" not in dict(conv.kwargs)  # defaults everywhere stay omitted
    assert_same_network(flat, readable)


@pytest.mark.parametrize("seed", range(40))
def test_law_random_trees(seed):
    flat = trees.random_network(random.Random(seed))
    assert_same_network(flat, abstract(flat), keys=False)
