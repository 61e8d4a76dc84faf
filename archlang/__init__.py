"""archlang: a language and compiler for convolutional network architectures.

>>> import archlang
>>> compiled = archlang.compile_spec("googlenet")          # shapes, no torch
>>> result = archlang.analyze("specs/inception_v3.arch")   # params, FLOPs, RF per node
>>> model = archlang.build("inception_v3", num_classes=10)  # a torch.nn.Module
"""

from __future__ import annotations

import importlib

from .version import __version__

# Everything is imported on first use: `archc --help` / `--version` need none of it, and
# torch is only ever imported by `build`.
_LAZY = {
    "Compiled": "archlang.compiler:Compiled",
    "compile_spec": "archlang.compiler:compile_spec",
    "Diagnostic": "archlang.diagnostics:Diagnostic",
    "SpecError": "archlang.diagnostics:SpecError",
    "analyze": "archlang.analysis:analyze",
    "build": "archlang.backends.torch.build:build",
}


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'archlang' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


__all__ = ["Compiled", "Diagnostic", "SpecError", "analyze", "build", "compile_spec", "__version__"]
