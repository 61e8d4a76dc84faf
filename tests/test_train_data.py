"""Data and the pieces that make N processes and a resumed run see the same batches."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from archlang.diagnostics import SpecError
from archlang.train.data import DataSpec, DigitsDataset, EpochSampler, SeededSamples, make_datasets
from archlang.train.module import SpecModule
from archlang.train.recipes import load_recipe
from archlang.train.run import _averaging_kwargs


def test_digits_split_is_fixed_and_stratified():
    train, val = DigitsDataset("train", 3, (20, 24)), DigitsDataset("val", 3, (20, 24))
    assert (len(train), len(val)) == (1437, 360)  # scikit-learn's 1,797 digits, 80/20
    assert train.images.shape == (1437, 3, 20, 24) and 0 <= train.images.min() and train.images.max() <= 1
    from sklearn.datasets import load_digits

    per_class = torch.bincount(torch.tensor(load_digits().target))
    assert (torch.bincount(val.targets) - 0.2 * per_class).abs().max() <= 1  # stratified: 20 % of each class
    assert torch.equal(train.images[:, 0], train.images[:, 2])  # grey digits repeated to 3 channels


def _image_folder(root, classes=("cat", "dog"), per_class=3, size=(40, 30)):
    for split in ("train", "val"):
        for index, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", size, (40 * index + i, 100, 200)).save(folder / f"{i}.png")


def test_image_folder_gives_the_spec_input_size_and_channels(tmp_path):
    _image_folder(tmp_path)
    recipe = load_recipe("googlenet")  # random resized crops, flips, colour jitter, ImageNet normalisation
    train, val = make_datasets(DataSpec(str(tmp_path), 3, (32, 32)), recipe)
    assert train.classes == val.classes == ["cat", "dog"] and len(train) == 6
    x, y = train[4]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == 1
    assert val[0][0].shape == (3, 32, 32)
    gray, _ = make_datasets(DataSpec(str(tmp_path), 1, (16, 16)), load_recipe("demo"))
    assert gray[0][0].shape == (1, 16, 16)


def test_missing_val_folder_is_diagnosed(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(SpecError) as err:
        make_datasets(DataSpec(str(tmp_path), 3, (8, 8)), load_recipe("demo"))
    assert err.value.diagnostics[0].code == "E807" and "val/" in err.value.diagnostics[0].message


@settings(max_examples=50, deadline=None)
@given(size=st.integers(1, 200), world=st.integers(1, 4), seed=st.integers(0, 5), epoch=st.integers(0, 3))
def test_rank_shards_partition_the_epoch_permutation(size, world, seed, epoch):
    shards = []
    for rank in range(world):
        sampler = EpochSampler(size, shuffle=True, seed=seed, rank=rank, world=world)
        sampler.set_epoch(epoch)
        shards.append([k - epoch * size for k in sampler])
    merged = [shards[i % world][i // world] for i in range(size)]  # interleave the ranks back
    single = EpochSampler(size, shuffle=True, seed=seed)
    single.set_epoch(epoch)
    assert merged == [k - epoch * size for k in single]
    assert sorted(merged) == list(range(size))


def test_resume_skips_the_consumed_batches_of_that_epoch_only():
    sampler = EpochSampler(10, shuffle=True, seed=0)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.skip, sampler.skip_epoch = 4, 2
    assert list(sampler) == full[4:]
    assert list(sampler) == full  # the skip applies once


def test_augmentation_depends_on_seed_epoch_and_index_not_on_the_global_rng():
    recipe = load_recipe("googlenet")
    train, _ = make_datasets(DataSpec("digits", 3, (16, 16)), recipe)
    samples = SeededSamples(train, seed=0)
    torch.manual_seed(123)
    a = samples[5 + 3 * len(train)][0]
    torch.manual_seed(456)
    b = samples[5 + 3 * len(train)][0]
    c = samples[5 + 4 * len(train)][0]  # another epoch: another draw
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_ema_is_lerp_and_leaves_equal_values_equal():
    recipe = load_recipe("demo", {"averaging": {"kind": "ema", "decay": 0.9}})
    ema = _averaging_kwargs(recipe)["avg_fn"]
    assert ema(torch.tensor([1.0]), torch.tensor([3.0]), 5).item() == pytest.approx(0.9 * 1 + 0.1 * 3)
    x = torch.randn(1000)
    assert torch.equal(ema(x, x.clone(), 7), x)


def test_compiled_forward_keeps_the_spec_state_dict_keys():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    module = SpecModule(model, load_recipe("demo"), 3, compile=True)
    assert all(k.startswith("model.") and "_orig_mod" not in k for k in module.state_dict() if "0." in k)
