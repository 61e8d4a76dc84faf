"""``archlang.build``: the generated source, executed.

    >>> model = archlang.build("googlenet", num_classes=10)

Like torch.fx's ``GraphModule``, a built model is the code :func:`.codegen.emit` prints —
``archc SPEC --emit torch`` writes the same text — compiled into a fresh module whose
filename names the network, so a traceback shows the generated lines. The network class is
then instantiated (its constructor applies the spec's init). Built models and emitted files
are therefore one model by construction: same classes, state_dict keys, init and outputs.
"""

from __future__ import annotations

from pathlib import Path

from archlang.compiler import Compiled, ensure_compiled

from .runtime import check_externals, load_source, require_torch
from .source import generate


def build_compiled(compiled: Compiled):
    """The network of the generated source for ``compiled``, instantiated (training mode)."""
    check_externals(compiled)
    source, network = generate(compiled)
    module = load_source(source, f"{network} from {Path(str(compiled.graph.file or 'spec')).name}")
    return getattr(module, network)()


def build(
    source: str | Path | Compiled, input_shape: tuple[int, ...] | None = None, *, optimize: bool = False, **params
):
    """A ``torch.nn.Module`` for a spec (a path, a bundled spec name, spec text or a
    :class:`Compiled`); ``params`` set network parameters (``num_classes=10``).

    Raises :class:`archlang.SpecError` for an invalid spec, ``ValueError`` for parameters
    given with an already compiled spec, and ``ModuleNotFoundError`` naming
    ``pip install "archlang[torch]"`` without torch. The model is in training mode, on the
    CPU, in float32, like any freshly constructed module. ``optimize=True`` gives the
    inference module of ``--emit torch --optimize`` instead (eval mode; see
    :mod:`archlang.backends.torch.optimize` to load the unoptimized model's weights).
    """
    require_torch()
    compiled = ensure_compiled(source, params, input_shape)
    if optimize:
        from .optimize import build_compiled as build_optimized

        return build_optimized(compiled)
    return build_compiled(compiled)
