"""What ``archc train`` says when training starts: which heads ``--init`` replaced, how many
parameters train and how many are frozen, and the data choices that quietly hurt a small
run (an epoch too short for BatchNorm's running statistics, a dropped last batch). Also
keeps Lightning's advertising tips and a deprecation warning out of our runs' output."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import warnings

import lightning as L
from torch import nn
from torch.utils.data import DataLoader

# BatchNorm's running statistics are an exponential moving average: after n updates the
# start still weighs (1 - momentum)^n. Below this weight they count as settled.
SETTLED_WEIGHT = 0.05

# Where Lightning's rank_zero_info logs, depending on which of its packages set it up last.
_LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


@contextlib.contextmanager
def quiet_lightning():
    """Lightning's cloud-product tips and torch's ``LeafSpec`` deprecation (raised inside
    Lightning, not fixable by a user) are dropped while the block runs; the filters are
    removed afterwards, so the process's logging and warning settings stay as they were."""
    tips = _DropTips()
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    for logger in loggers:
        logger.addFilter(tips)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated")
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(tips)


def settle_steps(momentum: float) -> int:
    """Updates after which BatchNorm's initial running statistics weigh under SETTLED_WEIGHT."""
    return math.ceil(math.log(SETTLED_WEIGHT) / math.log(1.0 - momentum))


# A few images left out per epoch (a different few each time) cost nothing worth a warning;
# above this fraction of the training set they do.
DROPPED_WARNING_FRACTION = 0.05


def _batch_advice(total: int, batch: int) -> str:
    """Batch sizes near ``batch`` that drop the fewest of ``total`` images."""
    near = sorted(range(max(2, batch // 2), 2 * batch + 1), key=lambda d: (total % d, abs(d - batch), d))
    if total % near[0]:
        return f"e.g. --batch-size {near[0]} drops {total % near[0]}"
    exact = [d for d in near[:2] if total % d == 0]
    return f"e.g. --batch-size {' or '.join(map(str, exact))}"


def start_lines(
    model: nn.Module,
    *,
    replaced: dict[str, tuple[int, int]],
    init: str | None,
    frozen_norms: list[str],
    images: int | None,
    batch: int | None,
    steps: int | None,
    dropped: int | None,
    untrained_aux: list[str] = (),
) -> list[str]:
    """The lines printed when training starts (see the module docstring). ``images`` is
    ``None`` when the training data is not our loader (then only the model is described)."""
    lines = []
    for layer, (old, new) in replaced.items():
        lines.append(
            f"note: replaced the head `{layer}` of `{init}`: {old} -> {new} classes (the data's); "
            "it starts from a fresh initialisation"
        )
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines.append(f"note: {total:,} parameters: {trainable:,} trainable, {total - trainable:,} frozen")
    if untrained_aux:
        heads, are = ("heads", "are") if len(untrained_aux) > 1 else ("head", "is")
        lines.append(
            f"note: the aux {heads} {', '.join(untrained_aux)} {are} not trained: the recipe's aux_loss_weight is 0 "
            "(set it with --recipe-set aux_loss_weight=0.3, or build the spec without aux heads)"
        )
    if images is None:
        return lines
    momenta = [
        m.momentum
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and name not in frozen_norms and m.momentum
    ]
    if momenta:
        needed = settle_steps(min(momenta))
        if steps < needed:
            lines.append(
                f"warning: an epoch is {steps} step{'s' * (steps != 1)} ({images} images, batch {batch}), but "
                f"BatchNorm's running statistics (momentum {min(momenta):g}) need about {needed} steps to settle: "
                "val_acc can lag train_acc; use a smaller --batch-size or more training images"
            )
    if dropped >= DROPPED_WARNING_FRACTION * images:
        advice = _batch_advice(images, batch)
        lines.append(
            f"warning: {dropped} of the {images} training images are left out of every epoch (the last "
            f"partial batch is dropped, a different one each epoch); to use them all, {advice}"
        )
    return lines


class StartNotes(L.Callback):
    """Prints :func:`start_lines` on rank 0 once the training data loader exists."""

    def __init__(self, replaced: dict, init: str | None, frozen_norms: list[str], untrained_aux=(), stream=None):
        self.replaced, self.init, self.frozen_norms = replaced, init, frozen_norms
        self.untrained_aux, self.stream = list(untrained_aux), stream

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        loader = trainer.train_dataloader
        images = steps = batch = dropped = None
        if isinstance(loader, DataLoader) and loader.batch_size and loader.sampler is not None:
            images, steps, batch = len(loader.dataset), len(loader), loader.batch_size * trainer.world_size
            dropped = len(loader.sampler) % loader.batch_size * trainer.world_size if loader.drop_last else 0
        lines = start_lines(
            pl_module.model,
            replaced=self.replaced,
            init=self.init,
            frozen_norms=self.frozen_norms,
            images=images,
            batch=batch,
            steps=steps,
            dropped=dropped,
            untrained_aux=self.untrained_aux,
        )
        stream = self.stream or sys.stderr
        for line in lines:
            print(line, file=stream, flush=True)
