"""Running generated source: a fresh module per build, tracebacks that show the code, and a
clear message when torch is missing."""

from __future__ import annotations

import itertools
import linecache
import types

TORCH_MISSING = 'archlang.build needs PyTorch, which is not installed: pip install "archlang[torch]"'
_counter = itertools.count(1)


def require_torch() -> None:
    """Import torch, or raise ``ModuleNotFoundError`` saying how to install it."""
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as err:
        if err.name != "torch":
            raise
        raise ModuleNotFoundError(TORCH_MISSING, name="torch") from None


def load_source(source: str, label: str) -> types.ModuleType:
    """Execute generated source as a fresh module (never registered in ``sys.modules``, so
    two builds never share classes). Its filename ``<archlang: LABEL #n>`` is registered in
    :mod:`linecache`, so tracebacks and ``inspect.getsource`` show the generated code."""
    require_torch()
    n = next(_counter)
    filename = f"<archlang: {label} #{n}>"
    module = types.ModuleType(f"archlang_generated_{n}")
    module.__file__ = filename
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def check_externals(compiled) -> None:
    """Every ``extern`` module's class imports, else a located E734 (not an ImportError
    traceback from inside the generated file)."""
    import importlib

    from archlang.diagnostics import Diagnostic, SpecError
    from archlang.ops import Op

    seen = set()
    for node in compiled.graph.nodes.values():
        if node.op is not Op.EXTERNAL or node.attrs["target"] in seen:
            continue
        seen.add(node.attrs["target"])
        module, _, cls = node.attrs["target"].partition(":")
        try:
            found = getattr(importlib.import_module(module), cls)
        except Exception as err:  # noqa: BLE001 - any failure to import it is the same refusal
            reason = (
                f"{type(err).__name__}: {err}" if not isinstance(err, AttributeError) else f"`{module}` has no `{cls}`"
            )
            raise SpecError(
                Diagnostic(
                    code="E734",
                    message=f"cannot import `{node.attrs['target']}` for the extern module `{node.path[-1]}`: {reason}",
                    span=node.span,
                    help="install the package that defines it, or put it on PYTHONPATH",
                ),
                compiled.sources,
            ) from None
        if not callable(found):
            raise SpecError(
                Diagnostic(code="E734", message=f"`{node.attrs['target']}` is not a class", span=node.span),
                compiled.sources,
            )
