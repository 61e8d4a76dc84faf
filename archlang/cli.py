"""``archc``: the command line.

    archc FILE [--emit ir|torch|dot|svg|pdf|png] [-o OUT] [--report] [...]
    archc check FILE
    archc lint FILE

Only this module writes files (atomically) or exits. Back ends are looked up in tables
(``EMITTERS``) and imported on first use, so ``archc check`` and ``--report`` never import
torch. Exit codes: 0 ok, 1 spec errors, 2 usage errors.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from . import __version__

# format -> "module:function"; the function takes (compiled, fmt, options) and returns
# str or bytes.
EMITTERS: dict[str, str] = {
    "ir": "archlang.emit_ir:emit_ir",
    "torch": "archlang.backends.torch.codegen:emit_cli",
    "dot": "archlang.backends.diagrams.render:emit_cli",
    "svg": "archlang.backends.diagrams.render:emit_cli",
    "pdf": "archlang.backends.diagrams.render:emit_cli",
    "png": "archlang.backends.diagrams.render:emit_cli",
}
REPORT = "archlang.backends.report.tables:report_cli"
LINT = "archlang.lint:lint_cli"
EXPLAIN = "archlang.lint:explain"


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


class UsageProblem(click.UsageError):
    """A usage error (exit 2) with archlang's wording."""


def parse_dims(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageProblem(f"--input wants dimensions like 3x299x299, got {text!r}") from None
    if len(dims) not in (1, 3) or any(d < 1 for d in dims):
        raise UsageProblem(f"--input wants C×H×W with positive sizes (like 3x299x299), got {text!r}")
    return dims


def parse_sets(items: tuple[str, ...]) -> dict:
    params = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageProblem(f"--set wants NAME=VALUE, got {item!r}")
        params[name.strip()] = value.strip()
    return params


def _use_color(stream) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR") or os.environ.get("CLICOLOR_FORCE"):
        return True
    return hasattr(stream, "isatty") and stream.isatty()


def report_errors(err) -> None:
    from .diagnostics import render_all

    sources = getattr(err, "sources", None)
    click.echo(render_all(err.diagnostics, sources, color=_use_color(sys.stderr)), err=True)


def compile_or_exit(file: str, sets: tuple[str, ...], input_dims: str | None, max_nodes: int):
    from .compiler import compile_spec
    from .diagnostics import SpecError

    try:
        return compile_spec(file, parse_sets(sets), parse_dims(input_dims) if input_dims else None, max_nodes)
    except SpecError as err:
        report_errors(err)
        sys.exit(1)
    except RecursionError:
        click.echo("error[E601]: the spec is nested too deeply to compile", err=True)
        sys.exit(1)


def write_output(data: str | bytes, output: str | None) -> None:
    if output is None or output == "-":
        if isinstance(data, bytes):
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            click.echo(data, nl=not data.endswith("\n"))
        return
    from .atomic import write_atomic

    try:
        write_atomic(Path(output), data)
    except OSError as err:
        click.echo(f"error[E110]: cannot write `{output}`: {(err.strerror or str(err)).lower()}", err=True)
        sys.exit(1)


def _common(f):
    f = click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set a network parameter (repeatable), e.g. --set num_classes=10.",
    )(f)
    f = click.option("--input", "input_dims", metavar="CxHxW", help="Override the input size, e.g. 3x299x299.")(f)
    f = click.option(
        "--max-nodes",
        type=click.IntRange(1),
        default=1_000_000,
        show_default=True,
        help="Refuse specs that expand to more primitive ops than this.",
    )(f)
    return f


class DefaultGroup(click.Group):
    """``archc FILE ...`` runs the ``compile`` command; ``archc check FILE`` a subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version", "--list-specs"):
            args = ["compile", *args]
        return super().parse_args(ctx, args)


def _list_specs(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from .compiler import bundled_specs

    for name, path in sorted(bundled_specs().items()):
        click.echo(f"{name:20s} {path}")
    ctx.exit(0)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="archc")
@click.option(
    "--list-specs",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_list_specs,
    help="List the specs bundled with archlang (usable by name, e.g. `archc check googlenet`).",
)
def main():
    """archc: compile .arch network specs to shapes, reports, PyTorch code and diagrams.

    \b
    archc FILE --emit ir|torch|dot|svg|pdf|png [-o OUT]
    archc FILE --report [--format text|md|csv|json|latex] [--depth N]
    archc check FILE
    archc lint FILE
    """


@main.command("compile")
@click.argument("file")
@_common
@click.option("--emit", "emit", type=click.Choice(sorted(EMITTERS)), help="Output to produce.")
@click.option("-o", "--output", metavar="FILE", help="Write here (atomically) instead of stdout.")
@click.option("--report", is_flag=True, help="Print the cost / receptive-field report.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "md", "csv", "json", "latex"]),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option("--depth", type=click.IntRange(0), default=None, help="Collapse the report to blocks at this depth.")
@click.option(
    "--table",
    type=click.Choice(["layers", "paper"]),
    default="layers",
    show_default=True,
    help="Report layout: per layer, or the GoogLeNet paper's Table 1.",
)
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Batch size for memory figures.")
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16", "float64", "int8"]),
    default="float32",
    show_default=True,
    help="Element type for memory figures.",
)
@click.option(
    "--view", type=click.Choice(["blocks", "layers"]), default="blocks", show_default=True, help="Diagram view."
)
@click.option("--block", "block_name", metavar="NAME", help="Draw one block template alone.")
@click.option("--rankdir", type=click.Choice(["TB", "LR", "BT", "RL"]), default=None, help="Diagram direction.")
@click.option("--edge-shapes/--no-edge-shapes", default=False, help="Label diagram edges with tensor shapes.")
@click.option("--costs/--no-costs", default=False, help="Show params/MACs on diagram nodes.")
@click.option("--collapse/--no-collapse", default=True, help="Collapse repeated identical blocks in diagrams.")
@click.option("--optimize", is_flag=True, help="torch: fold BatchNorm and fuse sibling 1×1 convs (inference).")
def compile_cmd(file, sets, input_dims, max_nodes, emit, output, report, **options):
    """Compile FILE (a path or a bundled spec name)."""
    if not emit and not report:
        raise UsageProblem("nothing to do: give --emit FORMAT or --report (or use `archc check FILE`)")
    if emit and report:
        raise UsageProblem("give either --emit or --report, not both")
    compiled = compile_or_exit(file, sets, input_dims, max_nodes)
    options.update(output=output, sets=parse_sets(sets))
    from .diagnostics import SpecError

    try:
        if report:
            data = _load(REPORT)(compiled, options)
        else:
            data = _load(EMITTERS[emit])(compiled, emit, options)
    except SpecError as err:
        if getattr(err, "sources", None) is None:  # back ends raise without them: quote the spec
            err.sources = compiled.sources
        report_errors(err)
        sys.exit(1)
    write_output(data, output)


@main.command()
@click.argument("file")
@_common
def check(file, sets, input_dims, max_nodes):
    """Parse and validate FILE; print a short summary."""
    from .summary import summary_line

    compiled = compile_or_exit(file, sets, input_dims, max_nodes)
    click.echo(summary_line(compiled))


@main.command()
@click.argument("file", required=False)
@_common
@click.option("--select", multiple=True, metavar="CODE", help="Only these rules (code or prefix).")
@click.option("--ignore", multiple=True, metavar="CODE", help="Skip these rules (code or prefix).")
@click.option("--explain", metavar="CODE", help="Print a rule's rationale and exit.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def lint(file, sets, input_dims, max_nodes, select, ignore, explain, fmt):
    """Check FILE against the design rules of the Inception v3 paper."""
    if explain:
        try:
            click.echo(_load(EXPLAIN)(explain))
        except KeyError:
            raise UsageProblem(f"no lint rule {explain!r}") from None
        return
    if not file:
        raise UsageProblem("lint needs a FILE (or --explain CODE)")
    compiled = compile_or_exit(file, sets, input_dims, max_nodes)
    code = _load(LINT)(compiled, select=select, ignore=ignore, fmt=fmt, color=_use_color(sys.stdout))
    sys.exit(code)


# archc train / eval / export live in archlang.train (click only at import; torch and
# Lightning are imported when they run).
from .train.cli import eval_cmd, export_cmd, train_cmd  # noqa: E402

main.add_command(train_cmd)
main.add_command(eval_cmd)
main.add_command(export_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
