"""Training throughput (images/s) of archlang's generated modules against torchvision's same
networks, under the same Lightning loop (issue #23, item 3; first written for issue #11).

    python benchmarks/bench_train.py                       # ResNet-18 and -50, 3×64×64, batch 8, fp32 and channels_last+bf16
    python benchmarks/bench_train.py --threads 1           # on a machine shared with other jobs (129 s at load 13 on 2 cores)
    python benchmarks/bench_train.py --models resnet50 --size 112 --configs fp32 channels_last bf16 channels_last+bf16
    python benchmarks/bench_train.py --models googlenet inception_v3 --configs fp32   # aux heads on (299 for Inception)
    python benchmarks/bench_train.py --accelerator gpu --batch 64 --size 224

Both models of a pair are wrapped in the same ``archlang.train.module.SpecModule`` (the
LightningModule ``archc train`` uses) with the network's bundled recipe, its schedule made
constant (there is no validation set to step a plateau on), and trained by the same
``lightning.Trainer`` on the same random images; both start from the same weights
(``torch.manual_seed(0)`` before each build: archlang initialises in torchvision's order).
A step is timed from Lightning's ``on_train_batch_start`` to ``on_train_batch_end``:
forward, loss, backward, optimizer step and Lightning's own hooks (metrics, logging).

Configurations (``--configs``), the same for both sides:

* ``fp32``: float32, NCHW;
* ``channels_last``: the model and the batches (a collate function) in channels_last;
* ``bf16``: Lightning's ``bf16-mixed`` precision (``torch.autocast("cpu", torch.bfloat16)``
  on CPU), left out with a note where the CPU has no native bfloat16 (AVX512-BF16 / AMX);
* ``channels_last+bf16``: both.

In each round, every configuration trains both sides once (``--warmup`` untimed steps, then
``--steps`` timed), the side that goes first alternating, so load from other processes hits
both alike. A side's figure in a round is its median step; the printed images/s is the
median over rounds, ``ratio`` (archlang's speed over torchvision's) the median of the
per-round ratios of wall time (their spread follows), ``CPU ratio`` the same of the
process's CPU time per step. On a machine shared with other jobs, wall times swing by tens
of percent from round to round; with ``--threads 1`` the CPU time does not count the time
the process waits for a core, so ``CPU ratio`` is the figure to read there. Goal: ratio
≥ 0.98. Prints figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import warnings

import lightning as L
import torch
import torchvision
from torch.utils.data import DataLoader, TensorDataset

import archlang
from archlang.train.module import SpecModule
from archlang.train.recipes import Schedule, load_recipe


class StepTimer(L.Callback):
    """Wall and CPU seconds of each training step after the first ``warmup``."""

    def __init__(self, warmup: int):
        self.warmup, self.wall, self.cpu, self._start = warmup, [], [], (0.0, 0.0)

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self._start = (time.perf_counter(), time.process_time())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            self.wall.append(time.perf_counter() - self._start[0])
            self.cpu.append(time.process_time() - self._start[1])


def step_seconds(module: SpecModule, loader: DataLoader, precision: str, args) -> tuple[float, float]:
    """The median wall and CPU seconds of a timed training step of ``module``, one short ``fit``."""
    timer = StepTimer(args.warmup)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=args.warmup + args.steps,
        limit_val_batches=0,
        accelerator=args.accelerator,
        devices=1,
        precision=precision,
        gradient_clip_val=module.recipe.gradient_clip,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, loader)
    return statistics.median(timer.wall), statistics.median(timer.cpu)


# name -> (archlang's build, torchvision's, recipe, full-size input, default small input)
PAIRS = {
    "resnet18": (
        lambda n: archlang.build("resnet18", num_classes=n),
        lambda n: torchvision.models.resnet18(num_classes=n),
        "resnet",
        224,
        64,
    ),
    "resnet50": (
        lambda n: archlang.build("resnet50", num_classes=n),
        lambda n: torchvision.models.resnet50(num_classes=n),
        "resnet",
        224,
        64,
    ),
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
CONFIGS = {  # name -> (channels_last, Lightning precision)
    "fp32": (False, "32-true"),
    "channels_last": (True, "32-true"),
    "bf16": (False, "bf16-mixed"),
    "channels_last+bf16": (True, "bf16-mixed"),
}


def bf16_native() -> bool:
    """Whether oneDNN runs bfloat16 natively here (emulated bf16 is slower than fp32 and
    measures the emulation)."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def loader(data: TensorDataset, batch: int, channels_last: bool) -> DataLoader:
    def collate(samples):
        x = torch.stack([s[0] for s in samples])
        y = torch.stack([s[1] for s in samples])
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x, y

    return DataLoader(data, batch_size=batch, collate_fn=collate)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50"], choices=list(PAIRS))
    parser.add_argument("--configs", nargs="+", default=["fp32", "channels_last+bf16"], choices=list(CONFIGS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=None, help="image side (default: each network's small one)")
    parser.add_argument("--full-size", action="store_true", help="224 / 299 images")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first in each run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--accelerator", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    configs = list(args.configs)
    if args.accelerator == "cpu" and not bf16_native():
        dropped = [c for c in configs if "bf16" in c]
        configs = [c for c in configs if "bf16" not in c]
        if dropped:
            print(f"note: left out {', '.join(dropped)}: this CPU has no native bfloat16 (oneDNN would emulate it)")
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, lightning {L.__version__}, "
        f"{torch.get_num_threads()} threads ({os.cpu_count()} CPUs), batch {args.batch}, {args.steps} timed steps "
        f"after {args.warmup} per run, {args.rounds} rounds; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'model':13s} {'config':19s} {'size':>4s} {'archlang img/s':>15s} {'torchvision img/s':>18s} "
        f"{'ratio':>6s} {'CPU ratio':>9s}  per-round ratios"
    )
    started = time.perf_counter()
    for name in args.models:
        ours, theirs, recipe_name, full, small = PAIRS[name]
        size = args.size or (full if args.full_size else small)
        # a constant schedule: no validation set for a plateau schedule to watch
        recipe = load_recipe(recipe_name).model_copy(update={"schedule": Schedule()})
        generator = torch.Generator().manual_seed(0)
        count = args.batch * (args.warmup + args.steps)
        data = TensorDataset(
            torch.randn(count, 3, size, size, generator=generator),
            torch.randint(0, args.classes, (count,), generator=generator),
        )
        for config in configs:
            channels_last, precision = CONFIGS[config]
            modules = {}
            for side, make in (("archlang", ours), ("torchvision", theirs)):
                torch.manual_seed(0)
                model = make(args.classes)
                if channels_last:
                    model = model.to(memory_format=torch.channels_last)
                modules[side] = SpecModule(model, recipe, args.classes)
            batches = loader(data, args.batch, channels_last)
            times = {"archlang": [], "torchvision": []}  # (wall, CPU) per round
            for r in range(args.rounds):
                for side in ("archlang", "torchvision") if r % 2 == 0 else ("torchvision", "archlang"):
                    times[side].append(step_seconds(modules[side], batches, precision, args))
            ours_t, theirs_t = times["archlang"], times["torchvision"]
            ratios = [t[0] / a[0] for a, t in zip(ours_t, theirs_t)]
            cpu_ratio = statistics.median(t[1] / a[1] for a, t in zip(ours_t, theirs_t))
            a, t = (args.batch / statistics.median(w for w, _ in times[k]) for k in ("archlang", "torchvision"))
            spread = ", ".join(f"{q:.3f}" for q in ratios)
            print(
                f"{name:13s} {config:19s} {size:4d} {a:15.1f} {t:18.1f} {statistics.median(ratios):6.3f} "
                f"{cpu_ratio:9.3f}  {spread}",
                flush=True,
            )
    print(
        f"{time.perf_counter() - started:.0f} s; load average at the end {os.getloadavg()[0]:.2f} "
        "(other processes share these cores: compare the ratios, not the absolute rates)"
    )


if __name__ == "__main__":
    main()
