"""archlang/importer/nesting.py on hand-made trees: layers of containers called from their
owner are put back under the container's label, groups move inside the path their layers
share, and parameter-free layers between parts go where the numbering says; nothing is
lost or duplicated. Expected trees are written out by hand."""

from archlang.importer import nesting
from archlang.importer.tree import Call, Group, Seq


def c(label=None, op="conv2d"):
    return Call(op, label=label)


def shape(item):
    """A comparable picture of a tree: (label, op) for calls, nested tuples for the rest."""
    if isinstance(item, Call):
        return (item.label, item.op)
    if isinstance(item, Group):
        return ("group", item.mode, tuple(shape(b) for b in item.branches))
    return (item.label, tuple(shape(i) for i in item.items))


def test_adjacent_parts_of_one_container_merge_with_the_layers_between():
    items = [nesting.nest(c("0"), ("features",)), c(op="relu"), nesting.nest(c("2", "maxpool"), ("features",))]
    assert [shape(i) for i in nesting.merge(items)] == [
        ("features", (("0", "conv2d"), (None, "relu"), ("2", "maxpool"))),
    ]


def test_layers_between_two_numbered_parts_end_the_first_unless_they_fill_a_gap():
    block0 = nesting.nest(c("conv1"), ("layer1", "0"))
    block1 = nesting.nest(c("conv1"), ("layer1", "1"))
    merged = nesting.merge([block0, c(op="relu"), block1])
    assert [shape(i) for i in merged] == [
        ("layer1", (("0", (("conv1", "conv2d"), (None, "relu"))), ("1", (("conv1", "conv2d"),)))),
    ]
    fire5 = nesting.nest(c("squeeze"), ("features", "5"))
    fire7 = nesting.nest(c("squeeze"), ("features", "7"))
    merged = nesting.merge([fire5, c(op="maxpool"), fire7])
    assert [shape(i) for i in merged] == [
        ("features", (("5", (("squeeze", "conv2d"),)), (None, "maxpool"), ("7", (("squeeze", "conv2d"),)))),
    ]


def test_a_group_moves_inside_the_path_its_layers_share():
    a = nesting.nest(c("expand1x1"), ("features", "3"))
    b = Seq([nesting.nest(c("expand3x3"), ("features", "3")), c(op="relu")])
    hoisted = nesting.hoist(Group("concat", [a, b]))
    assert shape(hoisted) == (
        "features",
        (("3", (("group", "concat", (("expand1x1", "conv2d"), (None, (("expand3x3", "conv2d"), (None, "relu"))))),)),),
    )


def test_a_group_over_different_containers_stays():
    group = Group("add", [nesting.nest(c("0"), ("a",)), nesting.nest(c("0"), ("b",))])
    assert nesting.hoist(group) is group
    assert nesting.prefix(group) == ()


def test_identity_branches_do_not_stop_a_hoist():
    group = Group("add", [nesting.nest(c("0"), ("convs",)), Call("identity")])
    assert shape(nesting.hoist(group)) == ("convs", (("group", "add", (("0", "conv2d"), (None, "identity"))),))


def test_merge_keeps_every_layer_once():
    layers = [c(str(i)) for i in range(4)]
    items = [
        nesting.nest(layers[0], ("f", "0")),
        c(op="relu"),
        nesting.nest(layers[1], ("f", "1")),
        c(op="relu"),
        c(op="maxpool"),
        nesting.nest(layers[2], ("f", "4")),
        nesting.nest(layers[3], ("g",)),
    ]
    merged = nesting.merge(items)
    found = []

    def walk(item):
        if isinstance(item, Call):
            found.append(item)
        elif isinstance(item, Seq):
            for i in item.items:
                walk(i)

    for item in merged:
        walk(item)
    assert sorted(map(id, found)) == sorted(map(id, [i for i in items if isinstance(i, Call)] + layers))
