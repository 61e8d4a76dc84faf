"""The recipe's augmentation as a ``torchvision.transforms.v2`` pipeline.

:data:`TRAIN_STEPS` is a table, one row per :class:`~.recipes.Augment` field, in the order the
transforms run; a row returns a transform or ``None`` when the recipe does not ask for it.
Pixel sizes in a recipe are for its ``reference_size`` crop and scale with the spec's input.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.transforms import v2

from .recipes import Augment

# ImageNet's RGB eigenvalues/eigenvectors for AlexNet's PCA colour noise (the values of
# fb.resnet.torch and Caffe's reimplementations; the paper gives the method, not the numbers).
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


class PCALighting(nn.Module):
    """AlexNet §4.1: add ``eigvec @ (alpha * eigval)`` to every pixel, ``alpha ~ N(0, std)``,
    drawn once per image. Images with other than 3 channels pass unchanged."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std
        self.register_buffer("eigval", torch.tensor(IMAGENET_EIGVAL), persistent=False)
        self.register_buffer("eigvec", torch.tensor(IMAGENET_EIGVEC), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-3] != 3:
            return image
        alpha = torch.randn(3) * self.std
        shift = self.eigvec @ (alpha * self.eigval)
        return image + shift.view(3, 1, 1).to(image.dtype)


def _scaled(augment: Augment, pixels: int, size: int) -> int:
    return max(size, round(pixels * size / augment.reference_size))


def _resize(a: Augment, size: int):
    if a.resize is None:
        return None
    return v2.Compose([v2.Resize(_scaled(a, a.resize, size), antialias=True), v2.RandomCrop(size)])


def _scale_jitter(a: Augment, size: int):
    if a.scale_jitter is None:
        return None
    low, high = (_scaled(a, s, size) for s in a.scale_jitter)
    return v2.Compose([v2.RandomResize(low, high + 1, antialias=True), v2.RandomCrop(size)])


def _random_resized_crop(a: Augment, size: int):
    crop = a.random_resized_crop
    if crop is None:
        return None
    return v2.RandomResizedCrop(size, scale=crop.scale, ratio=crop.ratio, antialias=True)


TRAIN_STEPS: dict[str, Callable[[Augment, int], Callable | None]] = {
    "resize": _resize,
    "scale_jitter": _scale_jitter,
    "random_resized_crop": _random_resized_crop,
    "translate": lambda a, size: (
        v2.RandomAffine(degrees=0, translate=(a.translate, a.translate)) if a.translate else None
    ),
    "horizontal_flip": lambda a, size: v2.RandomHorizontalFlip() if a.horizontal_flip else None,
    "color_jitter": lambda a, size: v2.ColorJitter(**a.color_jitter.model_dump()) if a.color_jitter else None,
    "pca_lighting": lambda a, size: PCALighting(a.pca_lighting) if a.pca_lighting > 0 else None,
}


def _normalize(a: Augment, channels: int):
    if a.mean is None or len(a.mean) != channels:
        return None  # e.g. ImageNet statistics on 1-channel digits: leave the [0, 1] range
    return v2.Normalize(list(a.mean), list(a.std))


def _fixed_size(size: int):
    return [v2.Resize(size, antialias=True), v2.CenterCrop(size)]


def _compose(steps: list):
    steps = [s for s in steps if s is not None]
    return v2.Compose(steps) if steps else v2.Identity()


def train_transform(a: Augment, size: int, channels: int, from_pil: bool):
    """Training pipeline: (PIL -> float tensor,) the recipe's steps, normalisation."""
    steps = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)] if from_pil else []
    chosen = [step(a, size) for step in TRAIN_STEPS.values()]
    if from_pil and not any(chosen[:3]):  # no crop in the recipe: still deliver the input size
        steps += _fixed_size(size)
    steps += [s for s in chosen if s is not None]
    steps.append(_normalize(a, channels))
    return _compose(steps)


def eval_transform(a: Augment, size: int, channels: int, from_pil: bool):
    """Validation pipeline: resize the shorter side, centre crop, normalise."""
    steps = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)] if from_pil else []
    if from_pil:
        resize = _scaled(a, a.eval_resize, size) if a.eval_resize else size
        steps += [v2.Resize(resize, antialias=True), v2.CenterCrop(size)]
    steps.append(_normalize(a, channels))
    return _compose(steps)
