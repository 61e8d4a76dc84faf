"""The importer's law on one spec (``tests/test_import_properties.py`` and
``campaign.py --valid --import``).

For a valid spec S: M = ``archlang.build(S)`` (seeded; every parameter perturbed, batch
norm statistics and affine weights randomised), T = ``archlang.from_module(M, input shape
of S)``. The law: T compiles; ``build(T)`` loads ``M.state_dict()`` with ``strict=True``;
eval outputs agree in float64 (relative error <= 1e-9); the analysis of T equals S's in
total parameters, buffers, MACs, FLOPs (main path and each aux head), output shape, and
per layer with weights or buffers (op, shape, params, buffers, MACs, FLOPs, by node id:
the state_dict path); with ``fixed_point``, ``from_module(build(T))`` is T (header comments
aside: reported in ``Outcome.fixed_point``, not a failure of the law). :func:`check`
returns an :class:`Outcome`: ``ok``, ``refused`` (a located E72x from the importer; ``gap``
names its class in :data:`KNOWN_GAPS`, or is None), ``unbuildable`` (the torch back end
refuses S itself, e.g. a hostile label), ``broken-build`` (the importer refused a module
that fails in training mode itself: a back-end bug, not the importer's) or ``fail``.
"""

from __future__ import annotations

import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# Refusals the importer gives on archlang's own emitted modules today: (pattern, why).
KNOWN_GAPS = {
    "aux-anchor": (
        r"an auxiliary output reads",
        "an aux head on a layer that is not a top-level layer of the import (a functional "
        "parameter-free layer is now named after its op: 0 in 1,000 typed specs)",
    ),
}
TOTALS = ("params", "buffers", "macs", "flops")


@dataclass
class Outcome:
    kind: str  # "ok" | "refused" | "fail" | "unbuildable" | "broken-build" (see the docstring)
    detail: str = ""
    gap: str | None = None
    imported: str | None = None
    fixed_point: bool | None = None  # checked only when asked: the re-import is the import


def gap_of(message: str) -> str | None:
    return next((name for name, (pattern, _) in KNOWN_GAPS.items() if re.search(pattern, message)), None)


def _body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip()


def _perturb(model, seed: int) -> None:
    import torch
    from bn_stats import randomize_bn

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    randomize_bn(model, seed=seed, affine=True)


def _runs_in_training(model, shape) -> str | None:
    """Why ``model`` fails on a batch in training mode (the importer traces that mode), or None."""
    import torch

    try:
        with torch.no_grad():
            model.train()(torch.randn(2, *shape))
    except Exception as err:  # noqa: BLE001 - any error of the spec's own module
        return f"{type(err).__name__}: {err}"
    finally:
        model.eval()
    return None


def _layers(analysis) -> dict:
    return {
        c.id: (c.op.value, c.shape, c.params, c.buffers, c.macs, c.flops)
        for c in analysis.nodes.values()
        if c.params or c.buffers
    }


def _compare(a, b) -> str | None:
    """Why the analyses of S (``a``) and T (``b``) differ, or None."""
    for name in TOTALS:
        if getattr(a.totals, name) != getattr(b.totals, name):
            return f"total {name}: spec {getattr(a.totals, name)}, import {getattr(b.totals, name)}"
    aux_a = {k: tuple(getattr(t, n) for n in TOTALS) for k, t in a.aux_totals.items()}
    aux_b = {k: tuple(getattr(t, n) for n in TOTALS) for k, t in b.aux_totals.items()}
    if aux_a != aux_b:
        return f"aux totals {TOTALS}: spec {aux_a}, import {aux_b}"
    out_a, out_b = (x.nodes[x.graph.output].shape for x in (a, b))
    if out_a != out_b:
        return f"output shape: spec {out_a}, import {out_b}"
    la, lb = _layers(a), _layers(b)
    if la != lb:
        diff = sorted(set(la.items()) ^ set(lb.items()))[:4]
        return f"layers with weights differ (id, (op, shape, params, buffers, macs, flops)): {diff}"
    return None


def check(text: str, fixed_point: bool = False, seed: int = 1) -> Outcome:
    """The law on the valid spec ``text`` (see the module docstring)."""
    import torch

    import archlang
    from archlang import SpecError

    stage = "analyze the spec"
    try:
        a = archlang.analyze(text)
        shape = a.input_shape
        stage = "build the spec"
        torch.manual_seed(seed)
        try:
            model = archlang.build(text)
        except SpecError as err:  # the torch back end refuses the spec (E7xx: a label, ...)
            return Outcome("unbuildable", str(err))
        _perturb(model, seed)
        stage = "import"
        try:
            imported = archlang.from_module(model, shape)
        except SpecError as err:
            message = str(err)
            located = re.match(r"error\[E72\d\]", message) is not None
            if not located:
                return Outcome("fail", f"import refused without an E72x diagnostic:\n{message}")
            broken = None if gap_of(message) else _runs_in_training(model, shape)
            if broken:  # M itself fails, the importer rightly refused: a back-end bug
                return Outcome("broken-build", f"the spec's build fails in training mode: {broken}\n{message}")
            return Outcome("refused", message, gap_of(message))
        stage = "compile the import"
        b = archlang.analyze(imported)
        stage = "load the state_dict strictly"
        built = archlang.build(imported)
        built.load_state_dict(model.state_dict(), strict=True)
        stage = "run both"
        model, built = model.double().eval(), built.double().eval()
        x = torch.randn(2, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            expected, got = model(x), built(x)
        if isinstance(expected, dict):  # `outputs dict(...)`: the same keys, in order, each equal
            if not isinstance(got, dict) or list(got) != list(expected):
                return Outcome("fail", f"outputs: {type(got).__name__} {list(got)}, expected {list(expected)}")
            expected = torch.cat([t.flatten() for t in expected.values()])
            got = torch.cat([t.flatten() for t in got.values()])
        if got.shape != expected.shape:
            return Outcome(
                "fail", f"outputs: shape {tuple(got.shape)}, expected {tuple(expected.shape)}", None, imported
            )
        err = float(torch.linalg.norm(got - expected)) / max(float(torch.linalg.norm(expected)), 1e-300)
        if err > 1e-9:
            return Outcome("fail", f"outputs differ: relative error {err:.3g}", None, imported)
        why = _compare(a, b)
        if why:
            return Outcome("fail", f"analysis: {why}", None, imported)
        if fixed_point:
            stage = "re-import the import's build"
            try:
                again = archlang.from_module(archlang.build(imported), shape)
            except SpecError as err:
                return Outcome("ok", f"re-import refused: {err}", None, imported, False)
            if _body(again) != _body(imported):
                return Outcome("ok", f"the re-import differs:\n{again}", None, imported, False)
            return Outcome("ok", imported=imported, fixed_point=True)
        return Outcome("ok", imported=imported)
    except Exception:  # noqa: BLE001 - any other exception is a failure of the law
        return Outcome("fail", f"{stage}:\n{traceback.format_exc()}")
