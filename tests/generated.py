"""Importing generated source in tests: a fresh, uniquely named module from a fresh file
every time, so no module cache or stale bytecode can hand back an earlier example."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

_counter = itertools.count()


def import_file(path: Path):
    """Import ``path`` as a new module (never registered in ``sys.modules``)."""
    name = f"archlang_test_generated_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert name not in sys.modules
    return module


def import_source(source: str, folder: Path, stem: str = "generated"):
    """Write ``source`` to a new file in ``folder`` and import it."""
    path = folder / f"{stem}_{next(_counter)}.py"
    path.write_text(source)
    return import_file(path)
