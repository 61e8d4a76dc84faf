"""``archc FILE --emit torch``: a self-contained, readable PyTorch file for a spec.

The file defines one class per conv unit style (``BasicConv2d``), per block template
(``Inception``, or one per structure: ``BasicBlock`` / ``BasicBlockDownsample``) and the
network, whose constructor takes the network parameters that only fill in values
(``GoogLeNet(num_classes=1000, ...)``). It imports only torch and ``collections`` and runs
nothing at import but definitions. :func:`archlang.build` executes this same source
(:mod:`.build`), so file and in-memory model are one model by construction. ``--optimize``
rewrites the plan first (:mod:`.optimize`) and prints it with the same emitter. This module
does not import torch.
"""

from __future__ import annotations

from archlang.compiler import Compiled

from . import optimize
from .source import generate


def emit(compiled: Compiled) -> str:
    """The generated Python source for a compiled spec."""
    return generate(compiled)[0]


def emit_cli(compiled: Compiled, fmt: str, options: dict) -> str:
    """``archc FILE --emit torch [--optimize]``."""
    if options.get("optimize"):
        return optimize.emit(compiled)
    return emit(compiled)
