"""Importing the built model of an imported spec gives the same text (a fixed point, like
`archc fmt`), and again for the spec that gives: `import(build(import(m))) == import(m)`.

Each model covers something the torch back end writes differently from torchvision: one
class per block structure (ResNet-18's `BasicBlockDownsample`, one `_DenseBlock` class per
length, ConvNeXt's `CNBlockChannels96`), the helpers the generated file defines itself
(`StochasticDepth`, `LayerNorm2d`, `Permute`, `transform_input`), `F.channel_shuffle`,
`torch.chunk(...)[i]`, `torch.mean(x, (2, 3))`, parameter-free layers made functional (the
squeeze-excitation `avgpool`), and a named group run inline by a `ModuleDict` (Inception
v3's `Mixed_7a`). The independent check: the model built from the re-imported text loads
torchvision's own state_dict with `strict=True` and computes torchvision's outputs.
"""

from __future__ import annotations

import collections

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from conftest import quick_only
from hostile_models import Net as _Net
from torch import nn

import archlang

MODELS = {
    "resnet18": ({}, 64),
    "densenet121": ({}, 64),
    "inception_v3": ({"aux_logits": False, "init_weights": False}, 75),  # its smallest input; aux: googlenet
    "googlenet": ({"aux_logits": True, "transform_input": True, "init_weights": False}, 64),
    "shufflenet_v2_x0_5": ({}, 64),
    "efficientnet_b0": ({}, 64),
    "convnext_tiny": ({}, 64),
}


def _body(text: str) -> str:
    """The spec without its header comments (they name where the import came from)."""
    lines = text.splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines)


def _same_function(built: nn.Module, original: nn.Module, shape) -> None:
    built.load_state_dict(original.state_dict(), strict=True)
    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(built.eval()(x), original.eval()(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", quick_only(sorted(MODELS), {"resnet18", "shufflenet_v2_x0_5"}))
def test_reimport_is_a_fixed_point(name):
    kwargs, size = MODELS[name]
    shape = (3, size, size)
    torch.manual_seed(0)
    original = torchvision.models.get_model(name, weights=None, **kwargs)
    text = archlang.from_module(original, shape)
    again = archlang.from_module(archlang.build(text), shape)
    assert _body(again) == _body(text)
    rebuilt = archlang.build(again)
    assert _body(archlang.from_module(rebuilt, shape)) == _body(again)
    _same_function(rebuilt, original, shape)


def _fixed(model: nn.Module, shape) -> str:
    text = archlang.from_module(model, shape)
    built = archlang.build(text)
    _same_function(built, model, shape)
    assert _body(archlang.from_module(built, shape)) == _body(text)
    return text


Outputs = collections.namedtuple("Outputs", ["logits", "side"])


def test_aux_head_on_a_parameter_free_layer_keeps_its_anchor():
    """Parameter-free layers are unnamed, except the one an aux head hangs from."""

    def forward(s, x):
        x = s.pool(F.relu(s.conv(x)))
        logits = s.fc(torch.flatten(x, 1))
        return Outputs(logits, s.side(x)) if s.training else logits

    side = nn.Sequential(nn.Flatten(), nn.Linear(196, 2))
    model = _Net(forward, conv=nn.Conv2d(3, 4, 3), pool=nn.MaxPool2d(2), fc=nn.Linear(196, 5), side=side)
    text = _fixed(model, (3, 16, 16))
    assert "pool: maxpool(2)" in text and "aux side at pool:" in text


def test_unnamed_parameter_free_layers():
    """`self.pool = nn.MaxPool2d(2)` is `maxpool(2)`: the name is no state_dict key and a
    built block calls F.max_pool2d, so a name would not come back."""
    block = _Net(lambda s, x: s.pool(s.conv(x)), conv=nn.Conv2d(4, 4, 3, padding=1), pool=nn.AvgPool2d(2))
    twin = _Net(lambda s, x: s.pool(s.conv(x)), conv=nn.Conv2d(4, 4, 3, padding=1), pool=nn.AvgPool2d(2))
    model = _Net(lambda s, x: s.b(s.a(s.stem(x))), stem=nn.Conv2d(3, 4, 1), a=block, b=twin)
    text = _fixed(model, (3, 16, 16))
    assert "avgpool(2)" in text and "pool:" not in text


def test_helpers_are_recognised_by_their_source_not_their_name():
    """A user's class called `StochasticDepth` is not archlang's helper: it is traced through."""

    class StochasticDepth(nn.Module):
        def __init__(self, p: float, mode: str) -> None:
            super().__init__()
            self.p, self.mode = p, mode

        def forward(self, x):
            return F.relu(x)

    model = _Net(lambda s, x: s.sd(s.conv(x)), conv=nn.Conv2d(3, 4, 3), sd=StochasticDepth(0.1, "row"))
    text = archlang.from_module(model, (3, 16, 16))
    assert "stochastic_depth" not in text and "relu" in text


def _unit_pair(namespace: dict):
    """Two instances of one class made with ``namespace``: conv + relu, as a block would be."""
    cls = type("Anything", (nn.Module,), {**namespace, "forward": lambda s, x: F.relu(s.conv(x))})
    made = []
    for _ in range(2):
        m = cls()
        m.conv = nn.Conv2d(4, 4, 1)
        made.append(m)
    return made


def test_a_generated_block_class_is_read_as_its_block():
    """The back end's marker `_archlang_block = "Unit"` names the block the class was
    written for: its instances are calls of `block Unit`, whatever the class is called."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1), *_unit_pair({"_archlang_block": "Unit"}))
    assert "block Unit" in archlang.from_module(model, (3, 8, 8))


def test_a_docstring_in_the_generated_style_is_not_a_marker():
    """A hand-written class whose docstring reads like a generated one (`Block `Unit`
    (net.arch:3).`) is its own class: its block is named after the class."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1), *_unit_pair({"__doc__": "Block `Unit` (net.arch:3)."}))
    text = archlang.from_module(model, (3, 8, 8))
    assert "block Anything" in text and "block Unit" not in text


def test_a_subclass_of_a_generated_class_is_not_the_block():
    """The marker is read from the class itself: a subclass with a forward of its own is not
    an instance of the spec's block."""
    base = type("Unit", (nn.Module,), {"_archlang_block": "Unit", "forward": lambda s, x: s.conv(x)})
    sub = type("Mine", (base,), {"forward": lambda s, x: F.relu(s.conv(x))})
    made = [sub(), sub()]
    for m in made:
        m.conv = nn.Conv2d(4, 4, 1)
    text = archlang.from_module(nn.Sequential(nn.Conv2d(3, 4, 1), *made), (3, 8, 8))
    assert "block Mine" in text and "block Unit" not in text


HELPERS_SPEC = """network T(num_classes: int = 10) {
  input 3x16x16

  stem: {
    transform_input(mean=(0.5, 0.5, 0.5))
    conv2d(8, 3)
    layernorm2d(eps=1e-06)
    channel_shuffle(2)
    permute((0, 2, 3, 1))
    permute((0, 3, 1, 2))
    stochastic_depth(0.1)
    relu
  }
  flatten
  fc: linear(num_classes)
}"""


def test_the_generated_helper_modules_read_back_as_written():
    """In an `nn.Sequential` the back end writes `TransformInput`, `LayerNorm2d`, `Permute`
    and `StochasticDepth` modules of its own: each is its op again."""
    text = archlang.from_module(archlang.build(HELPERS_SPEC), (3, 16, 16))
    assert _body(text) == HELPERS_SPEC


def test_aux_head_that_is_one_parameter_free_module_keeps_its_name():
    def forward(s, x):
        x = s.conv(x)
        logits = s.fc(torch.flatten(x, 1))
        return Outputs(logits, s.side(x)) if s.training else logits

    model = _Net(forward, conv=nn.Conv2d(3, 4, 3), fc=nn.Linear(4 * 14 * 14, 5), side=nn.AdaptiveAvgPool2d(1))
    text = _fixed(model, (3, 16, 16))
    assert "aux side at conv: adaptive_avgpool" in text


@pytest.mark.parametrize(("spec", "shape"), [("lenet5", (1, 32, 32)), ("resnet18", (3, 64, 64))])
def test_a_bundled_spec_imports_to_a_fixed_point(spec, shape):
    """Hand-written specs too: the import of their built model is a fixed point, and the
    model built from it loads the bundled model's state_dict strictly."""
    original = archlang.build(spec, shape)
    text = archlang.from_module(original, shape)
    built = archlang.build(text)
    _same_function(built, original, shape)
    assert _body(archlang.from_module(built, shape)) == _body(text)
