"""``archc``: the command line.

    archc FILE [--emit ir|torch|dot|svg|pdf|png|plot|html] [-o OUT] [--report] [...]
    archc check FILE [--against MODEL_OR_CHECKPOINT]
    archc lint FILE
    archc fmt FILES... [--check] [--diff]
    archc diff A B [--set-a K=V] [--set-b K=V]
    archc train SPEC --data DIR [--recipe NAME] [--out DIR]
    archc eval SPEC --weights CKPT --data DIR
    archc export SPEC -o model.onnx|model.pt2 [--weights CKPT]
    archc import TARGET [-o FILE] [--input CxHxW] [--name NAME] [--kw KEY=VALUE]
    archc bench SPEC [--batch N] [--rounds R] [--layers] [--plot FILE] [--format text|md|csv|json]

``archc FILE ...`` is the default command (registered as the hidden ``compile``; help and
errors show it as ``archc [OPTIONS] FILE``); other commands are plain ``@main.command()``s.
Only this module writes files (atomically) or exits. Back ends are looked up in tables
(``EMITTERS``) and imported on first use, so ``archc check`` and ``--report`` never import
torch. Exit codes: 0 ok, 1 spec errors, 2 usage errors.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from archlang.cli.group import DEFAULT, DefaultCommand, DefaultGroup, UsageProblem
from archlang.cli.inputs import _load_text, parse_dims, parse_sets, refuse_inputs, spec_source
from archlang.cli.output import report_errors, terminal_width, use_color, write_output
from archlang.limits import DEFAULT_MAX_NODES
from archlang.version import __version__

# format -> "module:function"; the function takes (compiled, fmt, options) and returns
# str or bytes. ``options["notes"]`` is a list a back end may append notes to: the CLI
# prints them on stderr ("note: ..."), so back ends never write to the terminal.
EMITTERS: dict[str, str] = {
    "ir": "archlang.backends.ir.emit:emit_ir",
    "torch": "archlang.backends.torch.codegen:emit_cli",
    "dot": "archlang.backends.diagrams.render:emit_cli",
    "svg": "archlang.backends.diagrams.render:emit_cli",
    "pdf": "archlang.backends.diagrams.render:emit_cli",
    "png": "archlang.backends.diagrams.render:emit_cli",
    "plot": "archlang.backends.plot:emit_cli",
    "html": "archlang.backends.html:emit_cli",
}
BINARY = {"png", "pdf"}  # refused on a terminal without -o
REPORT = "archlang.backends.report.tables:report_cli"
LINT = "archlang.lint:lint_cli"
DIFF = "archlang.backends.report.diff:diff_cli"
EXPLAIN = "archlang.lint:explain"


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def compile_or_exit(
    file: str | None,
    sets: tuple[str, ...],
    input_dims: str | None,
    max_nodes: int,
    text: str | None = None,
    allow_outside_imports: bool = False,
):
    """The compiled spec, or exit 1 with its diagnostics on stderr."""
    params, shape = parse_sets(sets), parse_dims(input_dims) if input_dims else None
    from archlang.compiler import compile_spec
    from archlang.diagnostics import SpecError

    source = spec_source(file, text)
    try:
        if isinstance(source, tuple):
            source = _load_text(*source, allow_outside_imports)
        compiled = compile_spec(source, params, shape, max_nodes, allow_outside_imports)
    except SpecError as err:
        report_errors(err)
        sys.exit(1)
    except RecursionError:
        click.echo("error[E601]: the spec is nested too deeply to compile", err=True)
        sys.exit(1)
    if compiled.graph.warnings:  # a value never read: the compile goes on
        report_errors(SpecError(list(compiled.graph.warnings), compiled.program.sources))
    return compiled


def _common(f):
    f = click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set a network parameter (repeatable), e.g. --set num_classes=10.",
    )(f)
    f = click.option(
        "--allow-outside-imports",
        is_flag=True,
        help="Let imports resolve outside the spec's folder (symlinks followed); off by default.",
    )(f)
    f = click.option("-e", "text", metavar="TEXT", help="Compile TEXT (spec source) instead of FILE.")(f)
    f = click.option("--input", "input_dims", metavar="CxHxW", help="Override the input size, e.g. 3x299x299.")(f)
    f = click.option(
        "--max-nodes",
        type=click.IntRange(1),
        default=DEFAULT_MAX_NODES,
        show_default=True,
        help="Refuse specs that expand to more primitive ops than this.",
    )(f)
    return f


def _list_specs(ctx, param, value):
    if not value or ctx.resilient_parsing:
        return
    from archlang.compiler import bundled_specs, bundled_variants

    for name, path in sorted(bundled_specs().items()):
        click.echo(f"{name:20s} {path}")
    for name, (path, params) in sorted(bundled_variants().items()):
        sets = " ".join(f"--set {k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items())
        click.echo(f"{name:20s} {path} {sets}")
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
    archc FILE --emit ir|torch|dot|svg|pdf|png|plot|html [-o OUT]
    archc FILE --report [--format text|md|csv|json|latex] [--depth N]
    archc check FILE [--against MODEL_OR_CHECKPOINT]
    archc lint FILE
    archc fmt FILES... [--check] [--diff]
    archc diff A B [--set-a NAME=VALUE] [--set-b NAME=VALUE]
    archc train SPEC --data DIR [--recipe NAME] [--out DIR]
    archc eval SPEC --weights CKPT --data DIR
    archc export SPEC -o model.onnx|model.pt2 [--weights CKPT]
    archc import TARGET [-o FILE] [--input CxHxW]
    archc bench SPEC [--layers] [--plot FILE] [--format text|md|csv|json]
    """


@main.command(DEFAULT, cls=DefaultCommand, hidden=True)
@click.argument("file", required=False, metavar="FILE")
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
@click.option(
    "--block",
    "block_name",
    metavar="NAME[@PATH]",
    help="Draw one block template alone (its first instance, or the one at PATH, e.g. BasicBlock@layer2/0).",
)
@click.option("--rankdir", type=click.Choice(["TB", "LR", "BT", "RL"]), default=None, help="Diagram direction.")
@click.option("--edge-shapes/--no-edge-shapes", default=False, help="Label diagram edges with tensor shapes.")
@click.option("--costs/--no-costs", default=False, help="Show params/MACs on diagram nodes.")
@click.option("--collapse/--no-collapse", default=True, help="Collapse repeated identical blocks in diagrams.")
@click.option("--optimize", is_flag=True, help="torch: fold BatchNorm and fuse sibling 1×1 convs (inference).")
@click.option(
    "--dpi",
    type=click.IntRange(10, 1200),
    default=None,
    help="Resolution of a PNG: --emit png (Graphviz's default 96) or --emit plot -o FILE.png (150).",
)
def compile_cmd(file, sets, input_dims, max_nodes, text, allow_outside_imports, emit, output, report, **options):
    """Compile FILE (a path, a bundled spec name, or `-` for stdin)."""
    if not emit and not report:
        raise UsageProblem("nothing to do: give --emit FORMAT or --report (or use `archc check FILE`)")
    if emit and report:
        raise UsageProblem("give either --emit or --report, not both")
    if options.get("dpi") is not None and not (
        emit == "png" or (emit == "plot" and str(output).lower().endswith(".png"))
    ):
        raise UsageProblem("--dpi sizes PNG images: use it with --emit png, or --emit plot -o FILE.png")
    if emit in BINARY and output in (None, "-") and sys.stdout.isatty():
        raise UsageProblem(
            f"--emit {emit} writes binary data, which would garble the terminal: "
            f"give -o FILE (e.g. -o {Path(file or 'net').stem}.{emit}), or redirect: > {Path(file or 'net').stem}.{emit}"
        )
    compiled = compile_or_exit(file, sets, input_dims, max_nodes, text, allow_outside_imports)
    refuse_inputs(output, compiled)
    notes: list[str] = []
    options.update(output=output, sets=parse_sets(sets), notes=notes)
    if report and (options.get("fmt") or "text") == "text" and output in (None, "-"):
        options["width"] = terminal_width()  # the table fits the terminal, as `archc diff`'s does
    from archlang.diagnostics import SpecError

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
    for note in notes:
        click.echo(f"note: {note}", err=True)
    write_output(data, output)


@main.command()
@click.argument("file", required=False, metavar="FILE")
@_common
@click.option(
    "--against",
    metavar="REF",
    help="Compare the state_dict keys and shapes with a checkpoint file or a model "
    "(torchvision.models.resnet50, pkg.mod:factory, file.py:make).",
)
@click.option("--kw", "kws", multiple=True, metavar="KEY=VALUE", help="An argument for a model REF (repeatable).")
def check(file, sets, input_dims, max_nodes, text, allow_outside_imports, against, kws):
    """Parse and validate FILE (or `-` for stdin, or -e TEXT); print a short summary."""
    from archlang.analysis.summary import summary_line

    if kws and not against:
        raise UsageProblem("--kw gives arguments to the model of --against")
    compiled = compile_or_exit(file, sets, input_dims, max_nodes, text, allow_outside_imports)
    click.echo(summary_line(compiled))
    if against:
        _check_against(compiled, against, kws)


def _check_against(compiled, ref: str, kws) -> None:
    from archlang.cli.import_command import parse_kw
    from archlang.cli.output import needs_extra
    from archlang.diagnostics import SpecError

    kwargs = parse_kw(kws)
    with needs_extra("check --against", "torch"):
        from archlang.backends.torch.against import check_against

        try:
            problems, compared = check_against(compiled, ref, kwargs)
        except SpecError as err:
            report_errors(SpecError(err.diagnostics, compiled.program.sources))
            sys.exit(1)
    if problems:
        report_errors(SpecError(problems, compiled.program.sources))
        sys.exit(1)
    click.echo(f"ok: the {compared} state_dict entries match `{ref}` (keys and shapes)")


@main.command()
@click.argument("file", required=False, metavar="FILE")
@_common
@click.option("--select", multiple=True, metavar="CODE", help="Only these rules (code or prefix).")
@click.option("--ignore", multiple=True, metavar="CODE", help="Skip these rules (code or prefix).")
@click.option("--explain", metavar="CODE", help="Print a rule's rationale and exit.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def lint(file, sets, input_dims, max_nodes, text, allow_outside_imports, select, ignore, explain, fmt):
    """Check FILE against the design rules of the Inception v3 paper."""
    if explain:
        try:
            click.echo(_load(EXPLAIN)(explain))
        except KeyError:
            raise UsageProblem(f"no lint rule {explain!r}") from None
        return
    if not file and text is None:
        raise UsageProblem("lint needs a FILE (or -e TEXT, or --explain CODE)")
    compiled = compile_or_exit(file, sets, input_dims, max_nodes, text, allow_outside_imports)
    code = _load(LINT)(compiled, select=select, ignore=ignore, fmt=fmt, color=use_color(sys.stdout))
    sys.exit(code)


@main.command("fmt")
@click.argument("files", nargs=-1, required=True)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a file would change.")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff of the changes.")
def fmt_cmd(files, check, show_diff):
    """Format .arch FILES in place (`-` reads stdin and writes stdout)."""
    from archlang.atomic import write_atomic
    from archlang.cli.inputs import read_stdin
    from archlang.tools.fmt import format_file, unified_diff

    failed = would_change = False
    for path in files:
        result = format_file(path, read_stdin() if path == "-" else None)
        if result.error is not None:
            report_errors(result.error)
            failed = True
        elif path == "-" and not (check or show_diff):
            click.echo(result.formatted, nl=False)
        elif result.changed:
            would_change = True
            if show_diff:
                click.echo(unified_diff(result), nl=False)
            if check:
                click.echo(f"would reformat {path}", err=True)
            elif not show_diff:
                try:
                    write_atomic(Path(path), result.formatted)
                except OSError as err:
                    report_errors(_cannot_write(path, err))
                    failed = True
                    continue
                click.echo(f"reformatted {path}", err=True)
    sys.exit(1 if failed or ((check or show_diff) and would_change) else 0)


def _cannot_write(path: str, err: OSError):
    from archlang.diagnostics import Diagnostic, SpecError, printable

    shown = printable(path, keep_newlines=False)
    read_only = isinstance(err, PermissionError) and "read-only" in str(err.strerror)
    return SpecError(
        Diagnostic(
            code="E110",
            message=f"cannot write `{shown}`: {(err.strerror or str(err)).lower()}",
            help=f"the file is left as it was; `chmod u+w {shown}` first to let fmt rewrite it" if read_only else None,
        )
    )


@main.command("diff")
@click.argument("spec_a", metavar="A")
@click.argument("spec_b", metavar="B")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Set a parameter on both sides.")
@click.option("--set-a", "sets_a", multiple=True, metavar="NAME=VALUE", help="Set a parameter of A only.")
@click.option("--set-b", "sets_b", multiple=True, metavar="NAME=VALUE", help="Set a parameter of B only.")
@click.option("--input", "input_dims", metavar="CxHxW", help="Override the input size of both.")
@click.option("--max-nodes", type=click.IntRange(1), default=DEFAULT_MAX_NODES, show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "md", "csv", "json", "latex"]),
    default="text",
    show_default=True,
    help="Table format.",
)
@click.option("-o", "--output", metavar="FILE", help="Write here (atomically) instead of stdout.")
def diff_cmd(spec_a, spec_b, sets, sets_a, sets_b, input_dims, max_nodes, fmt, output):
    """Compare two specs block by block: shapes, params, MACs, FLOPs, RF.

    A and B are files or bundled names; one spec under two settings: `archc diff googlenet
    googlenet --set-b variant=paper`.
    """
    a = compile_or_exit(spec_a, sets + sets_a, input_dims, max_nodes)
    b = compile_or_exit(spec_b, sets + sets_b, input_dims, max_nodes)
    refuse_inputs(output, a, b)
    labels = (_side_label(spec_a, sets + sets_a), _side_label(spec_b, sets + sets_b))
    width = terminal_width() if fmt == "text" and output in (None, "-") else None
    write_output(_load(DIFF)(a, b, labels, fmt, width), output)


def _side_label(spec: str, sets: tuple[str, ...]) -> str:
    return spec + "".join(f" --set {s}" for s in sets)


@main.command("bench")
@click.argument("file", required=False, metavar="SPEC")
@_common
@click.option(
    "--batch", type=click.IntRange(1), default=8, show_default=True, help="Batch size of the throughput column."
)
@click.option("--rounds", type=click.IntRange(1), default=10, show_default=True, help="Timed rounds per backend.")
@click.option(
    "--warmup",
    type=click.IntRange(1),
    default=2,
    show_default=True,
    help="Untimed calls per backend first (the first one's outputs are compared with eager's).",
)
@click.option(
    "--threads", type=click.IntRange(1), default=None, help="Torch and onnxruntime threads [torch's default]."
)
@click.option("--layers", is_flag=True, help="Add the per-layer table (torch.profiler next to MACs and bytes moved).")
@click.option(
    "--compile", "use_compile", is_flag=True, help="Add torch.compile (inductor; compiling takes a minute or more)."
)
@click.option(
    "--freeze",
    is_flag=True,
    help="Add the --optimize module through torch.jit.freeze and optimize_for_inference.",
)
@click.option(
    "--max-time",
    type=click.FloatRange(0, min_open=True),
    default=75.0,
    show_default=True,
    metavar="SECONDS",
    help="Time for the whole measurement, setup included: the rounds stop when it is spent (3 run at least).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "md", "csv", "json"]), default="text", show_default=True)
@click.option("-o", "--output", metavar="FILE", help="Write here (atomically) instead of stdout.")
@click.option(
    "--plot",
    metavar="FILE",
    help="Also draw the layers' roofline to FILE (.svg, .pdf or .png, by its suffix; implies --layers).",
)
def bench_cmd(
    file, sets, input_dims, max_nodes, text, allow_outside_imports, batch, rounds, warmup, threads, layers,
    use_compile, freeze, max_time, fmt, output, plot,
):  # fmt: skip
    """Measure SPEC's model on the backends here (eager, --optimize, onnxruntime, CUDA; --compile).

    Interleaved rounds in one process; latency at batch 1, throughput at --batch, ratios to
    eager, and each backend's agreement with eager (E740 past the tolerance).
    """
    from archlang.cli.output import needs_extra

    if not file and text is None:
        raise UsageProblem("bench needs a SPEC (a file or a bundled name, or -e TEXT)")
    if plot == "-":
        raise UsageProblem("--plot needs a file name (the table goes to stdout)")
    if plot and output not in (None, "-") and Path(plot).resolve() == Path(output).resolve():
        raise UsageProblem("--plot and -o name the same file")
    compiled = compile_or_exit(file, sets, input_dims, max_nodes, text, allow_outside_imports)
    refuse_inputs(output, compiled)
    refuse_inputs(plot, compiled)
    from archlang.diagnostics import SpecError

    draw = None
    if plot:
        from archlang.backends.plot import roofline_plotter

        try:  # before anything is measured: a bad suffix or no matplotlib fails at once
            draw = roofline_plotter(plot)
        except SpecError as err:
            report_errors(err)
            sys.exit(1)
    with needs_extra("bench", "torch"):
        from archlang.backends.torch.bench import Settings, bench_cli

        settings = Settings(batch, rounds, warmup, threads, layers or bool(plot), use_compile, freeze, max_time)
        try:
            data, problem, figure = bench_cli(compiled, settings, fmt, draw)
        except SpecError as err:  # the torch back end cannot build this graph (E701)
            if getattr(err, "sources", None) is None:
                err.sources = compiled.sources
            report_errors(err)
            sys.exit(1)
    write_output(data, output)
    if figure is not None:
        write_output(figure, plot)
    if problem is not None:
        report_errors(problem)
        sys.exit(1)


# archc train / eval / export live in archlang.train (click only at import; torch and
# Lightning are imported when they run).
from archlang.train.cli import eval_cmd, export_cmd, train_cmd  # noqa: E402

main.add_command(train_cmd)
main.add_command(eval_cmd)
main.add_command(export_cmd)

# archc import (torch only when it runs)
from archlang.cli.import_command import import_cmd  # noqa: E402

main.add_command(import_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
