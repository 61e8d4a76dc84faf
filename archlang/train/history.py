"""``OUT/metrics.csv``: a run's history, append-only.

Lightning's ``CSVLogger`` deletes ``metrics.csv`` when it starts, and rewrites it in place
when a new column appears, so a resume that failed, or a resumed run killed before it logged,
left less than the earlier runs had written. :class:`HistoryLogger` only ever appends a row
(flushed at once: a SIGKILL loses nothing logged), and when a new column appears it rewrites
the file atomically with every earlier row in it. A resumed run that logs an epoch again adds
rows; readers take the last value of an epoch (:func:`archlang.train.plots.epoch_rows`).

A run started without ``--resume`` begins a new history: its first row replaces the file (not
before, so a run that fails early leaves the previous one's history).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from archlang.atomic import write_atomic


def _value(value) -> object:
    return value.item() if hasattr(value, "item") else value


class HistoryLogger(Logger):
    def __init__(self, path: Path, *, resume: bool):
        super().__init__()
        self.path = Path(path)
        self._fresh = not resume  # the first row of a fresh run starts a new file

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:
        return str(self.path.parent)

    @rank_zero_only
    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass  # the checkpoint and summary.json carry them

    def _header(self) -> list[str]:
        if self._fresh or not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return next(csv.reader(f), [])

    @rank_zero_only
    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        row = {k: _value(v) for k, v in metrics.items()}
        row["step"] = step
        header = self._header()
        if not header or any(k not in header for k in row):
            self._rewrite(sorted({*header, *row}), row)
            return
        with open(self.path, "a+", newline="") as f:
            f.seek(0, 2)
            if f.tell():
                f.seek(f.tell() - 1)
                if f.read(1) != "\n":  # a row cut short by a crash: start a new line
                    f.write("\n")
            csv.DictWriter(f, fieldnames=header, lineterminator="\n").writerow(row)

    def _rewrite(self, fields: list[str], row: dict) -> None:
        earlier = []
        if not self._fresh and self.path.exists():
            with open(self.path, newline="") as f:
                earlier = list(csv.DictReader(f))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows([*earlier, row])
        write_atomic(self.path, buffer.getvalue())
        self._fresh = False
