"""The importer's printer (archlang/importer/text.py): every tree node type prints as spec
text that compiles, in ``archc fmt``'s layout; labels that are no names are quoted. The
expected counts are worked out by hand in each test."""

import pytest

import archlang
from archlang.importer.text import label_text, network_text, value_text
from archlang.importer.tree import Aux, BlockDef, Call, Expr, Group, If, Instance, Network, Param, Repeat, Seq
from archlang.tools.fmt import format_source


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3, "3"),
        (1e-05, "1e-05"),
        (0.001, "0.001"),
        (True, "true"),
        (False, "false"),
        (None, "none"),
        ("same", '"same"'),
        ('a"b', '"a\\"b"'),
        ((1, 7), "(1, 7)"),
        ((3,), "(3,)"),
        ((0, (1, 2)), "(0, (1, 2))"),
        (Param("width"), "width"),
        (Expr("planes * 4"), "planes * 4"),
    ],
)
def test_values(value, text):
    assert value_text(value) == text


def test_non_finite_float_is_a_diagnostic():
    with pytest.raises(archlang.SpecError) as info:
        value_text(float("nan"))
    assert info.value.diagnostics[0].code == "E722"


@pytest.mark.parametrize(
    ("label", "text"), [("conv1", "conv1"), ("0", '"0"'), ("block", '"block"'), ("a-b", '"a-b"'), ("_x", "_x")]
)
def test_labels(label, text):
    assert label_text(label) == text


def _network(body, **kw):
    return Network(name="Net", input_shape=(3, 8, 8), body=Seq(body), **kw)


def test_every_node_type_prints_and_compiles():
    """A block with an `if` and a `repeat` over its parameters, called twice; an instance,
    a concat and an add group, an aux head and outputs. Parameters by hand:
    stem 3*4*9+4 = 112; Unit(4, true): 2 x (4*4*1+4) = 40 plus the extra 4*4+4 = 20;
    Unit(4, false): 40; concat branches 4->2 and 4->2 convs: 2 x (4*2+2) = 20, giving 4
    channels; add: conv 4->4 1x1 = 20; head linear 4*8*8 -> 10 = 2570; aux linear
    4*8*8 -> 5 = 1285."""
    block = BlockDef(
        name="Unit",
        params=[("c", "int", None), ("extra", "bool", False)],
        body=[
            Repeat(count=2, body=[Call("conv2d", (Param("c"), 1))]),
            If(cond=Param("extra"), then=[Call("conv2d", (Expr("c * 1"), 1))], orelse=[Call("identity")]),
        ],
    )
    body = [
        Call("conv2d", (4, 3), (("padding", 1),), label="stem"),
        Call("Unit", (4,), (("extra", True),), label="u1"),
        Call("Unit", (4,), label="u2"),
        Instance(cls="Sequential", path="body", label="body", container=True, body=Seq([
            Group("concat", [Call("conv2d", (2, 1), label="a"), Seq([Call("relu"), Call("conv2d", (2, 1), label="b")])]),
            Group("add", [Call("conv2d", (4, 1), label="0"), Call("identity")]),
        ])),
        Call("flatten"),
        Call("linear", (10,), label="fc"),
    ]  # fmt: skip
    aux = [Aux(label="side", anchor="body", body=Seq([Call("flatten"), Call("linear", (5,), label="fc")]))]
    net = _network(
        body, aux=aux, outputs=("NetOutputs", (("logits", "logits"), ("side_logits", "side"))), blocks=[block]
    )
    net.header = ["a test"]
    text = network_text(net)
    assert text == format_source(text)  # canonical layout
    assert text.startswith("# a test\n# by `archc import` (archlang ")
    for piece in ("block Unit(c: int, extra: bool = false) {", "repeat 2 {", "if extra {", '"0": conv2d(4, 1)'):
        assert piece in text
    assert "outputs NetOutputs(logits, side_logits = side)" in text
    analysis = archlang.analyze(text)
    assert analysis.totals.params == 112 + 40 + 20 + 40 + 20 + 20 + 2570
    assert analysis.aux_totals["side"].params == 1285
    model = archlang.build(text)
    keys = set(model.state_dict())
    assert {"stem.weight", "body.a.weight", "body.b.weight", "body.0.weight", "fc.weight", "side.fc.weight"} <= keys


def test_unlabelled_instance_and_repeat_variable():
    body = [
        Instance(cls="Act", path="act", body=Seq([Call("relu")])),
        Repeat(count=3, var="i", body=[Call("conv2d", (Expr("4 + i"), 1))]),
    ]
    text = network_text(_network(body))
    assert "repeat 3 as i {" in text
    # 3 -> 4 -> 5 -> 6 channels, 1x1 convs with bias: (3*4+4) + (4*5+5) + (5*6+6) = 77
    assert archlang.analyze(text).totals.params == 77


def test_name_that_is_no_spec_name():
    net = Network(name="my-net", input_shape=(3, 4, 4), body=Seq([Call("relu")]))
    assert "network Imported {" in network_text(net)


def test_positional_labels_are_left_out_only_where_positions_name_them():
    """`features: { "0": conv2d(...); "1": relu }` prints as `features: { conv2d(...); relu }`
    (same keys); next to an unlabelled group, whose contents take positions too, the labels stay."""
    plain = Seq(
        [Call("conv2d", (4, 3), label="0"), Call("relu", label="1"), Call("conv2d", (4, 1), label="2")], label="f"
    )
    grouped = Seq(
        [Call("conv2d", (4, 1), label="0"), Group("add", [Call("conv2d", (4, 1), label="1"), Call("identity")])],
        label="g",
    )
    text = network_text(_network([plain, grouped]))
    assert '"0": conv2d(4, 3)' not in text and "conv2d(4, 3)" in text
    assert '"1": conv2d(4, 1)' in text and '"0": conv2d(4, 1)' in text
    keys = set(archlang.build(text).state_dict())
    assert keys == {f"{p}.{i}.{w}" for p, i in (("f", 0), ("f", 2), ("g", 0), ("g", 1)) for w in ("weight", "bias")}


# ---- automatic names: the compiler finds the clashes, the printer labels the layer ---------


def test_an_op_named_like_a_module_gets_a_free_name():
    """`flatten` is a Linear's label and an unlabelled `flatten` runs in the same scope: the
    compiler would name the op `flatten` too (E302). The op is labelled `flatten_2`; the
    Linear keeps its key; the tree handed in is left as it was."""
    flat = Call("flatten")
    net = _network([Call("conv2d", (4, 3), label="conv"), flat, Call("linear", (10,), label="flatten")])
    text = network_text(net)
    assert "flatten_2: flatten" in text and "flatten: linear(10)" in text
    assert flat.label is None
    # conv 3*4*9+4 = 112, linear 4*6*6*10+10 = 1450
    keys = set(archlang.build(text).state_dict())
    assert keys == {"conv.weight", "conv.bias", "flatten.weight", "flatten.bias"}


def test_a_position_taken_by_a_label_in_a_labelled_sequence():
    """In `f: { ... }` an unlabelled layer is named by its position. A one-branch concat
    counts no position in the import, so `relu` (position 1) can meet a conv labelled "1"."""
    body = [Seq([Call("conv2d", (4, 3), label="0"), Call("relu"), Call("conv2d", (4, 1), label="1")], label="f")]
    text = network_text(_network(body))
    assert "relu: relu" in text
    assert set(archlang.build(text).state_dict()) == {f"f.{i}.{w}" for i in (0, 1) for w in ("weight", "bias")}


def test_a_clash_inside_a_block_body_with_an_if():
    """The clash is only there for the instance whose `if` takes the `flatten` branch: the
    compiler, which knows the arguments, finds it in the block body."""
    block = BlockDef(
        name="Head",
        params=[("flat", "bool", None)],
        body=[
            If(cond=Param("flat"), then=[Call("flatten")], orelse=[Call("identity")]),
            Call("linear", (10,), label="flatten"),
        ],
    )
    body = [Call("global_avgpool", label="pool"), Call("Head", (True,), label="head")]
    text = network_text(_network(body, blocks=[block]))
    assert "flatten_2: flatten" in text
    assert set(archlang.build(text).state_dict()) == {"head.flatten.weight", "head.flatten.bias"}


def test_a_clash_the_printer_may_not_settle_is_the_compilers_error():
    """Two layers labelled alike, or a layer with weights: no label changes (state_dict
    keys); the compiler's E302 comes out with the text it was about."""
    for body in (
        [Call("conv2d", (4, 1), label="a"), Call("conv2d", (4, 1), label="a")],
        [Call("conv2d", (4, 1)), Call("relu", label="conv2d")],
    ):
        with pytest.raises(archlang.SpecError) as info:
            network_text(_network(body))
        err = info.value
        assert err.diagnostics[0].code == "E302"
        assert "conv2d(4, 1)" in err.sources.texts[err.diagnostics[0].span.file]
