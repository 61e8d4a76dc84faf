"""Static analyses of a compiled network: parameters, buffers, MACs, FLOPs, all-ops,
activation memory and receptive fields, per node and summed (no torch needed).

    >>> import archlang
    >>> a = archlang.analyze("googlenet", aux_logits=False)
    >>> a.totals.params, a.totals.macs, a.totals.flops
    (6624904, 1498376192, 1504878688)
    >>> a.block("inception3a").params
    155872

Conventions are in ``docs/analysis.md``; per-op behaviour is in the tables of
:mod:`.params`, :mod:`.compute`, :mod:`.memory` and :mod:`.receptive`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .passes import run_passes
from .results import Analysis, AxisRF, NodeCost, ReceptiveField, Totals

if TYPE_CHECKING:  # the compiler (parser, IR, lowering) is imported on first use: analysing
    from ..compiler import Compiled  # an already compiled graph needs only the passes


def analyze(
    source: str | Path | Compiled,
    /,
    *,
    input_shape: tuple[int, ...] | None = None,
    dtype: str = "float32",
    batch: int = 1,
    params: dict | None = None,
    **network_params,
) -> Analysis:
    """Compile ``source`` (a path, a bundled spec name, spec text, or an already
    :class:`Compiled` spec) and analyse it.

    ``input_shape``, ``dtype``, ``batch`` and ``params`` are keyword-only and reserved; every
    other keyword is a network parameter (``analyze("googlenet", aux_logits=False)``). A
    network parameter whose name collides with a reserved one can be given in ``params=``.
    ``dtype`` and ``batch`` only affect the memory figures; costs are per sample.
    Raises :class:`archlang.SpecError` for a bad spec, ``ValueError`` for a bad dtype/batch.
    """
    from ..compiler import ensure_compiled

    compiled = ensure_compiled(source, {**(params or {}), **network_params}, input_shape)
    return run_passes(compiled.graph, dtype=dtype, batch=batch)


__all__ = ["Analysis", "AxisRF", "NodeCost", "ReceptiveField", "Totals", "analyze", "run_passes"]
