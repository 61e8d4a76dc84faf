"""What archlang's torch back end wrote, read back: importing a built spec gives the spec.

``archlang.build(spec)`` (and ``archc SPEC --emit torch``) writes classes of its own, and
the importer reads them as the spec they came from:

* **Block classes.** The back end writes one class per *structure* of a block
  (``BasicBlock`` and ``BasicBlockDownsample``, one ``_DenseBlock`` class per length), each
  marked with the class attribute ``_archlang_block = "BasicBlock"``. An instance of such a
  class is an instance of the block, so instances group as in the spec. The marker is read
  from the class itself, not inherited: a hand-written subclass is a class of its own.
* **Helpers.** The generated file defines what torch lacks (``StochasticDepth``,
  ``stochastic_depth``, ``Permute``, ``LayerNorm2d``, ``FrozenBatchNorm2d``, ``TransformInput``,
  ``transform_input``: ``HELPERS`` of :mod:`archlang.backends.torch.texts`). A class or
  function of that name whose source is the helper's text is that op: a leaf module, or a
  function recorded as one call (torch.fx's ``autowrap_functions``).

No torch import here.
"""

from __future__ import annotations

import functools
import inspect

from ..backends.torch.texts import BLOCK_MARKER, HELPER_FUNCTIONS, HELPERS
from ..ops import IMAGENET_MEAN, IMAGENET_STD
from ..ops.records import RECORDS
from .text import is_name


def block_name(cls: type) -> str | None:
    """The block a generated class was written for (its ``_archlang_block``), else None."""
    name = vars(cls).get(BLOCK_MARKER)
    return name if isinstance(name, str) and is_name(name) else None


def _source(obj) -> str | None:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return None


def _is_helper(obj, name: str) -> bool:
    """``obj`` is the helper ``name`` as the back end writes it (same source text)."""
    text = HELPERS.get(name)
    if text is None or getattr(obj, "__name__", None) != name:
        return False
    if not isinstance(obj, type):
        source = _source(obj) if inspect.isfunction(obj) else None
        return source is not None and source.strip() == text.strip()
    base = obj.__bases__[0] if len(obj.__bases__) == 1 else None
    if base is None or not text.startswith(f"class {name}(nn.{base.__name__}):"):
        return False
    methods = [v for v in vars(obj).values() if inspect.isfunction(v)]
    sources = [_source(m) for m in methods]
    return bool(methods) and all(s is not None and s.rstrip() in text for s in sources)


def _stochastic_depth(m):
    return "stochastic_depth", (float(m.p),), () if m.mode == "row" else (("mode", m.mode),)


def _transform_args(mean, std) -> tuple:
    return tuple(
        (k, tuple(v)) for k, v, d in (("mean", mean, IMAGENET_MEAN), ("std", std, IMAGENET_STD)) if tuple(v) != d
    )


def _layernorm2d(m):
    return "layernorm2d", (), () if m.eps == 1e-5 else (("eps", m.eps),)


_CLASS_OPS = {
    "StochasticDepth": _stochastic_depth,
    "Permute": lambda m: ("permute", (tuple(m.dims),), ()),
    "LayerNorm2d": _layernorm2d,
    "TransformInput": lambda m: ("transform_input", (), _transform_args(m.mean, m.std)),
}


@functools.lru_cache(maxsize=256)  # asked for every module call of the trace
def helper_class(cls: type) -> bool:
    """One of the back end's helper classes (a leaf module with an op)."""
    name = getattr(cls, "__name__", "")
    return name in _CLASS_OPS and _is_helper(cls, name)


def helper_module_op(module) -> tuple[str, tuple, tuple]:
    """``(op, args, kwargs)`` of an instance of a helper class."""
    return _CLASS_OPS[type(module).__name__](module)


def _f_stochastic_depth(x, p, mode, training=True):
    if not training:
        return None
    return "stochastic_depth", (float(p),), () if mode == "row" else (("mode", mode),)


def _f_transform_input(x, mean, std):
    return "transform_input", (), _transform_args(mean, std)


_FUNCTION_STUBS = {"stochastic_depth": _f_stochastic_depth, "transform_input": _f_transform_input}
# The op records' helpers (their torch form's), read back by their records' mappings.
for _record in RECORDS.values():
    for _name, _row in _record.imports.helpers.items():
        (_FUNCTION_STUBS if _name in HELPER_FUNCTIONS else _CLASS_OPS)[_name] = _row


def helper_functions(module) -> dict:
    """The back end's helper functions that ``module``'s forwards can call (found in the
    globals of each submodule's class), each with its :mod:`.opmap` stub."""
    found: dict = {}
    seen: set[int] = set()
    for sub in module.modules():
        forward = getattr(type(sub), "forward", None)
        namespace = getattr(forward, "__globals__", None)
        if namespace is None or id(namespace) in seen:
            continue
        seen.add(id(namespace))
        for name in HELPER_FUNCTIONS:
            fn = namespace.get(name)
            if fn is not None and fn not in found and _is_helper(fn, name):
                found[fn] = _FUNCTION_STUBS[name]
    return found
