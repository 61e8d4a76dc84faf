"""``archlang.from_module`` on small hand-written modules: what archlang cannot express is a
diagnostic (E720-E727) naming the module path and the op, never a traceback; what it can
express round-trips (nested containers called inline, shared parameter-free modules,
chunk/cat, the models that need the new ops trace to a tree)."""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from hostile_models import Net as _Net
from torch import nn

import archlang
from archlang import SpecError
from archlang.importer.trace import trace
from archlang.importer.tree import Call, Group, Instance, Seq


def _error(module, shape=(3, 16, 16)):
    with pytest.raises(SpecError) as info:
        archlang.from_module(module, shape)
    (diag,) = info.value.diagnostics
    return diag


def test_unsupported_module_is_named_with_its_path():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.ReflectionPad2d(1), nn.ReLU())
    diag = _error(model)
    assert diag.code == "E720"
    assert diag.message == "`2` (torch.nn.ReflectionPad2d): no archlang op for this module"
    assert diag.help


def test_unsupported_module_inside_a_submodule():
    model = _Net(lambda s, x: s.features(x), features=nn.Sequential(nn.Conv2d(3, 8, 3), nn.SELU()))
    diag = _error(model)
    assert (diag.code, diag.message) == ("E720", "`features.1` (torch.nn.SELU): no archlang op for this module")


def test_unsupported_function_names_the_scope_and_function():
    block = _Net(lambda s, x: F.selu(s.conv(x)), conv=nn.Conv2d(3, 8, 3))
    diag = _error(_Net(lambda s, x: s.body(x), body=block))
    assert diag.code == "E721"
    assert "`body`" in diag.message and "torch.nn.functional.selu" in diag.message


def test_unsupported_method():
    diag = _error(_Net(lambda s, x: s.conv(x).view(1, -1), conv=nn.Conv2d(3, 8, 3)))
    assert diag.code == "E722" and "Tensor.view" in diag.message and "a reshape to (1, -1)" in diag.message


def test_argument_without_archlang_equivalent():
    diag = _error(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")))
    assert diag.code == "E722"
    assert diag.message.startswith("`0` (torch.nn.Conv2d): padding_mode='reflect'")


def test_cat_on_another_dim():
    diag = _error(_Net(lambda s, x: torch.cat([s.a(x), s.b(x)], 2), a=nn.Conv2d(3, 4, 1), b=nn.Conv2d(3, 4, 1)))
    assert diag.code == "E722" and "dim=2" in diag.message


def test_control_flow_on_tensors_is_a_trace_error():
    def forward(s, x):
        x = s.conv(x)
        if x.sum() > 0:
            return x
        return -x

    diag = _error(_Net(forward, conv=nn.Conv2d(3, 8, 3)))
    assert diag.code == "E723"
    assert "torch.fx cannot trace" in diag.message


def test_shared_weights_are_refused():
    diag = _error(_Net(lambda s, x: s.conv(s.conv(x)), conv=nn.Conv2d(3, 3, 3)))
    assert diag.code == "E724" and "conv" in diag.message and "called 2 times" in diag.message


def test_tuple_output_is_refused():
    diag = _error(_Net(lambda s, x: (s.a(x), s.b(x)), a=nn.Conv2d(3, 3, 1), b=nn.Conv2d(3, 3, 1)))
    assert diag.code == "E725"


def test_wrong_input_size_is_located(capfd):
    diag = _error(nn.Sequential(nn.Flatten(), nn.Linear(10, 2)))
    assert diag.code == "E727" and "1x3x16x16 input at `1`: mat1 and mat2" in diag.message and "--input" in diag.help
    assert "Traceback" not in capfd.readouterr().err  # ShapeProp's own printing is silenced


def test_unsupported_module_is_reported_before_it_runs():
    """An LSTM fed a 4-D tensor would fail to run; the missing op is the error shown."""
    diag = _error(nn.Sequential(nn.Conv2d(3, 8, 3), nn.LSTM(8, 8)))
    assert (diag.code, diag.message) == ("E720", "`1` (torch.nn.LSTM): no archlang op for this module")


def test_errors_do_not_change_the_module():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReflectionPad2d(1))
    model.eval()
    _error(model)
    assert not any(m.training for m in model.modules())


def _roundtrip(model, shape):
    text = archlang.from_module(model, shape)
    built = archlang.build(text)
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(built.eval()(x), model.eval()(x))
    return text


def test_containers_called_inline_keep_their_keys():
    """`for b in self.blocks` and `self.heads["a"]`: ModuleList / ModuleDict children called
    without the container come out as nested labelled sequences."""

    def forward(s, x):
        for b in s.blocks:
            x = b(x)
        return s.heads["a"](torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    model = _Net(
        forward,
        blocks=nn.ModuleList([nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3)]),
        heads=nn.ModuleDict({"a": nn.Linear(8, 4)}),
    )
    text = _roundtrip(model, (3, 16, 16))
    assert text.count("blocks: {") == 1


def test_parameter_free_module_called_twice_and_chunk():
    def forward(s, x):
        x = s.relu(s.conv(x))
        a, b = x.chunk(2, dim=1)
        return s.relu(torch.cat([s.branch(b), a], dim=1))

    model = _Net(forward, conv=nn.Conv2d(3, 8, 3), branch=nn.Conv2d(4, 4, 1), relu=nn.ReLU())
    tree = trace(model, (3, 16, 16))
    ops = [item.op for item in tree.body.items if isinstance(item, Call)]
    assert ops == ["conv2d", "relu", "relu"]
    (group,) = [item for item in tree.body.items if isinstance(item, Group)]
    assert group.mode == "concat"
    first, second = group.branches
    assert isinstance(first, Seq) and first.items[0].op == "split" and first.items[0].args == (2, 1)
    assert second.op == "split" and second.args == (2, 0)
    assert [item.label for item in tree.body.items if isinstance(item, Call)] == ["conv", None, None]


def test_instances_and_containers():
    tree = trace(torchvision.models.resnet18(), (3, 32, 32))
    layer1 = tree.body.items[4]
    assert isinstance(layer1, Instance) and layer1.container and layer1.path == "layer1"
    block = layer1.body.items[0]
    assert (block.cls, block.path, block.label, block.container) == ("BasicBlock", "layer1.0", "0", False)


@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_v2",
        "mobilenet_v3_small",
        "efficientnet_b0",
        "shufflenet_v2_x0_5",
        "regnet_y_400mf",
        "convnext_tiny",
        "mnasnet0_5",
    ],
)
def test_models_with_new_ops_trace_to_a_tree(name):
    """These need ops other helpers add (silu, split, mul, layer_scale, ...): for now, the
    trace gives a tree whose leaves hold every parameter of the model."""
    model = torchvision.models.get_model(name)
    tree = trace(model, (3, 64, 64))
    labelled = []

    def walk(item, prefix):
        if isinstance(item, Call):
            if item.label is not None:
                labelled.append(prefix + item.label)
        elif isinstance(item, (Seq, Instance)):
            body = item.body.items if isinstance(item, Instance) else item.items
            sub = prefix + item.label + "." if item.label is not None else prefix
            for child in body:
                walk(child, sub)
        elif isinstance(item, Group):
            for child in item.branches:
                walk(child, prefix)

    walk(tree.body, "")
    keys = [key for key, _ in model.named_parameters()]
    owners = {key if key.endswith(".layer_scale") else key.rsplit(".", 1)[0] for key in keys}
    assert owners <= set(labelled)


def test_unused_layer_is_refused():
    def forward(s, x):
        s.unused(x)
        return s.conv(x)

    diag = _error(_Net(forward, conv=nn.Conv2d(3, 3, 1), unused=nn.Conv2d(3, 3, 1)))
    assert diag.code == "E724" and "`unused` runs but its result is not used" in diag.message


def test_module_with_weights_called_twice_with_two_inputs_is_refused():
    """Two inputs are a block `from x, b` (tests/test_import_multi_io.py); shared weights
    still have no spelling."""

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, a, b):
            return self.conv(a) + b

    def forward(s, x):
        y = s.two(s.conv(x), x)
        return s.two(y, x)

    diag = _error(_Net(forward, conv=nn.Conv2d(3, 3, 1), two=Two()))
    assert diag.code == "E724" and "two.conv (torch.nn.Conv2d) is called 2 times" in diag.message


def test_several_model_inputs_are_refused():
    class Two(nn.Module):
        def forward(self, a, b):
            return a + b

    assert _error(Two()).code == "E725"


def test_container_children_in_two_branches_move_the_group_inside():
    """`cat([self.convs[0](x), self.convs[1](x)])`: the concat goes inside `convs: { }`."""

    def forward(s, x):
        return torch.cat([s.convs[0](x), s.convs[1](x)], 1)

    model = _Net(forward, convs=nn.ModuleList([nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)]))
    text = _roundtrip(model, (3, 8, 8))
    assert text.count("convs: {") == 1


def test_one_container_in_a_branch_and_after_the_merge_goes_on():
    """`a.0` in one branch of a concat and `a.1` after it: the sequence `a` is opened twice,
    the second going on from the first (docs/language.md), so both keep their keys (this
    was E724, "two layers would both be named `a`")."""

    def forward(s, x):
        y = s.a[0](x)
        return s.a[1](torch.cat([y, s.b(x)], 1))

    model = _Net(forward, a=nn.ModuleList([nn.Conv2d(3, 4, 1), nn.Conv2d(8, 4, 1)]), b=nn.Conv2d(3, 4, 1))
    text = _roundtrip(model, (3, 8, 8))
    assert text.count("a: {") == 2 and '"1": conv2d(4, 1)' in text, text
    again = archlang.from_module(archlang.build(text), (3, 8, 8), name="Net", source="hostile_models.Net")
    assert again == text
