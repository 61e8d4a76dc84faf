"""Modules called with several tensors, or whose several results are read, import as blocks
``from x, skip`` whose further outputs are read by name (``from two.relu``); a network
returning an OrderedDict imports as ``outputs dict(...)``. Every case is exact against torch
itself: the built spec loads the original's state_dict strictly, computes the same outputs
in float64, has as many parameters, and its re-import prints the same text."""

from __future__ import annotations

import collections

import pytest
import torch
from torch import nn

import archlang
from archlang import SpecError


def _flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _flat(v)]
    return [t for v in out for t in _flat(v)]


def _body(text):
    return [line for line in text.splitlines() if not line.startswith("#")]


def _exact(model, shape):
    """The import of ``model``, after checking it is exact and a fixed point."""
    torch.manual_seed(0)
    model = model.double().eval()
    text = archlang.from_module(model, shape)
    built = archlang.build(text).double().eval()
    built.load_state_dict(model.state_dict(), strict=True)
    assert sum(p.numel() for p in built.parameters()) == sum(p.numel() for p in model.parameters())
    x = torch.randn(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        want, got = model(x), built(x)
    assert type(got) is type(want)
    if isinstance(want, dict):
        assert list(got) == list(want)
    pairs = list(zip(_flat(want), _flat(got), strict=True))
    assert pairs and all(torch.allclose(a, b, rtol=1e-12, atol=1e-12) for a, b in pairs)
    assert _body(archlang.from_module(built, shape)) == _body(text), "not a fixed point"
    return text


class _DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class _Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), _DoubleConv(cin, cout))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    """milesial/Pytorch-UNet's `Up` (bilinear=False, sizes that divide)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2)
        self.conv = _DoubleConv(cin, cout)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        return self.conv(torch.cat([x2, x1], dim=1))


class _UNet(nn.Module):
    def __init__(self, base=4):
        super().__init__()
        self.inc = _DoubleConv(3, base)
        self.down1 = _Down(base, 2 * base)
        self.down2 = _Down(2 * base, 4 * base)
        self.up1 = Up(4 * base, 2 * base)
        self.up2 = Up(2 * base, base)
        self.outc = nn.Conv2d(base, 2, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        return self.outc(self.up2(self.up1(x3, x2), x1))


def test_unet_up_with_two_inputs_is_a_block_from_x_skip():
    text = _exact(_UNet(), (3, 16, 16))
    assert "block Up(channels: int) from x, x2 {" in text and "concat from x2, up" in text, text
    # the call passes the values in the forward's order (x3 then x2), not in trace order
    assert "up1: Up(8) from down2, down1" in text and "up2: Up(4) from up1, inc" in text, text


class Two(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, 2 * c, 1)

    def forward(self, x):
        a = torch.relu(self.a(x))
        return a, self.b(a)


def test_a_module_returning_two_tensors_read_by_two_layers():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.two = nn.Conv2d(3, 4, 1), Two(4)
            self.p, self.q = nn.Conv2d(4, 8, 1), nn.Conv2d(8, 8, 1)

        def forward(self, x):
            a, b = self.two(self.stem(x))
            return self.p(a) + self.q(b)

    text = _exact(Net(), (3, 8, 8))
    assert "block Two from x {" in text and "p: conv2d(8, 1) from two.relu" in text, text
    assert "q: conv2d(8, 1) from two\n" in text, text


def test_a_block_called_with_the_network_input_and_a_value_inside_another_block():
    class Mix(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.proj = nn.Conv2d(4, 8, 1), nn.Conv2d(3, 8, 1)

        def forward(self, x, y):
            return self.proj(y) + self.conv(x)  # reads y first: the inputs follow the signature

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.two, self.mix = nn.Conv2d(3, 4, 1), Two(4), Mix()

        def forward(self, x):
            a, b = self.two(self.stem(x))
            return self.mix(a, x) + b

    text = _exact(Net(), (3, 8, 8))
    assert "mix: Mix from two.relu, input" in text and "block Mix from x, y {" in text, text
    assert "proj: conv2d(8, 1) from y" in text, text
    assert "add from mix, two" in text, text


def test_a_parameter_free_module_shared_by_two_calls_with_two_inputs():
    class Fuse(nn.Module):
        def forward(self, a, b):
            return torch.relu(a + b)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3 = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)
            self.fuse = Fuse()

        def forward(self, x):
            a = self.c1(x)
            b = self.c2(a)
            return self.fuse(self.c3(self.fuse(a, b)), b)

    text = _exact(Net(), (3, 8, 8))
    assert "fuse: Fuse from c1, c2" in text and "fuse_2: Fuse from c3, c2" in text, text


def test_a_network_returning_an_ordered_dict():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.body = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU())
            self.head, self.side = nn.Conv2d(8, 2, 1), nn.Conv2d(4, 2, 1)

        def forward(self, x):
            f = self.stem(x)
            return collections.OrderedDict(out=self.head(self.body(f)), aux=self.side(f), feat=f)

    text = _exact(Net(), (3, 8, 8))
    assert 'outputs dict(out = head, "aux" = side, feat = stem)' in text, text


def test_a_backbone_returning_a_dict_of_stages_and_a_network_returning_a_dict():
    """torchvision's segmentation layout: an `IntermediateLayerGetter` returns an
    OrderedDict of two stages (a block whose further output is read as `backbone.layer2`),
    the heads' outputs are returned as an OrderedDict."""
    from torchvision.models._utils import IntermediateLayerGetter

    class Body(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.layer1 = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU())
            self.layer2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
            self.layer3 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
            self.fc = nn.Linear(16, 10)  # left out by the getter

    class Seg(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = IntermediateLayerGetter(Body(), {"layer2": "aux", "layer3": "out"})
            self.classifier = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))
            self.aux_classifier = nn.Conv2d(8, 3, 1)

        def forward(self, x):
            features = self.backbone(x)
            out = collections.OrderedDict()
            out["out"] = self.classifier(features["out"])
            out["aux"] = self.aux_classifier(features["aux"])
            return out

    text = _exact(Seg(), (3, 16, 16))
    assert "block IntermediateLayerGetter from x {" in text and "backbone: IntermediateLayerGetter" in text, text
    assert "aux_classifier: conv2d(3, 1) from backbone.layer2" in text, text
    assert 'outputs dict(out = classifier, "aux" = aux_classifier)' in text, text


def test_a_network_returning_a_plain_tuple_is_refused_with_the_dict_spelling():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1)

        def forward(self, x):
            a = self.a(x)
            return a, self.b(a)

    with pytest.raises(SpecError) as info:
        archlang.from_module(Net(), (3, 8, 8))
    (diag,) = info.value.diagnostics
    assert diag.code == "E725" and "returns a tuple" in diag.message and "OrderedDict" in diag.help


def test_identity_placeholders_leave_the_first_import_a_fixed_point():
    """timm's `nn.Identity()` where a layer is optional (`ResNet`'s `drop_block`, `aa`): the
    torch back end builds no module for `identity`, so the first import leaves them out."""

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv, self.drop, self.aa, self.bn = (
                nn.Conv2d(c, c, 3, padding=1),
                nn.Identity(),
                nn.Identity(),
                (nn.BatchNorm2d(c)),
            )

        def forward(self, x):
            return torch.relu(self.bn(self.aa(self.drop(self.conv(x)))) + x)

    model = nn.Sequential(nn.Conv2d(3, 4, 1), Block(4), Block(4), nn.Identity())
    text = _exact(model, (3, 8, 8))
    assert "drop" not in text and "aa" not in text and '"3"' not in text, text


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dla34", "dla60", "hrnet_w18_small"])
def test_timm_models_that_call_modules_with_several_tensors(name):
    """dla34 (`DlaTree.forward(x, shortcut, children)`, recursive) and hrnet (stages take
    and return lists of branches; fuse loops over `nn.ModuleList`s), at 3x128x128."""
    import timm

    text = _exact(timm.create_model(name, pretrained=False), (3, 128, 128))
    assert " from x, " in text, text
