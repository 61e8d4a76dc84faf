"""Import-time helpers for a fast-starting CLI."""

from __future__ import annotations

import contextlib
import sys


@contextlib.contextmanager
def without_module(name: str):
    """Make ``import name`` fail inside the block, unless it is already imported.

    The entry is removed afterwards, so a later ``import name`` works normally.
    """
    if name in sys.modules:
        yield
        return
    sys.modules[name] = None  # type: ignore[assignment]  # import machinery: ImportError
    try:
        yield
    finally:
        if sys.modules.get(name, 0) is None:
            del sys.modules[name]
