"""Figures of a run: loss and accuracy per epoch (``curves``), the confusion matrix (``eval``).
Functions return the encoded files (``{"png": bytes, "svg": bytes}``); the caller writes them."""

from __future__ import annotations

import csv
import io
from pathlib import Path


def epoch_rows(metrics_csv: Path) -> list[dict[str, float]]:
    """One row per epoch from Lightning's ``metrics.csv`` (train and val metrics are logged on
    separate lines; a resumed run may repeat an epoch: the last value wins)."""
    epochs: dict[int, dict[str, float]] = {}
    if not Path(metrics_csv).exists():
        return []
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            if None in row or None in row.values():
                continue  # more or fewer fields than the header: a row cut short by a crash
            values = {k: _number(v) for k, v in row.items() if k != "step"}
            if values.get("epoch") is None:
                continue
            merged = epochs.setdefault(int(values.pop("epoch")), {})
            merged.update({k: v for k, v in values.items() if v is not None})
    return [{"epoch": e, **epochs[e]} for e in sorted(epochs)]


def _plain(text) -> str:
    """``text`` shown as typed: a `$` in a spec, recipe or class name starts no mathtext."""
    return str(text).replace("$", r"\$")


def _number(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _encode(figure) -> dict[str, bytes]:
    files = {}
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        figure.savefig(
            buffer, format=fmt, dpi=120, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else {}
        )
        files[fmt] = buffer.getvalue()
    return files


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_figures(rows: list[dict[str, float]], title: str = "") -> dict[str, bytes]:
    """Loss (train, val) and accuracy (train, val top-1, val top-5) against the epoch."""
    plt = _pyplot()
    figure, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [r["epoch"] + 1 for r in rows]
    for ax, keys in ((loss_ax, ("train_loss", "val_loss")), (acc_ax, ("train_acc", "val_acc", "val_acc5"))):
        for key in keys:
            points = [(e, r[key]) for e, r in zip(epochs, rows) if key in r]
            if points:
                ax.plot(*zip(*points), marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    loss_ax.set_ylabel("loss")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(0, 1)
    figure.suptitle(_plain(title))
    files = _encode(figure)
    plt.close(figure)
    return files


MAX_CONFUSION_CLASSES = 30  # beyond this a figure is unreadable (and 1000 classes drew ~12 GB)


def confusion_figures(matrix, classes: list[str], title: str = "") -> dict[str, bytes]:
    """The confusion matrix (rows: true class, columns: predicted), counts in the cells. Of
    more than :data:`MAX_CONFUSION_CLASSES` classes, those with the most errors are drawn and
    the title says so (eval.json has the whole matrix)."""
    import numpy as np

    matrix = np.asarray(matrix)
    shown = list(range(len(classes)))
    if len(classes) > MAX_CONFUSION_CLASSES:
        errors = matrix.sum(0) + matrix.sum(1) - 2 * np.diag(matrix)
        worst = np.argsort(-errors, kind="stable")[:MAX_CONFUSION_CLASSES]
        shown = sorted(int(i) for i in worst)
        title = (
            f"{title}\n{len(shown)} of {len(classes)} classes, those with the most errors "
            "(the whole matrix is in eval.json)"
        )
        matrix = matrix[np.ix_(shown, shown)]
    labels = [_plain(classes[i]) for i in shown]
    plt = _pyplot()
    size = max(4.0, 0.45 * len(labels) + 2)
    figure, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90 if len(labels) > 12 else 0)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(1, int(matrix.max())) if matrix.size else 1
    for i in range(len(labels)):
        for j in range(len(labels)):
            value = int(matrix[i][j])
            ax.text(j, i, value, ha="center", va="center", color="white" if value > top / 2 else "black", fontsize=7)
    figure.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(_plain(title))
    files = _encode(figure)
    plt.close(figure)
    return files
