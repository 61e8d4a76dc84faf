"""Training throughput (images/s) of archlang's GoogLeNet and Inception v3 against
torchvision's, under the same Lightning loop (issue #11).

    python benchmarks/bench_train.py                   # CPU: GoogLeNet at 96×96, Inception v3 at 299×299
    python benchmarks/bench_train.py --accelerator gpu --batch 64 --steps 30 --full-size

Both models of a pair are wrapped in the same ``archlang.train.module.SpecModule`` with the
paper's recipe (GoogLeNet: SGD + aux losses × 0.3; Inception v3: RMSProp, label smoothing,
clipping 2.0, aux loss), trained by the same ``lightning.Trainer`` on the same random
images. Each measurement times the training batches after ``--warmup`` batches (forward,
aux losses, backward, optimizer step, Lightning's hooks). The candidates alternate over
``--rounds`` runs so load from other processes hits them alike; the figure is the median.
Prints figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
import warnings

import lightning as L
import torch
import torchvision
from torch.utils.data import DataLoader, TensorDataset

import archlang
from archlang.train.module import SpecModule
from archlang.train.recipes import load_recipe


class BatchTimer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.seconds, self.images, self._start = warmup, 0.0, 0, 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            self.seconds += time.perf_counter() - self._start
            self.images += len(batch[0])


def images_per_second(model, recipe, data, args) -> float:
    timer = BatchTimer(args.warmup)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=args.warmup + args.steps,
        limit_val_batches=0,
        accelerator=args.accelerator,
        devices=1,
        precision=args.precision,
        gradient_clip_val=recipe.gradient_clip,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(SpecModule(model, recipe, args.classes), DataLoader(data, batch_size=args.batch))
    return timer.images / timer.seconds


PAIRS = {
    "googlenet": (
        lambda n: archlang.build("googlenet", num_classes=n),
        lambda n: torchvision.models.googlenet(num_classes=n, aux_logits=True, init_weights=True),
        "googlenet",
        224,
        96,
    ),
    "inception_v3": (
        lambda n: archlang.build("inception_v3", num_classes=n),
        lambda n: torchvision.models.inception_v3(num_classes=n, aux_logits=True, init_weights=True),
        "inception_v3",
        299,
        299,  # the aux head's 5×5/3 pool then 5×5 conv need Mixed_6e at 17×17: no smaller input
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="timed batches per run")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--full-size", action="store_true", help="224 / 299 images (default: small ones)")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    print(f"{'model':14s} {'size':>5s} {'archlang img/s':>15s} {'torchvision img/s':>18s} {'ratio':>7s}")
    for name in args.models:
        ours, theirs, recipe_name, full, small = PAIRS[name]
        size = full if args.full_size else small
        recipe = load_recipe(recipe_name)
        generator = torch.Generator().manual_seed(0)
        count = args.batch * (args.warmup + args.steps)
        data = TensorDataset(
            torch.randn(count, 3, size, size, generator=generator),
            torch.randint(0, args.classes, (count,), generator=generator),
        )
        results = {"archlang": [], "torchvision": []}
        for round_index in range(args.rounds):
            order = [("archlang", ours), ("torchvision", theirs)]
            for label, make in order if round_index % 2 == 0 else order[::-1]:
                torch.manual_seed(0)
                results[label].append(images_per_second(make(args.classes), recipe, data, args))
        a, t = (statistics.median(results[k]) for k in ("archlang", "torchvision"))
        print(f"{name:14s} {size:5d} {a:15.1f} {t:18.1f} {a / t:7.2f}")


if __name__ == "__main__":
    main()
