"""What the command line names: FILE (a path, a bundled name, `-`, or `-e TEXT`), `--input`
sizes, and the `-o` target checked against the compile's inputs. Raises ``UsageProblem``
(exit 2) for anything a user typed wrong; never writes."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from archlang.cli.group import UsageProblem


def parse_dims(text: str) -> tuple[int, ...]:
    """``3x299x299`` -> (3, 299, 299), with the limits of the spec's ``input`` statement."""
    from archlang.ops import MAX_DIM

    parts = text.lower().split("x")
    # Check the digits' count before int(): a 10,000-digit size is refused, not converted.
    if any(len(p.strip()) > 10 for p in parts):
        raise UsageProblem(f"--input sizes must be at most {MAX_DIM:,} (docs/limits.md), got {text[:80]!r}")
    try:
        dims = tuple(int(v) for v in parts)
    except ValueError:
        raise UsageProblem(f"--input wants dimensions like 3x299x299, got {text!r}") from None
    if len(dims) not in (1, 3) or any(d < 1 for d in dims):
        raise UsageProblem(f"--input wants C×H×W with positive sizes (like 3x299x299), got {text!r}")
    if any(d > MAX_DIM for d in dims):
        raise UsageProblem(f"--input sizes must be at most {MAX_DIM:,} (docs/limits.md), got {text!r}")
    return dims


def read_stdin() -> bytes:
    """Standard input, bounded as a spec file is; a closed stdin (``<&-``) is one line, exit 1."""
    from archlang.frontend.loader import MAX_FILE_BYTES

    def fail(message: str, code: str = "E104"):
        click.echo(f"error[{code}]: {message}", err=True)
        sys.exit(1)

    if sys.stdin is None:
        fail("cannot read `-`: standard input is closed")
    try:
        data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
    except (OSError, ValueError) as err:
        fail(f"cannot read `-`: {(getattr(err, 'strerror', None) or str(err)).lower()}")
    if len(data) > MAX_FILE_BYTES:
        fail(f"standard input is larger than the limit of {MAX_FILE_BYTES:,} bytes", "E603")
    return data


def spec_source(file: str | None, text: str | None):
    """What FILE / ``-e TEXT`` name: an existing path is a path (whatever characters it has),
    ``-`` is stdin, ``-e`` is spec text, and anything else a bundled spec name or a missing
    file. FILE is never read as spec text."""
    from archlang.compiler import _is_file, bundled_specs, bundled_variants

    if text is not None:
        if file is not None:
            raise UsageProblem("give either FILE or -e TEXT, not both")
        return ("<-e>", text)
    if file is None:
        raise UsageProblem("Missing argument 'FILE' (a path, a bundled spec name, `-` for stdin, or -e TEXT)")
    if file == "-":
        return ("<stdin>", read_stdin())
    if _is_file(file) or "/" in file or file.endswith(".arch"):
        return Path(file)
    if file in bundled_specs() or file in bundled_variants():
        return file  # compile_spec resolves bundled names
    return Path(file)


def _load_text(name: str, text: str | bytes, allow_outside_imports: bool):
    from archlang.frontend.loader import decode, load_text

    if isinstance(text, bytes):
        text = decode(text, name)
    return load_text(text, name, allow_outside_imports=allow_outside_imports)


def refuse_inputs(output: str | None, *compiled) -> None:
    """A usage error if ``output`` is one of the spec files a compile read (imports too)."""
    if output in (None, "-"):
        return
    try:
        target = Path(output).resolve()
    except (OSError, RuntimeError, ValueError):
        return
    for c in compiled:
        if target in c.program.files:
            raise UsageProblem(f"refusing to write over `{output}`: it is an input of this compile")


def parse_sets(items: tuple[str, ...]) -> dict:
    params = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageProblem(f"--set wants NAME=VALUE, got {item!r}")
        if any("\ud800" <= ch <= "\udfff" for ch in item):  # bytes the locale could not decode
            raise UsageProblem(f"--set {item!r} is not valid text in this locale's encoding")
        params[name.strip()] = value.strip()
    return params
