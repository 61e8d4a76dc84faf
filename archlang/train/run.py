"""``archc train``: build the spec, apply transfer learning, run Lightning's Trainer, and
leave ``OUT/`` with checkpoints (``last.ckpt``, ``best.ckpt``), ``metrics.csv``,
``summary.json`` and ``curves.png``/``.svg``."""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint, WeightAveraging

import archlang
from archlang.atomic import write_atomic
from archlang.compiler import compile_spec
from archlang.diagnostics import Diagnostic, SpecError, printable

from . import transfer
from .checkpoint import check_resumable, load_checkpoint_io, safe_load
from .data import DataSpec, SpecDataModule, check_data_dir, class_folders
from .history import HistoryLogger
from .module import SpecModule
from .notes import StartNotes, quiet_lightning
from .plots import curves_figures, epoch_rows
from .recipes import Recipe


@dataclass
class TrainOptions:
    data: str = "digits"
    out: str | Path = "runs/train"
    params: dict = field(default_factory=dict)  # the spec's --set parameters
    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = None
    init: str | None = None
    freeze: str | None = None
    linear_probe: bool = False
    accelerator: str = "auto"
    devices: str | int = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str | None = None
    compile: bool = False
    resume: bool = False
    deterministic: bool | str = "warn"
    checkpoint_every: int = 0  # also save last.ckpt every N optimizer steps (mid-epoch)
    num_workers: int = 0
    progress: bool = True
    callbacks: list = field(default_factory=list)  # extra Lightning callbacks (Python API only)


@dataclass
class Prepared:
    """What the Trainer needs: the spec's parameters, the model, the data, the frozen names."""

    params: dict
    model: torch.nn.Module
    data: DataSpec
    classes: list[str]
    frozen: list[str]
    replaced_heads: list[str]
    head_classes: dict[str, tuple[int, int]] = field(default_factory=dict)  # layer -> (file's, data's)
    aux_heads: list[str] = field(default_factory=list)


def _dataset_classes(source: str) -> list[str]:
    if source == "digits":
        return [str(d) for d in range(10)]
    check_data_dir(source)
    return class_folders(Path(source) / "train")


def spec_params(spec, recipe: Recipe, options: TrainOptions, classes: int) -> dict:
    """The network parameters: the recipe's ``[spec]`` table where the spec declares them,
    then ``--set``, then ``num_classes`` (``--num-classes`` or the dataset's class count)."""
    declared = compile_spec(spec, options.params or None, options.input_shape).graph.params
    params = {k: v for k, v in recipe.spec.items() if k in declared}
    params.update(options.params)
    wanted = options.num_classes or classes
    asked = str(options.params.get("num_classes", wanted))  # --set values arrive as text
    if asked.isdigit() and int(asked) != wanted:
        raise SpecError(
            Diagnostic(
                code="E807",
                message=f"--set num_classes={asked}, but `{options.data}` has {wanted} classes",
                help=f"leave num_classes out: archc train sets it from the data's class folders ({wanted})",
            )
        )
    if "num_classes" in declared:
        params["num_classes"] = wanted
    elif wanted != classes:
        raise SpecError(Diagnostic(code="E807", message=f"the spec has no `num_classes` parameter to set to {wanted}"))
    return params


def check_outputs(compiled, options: TrainOptions, classes: int) -> None:
    """The spec's output must have one logit per class of the data; otherwise the loss fails
    deep in torch. The error points at the layer that makes the output."""
    graph = compiled.graph
    node = graph.nodes[graph.output]
    if node.shape is None or len(node.shape) != 1 or node.shape[0] == classes:
        return
    outputs = node.shape[0]
    declared = "num_classes" in graph.params
    if declared:
        help = "the spec declares `num_classes` but this layer does not use it: write `linear(num_classes)`"
    else:
        help = (
            f"declare `num_classes: int = {outputs}` on the network and end with `linear(num_classes)`: "
            f"archc train then sets it to {classes} (and `--init` replaces the head), or write `linear({classes})`"
        )
    raise SpecError(
        Diagnostic(
            code="E807",
            message=f"the spec outputs {outputs} classes, but `{options.data}` has {classes}",
            span=node.span,
            label=f"{outputs} outputs",
            help=help,
        ),
        compiled.sources,
    )


def prepare(spec, recipe: Recipe, options: TrainOptions) -> Prepared:
    classes = _dataset_classes(options.data)
    if options.num_classes and options.num_classes != len(classes):
        raise SpecError(
            Diagnostic(
                code="E807",
                message=f"--num-classes {options.num_classes}, but `{options.data}` has {len(classes)} classes",
            )
        )
    params = spec_params(spec, recipe, options, len(classes))
    compiled = compile_spec(spec, params, options.input_shape)
    check_outputs(compiled, options, len(classes))
    channels, *size = compiled.graph.input_shape
    model = archlang.build(compiled)
    heads: set[str] = set()
    if options.init or options.freeze or options.linear_probe:
        heads = transfer.head_parameters(spec, params, params.get("num_classes", len(classes)), options.input_shape)
    state = transfer.read_state_dict(options.init) if options.init else {}
    replaced = transfer.load_init(model, state, heads) if options.init else []
    own = model.state_dict()
    # dim 0 of a head's weight is its class count (a linear's out_features, a 1x1 conv's channels)
    head_classes = {
        k.rpartition(".")[0]: (state[k].shape[0], own[k].shape[0]) for k in replaced if k.endswith(".weight")
    }
    frozen = transfer.freeze(model, options.freeze, heads, options.linear_probe)
    data = DataSpec(options.data, channels, tuple(size))
    aux = list(compiled.graph.aux_outputs)
    return Prepared(params, model, data, classes, frozen, replaced, head_classes, aux)


def _callbacks(recipe: Recipe, options: TrainOptions, checkpoints: Path) -> list:
    callbacks = [
        ModelCheckpoint(
            dirpath=checkpoints,
            filename="best",
            monitor="val_acc",
            mode="max",
            save_top_k=1,
            save_last=True,
            enable_version_counter=False,
        )
    ]
    if options.checkpoint_every:
        callbacks.append(
            ModelCheckpoint(
                dirpath=checkpoints,
                filename="last",
                every_n_train_steps=options.checkpoint_every,
                save_top_k=1,
                enable_version_counter=False,
            )
        )
    if recipe.averaging is not None:
        callbacks.append(WeightAveraging(**_averaging_kwargs(recipe)))
    return callbacks


def _averaging_kwargs(recipe: Recipe) -> dict:
    if recipe.averaging.kind == "polyak":
        return {}  # AveragedModel's default: the running mean of all iterates (Polyak)
    decay = recipe.averaging.decay

    def ema(averaged, current, num_averaged):
        # lerp keeps a frozen tensor bit-identical (x + w·(x − x) = x)
        return torch.lerp(averaged, current, 1.0 - decay)

    return {"avg_fn": ema}


def make_trainer(recipe: Recipe, options: TrainOptions, out: Path) -> L.Trainer:
    cpus = os.cpu_count() or 1
    on_cpu = options.accelerator == "cpu" or (options.accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and isinstance(options.devices, int) and options.devices > cpus:
        # Lightning would start that many processes (`--devices 99` ran until killed)
        raise SpecError(
            Diagnostic(
                code="E812",
                message=f"--devices {options.devices}: training on the CPU runs one process per device, "
                f"and this machine has {cpus} CPUs",
                help=f"give --devices 1 to {cpus}",
            )
        )
    try:
        return _trainer(recipe, options, out)
    # Lightning's refusals have many types (MisconfigurationException, ValueError, TypeError,
    # ModuleNotFoundError for --accelerator tpu without torch_xla): all are about the options
    except (MisconfigurationException, ImportError, ValueError, TypeError, RuntimeError) as err:
        given = [
            f"--{name} {getattr(options, name)}"
            for name in ("accelerator", "devices", "strategy", "precision")
            if getattr(options, name) not in ("auto", None)
        ]
        raise SpecError(
            Diagnostic(
                code="E812",
                message=f"Lightning refused {', '.join(given) or 'the trainer options'}: "
                + printable(str(err).strip().split(chr(10))[0][:300]),
                help="see `archc train --help`; --accelerator cpu --devices 1 always works",
            )
        ) from None


def _trainer(recipe: Recipe, options: TrainOptions, out: Path) -> L.Trainer:
    return L.Trainer(
        default_root_dir=out,
        max_epochs=recipe.max_epochs,
        accelerator=options.accelerator,
        devices=options.devices,
        strategy=options.strategy,
        num_nodes=options.num_nodes,
        precision=options.precision,
        deterministic=options.deterministic,
        gradient_clip_val=recipe.gradient_clip,
        gradient_clip_algorithm="norm",
        callbacks=[*_callbacks(recipe, options, out / "checkpoints"), *options.callbacks],
        logger=HistoryLogger(out / "metrics.csv", resume=options.resume),
        plugins=[load_checkpoint_io()],  # --resume loads with weights_only=True on every torch
        use_distributed_sampler=False,  # data.EpochSampler shards by rank itself
        num_sanity_val_steps=0,
        enable_model_summary=False,
        enable_progress_bar=options.progress,
        log_every_n_steps=1,
    )


def state_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every tensor of the state_dict, in order: equal digests, bit-identical weights."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _replica_digests(model: torch.nn.Module) -> list[str]:
    own = state_digest(model)
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [own]
    gathered = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, own)
    return gathered


def _check_extension(planned: int, recipe: Recipe, last: Path) -> None:
    """A resumed run whose ``max_epochs`` differs from its checkpoint's: a cosine schedule
    was laid out over the old count (it would go on at its final lr, or jump), so refuse;
    the other schedules do not depend on it, so go on, saying so."""
    if planned == recipe.max_epochs:
        return
    if recipe.schedule.name == "cosine":
        raise SpecError(
            Diagnostic(
                code="E809",
                message=f"--resume: the cosine schedule of `{last}` spans {planned} epochs; "
                f"it cannot be stretched to {recipe.max_epochs}",
                help=f"resume with --max-epochs {planned}, or train on from its weights in a new run: "
                f"--init {last} --out NEW",
            )
        )
    verb = "extends" if recipe.max_epochs > planned else "shortens"
    print(
        f"note: --resume {verb} the run from {planned} to {recipe.max_epochs} epochs "
        f"(the {recipe.schedule.name} schedule goes on where it stopped)",
        file=sys.stderr,
    )


def fit(spec, recipe: Recipe, options: TrainOptions) -> dict:
    """Train ``spec`` with ``recipe``; returns the summary (also written to ``OUT/summary.json``
    by rank 0)."""
    out = Path(options.out)
    if out.exists() and not out.is_dir():
        raise SpecError(
            Diagnostic(
                code="E110",
                message=f"--out `{printable(str(out))}` is a file, not a folder",
                help="--out names the run's folder (checkpoints, metrics.csv, summary.json)",
            )
        )
    last = out / "checkpoints" / "last.ckpt"
    if options.resume and not last.exists():
        raise SpecError(Diagnostic(code="E809", message=f"--resume: no checkpoint `{last}` to continue from"))
    checkpoint = safe_load(last, "E809", "checkpoint") if options.resume else None
    L.seed_everything(recipe.seed, workers=True, verbose=False)
    prepared = prepare(spec, recipe, options)
    hparams = {
        "spec_params": prepared.params,
        "classes": prepared.classes,
        "recipe": recipe.model_dump(mode="json", exclude_unset=True),
    }
    frozen_norms = transfer.frozen_norm_layers(prepared.model)
    module = SpecModule(
        prepared.model,
        recipe,
        len(prepared.classes),
        frozen_norms,
        compile=options.compile,
        hparams=hparams,
    )
    if checkpoint is not None:
        planned = check_resumable(checkpoint, last, module, recipe)
        del checkpoint  # Lightning reads it again, through load_checkpoint_io
        _check_extension(planned, recipe, last)
    datamodule = SpecDataModule(prepared.data, recipe, recipe.batch_size, options.num_workers)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = (err.strerror or type(err).__name__).lower()
        raise SpecError(
            Diagnostic(code="E110", message=f"cannot create --out `{printable(str(out))}`: {reason}")
        ) from None
    untrained_aux = prepared.aux_heads if recipe.aux_loss_weight == 0 else []
    notes = StartNotes(prepared.head_classes, options.init, frozen_norms, untrained_aux)
    metrics_csv = out / "metrics.csv"
    with quiet_lightning():
        trainer = make_trainer(recipe, replace(options, callbacks=[*options.callbacks, notes]), out)
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if options.resume else None)
    seconds = time.perf_counter() - start
    digests = _replica_digests(prepared.model)
    # a diverged run's NaN/inf become null, so summary.json stays JSON; `diverged` names them
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    diverged = sorted(k for k, v in metrics.items() if not math.isfinite(v))
    metrics = {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}
    summary = {
        "spec": str(spec) if not hasattr(spec, "graph") else "<compiled>",
        "recipe": recipe.name,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "val_acc": metrics.get("val_acc"),
        "val_acc5": metrics.get("val_acc5"),
        "val_loss": metrics.get("val_loss"),
        "train_loss": metrics.get("train_loss"),
        "train_acc": metrics.get("train_acc"),
        "params": sum(p.numel() for p in prepared.model.parameters()),
        "trainable_params": sum(p.numel() for p in prepared.model.parameters() if p.requires_grad),
        "frozen": len(prepared.frozen),
        "replaced_heads": prepared.replaced_heads,
        "seconds": round(seconds, 3),
        "world_size": trainer.world_size,
        "replica_sha256": digests,
        "replicas_identical": len(set(digests)) == 1,
        "diverged": diverged,
    }
    summary_rank = trainer.global_rank
    if trainer.is_global_zero:
        write_atomic(out / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
        rows = epoch_rows(metrics_csv)
        for suffix, data in curves_figures(rows, title=f"{summary['spec']} — {recipe.name}").items():
            write_atomic(out / f"curves.{suffix}", data)
    return {**summary, "rank": summary_rank}
