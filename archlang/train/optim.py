"""The recipe's optimizer and learning-rate schedule as torch objects (no Lightning here).

Both are looked up in tables keyed by the recipe's ``name``; a test asserts every name of
:data:`~.recipes.OPTIMIZER_FIELDS` / :data:`~.recipes.SCHEDULE_FIELDS` has a row here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim import lr_scheduler

from .recipes import Recipe, Schedule

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}

# schedule name -> (optimizer, schedule, max_epochs) -> scheduler; all step once per epoch.
SCHEDULES: dict[str, Callable[[torch.optim.Optimizer, Schedule, int], lr_scheduler.LRScheduler]] = {
    "constant": lambda opt, s, epochs: lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0),
    "step": lambda opt, s, epochs: lr_scheduler.StepLR(opt, step_size=s.every_epochs, gamma=s.gamma),
    "plateau": lambda opt, s, epochs: lr_scheduler.ReduceLROnPlateau(
        opt,
        mode="max" if s.monitor == "val_acc" else "min",
        factor=s.factor,
        patience=s.patience,
        min_lr=s.min_lr,
    ),
    "cosine": lambda opt, s, epochs: lr_scheduler.CosineAnnealingLR(opt, T_max=epochs, eta_min=s.min_lr),
}


def make_optimizer(params: Iterable[torch.nn.Parameter], recipe: Recipe) -> torch.optim.Optimizer:
    return OPTIMIZERS[recipe.optimizer.name](params, **recipe.optimizer.kwargs())


def make_scheduler(optimizer: torch.optim.Optimizer, recipe: Recipe) -> lr_scheduler.LRScheduler:
    return SCHEDULES[recipe.schedule.name](optimizer, recipe.schedule, recipe.max_epochs)


def lightning_optimizers(params, recipe: Recipe) -> dict:
    """What ``LightningModule.configure_optimizers`` returns for the recipe."""
    optimizer = make_optimizer(params, recipe)
    scheduler = {"scheduler": make_scheduler(optimizer, recipe), "interval": "epoch", "frequency": 1}
    if recipe.schedule.name == "plateau":
        scheduler["monitor"] = recipe.schedule.monitor
    return {"optimizer": optimizer, "lr_scheduler": scheduler}
