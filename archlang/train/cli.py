"""``archc train``, ``archc eval``, ``archc export``: click commands, added to ``archc`` by
:mod:`archlang.cli.main`. Importing this module imports click only; torch and Lightning are
imported when a command runs (``archc check`` stays torch-free)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import click

from archlang.cli.group import UsageProblem
from archlang.cli.inputs import parse_dims, parse_sets
from archlang.cli.output import needs_extra, report_errors, write_output


def _fail_on_spec_error(call, *args, **kwargs):
    """Run ``call``; a :class:`SpecError` is rendered with its location and exits 1."""
    from archlang.diagnostics import SpecError

    try:
        return call(*args, **kwargs)
    except SpecError as err:
        report_errors(err)
        sys.exit(1)


def _list_recipes(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from .recipes import bundled_recipes, load_recipe

    for name, path in sorted(bundled_recipes().items()):
        recipe = load_recipe(path)
        click.echo(f"{name:14s} {recipe.optimizer.name:8s} {recipe.source}  ({path})")
    ctx.exit(0)


def _recipe(name: str, overrides: tuple[str, ...], **fields):
    from .recipes import load_recipe, parse_override

    values = {}
    for item in overrides:
        try:
            key, value = parse_override(item)
        except ValueError as err:
            raise UsageProblem(str(err)) from None
        values[key] = value
    values.update({k: v for k, v in fields.items() if v is not None})
    return _fail_on_spec_error(load_recipe, name, values)


def _devices(value: str):
    return int(value) if value.isdigit() else value


@click.command("train")
@click.argument("spec", required=False)
@click.option(
    "--data", default="digits", show_default=True, help="DIR (DIR/train/<class>/, DIR/val/<class>/) or digits."
)
@click.option("--recipe", default="demo", show_default=True, help="Bundled recipe name or a .toml path.")
@click.option(
    "--list-recipes",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_list_recipes,
    help="List the bundled recipes and exit.",
)
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Set a network parameter (repeatable).")
@click.option("--input", "input_dims", metavar="CxHxW", help="Override the spec's input size.")
@click.option("--recipe-set", "recipe_sets", multiple=True, metavar="FIELD=VALUE", help="Override any recipe field.")
@click.option("--max-epochs", type=click.IntRange(1), help="Recipe override: max_epochs.")
@click.option("--batch-size", type=click.IntRange(1), help="Recipe override: global batch size.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), help="Recipe override: optimizer.lr.")
@click.option("--seed", type=int, help="Recipe override: seed.")
@click.option("--out", default="runs/train", show_default=True, help="Output folder.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/last.ckpt.")
@click.option("--init", "init", metavar="PATH", help="Start from these weights (state_dict or checkpoint).")
@click.option("--num-classes", type=click.IntRange(1), help="Replace the classifier and aux classifiers.")
@click.option("--freeze", metavar="LAYER", help="Freeze every parameter up to and including LAYER.")
@click.option("--linear-probe", is_flag=True, help="Freeze everything but the classifier(s).")
@click.option("--accelerator", default="auto", show_default=True, help="Lightning accelerator: cpu, gpu, auto...")
@click.option("--devices", default="auto", show_default=True, help="Lightning devices: N, a list, or auto.")
@click.option("--strategy", default="auto", show_default=True, help="Lightning strategy: ddp, fsdp, auto...")
@click.option("--num-nodes", type=click.IntRange(1), default=1, show_default=True, help="Nodes (with torchrun).")
@click.option("--precision", default=None, help="Lightning precision: 32-true, 16-mixed, bf16-mixed...")
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the model.")
@click.option("--deterministic/--no-deterministic", default=True, show_default=True, help="Deterministic algorithms.")
@click.option("--checkpoint-every", type=click.IntRange(0), default=0, help="Also save last.ckpt every N steps.")
@click.option("--num-workers", type=click.IntRange(0), default=0, show_default=True, help="DataLoader workers.")
@click.option("--progress/--no-progress", default=True, help="Show Lightning's progress bar.")
@needs_extra("train", "train")
def train_cmd(spec, data, recipe, sets, input_dims, recipe_sets, max_epochs, batch_size, lr, seed, **options):
    """Train SPEC on --data with a recipe; checkpoints, metrics.csv, summary.json, curves in --out."""
    if spec is None:
        raise UsageProblem("train needs a SPEC (or --list-recipes)")
    fields = {"max_epochs": max_epochs, "batch_size": batch_size, "optimizer.lr": lr, "seed": seed}
    chosen = _recipe(recipe, recipe_sets, **fields)
    from .run import TrainOptions, fit

    train_options = TrainOptions(
        data=data,
        out=options["out"],
        params=parse_sets(sets),
        input_shape=parse_dims(input_dims) if input_dims else None,
        num_classes=options["num_classes"],
        init=options["init"],
        freeze=options["freeze"],
        linear_probe=options["linear_probe"],
        accelerator=options["accelerator"],
        devices=_devices(options["devices"]),
        strategy=options["strategy"],
        num_nodes=options["num_nodes"],
        precision=options["precision"],
        compile=options["compile_model"],
        resume=options["resume"],
        deterministic="warn" if options["deterministic"] else False,
        checkpoint_every=options["checkpoint_every"],
        num_workers=options["num_workers"],
        progress=options["progress"],
    )
    summary = _fail_on_spec_error(fit, spec, chosen, train_options)
    if summary["rank"] == 0:
        figures = ", ".join(f"{k} {_number(summary.get(k))}" for k in ("val_acc", "val_acc5", "val_loss"))
        diverged = f" (diverged: {', '.join(summary['diverged'])} not finite)" if summary.get("diverged") else ""
        click.echo(
            f"{summary['epochs']} epochs, {figures}{diverged}, {summary['seconds']:.1f} s -> {options['out']}/summary.json",
            err=True,
        )


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


@click.command("eval")
@click.argument("spec")
@click.option("--weights", required=True, metavar="CKPT", help="A checkpoint of `archc train` or a state_dict.")
@click.option("--data", default="digits", show_default=True, help="DIR (its val/ split) or digits.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Set a network parameter (repeatable).")
@click.option("--input", "input_dims", metavar="CxHxW", help="Override the spec's input size.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--out", metavar="DIR", help="Write eval.json and confusion.png/.svg here.")
@click.option("--recipe", default=None, help="Recipe for the eval transform (default: the checkpoint's).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: tables fitting the terminal; json: every number (as --out's eval.json).",
)
@needs_extra("eval", "train")
def eval_cmd(spec, weights, data, sets, input_dims, batch_size, out, recipe, fmt):
    """Top-1, top-5 and per-class accuracy of SPEC with --weights on the validation split."""
    from .evaluate import evaluate

    result = _fail_on_spec_error(
        evaluate,
        spec,
        weights,
        data,
        params=parse_sets(sets),
        input_shape=parse_dims(input_dims) if input_dims else None,
        batch_size=batch_size,
        recipe=_recipe(recipe, ()) if recipe else None,
    )
    draw = result.pop("figures")
    text = json.dumps(result, indent=2) + "\n"
    if out:
        try:
            Path(out).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            click.echo(f"error[E110]: cannot create --out `{out}`: {(err.strerror or str(err)).lower()}", err=True)
            sys.exit(1)
        write_output(text, str(Path(out) / "eval.json"))  # the numbers first: drawing may be what fails
        for suffix, payload in draw().items():
            write_output(payload, str(Path(out) / f"confusion.{suffix}"))
    if fmt == "text":
        from .eval_table import eval_table

        text = eval_table(result, shutil.get_terminal_size().columns)
    click.echo(text, nl=False)


@click.command("export")
@click.argument("spec")
@click.option("--weights", metavar="CKPT", help="A checkpoint of `archc train` or a state_dict (default: fresh init).")
@click.option("-o", "--output", required=True, metavar="FILE", help="model.onnx (ONNX) or model.pt2 (torch.export).")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Set a network parameter (repeatable).")
@click.option("--input", "input_dims", metavar="CxHxW", help="Override the spec's input size.")
@click.option("--opset", type=click.IntRange(7), default=None, help="ONNX opset (default: torch's).")
@needs_extra("export", "train")
def export_cmd(spec, weights, output, sets, input_dims, opset):
    """Export SPEC (eval mode) to ONNX, checked against onnxruntime, or to a torch.export .pt2."""
    suffix = Path(output).suffix
    if suffix not in (".onnx", ".pt2"):
        raise UsageProblem(f"-o wants a .onnx or .pt2 file, got {output!r}")
    from .export import export

    report = _fail_on_spec_error(
        export,
        spec,
        weights,
        suffix[1:],
        params=parse_sets(sets),
        input_shape=parse_dims(input_dims) if input_dims else None,
        opset=opset,
    )
    write_output(report.pop("payload"), output)
    click.echo(json.dumps(report), err=True)
