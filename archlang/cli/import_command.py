"""``archc import TARGET``: a PyTorch model becomes a ``.arch`` spec.

``TARGET`` names a callable returning an ``nn.Module``: ``torchvision.models.resnet50``
(a dotted path), ``pkg.mod:factory`` or ``path/to/file.py:make_model``; ``--kw key=value``
passes arguments (values read as Python literals, else as strings). Usage errors exit 2;
a target that cannot be loaded or called (E726) and a model archlang cannot express
(E720-E727) exit 1 with the diagnostic. Only the command's body imports torch.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import sys
from pathlib import Path

import click

from archlang.cli.group import SubCommand, UsageProblem
from archlang.cli.inputs import parse_dims
from archlang.cli.output import needs_extra, report_errors, write_output


def parse_kw(items: tuple[str, ...]) -> dict:
    """``("num_classes=10", "weights=none")`` -> ``{"num_classes": 10, "weights": "none"}``."""
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageProblem(f"--kw wants KEY=VALUE with KEY a Python name, got {item!r}")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            out[key] = text
    return out


def _problem(message: str, help: str | None = None):
    from archlang.diagnostics import Diagnostic, SpecError

    return SpecError(Diagnostic(code="E726", message=message, help=help))


def load_target(target: str):
    """The callable ``target`` names; :class:`SpecError` E726 if there is none."""
    if ":" in target:
        where, _, attr = target.rpartition(":")
    else:
        where, _, attr = target.rpartition(".")
    if not where or not attr or (":" not in target and target.endswith(".py")):
        raise UsageProblem(f"TARGET is `module.callable`, `module:callable` or `file.py:callable`, got {target!r}")
    if where.endswith(".py") and not Path(where).is_file():
        raise _problem(f"cannot load `{target}`: no file `{where}`")
    if not where.endswith(".py") and Path(where).is_file():
        raise _problem(f"cannot load `{target}`: `{where}` is not a Python file", "a file TARGET ends in .py")
    try:
        if where.endswith(".py"):
            path = Path(where)
            spec = importlib.util.spec_from_file_location(f"_archc_import_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            folder = str(path.resolve().parent)
            if folder not in sys.path:  # its sibling modules import, as when Python runs the file
                sys.path.insert(0, folder)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
        value = module
        for part in attr.split("."):
            value = getattr(value, part)
    except ImportError as err:
        raise _problem(f"cannot load `{target}`: {err}", "is the package installed, and the path right?") from None
    except AttributeError:
        raise _problem(f"cannot load `{target}`: `{where}` has no `{attr}`") from None
    except (Exception, SystemExit) as err:  # the user's file raised (or exited) while it was imported
        raise _problem(f"cannot load `{target}`: importing it raised {type(err).__name__}: {err}") from None
    if not callable(value):
        raise _problem(f"`{target}` is not callable", "TARGET names a function or class that returns an nn.Module")
    return value


def make_model(target: str, kwargs: dict):
    """The module ``target(**kwargs)`` returns."""
    import torch

    factory = load_target(target)
    try:
        model = factory(**kwargs)
    except (Exception, SystemExit) as err:
        raise _problem(f"calling `{target}` raised {type(err).__name__}: {err}") from None
    if not isinstance(model, torch.nn.Module):
        raise _problem(f"`{target}` returned a value of type `{type(model).__name__}`, not a torch.nn.Module")
    return model


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError, ValueError):
        return False


@click.command("import", cls=SubCommand)
@click.argument("target", metavar="TARGET")
@click.option("-o", "--output", metavar="FILE", help="Write the spec here (atomically) instead of stdout.")
@click.option(
    "--input", "input_dims", metavar="CxHxW", default="3x224x224", show_default=True, help="Input size to trace with."
)
@click.option("--name", metavar="NAME", help="The network's name (default: the module's class name).")
@click.option(
    "--kw",
    "kws",
    multiple=True,
    metavar="KEY=VALUE",
    help="An argument for TARGET (repeatable), e.g. --kw num_classes=10.",
)
@needs_extra("import", "torch")
def import_cmd(target, output, input_dims, name, kws):
    """Import a PyTorch model as a spec: TARGET is `torchvision.models.resnet50`,
    `pkg.mod:factory` or `path/to/file.py:make_model`.

    The spec's layer names are the module's attribute names, so the built spec loads the
    model's state_dict.
    """
    shape = parse_dims(input_dims)
    from archlang.importer.text import is_name

    if name is not None and not is_name(name):
        raise UsageProblem(f"--name wants a name like ResNet50, got {name!r}")
    kwargs = parse_kw(kws)
    source_file = target.rpartition(":")[0]
    if output and source_file.endswith(".py") and _same_file(output, source_file):
        raise UsageProblem(f"refusing to write over `{output}`: it is the model's source file")
    from archlang.diagnostics import SpecError, printable

    try:
        with contextlib.redirect_stdout(sys.stderr):  # what the model prints must not mix with the spec
            from archlang.importer.api import from_module

            model = make_model(target, kwargs)
            where = target.rpartition(":")[0] if ":" in target else target.rpartition(".")[0]
            for module in (where, type(model).__module__):
                source_file = getattr(sys.modules.get(module), "__file__", None)
                if output and source_file and _same_file(output, source_file):
                    raise UsageProblem(f"refusing to write over `{output}`: it is the model's source file")
            call = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            text = from_module(model, shape, name=name, source=f"{target}({call})")
    except SpecError as err:
        report_errors(err)
        sys.exit(1)
    except RecursionError:  # torch's own named_modules() recurses once per level of nesting
        click.echo(
            f"error[E724]: `{printable(target)}` nests modules deeper than Python's recursion limit "
            f"({sys.getrecursionlimit()}) lets torch walk them\n"
            "  = help: a spec nests blocks a few levels deep; flatten the nn.Sequential chain",
            err=True,
        )
        sys.exit(1)
    write_output(text, output)
