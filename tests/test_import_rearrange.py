"""Rearrangements spelled with view / reshape / permute / transpose / flatten (and friends)
import as the op they amount to, whatever the spelling (archlang/importer/rearrange.py):
TResNet's SpaceToDepth, ShuffleNet's channel shuffle, hand-written pixel (un)shuffles. Each
model imports exactly (strict load, float64 outputs equal to the torch model's own), and
the spec re-imports to itself; a rearrangement that is none of archlang's ops is a located
E722 saying what it does."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from hostile_models import refused, roundtrip
from torch import nn

import archlang

SHAPE = (3, 8, 8)


class Net(nn.Module):
    """A conv to 8 channels, the rearrangement, a conv that reads its channels."""

    def __init__(self, move, channels_after: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.move = move
        self.conv2 = nn.Conv2d(channels_after, 5, 1)

    def forward(self, x):
        return self.conv2(self.move(self.conv1(x)))


def timm_space_to_depth(x):  # timm.layers.SpaceToDepth's forward, block 2
    n, c, h, w = x.size()
    x = x.view(n, c, h // 2, 2, w // 2, 2)
    x = x.permute(0, 3, 5, 1, 2, 4).contiguous()
    return x.view(n, c * 4, h // 2, w // 2)


def unflatten_space_to_depth(x):  # einops' "b c (h i) (w j) -> b (i j c) h w"
    return x.unflatten(2, (-1, 2)).unflatten(4, (-1, 2)).permute(0, 3, 5, 1, 2, 4).flatten(1, 3)


def literal_space_to_depth(x):  # sizes written out, the batch left to -1
    return torch.reshape(x, (-1, 8, 4, 2, 4, 2)).permute(0, 3, 5, 1, 2, 4).reshape(-1, 32, 4, 4)


def torch_space_to_depth(x):  # pixel_unshuffle's (C, r²) channels transposed to (r², C)
    return F.channel_shuffle(F.pixel_unshuffle(x, 2), x.shape[1])


def manual_pixel_unshuffle(x):
    n, c, h, w = x.shape
    return x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, c * 4, h // 2, w // 2)


def manual_channel_shuffle(x, groups=4):  # ShuffleNet v1's, with swapaxes
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).swapaxes(1, 2).contiguous().view(n, -1, h, w)


def timm_depth_to_space(x):  # timm.layers.DepthToSpace's forward, block 2
    n, c, h, w = x.size()
    x = x.view(n, 2, 2, c // 4, h, w)
    x = x.permute(0, 3, 4, 1, 5, 2).contiguous()
    return x.view(n, c // 4, h * 2, w * 2)


def manual_pixel_shuffle(x):
    n, c, h, w = x.shape
    return x.view(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c // 4, h * 2, w * 2)


def round_trip_view(x):  # a reshape and back: no op at all
    n, c, h, w = x.shape
    return x.view(n, c, h * w).transpose(1, 2).transpose(1, 2).view(n, c, h, w)


CASES = [
    (timm_space_to_depth, 32, "space_to_depth(2)"),
    (unflatten_space_to_depth, 32, "space_to_depth(2)"),
    (literal_space_to_depth, 32, "space_to_depth(2)"),
    (torch_space_to_depth, 32, "space_to_depth(2)"),
    (manual_pixel_unshuffle, 32, "pixel_unshuffle(2)"),
    (manual_channel_shuffle, 8, "channel_shuffle(4)"),
    (lambda x: torchvision.models.shufflenetv2.channel_shuffle(x, 2), 8, "channel_shuffle(2)"),
    (timm_depth_to_space, 2, "depth_to_space(2)"),
    (manual_pixel_shuffle, 2, "pixel_shuffle(2)"),
]
IDS = [
    "timm-s2d",
    "unflatten-s2d",
    "literal-s2d",
    "torch-s2d",
    "pixel-unshuffle",
    "channel-shuffle",
    "torchvision-shuffle",
    "timm-d2s",
    "pixel-shuffle",
]


def _fixed_point(text: str, shape=SHAPE) -> None:
    again = archlang.from_module(archlang.build(text), shape, name="T", source="s")
    assert archlang.from_module(archlang.build(again), shape, name="T", source="s") == again


@pytest.mark.parametrize(("move", "channels", "op"), CASES, ids=IDS)
def test_a_rearrangement_imports_as_its_op_whatever_the_spelling(move, channels, op):
    text = roundtrip(Net(move, channels), SHAPE)
    body = text.split("{", 1)[1]
    assert op in body and "permute" not in body, text
    _fixed_point(text)


def test_a_reshape_and_back_is_no_op():
    text = roundtrip(Net(round_trip_view, 8), SHAPE)
    assert all(w not in text for w in ("permute", "shuffle", "identity")), text


def test_a_flatten_after_the_rearrangement_stays_a_flatten():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.fc = nn.Linear(4 * 8 * 8, 2)

        def forward(self, x):
            return self.fc(timm_space_to_depth(self.conv(x)).flatten(1))

    text = roundtrip(Head(), SHAPE)
    assert "space_to_depth(2)" in text and "flatten" in text, text
    _fixed_point(text)


@pytest.mark.parametrize(
    ("move", "channels", "does"),
    [
        (lambda x: x.transpose(2, 3), 8, "`transpose` rearranges B×8×8×8 into B×8×8×8"),
        # rows shuffled within the map: no archlang op moves values so
        (
            lambda x: x.view(x.size(0), 8, 2, 4, 8).transpose(2, 3).reshape(x.size(0), 8, 8, 8),
            8,
            "`view → transpose → reshape` rearranges B×8×8×8 into B×8×8×8",
        ),
        # the batch written as the traced 2: a channel shuffle there, no other batch size
        (
            lambda x: x.view(2, 2, 4, 8, 8).transpose(1, 2).reshape(2, 8, 8, 8),
            8,
            "`view → transpose → reshape` rearranges",
        ),
        # the same with -1 for the channels: at batch 3 it runs, and mixes samples
        (
            lambda x: x.reshape(2, -1, 4, 8, 8).transpose(1, 2).reshape(2, -1, 8, 8),
            8,
            "`reshape → transpose → reshape` rearranges",
        ),
    ],
    ids=["transpose-hw", "row-shuffle", "literal-batch", "literal-batch-runs"],
)
def test_other_rearrangements_are_located_refusals(move, channels, does):
    diag = refused(Net(move, channels), "E722", does, "none of archlang's rearrangements", shape=SHAPE)
    assert diag.span is not None and diag.span.file == __file__, diag


def test_a_channels_last_permute_around_a_layer_norm_still_imports_step_by_step():
    class LayerNorm2d(nn.LayerNorm):
        def forward(self, x):
            x = x.permute(0, 2, 3, 1)
            x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
            return x.permute(0, 3, 1, 2)

    model = nn.Sequential(nn.Conv2d(3, 8, 1), LayerNorm2d(8))
    roundtrip(model, SHAPE)
