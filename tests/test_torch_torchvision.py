"""Weight compatibility with torchvision: the built GoogLeNet and Inception v3 are
torchvision's modules key for key, load its state_dicts strictly, compute the same
outputs (eval and train, aux heads included), and draw torchvision's initial weights from
the same seed. Expected values all come from torchvision itself (weights=None: no download).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision.models as models
from conftest import quick_only

import archlang  # noqa: E402

CASES = {
    "googlenet": (models.googlenet, 224),
    "inception_v3": (models.inception_v3, 299),
}


def _torchvision(name: str, init_weights: bool = False, **kw):
    factory, _ = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return factory(weights=None, aux_logits=True, init_weights=init_weights, **kw)


@pytest.fixture(scope="module", params=quick_only(sorted(CASES), {"googlenet"}))
def pair(request):
    """(name, ours, torchvision's) with torchvision's random weights loaded into ours."""
    name = request.param
    torch.manual_seed(0)
    theirs = _torchvision(name)
    ours = archlang.build(name)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return name, ours, theirs


def _input(name: str, seed: int = 1, batch: int = 2, size: int | None = None):
    g = torch.Generator().manual_seed(seed)
    size = size or CASES[name][1]
    return torch.randn(batch, 3, size, size, generator=g)


def test_state_dict_keys_and_shapes_equal_torchvision(pair):
    name, ours, theirs = pair
    mine = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    ref = [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert mine == ref  # same keys, same order, same shapes
    # torchvision's documented parameter counts (FACTS.md): googlenet with both aux heads
    # 13,004,888; inception_v3 with AuxLogits 27,161,264.
    expected = {"googlenet": 13_004_888, "inception_v3": 27_161_264}[name]
    assert sum(p.numel() for p in ours.parameters()) == expected


def test_eval_outputs_equal_torchvision(pair):
    name, ours, theirs = pair
    x = _input(name)
    ours.eval()
    theirs.eval()
    with torch.inference_mode():
        mine, ref = ours(x), theirs(x)
    assert isinstance(mine, torch.Tensor) and mine.shape == (2, 1000)
    torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


def test_train_outputs_equal_torchvision_including_aux_and_dropout(pair):
    name, ours, theirs = pair
    x = _input(name, seed=2)
    ours.train()
    theirs.train()
    torch.manual_seed(123)
    mine = ours(x)
    torch.manual_seed(123)
    ref = theirs(x)
    assert type(mine).__name__ == type(ref).__name__  # GoogLeNetOutputs / InceptionOutputs
    assert mine._fields == ref._fields
    for field in ref._fields:
        torch.testing.assert_close(getattr(mine, field), getattr(ref, field), atol=1e-5, rtol=0)
    # BN running statistics were updated identically in training mode
    for (k, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=k)
    ours.eval()
    theirs.eval()


@pytest.mark.parametrize("name", sorted(CASES))
def test_transform_input_matches_torchvision(name):
    torch.manual_seed(0)
    theirs = _torchvision(name, transform_input=True).eval()
    ours = archlang.build(name, transform_input=True).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = _input(name, seed=3, batch=1, size=160)  # eval needs no aux map: a small input will do
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_initialization_mirrors_torchvision_exactly(name):
    """Same seed, same weights: module creation order and the trunc_normal pass match
    torchvision's (std 0.01 for GoogLeNet; 0.1 for Inception v3 with AuxLogits.fc 0.001)."""
    torch.manual_seed(7)
    ref = _torchvision(name, init_weights=True).state_dict()
    torch.manual_seed(7)
    mine = archlang.build(name).state_dict()
    assert list(mine) == list(ref)
    for key in ref:
        assert torch.equal(mine[key], ref[key]), key


def test_default_init_when_spec_gives_none():
    """Without `init`, PyTorch's own default initialisation (kaiming uniform) is kept."""
    text = "network N { input 3x8x8\n c: conv2d(4, 3)\n}"
    torch.manual_seed(5)
    mine = archlang.build(text)
    torch.manual_seed(5)
    ref = torch.nn.Conv2d(3, 4, 3)
    assert torch.equal(mine.c.weight, ref.weight) and torch.equal(mine.c.bias, ref.bias)
