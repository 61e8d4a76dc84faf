"""The LightningModule around a built spec.

Training mode of a spec with aux heads returns torchvision's namedtuple
(``GoogLeNetOutputs``/``InceptionOutputs``): the loss is the main head's plus
``recipe.aux_loss_weight`` times each aux head's. Metrics are torchmetrics objects (synced
across processes, and persistent so a mid-epoch checkpoint carries the epoch's running
means). Frozen BatchNorm layers stay in eval mode.
"""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch
import torchmetrics
from torch import nn

from .optim import lightning_optimizers
from .recipes import Recipe


def split_outputs(out) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``(logits, [aux logits...])`` from a tensor or a torchvision-style namedtuple."""
    if isinstance(out, torch.Tensor):
        return out, []
    logits, *aux = out
    return logits, [a for a in aux if a is not None]


class SpecModule(L.LightningModule):
    def __init__(
        self,
        model: nn.Module,
        recipe: Recipe,
        num_classes: int,
        frozen_norms: list[str] = (),
        compile: bool = False,
        hparams: dict | None = None,
    ):
        super().__init__()
        self.model = model
        self.recipe = recipe
        self.frozen_norms = list(frozen_norms)
        self.train_criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        self.val_criterion = nn.CrossEntropyLoss()
        top5 = min(5, num_classes)
        self.train_loss = torchmetrics.MeanMetric()
        self.train_acc = torchmetrics.classification.MulticlassAccuracy(num_classes, average="micro")
        self.val_loss = torchmetrics.MeanMetric()
        self.val_acc = torchmetrics.classification.MulticlassAccuracy(num_classes, average="micro")
        self.val_acc5 = torchmetrics.classification.MulticlassAccuracy(num_classes, top_k=top5, average="micro")
        for metric in (self.train_loss, self.train_acc):
            metric.persistent(True)  # a mid-epoch checkpoint keeps the epoch's running means
        # torch.compile'd forward, kept out of the module tree so state_dict keys stay the spec's
        self.__dict__["_compiled"] = torch.compile(model) if compile else None
        self.save_hyperparameters(hparams or {}, logger=False)

    def forward(self, x: torch.Tensor):
        return (self._compiled or self.model)(x)

    def loss(self, out, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, aux = split_outputs(out)
        loss = self.train_criterion(logits, y)
        for aux_logits in aux:
            loss = loss + self.recipe.aux_loss_weight * self.train_criterion(aux_logits, y)
        return loss, logits

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss, logits = self.loss(self(x), y)
        self.train_loss.update(loss.detach(), weight=len(y))
        self.train_acc.update(logits.detach(), y)
        self.log("train_loss", self.train_loss, on_step=False, on_epoch=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True)
        # constant within an epoch; "max" (not Lightning's running mean) survives a mid-epoch resume
        self.log(
            "lr", self.optimizers().param_groups[0]["lr"], on_step=False, on_epoch=True, reduce_fx="max", sync_dist=True
        )
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.val_loss.update(self.val_criterion(logits, y), weight=len(y))
        self.val_acc.update(logits, y)
        self.val_acc5.update(logits, y)
        self.log("val_loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val_acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val_acc5", self.val_acc5, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return lightning_optimizers([p for p in self.model.parameters() if p.requires_grad], self.recipe)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            self._keep_frozen_norms_in_eval()
        return self

    def _keep_frozen_norms_in_eval(self) -> None:
        modules = dict(self.model.named_modules())
        for name in self.frozen_norms:
            modules[name].eval()  # frozen BN: running statistics stay as loaded

    # Lightning keeps the modes it finds (and restores them after validation) rather than
    # calling train(): set them when training starts and at every epoch.
    def on_train_start(self) -> None:
        self._keep_frozen_norms_in_eval()

    def on_train_epoch_start(self) -> None:
        self._keep_frozen_norms_in_eval()

    # The RNG state travels with the checkpoint, so random augmentation and dropout after
    # `--resume` draw what an uninterrupted run would have drawn.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])


def rng_states() -> dict:
    """torch, CUDA, numpy and Python RNG states as tensors, tuples and numbers only, so a
    checkpoint stays loadable with ``torch.load(weights_only=True)``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
