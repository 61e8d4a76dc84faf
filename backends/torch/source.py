"""The generated source of a compiled spec: plan, optional plan rewrite, emitter, and the
network parameters the network class takes as arguments. No torch import.
"""

from __future__ import annotations

import re

from archlang.compiler import Compiled, compile_spec
from archlang.diagnostics import SpecError

from .emit import Emitter
from .plan import plan


def _prepared(compiled: Compiled, rewrite=None):
    root = plan(compiled.graph)
    emitter = Emitter(rewrite(root) if rewrite else root, compiled.graph)
    return emitter, emitter.prepare()


def _nearby(value):
    return value + 1 if isinstance(value, int) else value / 2 if value else 0.5


def _without_shapes(texts: list[str]) -> list[str]:
    """Class texts without their shape comments (which show one instance's sizes)."""
    return [re.sub(r" *# \(N[^)]*\)", "", t) for t in texts]


def constructor_arguments(compiled: Compiled, emitter: Emitter, root, rewrite=None) -> dict[str, list[int]]:
    """The network parameters the generated network class can take as arguments, each with
    the constructor values (root slots) it sets.

    A numeric parameter qualifies when it only *fills values* in the network's
    ``__init__``: the spec compiled with another value of it gives the same classes, the
    same network structure and init, and differs exactly in slots that hold the parameter
    (checked by compiling it). Parameters that change structure (``aux_logits``) or enter
    an expression the class cannot see stay fixed at their compiled value.
    """
    params = compiled.graph.graph.get("params") or {}
    shape = tuple(compiled.graph.graph["input_shape"])
    out = {}
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        other_value = _nearby(value)
        try:
            other = compile_spec(compiled.program, {**params, name: other_value}, shape)
        except SpecError:
            continue
        other_emitter, other_root = _prepared(other, rewrite)
        if _without_shapes(other_emitter.texts) != _without_shapes(emitter.texts) or other_root.key != root.key:
            continue
        if other_emitter.init_lines() != emitter.init_lines():
            continue
        changed = [i for i, (a, b) in enumerate(zip(root.slots, other_root.slots)) if a != b]
        exact = all(root.slots[i] == value and other_root.slots[i] == other_value for i in changed)
        if changed and exact:
            out[name] = changed
    return out


def generate(compiled: Compiled, rewrite=None) -> tuple[str, str]:
    """(source, network class name) for a compiled spec; ``rewrite``: a plan -> plan pass
    applied first (``--optimize``'s :func:`.rewrite.inference_plan`)."""
    emitter, root = _prepared(compiled, rewrite)
    return emitter.generate(root, constructor_arguments(compiled, emitter, root, rewrite))
