"""Bundled spec names that are one parameterised file with set parameters.

Every torchvision model name of the course resolves to a spec: ``vgg16_bn`` is ``vgg.arch``
with ``depth=16, batch_norm=true``. A user's ``--set`` (or ``params=``) overrides these.
Names that are a file of their own (``googlenet``, ``lenet5``, ...) are not listed here.
"""

from __future__ import annotations

_VGG = {f"vgg{d}": ("vgg.arch", {"depth": d}) for d in (11, 13, 16, 19)}
_VGG_BN = {f"vgg{d}_bn": ("vgg.arch", {"depth": d, "batch_norm": True}) for d in (11, 13, 16, 19)}
_RESNET = {f"resnet{d}": ("resnet.arch", {"depth": d}) for d in (18, 34, 50, 101, 152)}
_DENSENET = {f"densenet{d}": ("densenet.arch", {"depth": d}) for d in (121, 161, 169, 201)}

VARIANTS: dict[str, tuple[str, dict]] = {
    **_VGG,
    **_VGG_BN,
    **_RESNET,
    **_DENSENET,
    "resnet50_v1": ("resnet.arch", {"depth": 50, "version": "v1"}),
    "resnext50_32x4d": ("resnet.arch", {"depth": 50, "groups": 32, "width_per_group": 4}),
    "resnext101_32x8d": ("resnet.arch", {"depth": 101, "groups": 32, "width_per_group": 8}),
    "resnext101_64x4d": ("resnet.arch", {"depth": 101, "groups": 64, "width_per_group": 4}),
    "wide_resnet50_2": ("resnet.arch", {"depth": 50, "width_per_group": 128}),
    "wide_resnet101_2": ("resnet.arch", {"depth": 101, "width_per_group": 128}),
    # torchvision.models.segmentation, with weights=None, weights_backbone=None
    "fcn_resnet50": ("fcn.arch", {"depth": 50}),
    "fcn_resnet101": ("fcn.arch", {"depth": 101}),
    "deeplabv3_resnet50": ("deeplabv3.arch", {"depth": 50}),
    "deeplabv3_resnet101": ("deeplabv3.arch", {"depth": 101}),
    "lraspp_mobilenet_v3_large": ("lraspp.arch", {}),
    "alexnet_paper": ("alexnet.arch", {"variant": "paper"}),
    "lenet5_modern": ("lenet5.arch", {"variant": "modern"}),
}
