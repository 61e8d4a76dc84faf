"""archlang: a language and compiler for convolutional network architectures.

>>> import archlang
>>> compiled = archlang.compile_spec("googlenet")          # shapes, no torch
>>> result = archlang.analyze("specs/inception_v3.arch")   # params, FLOPs, RF per node
>>> model = archlang.build("inception_v3", num_classes=10)  # a torch.nn.Module
"""

from __future__ import annotations

import os

from .lazy import lazy_getattr
from .version import __version__

# `archlang.backends` and `archlang.specs` live in the top-level folders `backends/` and
# `specs/`. Installed (plain or editable), setuptools maps them there (pyproject.toml's
# package-dir). Run from a source checkout whose `archlang/` shadows the installed package
# (`python -m ...` or pytest from the repository root), nothing maps them: there the
# checkout's root joins this package's `__path__`, the standard hook for a package spread
# over several folders, so `archlang.backends` is the checkout's own `backends/`.
_here = os.path.dirname(os.path.abspath(__file__))
_root = os.path.dirname(_here)
if not os.path.isdir(os.path.join(_here, "backends")) and all(
    os.path.isfile(os.path.join(_root, name, "__init__.py")) for name in ("backends", "specs")
):
    __path__.append(_root)

# Everything is imported on first use: `archc --help` / `--version` need none of it, and
# torch is only ever imported by `build`.
_LAZY = {
    "Compiled": "archlang.compiler:Compiled",
    "compile_spec": "archlang.compiler:compile_spec",
    "Diagnostic": "archlang.diagnostics:Diagnostic",
    "SpecError": "archlang.diagnostics:SpecError",
    "analyze": "archlang.analysis:analyze",
    "build": "archlang.backends.torch.build:build",
    "from_module": "archlang.importer.api:from_module",
}


__getattr__ = lazy_getattr("archlang", _LAZY, globals())


__all__ = ["Compiled", "Diagnostic", "SpecError", "analyze", "build", "compile_spec", "from_module", "__version__"]
