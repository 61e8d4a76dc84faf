"""``archc eval``: top-1, top-5 and per-class accuracy and the confusion matrix of a trained
spec on a validation split."""

from __future__ import annotations

import json

import torch
from pydantic import ValidationError

import archlang
from archlang.diagnostics import Diagnostic, SpecError, printable

from .data import DataSpec, make_datasets
from .plots import confusion_figures
from .recipes import Recipe
from .transfer import read_state_dict


def checkpoint_hparams(path) -> dict:
    """The ``hyper_parameters`` an ``archc train`` checkpoint carries (``{}`` for a plain
    state_dict): the spec parameters, the class names and the recipe."""
    from .checkpoint import safe_load

    try:
        data = safe_load(path)
    except SpecError:  # read_state_dict reports unreadable files
        return {}
    return dict(data.get("hyper_parameters") or {}) if isinstance(data, dict) else {}


def load_model(spec, weights, params: dict | None = None, input_shape=None):
    """``(model in eval mode, hparams)``: the spec built with the checkpoint's parameters
    (``--set`` wins) and its weights loaded strictly."""
    hparams = checkpoint_hparams(weights) if weights else {}
    merged = {**hparams.get("spec_params", {}), **(params or {})}
    compiled = archlang.compile_spec(spec, merged or None, input_shape)
    model = archlang.build(compiled)
    if weights:
        from .transfer import load_init

        load_init(model, read_state_dict(weights), heads=set())
    return model.eval(), compiled, hparams


def _recipe_from(hparams: dict, weights) -> Recipe:
    stored = hparams.get("recipe")
    if stored:
        try:
            return Recipe.model_validate_json(json.dumps(stored))
        except (ValidationError, TypeError, ValueError, RecursionError) as err:
            first = err.errors()[0] if isinstance(err, ValidationError) else {"loc": (), "msg": str(err)}
            where = ".".join(str(p) for p in first["loc"]) or "recipe"
            raise SpecError(
                Diagnostic(
                    code="E814",
                    message=f"the recipe stored in `{printable(str(weights))}` is not one this archlang reads: "
                    f"`{where}`: {printable(first['msg'][:200])}",
                    help="give the eval transform's recipe with --recipe NAME or --recipe FILE.toml",
                )
            ) from None
    return Recipe.model_validate_json(
        json.dumps(
            {"name": "eval", "source": "-", "max_epochs": 1, "batch_size": 1, "optimizer": {"name": "sgd", "lr": 1}}
        )
    )


@torch.inference_mode()
def evaluate(spec, weights, data: str = "digits", *, params=None, input_shape=None, batch_size=64, recipe=None) -> dict:
    """Accuracy figures (0–1) and the confusion matrix on ``data``'s validation split."""
    import torchmetrics.classification as tm

    model, compiled, hparams = load_model(spec, weights, params, input_shape)
    channels, *size = compiled.graph.input_shape
    recipe = recipe or _recipe_from(hparams, weights)
    _, val = make_datasets(DataSpec(data, channels, tuple(size)), recipe)
    classes = list(val.classes)
    trained_on = hparams.get("classes")
    if trained_on and list(trained_on) != classes:
        raise SpecError(
            Diagnostic(
                code="E807",
                message=f"the weights were trained on classes {trained_on[:5]}..., `{data}` has {classes[:5]}...",
            )
        )
    n = len(classes)
    metrics = {
        "top1": tm.MulticlassAccuracy(n, average="micro"),
        "top5": tm.MulticlassAccuracy(n, top_k=min(5, n), average="micro"),
        "per_class": tm.MulticlassAccuracy(n, average=None),
        "confusion": tm.MulticlassConfusionMatrix(n),
    }
    loss_sum, count = 0.0, 0
    for x, y in torch.utils.data.DataLoader(val, batch_size=batch_size):
        logits = model(x)
        loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
        count += len(y)
        for metric in metrics.values():
            metric.update(logits, y)
    confusion = metrics["confusion"].compute()
    result = {
        "spec": str(spec),
        "weights": str(weights),
        "data": data,
        "samples": count,
        "top1": float(metrics["top1"].compute()),
        "top5": float(metrics["top5"].compute()),
        "loss": loss_sum / max(count, 1),
        "per_class": {c: float(a) for c, a in zip(classes, metrics["per_class"].compute())},
        "classes": classes,
        "confusion": confusion.tolist(),
    }
    # drawn when the caller asks, after it has written the numbers: a figure can be the slow part
    result["figures"] = lambda: confusion_figures(
        confusion.numpy(), classes, title=f"{spec}: top-1 {result['top1']:.3f}"
    )
    return result
