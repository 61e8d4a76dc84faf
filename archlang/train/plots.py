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
            if not row.get("epoch"):
                continue
            merged = epochs.setdefault(int(float(row["epoch"])), {})
            merged.update({k: float(v) for k, v in row.items() if v not in ("", None) and k not in ("epoch", "step")})
    return [{"epoch": e, **epochs[e]} for e in sorted(epochs)]


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
    figure.suptitle(title)
    files = _encode(figure)
    plt.close(figure)
    return files


def confusion_figures(matrix, classes: list[str], title: str = "") -> dict[str, bytes]:
    """The confusion matrix (rows: true class, columns: predicted), counts in the cells."""
    plt = _pyplot()
    size = max(4.0, 0.45 * len(classes) + 2)
    figure, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=90 if len(classes) > 12 else 0)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(classes) <= 30:
        top = max(1, int(matrix.max()))
        for i in range(len(classes)):
            for j in range(len(classes)):
                value = int(matrix[i][j])
                ax.text(
                    j, i, value, ha="center", va="center", color="white" if value > top / 2 else "black", fontsize=7
                )
    figure.colorbar(image, ax=ax, fraction=0.046)
    ax.set_title(title)
    files = _encode(figure)
    plt.close(figure)
    return files
