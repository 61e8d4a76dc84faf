"""archlang: a language and compiler for convolutional network architectures."""

from __future__ import annotations

__version__ = "0.1.0"

from .compiler import Compiled, compile_spec  # noqa: E402
from .diagnostics import Diagnostic, SpecError  # noqa: E402

__all__ = ["Compiled", "Diagnostic", "SpecError", "compile_spec", "__version__"]
