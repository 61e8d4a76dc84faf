"""In-place ops whose effect a functional spec would lose (E724).

torch.fx records ``a.relu_()``, ``a += b`` and ``nn.ReLU(inplace=True)`` as ops with an
output, like their functional forms; archlang's spec is functional. That is the same
function as long as nothing reads the old value after the mutation: ``b = a.relu_(); a +
b`` adds ``relu(a)`` twice in PyTorch, but ``a + relu(a)`` in the spec. So an in-place op
is refused when a value sharing its target's storage (the target, views of it made before
the op, the values they were viewed from) is read after it by anything but the op's own
result and its views. Dropout is not checked (the identity in eval mode).

One form reads the old name on purpose: an in-place op as a statement (``out.mul_(g)``, its
result unused) whose target is the only stale value read after it. The name is then the only
way to read the result, and the target's readers after it are rewired to the op's result
(:func:`rewire`), the same function.
"""

from __future__ import annotations

import inspect
import operator

import torch.fx as fx

from archlang.importer.series_parallel import problem

_VIEW_METHODS = frozenset(
    "view view_as reshape flatten permute transpose contiguous chunk split squeeze unsqueeze expand detach".split()
)
_VIEW_MODULES = frozenset({"Identity", "Flatten", "Dropout", "StochasticDepth", "Permute"})
_IN_PLACE_OPERATORS = (operator.iadd, operator.imul, operator.isub, operator.itruediv)


def _mutated(node: fx.Node, module, functions: dict) -> fx.Node | None:
    """The value ``node`` changes in place, or None."""
    target = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
    if node.op == "call_method" and node.target.endswith("_") and not node.target.startswith("_"):
        return target
    if node.op == "call_function" and node.target in _IN_PLACE_OPERATORS:
        return target
    if node.op == "call_function" and "dropout" not in getattr(node.target, "__name__", ""):
        stub = functions.get(node.target)
        if node.kwargs.get("inplace") is True:
            return target
        if stub is not None and "inplace" in inspect.signature(stub).parameters:
            try:
                bound = inspect.signature(stub).bind_partial(*node.args, **node.kwargs)
            except TypeError:
                return None
            return target if bound.arguments.get("inplace") is True else None
    if node.op == "call_module":
        sub = module.get_submodule(node.target)
        if getattr(sub, "inplace", False) is True and "Dropout" not in type(sub).__name__:
            return target
    return None


def _is_view(node: fx.Node, module, functions: dict) -> bool:
    """Does ``node``'s result share its first argument's storage?"""
    if node.op == "call_method":
        return node.target in _VIEW_METHODS or _mutated(node, module, functions) is not None
    if node.op == "call_function":
        if node.target in (operator.getitem, *_views()):
            return True
        return _mutated(node, module, functions) is not None
    if node.op == "call_module":
        sub = module.get_submodule(node.target)
        return type(sub).__name__ in _VIEW_MODULES or _mutated(node, module, functions) is not None
    return False


def _views() -> tuple:
    import torch

    return (torch.flatten, torch.permute, torch.chunk, torch.reshape, torch.split, torch.transpose)


def _first_arg(n: fx.Node):
    return n.args[0] if n.args and isinstance(n.args[0], fx.Node) else None


class _Storage:
    """Which values of ``graph`` share storage, and who reads them after an in-place op."""

    def __init__(self, graph: fx.Graph, module, functions: dict):
        self.module, self.functions = module, functions
        self.order = {n: i for i, n in enumerate(graph.nodes)}

    def views_of(self, start: fx.Node) -> set[fx.Node]:
        found, stack = set(), [start]
        while stack:
            n = stack.pop()
            if n in found:
                continue
            found.add(n)
            stack.extend(u for u in n.users if _first_arg(u) is n and _is_view(u, self.module, self.functions))
        return found

    def late_readers(self, node: fx.Node, target: fx.Node) -> dict[fx.Node, list[fx.Node]]:
        """The values sharing ``target``'s storage that ``node`` makes stale, each with its
        readers after ``node`` (those with none left out)."""
        root = target
        while _first_arg(root) is not None and _is_view(root, self.module, self.functions):
            root = _first_arg(root)
        stale = self.views_of(root) - self.views_of(node)
        out = {}
        for value in stale:
            late = [u for u in value.users if u not in stale and u is not node and self.order[u] > self.order[node]]
            if late:
                out[value] = late
        return out


def rewire(graph: fx.Graph, module, functions: dict) -> None:
    """``out.mul_(g)`` as a statement (its result unused): the code reads the product through
    ``out``, so where ``out`` is the only stale value read afterwards, its readers are made to
    read the op's result (NF-Nets' ``out.mul_(self.skipinit_gain)``; ``out`` may be a view,
    an ``nn.Identity``'s output, whose source nothing reads afterwards)."""
    storage = _Storage(graph, module, functions)
    for node in graph.nodes:
        target = _mutated(node, module, functions)
        if target is None or node.users:
            continue
        late = storage.late_readers(node, target)
        if set(late) == {target}:
            for user in late[target]:
                user.replace_input_with(target, node)


def check(graph: fx.Graph, module, functions: dict) -> None:
    storage = _Storage(graph, module, functions)
    for node in graph.nodes:
        target = _mutated(node, module, functions)
        if target is None:
            continue
        for late in storage.late_readers(node, target).values():
            what = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "op")
            raise problem(
                "E724",
                f"`{what}` changes a tensor in place that `{late[0].name}` reads afterwards: "
                "a spec's layers do not mutate their inputs",
                "use the out-of-place form (`x = x + y`, `F.relu(x)`, `nn.ReLU()`), or read the value after the "
                "in-place op only through its result",
            )


class InPlaceProxy(fx.Proxy):
    """A traced value on which ``a += b`` is recorded as ``operator.iadd`` (and ``*=``, ``-=``,
    ``/=`` alike). fx's Proxy has no ``__iadd__``, so Python would record ``a + b`` and lose
    the mutation. The importer's tracer makes its values of this class (``Tracer.proxy``):
    ``torch.fx.Proxy`` itself, which other tracers in the process use, is left as it is."""

    def _in_place(self, fn, other):
        return self.tracer.create_proxy("call_function", fn, (self, other), {})

    def __iadd__(self, other):
        return self._in_place(operator.iadd, other)

    def __imul__(self, other):
        return self._in_place(operator.imul, other)

    def __isub__(self, other):
        return self._in_place(operator.isub, other)

    def __itruediv__(self, other):
        return self._in_place(operator.itruediv, other)
