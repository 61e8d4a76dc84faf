"""What ``archc`` commands print and write: rendered diagnostics on stderr (coloured on a
terminal, ``NO_COLOR``/``FORCE_COLOR`` respected) and outputs written atomically. Shared by
:mod:`archlang.cli.main` and :mod:`archlang.train.cli`."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click


def use_color(stream) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR") or os.environ.get("CLICOLOR_FORCE"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def terminal_width(stream=None) -> int | None:
    """The columns a table printed on ``stream`` (stdout) should fit: ``COLUMNS`` when set
    (as shells and ``shutil`` read it), else the terminal's width; ``None`` for a pipe or a
    file, which get the whole table."""
    value = os.environ.get("COLUMNS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    stream = sys.stdout if stream is None else stream
    if hasattr(stream, "isatty") and stream.isatty():
        import shutil

        return shutil.get_terminal_size().columns
    return None


def report_errors(err) -> None:
    from archlang.diagnostics import render_all

    sources = getattr(err, "sources", None)
    click.echo(render_all(err.diagnostics, sources, color=use_color(sys.stderr)), err=True)


def write_output(data: str | bytes, output: str | None) -> None:
    if output is None or output == "-":
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            click.echo(data, nl=not data.endswith("\n"))
        return
    from archlang.atomic import write_atomic
    from archlang.diagnostics import printable

    try:
        write_atomic(Path(output), data)
    except (OSError, ValueError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        click.echo(f"error[E110]: cannot write `{printable(output)}`: {reason.lower()}", err=True)
        sys.exit(1)


# Top-level modules of the optional extras, with the pip name of each where it differs.
EXTRA_MODULES = {
    "torch": "torch",
    "torchvision": "torchvision",
    "lightning": "lightning",
    "torchmetrics": "torchmetrics",
    "sklearn": "scikit-learn",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "matplotlib": "matplotlib",
    "PIL": "pillow",
}


@contextlib.contextmanager
def needs_extra(command: str, extra: str):
    """Run a command body whose dependencies come with ``archlang[extra]``: a missing one
    is reported as E114 with the pip command (exit 1), not as a traceback."""
    try:
        yield
    except ModuleNotFoundError as err:
        root = (err.name or "").partition(".")[0]
        if root not in EXTRA_MODULES:
            raise
        from archlang.diagnostics import Diagnostic, SpecError

        report_errors(
            SpecError(
                Diagnostic(
                    code="E114",
                    message=f"`archc {command}` needs {EXTRA_MODULES[root]}, which is not installed",
                    help=f"pip install 'archlang[{extra}]' (the README gives the CPU-only torch wheels)",
                )
            )
        )
        sys.exit(1)
