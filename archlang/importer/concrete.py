"""Tracing with the input's shapes known: every traced value can give its value on a fake
(shape-only) tensor of the given input (a batch of 2), so Python that depends only on static
shapes runs. The ops recorded are evaluated lazily, in order, when a shape is first asked
for: a forward that asks nothing (torchvision's) costs no evaluation.

``x.ndim``, ``x.dim()``, ``x.shape[1]``, ``x.size(0)``, ``if x.dim() == 4``, input-size guards
and loops over the pieces of a ``torch.split`` are answered from those values instead of being
recorded: they are constants for the given input. A size is an :class:`Dim` (an ``int`` that
remembers which tensor's which axis it is), so ``x.view(x.size(0), -1)`` still reads as a
flatten that keeps the batch dimension. Only Python that branches on tensor *values* stays
a trace error.

The fake values live in one ``FakeTensorMode`` per trace, entered only around each op's
evaluation: parameters and buffers read in the forward become fake twins (an in-place update
of running statistics stays there), and a leaf module runs in eval mode on fake inputs.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
import sys

import torch
import torch.fx as fx
from torch.utils._pytree import tree_flatten, tree_map

from .inplace import InPlaceProxy
from .shape_prop import BATCH

_MISSING = object()
_PENDING = object()
# Tensor attributes that are facts of the input's shape and type, not of its values.
_STATIC_ATTRS = frozenset({"shape", "ndim", "dtype", "device", "is_cuda", "layout"})
# Tensor methods whose result is a fact of the shape or type: answered at once. Every other
# op is evaluated only when some answer needs its value (a forward that never asks costs nothing).
_STATIC_METHODS = frozenset(
    "size dim ndimension numel nelement is_contiguous is_floating_point element_size get_device".split()
)


class Dim(int):
    """A size read off a traced tensor: axis ``axis`` of the value ``node``."""

    def __new__(cls, value: int, node: fx.Node | None, axis: int):
        self = int.__new__(cls, value)
        self.node, self.axis = node, axis
        return self

    @property
    def batch(self) -> bool:
        return self.axis == 0

    def __reduce__(self):  # copies and pickles of a graph keep the plain number
        return int, (int(self),)


class Shape(tuple):
    """``x.shape`` of a traced tensor: a tuple of :class:`Dim` (``torch.Size`` cannot be
    subclassed); slices stay shapes."""

    def __getitem__(self, index):
        item = tuple.__getitem__(self, index)
        return Shape(item) if isinstance(index, slice) else item

    def numel(self) -> int:
        out = 1
        for d in self:
            out *= int(d)
        return out


def _shape(value: torch.Size, node: fx.Node) -> Shape:
    return Shape(Dim(int(n), node, i) for i, n in enumerate(value))


def _static(value) -> bool:
    """A result that is a fact of shapes (a size, a rank, a dtype), not a tensor."""
    leaves, _ = tree_flatten(value)
    return not any(isinstance(v, torch.Tensor) for v in leaves)


_SKIP = (os.path.dirname(torch.__file__) + os.sep, os.path.dirname(__file__) + os.sep)


def _caller() -> tuple[str, int] | None:
    """The file and line of the user's code that made the op being traced (for messages)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if not name.startswith(_SKIP) and not name.startswith("<"):
            return name, frame.f_lineno
        frame = frame.f_back
    return None


@contextlib.contextmanager
def _eval(module: torch.nn.Module):
    """A leaf runs in eval mode on the fake input: same shapes, and a BatchNorm neither
    updates its real running statistics nor needs two values per channel."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _uninitialised(module: torch.nn.Module) -> bool:
    return any(getattr(m, "has_uninitialized_params", lambda: False)() for m in module.modules())


class ConcreteProxy(InPlaceProxy):
    """A traced value whose shape queries are answered from its fake value."""

    def __getattr__(self, k: str):
        if k in _STATIC_ATTRS and self.tracer.value(self.node) is not _MISSING:
            return self.tracer.create_proxy("call_function", getattr, (self, k), {})
        return super().__getattr__(k)

    def __len__(self) -> int:
        value = self.tracer.value(self.node)
        if isinstance(value, (tuple, list)):
            return len(value)
        return super().__len__()


class ConcreteTracing:
    """Mix-in for an ``fx.Tracer``: call :meth:`start` with the input before ``trace``."""

    proxy_buffer_attributes = True  # a buffer's in-place update is recorded, never run on the real one

    def start(self, module: torch.nn.Module, input_shape: tuple[int, ...]) -> None:
        from torch._subclasses.fake_tensor import FakeTensorMode

        param = next(module.parameters(), None)
        self._fake = FakeTensorMode(allow_non_fake_inputs=True)
        with self._fake:
            self._input = torch.empty(
                BATCH,
                *input_shape,
                dtype=param.dtype if param is not None else torch.float32,
                device=param.device if param is not None else "cpu",
            )
        self._placeholders = 0
        self._pending: list[tuple] = []  # recorded ops not evaluated yet, in order
        self._next = 0
        self._waiting: set[fx.Node] = set()

    # -- values

    def value(self, node: fx.Node):
        """``node``'s fake value: the ops recorded so far run in order up to it."""
        while node in self._waiting:
            n, kind, target, args, kwargs = self._pending[self._next]
            self._next += 1
            self._waiting.discard(n)
            n.meta["value"] = self._evaluate(kind, target, args, kwargs)
        return node.meta.get("value", _MISSING)

    def _concrete(self, a):
        if isinstance(a, fx.Proxy):
            return self.value(a.node)
        if isinstance(a, fx.Node):
            return self.value(a)
        return a

    def _evaluate(self, kind: str, target, args, kwargs):
        if not hasattr(self, "_fake") or self._evaluating:
            return _MISSING
        if kind == "placeholder":
            self._placeholders += 1
            return self._input if self._placeholders == 1 else _MISSING
        args, kwargs = tree_map(self._concrete, (args, kwargs))
        if any(v is _MISSING for v in tree_flatten((args, kwargs))[0]):
            return _MISSING
        self._evaluating = True  # fx's patched Module.__call__ / __getattr__ just run the module
        log = logging.getLogger("torch._subclasses.fake_tensor")
        quiet, log.disabled = log.disabled, True  # a failing op is reported by shape_prop (E727), not logged
        try:
            if kind == "get_attr":  # a fake twin: an in-place update (running statistics) stays there
                value = self.root
                for part in target.split("."):
                    value = getattr(value, part)
                return self._fake.from_tensor(value) if isinstance(value, torch.Tensor) else value
            with self._fake, torch.no_grad():
                if kind == "call_function":
                    return target(*args, **kwargs)
                if kind == "call_method":
                    return getattr(args[0], target)(*args[1:], **kwargs)
                if kind == "call_module":
                    module = self.root.get_submodule(target)
                    if _uninitialised(module):  # running it would materialise the user's lazy module
                        return _MISSING
                    with _eval(module):
                        return module(*args, **kwargs)
        except Exception:  # e.g. an op fake tensors cannot run: shapes after it stay unknown
            return _MISSING
        finally:
            self._evaluating, log.disabled = False, quiet
        return _MISSING

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        asked = (kind == "call_method" and target in _STATIC_METHODS) or (kind == "call_function" and target is getattr)
        value = self._evaluate(kind, target, args, kwargs) if asked or kind == "placeholder" else _PENDING
        if value is not _MISSING and value is not _PENDING and asked and _static(value):
            source = args[0].node if args and isinstance(args[0], fx.Proxy) else None
            if isinstance(value, torch.Size):
                return _shape(value, source)
            if kind == "call_method" and target == "size" and isinstance(value, int) and source is not None:
                axis = args[1] if len(args) > 1 else kwargs.get("dim", 0)
                return Dim(value, source, axis % len(source.meta["value"].shape))
            return value
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        if value is _PENDING:
            self._pending.append((proxy.node, kind, target, args, kwargs))
            self._waiting.add(proxy.node)
        else:
            proxy.node.meta["value"] = value
        where = _caller()
        if where is not None:
            proxy.node.meta["source"] = where
        return proxy

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return ConcreteProxy(node, self)

    def iter(self, obj: fx.Proxy):
        value = self.value(obj.node)
        if isinstance(value, (tuple, list)):  # the pieces of a split, a module's returned tuple
            return iter([self.create_proxy("call_function", operator.getitem, (obj, i), {}) for i in range(len(value))])
        return super().iter(obj)

    _evaluating = False

    def getattr(self, attr, attr_val, parameter_proxy_cache):
        if self._evaluating:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def call_module(self, m: torch.nn.Module, forward, args, kwargs):
        if self._evaluating:
            return forward(*args, **kwargs)
        try:
            self.path_of_module(m)
        except NameError:  # made inside forward (`nn.ZeroPad2d(1)(x)`): its op, or its forward traced through
            if any(True for _ in m.parameters()) or any(True for _ in m.buffers()):
                raise
            if self.is_leaf_module(m, ""):
                return self.create_proxy("call_function", Inline(m), args, kwargs)
            return forward(*args, **kwargs)
        return super().call_module(m, forward, args, kwargs)


class Inline:
    """A parameter-free module made inside ``forward``, called as a function."""

    def __init__(self, module: torch.nn.Module):
        self.module = module
        self.__name__ = self.__qualname__ = type(module).__name__  # fx names the node after it

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def __repr__(self) -> str:
        return repr(self.module)
