"""Package attributes imported on first use (PEP 562 ``__getattr__``), so that importing a
package stays cheap: ``archlang`` (``archc --help`` needs none of its API) and
``archlang.train`` (Lightning and torch only when training runs)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_getattr(package: str, table: dict[str, str], namespace: dict) -> Callable[[str], object]:
    """A module ``__getattr__`` that resolves ``name`` through ``table`` (name ->
    ``"module:attribute"``) and caches the value in the package's ``namespace``."""

    def __getattr__(name: str):
        target = table.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = target.partition(":")
        value = getattr(importlib.import_module(module), attr)
        namespace[name] = value
        return value

    return __getattr__
