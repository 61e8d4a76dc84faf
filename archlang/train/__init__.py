"""Train, fine-tune, evaluate and export a spec on PyTorch Lightning (``pip install archlang[train]``).

>>> from archlang.train import TrainOptions, fit, load_recipe
>>> summary = fit("examples/lenet5_small.arch", load_recipe("demo"), TrainOptions(data="digits", out="runs/x"))

Recipes are TOML data (:mod:`.recipes`); the LightningModule is :mod:`.module`; transfer
learning (``init``, ``num_classes``, ``freeze``) is :mod:`.transfer`. Everything is imported
on first use, so ``archc check`` never imports torch or Lightning.
"""

from __future__ import annotations

from archlang.lazy import lazy_getattr

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


__getattr__ = lazy_getattr("archlang.train", _LAZY, globals())


__all__ = sorted(_LAZY)
