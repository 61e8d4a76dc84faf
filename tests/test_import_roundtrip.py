"""``archlang.from_module`` on torchvision's classifiers: the imported spec, built, loads the
original state_dict with ``strict=True`` and computes the same function (float64, BN
running statistics randomised first); its static parameter count is the original's
``numel`` and its FLOPs fvcore's. Everything expected is computed here from the torchvision
model, never from our own earlier output."""

import functools

import fvcore.nn as fvcore_nn
import pytest
import torch
import torchvision
from bn_stats import randomize_bn
from conftest import quick_only

import archlang

# name: (constructor kwargs, input shape): small inputs where the model allows
MODELS = {
    "alexnet": ({}, (3, 64, 64)),
    "vgg11": ({}, (3, 64, 64)),
    "resnet18": ({}, (3, 64, 64)),
    "resnet50": ({}, (3, 64, 64)),
    "squeezenet1_0": ({}, (3, 64, 64)),
    "densenet121": ({}, (3, 64, 64)),
    "googlenet": ({"aux_logits": True, "init_weights": False}, (3, 96, 96)),
    "inception_v3": ({"aux_logits": True, "init_weights": False}, (3, 299, 299)),
    # the families that need the ops added for the import: relu6, hardswish, hardsigmoid,
    # silu, gelu, mul (squeeze-excitation), split + channel_shuffle, spatial_mean,
    # stochastic_depth, layer_scale, permute, layernorm, layernorm2d
    "mobilenet_v2": ({}, (3, 64, 64)),
    "mobilenet_v3_small": ({}, (3, 64, 64)),
    "mnasnet0_5": ({}, (3, 64, 64)),
    "shufflenet_v2_x0_5": ({}, (3, 64, 64)),
    "efficientnet_b0": ({}, (3, 64, 64)),
    "regnet_y_400mf": ({}, (3, 64, 64)),
    "convnext_tiny": ({}, (3, 64, 64)),
}


def _all_params(analysis) -> int:
    return analysis.totals.params + sum(t.params for t in analysis.aux_totals.values())


@functools.cache
def _imported(name: str):
    kwargs, shape = MODELS[name]
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(**kwargs)
    randomize_bn(model, seed=1)
    text = archlang.from_module(model, shape)
    return name, model, text, shape


@pytest.fixture(
    params=quick_only(
        sorted(MODELS), {"resnet18", "squeezenet1_0", "mobilenet_v3_small", "shufflenet_v2_x0_5", "googlenet"}
    )
)
def imported(request):
    return _imported(request.param)


def test_state_dict_loads_strictly_and_outputs_match(imported):
    name, model, text, shape = imported
    built = archlang.build(text)
    built.load_state_dict(model.state_dict(), strict=True)
    model, built = model.double().eval(), built.double().eval()
    x = torch.randn(2, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = model(x), built(x)
    assert got.shape == expected.shape
    assert torch.linalg.norm(got - expected) <= 1e-9 * torch.linalg.norm(expected), name


def test_params_match_numel(imported):
    name, model, text, _ = imported
    assert _all_params(archlang.analyze(text)) == sum(p.numel() for p in model.parameters()), name


def test_input_shape_is_the_traced_one(imported):
    _, _, text, shape = imported
    assert f"input {'x'.join(map(str, shape))}" in text


@pytest.mark.parametrize(
    "name",
    quick_only(
        ["resnet18", "squeezenet1_0", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2_x0_5", "convnext_tiny"],
        {"resnet18", "squeezenet1_0", "mobilenet_v3_small", "shufflenet_v2_x0_5"},
    ),
)
def test_flops_match_fvcore(name):
    model = getattr(torchvision.models, name)().eval()
    shape = (3, 64, 64)
    flops = fvcore_nn.FlopCountAnalysis(model, torch.zeros(1, *shape))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    assert archlang.analyze(archlang.from_module(model, shape)).totals.flops == flops.total()


def test_training_outputs_keep_the_namedtuple_fields():
    """GoogLeNet in training mode returns GoogLeNetOutputs(logits, aux_logits2, aux_logits1):
    the built spec returns the same fields, each of the original's shape."""
    _, model, text, _ = _imported("googlenet")
    assert "aux aux1 at inception4a:" in text and "aux aux2 at inception4d:" in text
    built = archlang.build(text)
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 96, dtype=torch.float64)
    expected, got = model.double().train()(x), built.double().train()(x)
    assert type(got).__name__ == type(expected).__name__
    assert got._fields == expected._fields
    for a, b in zip(got, expected):
        assert a.shape == b.shape
    model.eval()


def test_transform_input_is_imported():
    """googlenet(transform_input=True): the input transform becomes the `transform_input` op."""
    torch.manual_seed(0)
    model = torchvision.models.googlenet(aux_logits=False, transform_input=True, init_weights=False)
    randomize_bn(model, seed=1)
    text = archlang.from_module(model, (3, 64, 64))
    assert "transform_input" in text
    built = archlang.build(text)
    built.load_state_dict(model.state_dict(), strict=True)
    model, built = model.double().eval(), built.double().eval()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        expected, got = model(x), built(x)
    assert torch.linalg.norm(got - expected) <= 1e-9 * torch.linalg.norm(expected)
    assert model.transform_input and "_transform_input" not in vars(model)  # the patch is undone


def test_training_flags_are_restored():
    model = torchvision.models.resnet18()
    model.eval()
    model.layer1.train()
    before = {name: m.training for name, m in model.named_modules()}
    archlang.from_module(model, (3, 32, 32))
    assert {name: m.training for name, m in model.named_modules()} == before


def test_densenet_blocks_read_as_concat_items():
    """Each dense layer is `concat { identity; denselayerK: ... }` in its block, keys kept
    (with importer.blocks: one `repeat` of them in the `_DenseBlock` block, its length a
    parameter: 6, 12, 24, 16 layers)."""
    _, _, text, _ = _imported("densenet121")
    block = text[text.index("block _DenseBlock(") : text.index("block _Transition(")]
    assert block.count("concat {") == 1 and block.count("identity") == 1
    assert '"denselayer{i + 1}": _DenseLayer' in block
    assert [f"denseblock{k}: _DenseBlock({n})" in text for k, n in ((1, 6), (2, 12), (3, 24), (4, 16))] == [True] * 4


def _flat_text(model, shape) -> str:
    """The traced tree printed (no block abstraction), without the header."""
    from archlang.importer.text import network_text
    from archlang.importer.trace import trace

    return network_text(trace(model, shape, type(model).__name__)).split("\n\n", 1)[1]


@pytest.mark.parametrize(
    "name", quick_only(["squeezenet1_0", "densenet121", "googlenet", "inception_v3"], {"squeezenet1_0", "googlenet"})
)
def test_importing_the_built_spec_gives_the_same_text(name):
    """A fixed point: archlang's torch back end calls a container's children from its owner
    (`self.features["3"]["squeeze"](x)`) and makes activations functional; the import puts
    them back under the same labels."""
    _, model, text, shape = _imported(name)
    first = _flat_text(model.float(), shape)
    assert _flat_text(archlang.build(first), shape) == first
