"""Train, fine-tune, evaluate and export a spec on PyTorch Lightning (``pip install archlang[train]``).

>>> from archlang.train import TrainOptions, fit, load_recipe
>>> summary = fit("examples/lenet5_small.arch", load_recipe("demo"), TrainOptions(data="digits", out="runs/x"))

Recipes are TOML data (:mod:`.recipes`); the LightningModule is :mod:`.module`; transfer
learning (``init``, ``num_classes``, ``freeze``) is :mod:`.transfer`. Everything is imported
on first use, so ``archc check`` never imports torch or Lightning.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Recipe": "archlang.train.recipes:Recipe",
    "load_recipe": "archlang.train.recipes:load_recipe",
    "parse_recipe": "archlang.train.recipes:parse_recipe",
    "bundled_recipes": "archlang.train.recipes:bundled_recipes",
    "TrainOptions": "archlang.train.run:TrainOptions",
    "fit": "archlang.train.run:fit",
    "evaluate": "archlang.train.evaluate:evaluate",
    "export": "archlang.train.export:export",
}


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'archlang.train' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


__all__ = sorted(_LAZY)
