"""archlang: a language and compiler for convolutional network architectures.

>>> import archlang
>>> compiled = archlang.compile_spec("googlenet")          # shapes, no torch
>>> result = archlang.analyze("specs/inception_v3.arch")   # params, FLOPs, RF per node
>>> model = archlang.build("inception_v3", num_classes=10)  # a torch.nn.Module
"""

from __future__ import annotations

import os
import sys

from .lazy import lazy_getattr
from .version import __version__


class _CheckoutFinder:
    """Finds ``archlang.backends`` and ``archlang.specs`` in a source checkout.

    Installed, they live inside the package (setuptools' package-dir puts ``backends/`` and
    ``specs/`` there); in the repository they sit next to ``archlang/``. Python run from the
    repository root imports the checkout's ``archlang/`` before any installed one, and with a
    non-editable install nothing would then find the two: this finder does, so the checkout
    is used whole, whatever is installed."""

    def __init__(self, root: str):
        self.root = root

    def find_spec(self, fullname: str, path=None, target=None):
        prefix, _, name = fullname.partition(".")
        if prefix != "archlang" or name not in ("backends", "specs"):
            return None  # their subpackages are found through the package's __path__
        from importlib.util import spec_from_file_location

        folder = os.path.join(self.root, name)
        return spec_from_file_location(
            fullname, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
        )


def _find_checkout_packages() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    if os.path.isdir(os.path.join(here, "backends")):  # installed: nothing to do
        return
    if not all(os.path.isfile(os.path.join(root, name, "__init__.py")) for name in ("backends", "specs")):
        return
    if not any(getattr(f, "root", None) == root and type(f).__name__ == "_CheckoutFinder" for f in sys.meta_path):
        sys.meta_path.insert(0, _CheckoutFinder(root))


_find_checkout_packages()

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
