"""What each supported ``nn.Module`` class and function is in archlang: the op records'
``imports`` mappings (:mod:`archlang.ops`), as tables keyed by the class's (or function's)
qualified name, each row a function from the module (or the call's bound arguments) to
``(op, args, kwargs)``.

Arguments equal to the archlang default are left out (``maxpool(3, stride=2)``, not
``maxpool(3, stride=2, padding=0, dilation=1, ceil_mode=false)``). A value with no archlang
equivalent (``padding_mode="reflect"``, ``return_indices=True``) raises :class:`Unsupported`
with the reason; :mod:`.trace` turns it into a located E722.
"""

from __future__ import annotations

import importlib
import inspect
import operator
import sys

from ..ops.import_form import NN as _NN
from ..ops.import_form import Unsupported
from ..ops.records import RECORDS
from . import generated


def qualname(obj) -> str:
    """``torch.nn.modules.conv.Conv2d`` for a class; ``torch.nn.functional.relu`` for a function."""
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", repr(obj))
    if name.startswith("_VariableFunctionsClass.") or module.startswith("torch._C"):
        module, name = "torch", getattr(obj, "__name__", name)
    return f"{module}.{name}" if module else name


def public_name(cls: type) -> str:
    """``torch.nn.Conv2d`` rather than ``torch.nn.modules.conv.Conv2d`` where torch exports it."""
    module = cls.__module__
    if module.startswith("torch.nn.modules."):
        return f"torch.nn.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


MODULES = {name: row for r in RECORDS.values() for name, row in r.imports.modules.items()}
# Tensor methods, by name (``x.relu()``).
METHODS = {name: stub for r in RECORDS.values() for name, stub in r.imports.methods.items()}


def is_leaf_class(cls: type) -> bool:
    """A module the tracer does not enter: one archlang op, or a ``torch.nn`` module with
    no op (refused by name rather than by whatever functions its forward calls)."""
    name = qualname(cls)
    if name in MODULES or generated.helper_class(cls):
        return True
    return name.startswith("torch.nn.") and not name.startswith(_NN + "container.")


def module_op(module, in_shape: tuple[int, ...] | None = None):
    """``(op, args, kwargs)`` for a leaf module; :class:`Unsupported` if none.

    A mapping that takes ``in_shape`` (the input's per-sample shape, None before the shapes
    are known) may return a list of ops run in sequence, the module's own layer last: timm's
    ``*Same`` layers pad by the input's size (TensorFlow's SAME) before their conv."""
    row = MODULES.get(qualname(type(module)))
    if row is None and generated.helper_class(type(module)):
        return generated.helper_module_op(module)
    if row is None:
        raise Unsupported("no archlang op for this module")
    if "in_shape" in inspect.signature(row).parameters:
        return row(module, in_shape=in_shape)
    return row(module)


# ---- functions -------------------------------------------------------------------------
# Each stub has the function's signature (the tensor first); `inspect` binds the traced
# call's arguments to it, defaults filled in, and the body makes the op.


def _f_transform_input(x):
    return "transform_input", (), ()


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def function_table() -> dict:
    """The supported functions, keyed by the function object a traced node calls (the
    records name them; torch and torchvision are imported here, when the importer runs)."""
    from .leaves import transform_input

    table = {transform_input: _f_transform_input}
    for record in RECORDS.values():
        for dotted, stub in record.imports.functions.items():
            if dotted.partition(".")[0] not in sys.modules:  # a model cannot call what is not loaded
                continue  # (and importing timm here would cost every import a second)
            try:
                table[_resolve(dotted)] = stub
            except (ImportError, AttributeError):  # torchvision missing or changed
                pass
    return table


# Binary elementwise functions: the archlang group they become ("sub": an `add` whose second
# branch ends in `scale(-1)`; a + (-1 * b) is a - b to the bit).
MERGES = {
    operator.add: "add",
    operator.iadd: "add",
    operator.sub: "sub",
    operator.isub: "sub",
    operator.mul: "mul",
    operator.imul: "mul",
}
MERGE_METHODS = {"add": "add", "add_": "add", "sub": "sub", "sub_": "sub", "mul": "mul", "mul_": "mul"}


def function_op(stub, args: tuple, kwargs: dict, ndim: int | None, last: bool = False):
    """Bind ``args``/``kwargs`` to ``stub`` (the tensor first) and make the op; ``None``
    for a call that is the identity (``F.dropout(x, training=False)``). A stub that takes
    ``ndim`` gets the tensor's rank, one that takes ``last`` whether it is channels-last."""
    params = inspect.signature(stub).parameters
    extra = {k: v for k, v in (("ndim", ndim), ("last", last)) if k in params}
    try:
        bound = inspect.signature(stub).bind(*args, **kwargs, **extra)
    except TypeError as err:
        raise Unsupported(f"arguments not understood ({err})") from None
    return stub(*bound.args, **bound.kwargs)
