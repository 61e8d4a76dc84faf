"""``nn.Module`` -> :class:`~.tree.Network`, by torch.fx symbolic tracing.

A custom tracer stops at modules that are one archlang op (:mod:`.opmap`'s table) and at
every other ``torch.nn`` module (refused by name below); everything else is traced
through, and ``node.meta["nn_module_stack"]`` says which module call each op ran in. The
model is traced in training mode (aux heads run) and its training flags are restored
after; one forward pass of a random ``(1, C, H, W)`` input (eval mode, no grad; on fake
tensors where it can) gives every value's shape (``ShapeProp``). :mod:`.structure` turns
the ops into nested sequences and groups.

Anything archlang cannot express is a :class:`~archlang.diagnostics.SpecError` (E720-E727)
naming the module path and the op, never a traceback.
"""

from __future__ import annotations

import inspect
import operator
import re

import torch
import torch.fx as fx

from archlang.diagnostics import SpecError
from archlang.importer.series_parallel import CONTAINERS, INPUT, Elem, Scope, build, problem
from archlang.importer.shape_prop import ndim as rank
from archlang.importer.shape_prop import propagate_shapes
from archlang.ops.shape_rules import permuted_layout

from . import attention, calls, generated, inplace, opmap, owned, rearrange, refusals
from .concrete import ConcreteTracing, Dim, Inline
from .grouped import (
    FLATTENS,
    GROUP_FUNCTIONS,
    GROUP_METHODS,
    RESHAPE_FUNCTIONS,
    RESHAPE_METHODS,
    SOFTMAX_FUNCTIONS,
    GroupedViews,
)
from .leaves import NAMED_STATELESS, is_param, shortest, transform_input_method
from .tree import Call, Network


class _Tracer(ConcreteTracing, fx.Tracer):
    """Values are :class:`~.concrete.ConcreteProxy`: shape queries answered, ``a += b``
    recorded as a mutation (:class:`~.inplace.InPlaceProxy`)."""

    def __init__(self, autowrap: tuple, module: torch.nn.Module, input_shape: tuple[int, ...]):
        super().__init__(autowrap_functions=autowrap)
        self.start(module, input_shape)
        self.call_args: dict[str, list] = {}  # module call -> the tensors passed (calls.py)
        self.call_returns: dict[str, list] = {}  # and those it returned

    def call_module(self, m, forward, args, kwargs):
        if self._evaluating:  # a fake-tensor run of a recorded op (concrete.py), not a call to record
            return super().call_module(m, forward, args, kwargs)
        key = calls.record(self, m, args, kwargs, self.call_args)
        out = super().call_module(m, forward, args, kwargs)
        calls.returned(key, out, self.call_returns)
        return out

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return opmap.is_leaf_class(type(m))

    def trace(self, root, concrete_args=None) -> fx.Graph:
        graph = super().trace(root, concrete_args)
        attention.fold(graph, self.value)  # the reshapes around an attention call: one op
        return graph


def _autowrap(functions: dict) -> tuple:
    """The Python functions of other libraries that ops map (torchvision's
    ``stochastic_depth``, timm's ``drop_path``...): traced as one call each, not into."""
    return tuple(f for f in functions if getattr(f, "__module__", "").partition(".")[0] not in ("torch", "archlang"))


def trace(module: torch.nn.Module, input_shape: tuple[int, ...], name: str | None = None) -> Network:
    """The tree of ``module``'s forward on a ``(1, *input_shape)`` input."""
    flags = [(m, m.training) for m in module.modules()]
    patched = _patch_transform_input(module)
    helpers = generated.helper_functions(module)  # archlang's own, in a built spec
    functions = opmap.function_table()  # read once: both traces and the converter use it
    wrapped = (*_autowrap(functions), *helpers)
    tracer = _Tracer(wrapped, module, tuple(input_shape))
    try:
        module.train()
        try:
            graph = tracer.trace(module)
        except Exception as err:  # fx raises TraceError, TypeError, NotImplementedError, ...
            raise _trace_failed(tracer, err, tuple(input_shape)) from None
        inputs = [n.target for n in graph.nodes if n.op == "placeholder"]
        if len(inputs) > 1 and any(n.users for n in graph.nodes if n.op == "placeholder" and n.target != inputs[0]):
            raise problem(
                "E725",
                f"the module's forward takes several tensors ({', '.join(inputs)}): archlang networks take one input",
            )
        converter = _Converter(module, graph, functions, helpers)
        converter.call_args, converter.call_returns = tracer.call_args, tracer.call_returns
        with refusals.at_source(converter):
            converter.precheck()
        inplace.rewire(graph, module, converter.functions)
        inplace.check(graph, module, converter.functions)
        eval_tracer = _Tracer(wrapped, module, tuple(input_shape))
        refusals.same_in_eval(graph, eval_tracer, module, converter.functions)
        propagate_shapes(graph, module, input_shape)
    finally:
        for m, flag in flags:
            m.training = flag
        if patched:
            del module._transform_input
    with refusals.at_source(converter):
        network = converter.network(name or type(module).__name__, tuple(input_shape))
    refusals.unused_state(module, graph)
    return network


def _patch_transform_input(module) -> bool:
    if getattr(module, "transform_input", False) is True and hasattr(module, "_transform_input"):
        module._transform_input = transform_input_method
        return True
    return False


def _trace_failed(tracer: _Tracer, err: Exception, input_shape: tuple[int, ...]):
    stack = list(getattr(tracer, "module_stack", {}).values())
    path, cls = stack[-1] if stack else ("", type(None))
    where = f"`{path}` ({cls if isinstance(cls, str) else opmap.public_name(cls)})" if path else "the top-level module"
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "does not support item assignment" in reason:  # `x[:, :c] = conv(x[:, :c])` (FasterNet's slicing)
        refusal = problem(
            "E721",
            f"{where}: assigning into part of a tensor (`x[...] = ...`) has no archlang op",
            "compute the new tensor instead: `torch.cat((conv(x[:, :c]), x[:, c:]), 1)`, or cut it with "
            "`torch.split(x, [c, rest], 1)` and join the pieces with `torch.cat`",
        )
        return refusals.in_forward(refusal, err)
    if not isinstance(err, fx.proxy.TraceError) and "Proxy" not in str(err) and "symbolic" not in str(err):
        # the forward's own check on the input's shapes (`if x.shape[-1] != 224: raise ...`)
        return problem(
            "E727",
            f"the module fails on a 1x{'x'.join(map(str, input_shape))} input at {where}: {reason}",
            "give the input size it expects with --input CxHxW (input_shape=)",
        )
    return problem(
        "E723",
        f"torch.fx cannot trace {where}: {reason}",
        "the forward must not branch or loop on tensor values; archc import follows the forward on the "
        "given input's shapes, so tests on sizes (`if x.dim() == 4`, `x.shape[-1]`) are fine",
    )


class _Converter(GroupedViews):
    """Graph nodes -> :class:`~.structure.Elem` list, then :func:`~.structure.build`."""

    def __init__(self, module: torch.nn.Module, graph: fx.Graph, functions: dict, helpers: dict | None = None):
        self.module = module
        self.graph = graph
        # node -> value id | ("param", path) | ("chunk", id, count or sizes)
        self.values: dict[fx.Node, object] = {}
        self.views: dict = {}  # node -> grouped.View: a tensor read as channel groups of its value
        # value id -> whether it is channels-last (H×W×C), as archlang's shape pass will say:
        # where a `dim=-1` cuts or joins the channels
        self.last: dict[int, bool] = {}
        self.elems: list[Elem] = []
        self.scopes: dict[str, Scope] = {}
        self.functions = {**functions, **(helpers or {})}
        self.calls: dict[str, int] = {}
        for node in graph.nodes:
            if node.op == "call_module":
                self.calls[node.target] = self.calls.get(node.target, 0) + 1
        self.owners = owned.owners(graph, self.functions)  # modules a functional call is the layer of
        self.current: fx.Node | None = None  # the node being converted (its source line for messages)
        self._interpolate = self.functions.get(torch.nn.functional.interpolate)

    # -- scopes

    def _scope(self, key: str, path: str, cls) -> Scope:
        scope = self.scopes.get(key)
        if scope is None:
            sub = self.module.get_submodule(path)
            cls_name = generated.block_name(type(sub)) or (
                cls.rsplit(".", 1)[-1] if isinstance(cls, str) else cls.__name__
            )
            exact = type(sub).__module__ == "torch.nn.modules.container" and cls_name in CONTAINERS
            state = any(True for _ in sub.parameters()) or any(True for _ in sub.buffers())
            passed = getattr(self, "call_args", {}).get(key, ())
            args = tuple((self.values[n], p) for n, p in passed if isinstance(self.values.get(n), int))
            scope = self.scopes[key] = Scope(key, path, cls_name, exact, state, args)
        return scope

    def _chain(self, node: fx.Node) -> tuple[Scope, ...]:
        stack = list(node.meta.get("nn_module_stack", {}).items())
        if node.op == "call_module" and stack:
            stack = stack[:-1]  # the leaf itself
        return tuple(self._scope(key, path, cls) for key, (path, cls) in stack if path not in self.owners)

    def _where(self, node: fx.Node) -> str:
        chain = self._chain(node)
        if not chain:
            return "the top-level module"
        sub = self.module.get_submodule(chain[-1].path)
        return f"`{chain[-1].path}` ({opmap.public_name(type(sub))})"

    # -- values

    def _tensor(self, node: fx.Node, arg, what: str, views: bool = False) -> int:
        if isinstance(arg, fx.Node) and arg in self.views and not views and self.flat_view(arg) is None:
            raise self.refuse_view(node, arg, what)
        value = self.values.get(arg) if isinstance(arg, fx.Node) else None
        if not isinstance(value, int):
            raise problem(
                "E721",
                f"{self._where(node)}: {what} reads a value that is not a layer's output tensor",
                "archlang layers read the tensor the previous layer made",
            )
        return value

    def _add(
        self, node: fx.Node, inputs: list[int], call: Call | None = None, merge: str | None = None, path: str = ""
    ) -> None:
        elem = Elem(len(self.elems) + 1, inputs, self._chain(node), call, merge, self._where(node), path)
        self.elems.append(elem)
        self.values[node] = elem.id
        vector = rank(node) == 2  # (batch, features): no layout, as in archlang's shape pass
        self.last[elem.id] = not vector and _layout(call, any(self.last.get(v, False) for v in inputs))

    def _unary(
        self, node: fx.Node, op_tuple, label: str | None = None, source: str = "", path: str = "", x: int | None = None
    ) -> None:
        arg = node.args[0] if node.args else None
        if x is None:
            x = self._tensor(node, arg, source or str(node.target), views=op_tuple is None)
        if _has_node((node.args[1:], node.kwargs)):
            raise problem("E721", f"{self._where(node)}: `{source}` takes a tensor-dependent argument")
        if op_tuple is None:  # the identity: the value passes through (channel groups stay groups)
            self.values[node] = x
            if isinstance(arg, fx.Node) and arg in self.views:
                self.views[node] = self.views[arg]
            return
        op, args, kwargs = op_tuple
        self._add(node, [x], Call(op, tuple(args), tuple(kwargs), label=label, source=source), path=path)

    # -- nodes

    def network(self, name: str, input_shape: tuple[int, ...]) -> Network:
        output = None
        matches, unmatched = rearrange.find(self.graph)
        inside = {n for m in matches.values() for n in m.steps[:-1]}
        for node in self.graph.nodes:
            self.current = node
            if node in inside:
                continue  # a step of a rearrangement, made by its last step
            if node in matches:
                self._rearranged(node, matches[node])
            elif node in unmatched:
                self._unmatched(node, unmatched[node])
            elif node.op == "placeholder":
                if INPUT in self.values.values():
                    continue  # an optional argument the forward does not use (checked in `trace`)
                self.values[node] = INPUT
            elif node.op == "get_attr":
                self.values[node] = ("param", node.target)
            elif node.op == "call_module":
                self._call_module(node)
            elif node.op == "call_function":
                self._call_function(node)
            elif node.op == "call_method":
                self._call_method(node)
            elif node.op == "output":
                output = node.args[0]
        main, aux, typename = self._outputs(output)
        kept = getattr(self, "call_returns", {})
        results = {k: [v for n in nodes if isinstance(v := self.values.get(n), int)] for k, nodes in kept.items()}
        if typename == "dict":  # an OrderedDict of named values
            body, heads, paths = build(self.elems, main, [], returns=[v for _, v in self._fields], results=results)
            returns = tuple((f, ".".join(paths[v])) for f, v in self._fields)
            return Network(name=name, input_shape=input_shape, body=body, returns=returns)
        body, heads, labels = build(self.elems, main, [v for _, v in aux], results=results)
        outputs = None
        if typename is not None:
            outputs = (typename, tuple((f, labels[v] if v in labels else "logits") for f, v in self._fields))
        return Network(name=name, input_shape=input_shape, body=body, aux=heads, outputs=outputs)

    def _rearranged(self, node: fx.Node, match: rearrange.Match) -> None:
        spelling = " → ".join(rearrange.spelling(n) for n in match.steps)
        x = self._tensor(node, match.start, spelling)
        if match.op is None:  # the identity (`x.view(x.shape)`, a transpose and back)
            self.values[node] = x
            return
        op, args, kwargs = match.op
        self._add(node, [x], Call(op, args, kwargs, source=spelling))

    def _unmatched(self, node: fx.Node, chain: rearrange.Unmatched) -> None:
        """A step of a rearrangement that is no archlang op as a whole: each step on its own
        (a channels-last permute around a layer norm), else refused with what the chain does."""
        try:
            if node.op == "call_function":
                self._call_function(node)
            else:
                self._call_method(node)
        except SpecError:
            raise problem(
                "E722",
                f"{self._where(node)}: {chain.describe()}, which is none of archlang's rearrangements",
                "archc import reads a chain of view / reshape / permute / transpose / flatten between feature "
                "maps by its effect: the identity, channel_shuffle(g), pixel_shuffle(r), pixel_unshuffle(r), "
                "space_to_depth(b) or depth_to_space(b)",
            ) from None

    def _outputs(self, output):
        self._fields: list[tuple[str, int]] = []
        if (
            isinstance(output, fx.Node)
            and isinstance(self.values.get(output), tuple)
            and hasattr(self.values[output], "_fields")
        ):
            output = self.values[output]
        if isinstance(output, fx.Node):
            return self._tensor_out(output), [], None
        if isinstance(output, dict) and output:  # fx keeps an OrderedDict's order
            for key, value in output.items():
                if not isinstance(key, str):
                    raise problem(
                        "E725",
                        f"the module returns a dict with the key {key!r}: `outputs dict` keys are strings",
                        'key the outputs by strings, as torchvision does (`{"out": x}`)',
                    )
                self._fields.append((key, self._tensor_out(value)))
            return self._fields[-1][1], [], "dict"
        if isinstance(output, tuple) and hasattr(output, "_fields"):
            for field in output._fields:
                value = getattr(output, field)
                if value is None:
                    continue
                self._fields.append((field, self._tensor_out(value)))
            if not self._fields:
                raise problem("E725", "the module returns no tensor")
            main = next((v for f, v in self._fields if f == "logits"), self._fields[0][1])
            aux = [(f, v) for f, v in self._fields if v != main]
            return main, aux, type(output).__name__
        raise problem(
            "E725",
            f"the module returns a {type(output).__name__.replace('immutable_', '')}: archlang networks return "
            "one tensor, an OrderedDict of tensors, or a namedtuple with aux heads in training mode",
            "return the one tensor the spec should compute, or an OrderedDict naming each",
        )

    def _tensor_out(self, node) -> int:
        if isinstance(node, fx.Node) and node in self.views and self.flat_view(node) is None:
            raise self.refuse_view(node, node, "the module's output")
        value = self.values.get(node) if isinstance(node, fx.Node) else None
        if not isinstance(value, int) or value == INPUT:
            raise problem("E725", "the module returns something other than a layer's output tensor")
        return value

    def precheck(self) -> None:
        """Modules, functions and methods with no archlang op, before anything runs."""
        for node in self.graph.nodes:
            self.current = node
            if rearrange.is_step(node):
                continue  # read with its chain once shapes are known (`network`)
            if node.op == "call_module":
                self._module_op(node)
            elif node.op == "call_function" and not self._known(node.target):
                self._call_function(node)  # raises E721
            elif node.op == "call_method" and node.target not in {
                *opmap.MERGE_METHODS,
                "chunk",
                "split",
                *GROUP_METHODS,
                *opmap.METHODS,
            }:
                self._call_method(node)  # raises E721
            elif node.op in ("call_method", "call_function") and node.target in ("sum", torch.sum):
                if not self.sums_paths(node):
                    self.group_sum(node)  # a sum over other dims: E721 before anything runs

    def _known(self, fn) -> bool:
        if isinstance(fn, type) and issubclass(fn, tuple) and hasattr(fn, "_fields"):
            return True
        if isinstance(fn, Inline):  # unknown ones are refused by _call_function, located
            try:
                return opmap.module_op(fn.module) is not None
            except opmap.Unsupported:
                return False
        return (
            fn in self.functions
            or fn in opmap.MERGES
            or fn in (torch.add, torch.sub, torch.mul, torch.cat, torch.chunk, torch.split)
            or fn in (operator.getitem, operator.truediv)
            or fn in GROUP_FUNCTIONS
            or fn is getattr(torch, "concat", None)
        )

    def _module_op(self, node: fx.Node, in_shape: tuple[int, ...] | None = None):
        sub = self.module.get_submodule(node.target)
        refusals.lazy(sub, node.target)
        refusals.hooks(sub, node.target)
        try:
            return opmap.module_op(sub, in_shape)
        except opmap.Unsupported as err:
            code = "E720" if str(err).startswith("no archlang op") else "E722"
            raise problem(
                code,
                f"`{node.target}` ({opmap.public_name(type(sub))}): {err}",
                "archc import knows the modules of torchvision's classifiers; see docs/import.md",
            ) from None

    def _inline_op(self, node: fx.Node, sub):
        try:
            return opmap.module_op(sub)
        except opmap.Unsupported as err:
            raise problem(
                "E720",
                f"{self._where(node)}: `{opmap.public_name(type(sub))}` made in forward: {err}",
                "archc import knows the modules listed in docs/import.md",
            ) from None

    def _call_module(self, node: fx.Node) -> None:
        sub = self.module.get_submodule(node.target)
        cls = opmap.public_name(type(sub))
        meta = node.args[0].meta.get("tensor_meta") if node.args and isinstance(node.args[0], fx.Node) else None
        op = self._module_op(node, tuple(meta.shape[1:]) if meta is not None else None)
        if isinstance(op, tuple) and op[0] == "softmax" and self.grouped(node.args[0]):  # over a (B, R, C, H, W)
            return self.group_softmax(node, sub.dim, what=f"{node.target} ({cls})")  # tensor's paths
        x = None
        if isinstance(op, list):  # ops the module runs before its layer (a SAME layer's pad)
            *before, op = op
            x = self._tensor(node, node.args[0], f"{node.target} ({cls})")
            for name, args, kwargs in before:
                self._add(node, [x], Call(name, tuple(args), tuple(kwargs), source=f"{node.target} ({cls})"))
                x = self.elems[-1].id
        if op[0] == "softmax":
            refusals.softmax_dim(sub, node.target, rank(node.args[0]))
        stateless = not any(True for _ in sub.parameters()) and not any(True for _ in sub.buffers())
        # A parameter-free layer keeps its name only where the torch back end does (a pool or
        # dropout module outside blocks: ``maxpool1``), not when the layer gets it anyway (its
        # op's, ``maxpool_2``, its position); no key depends on it (docs/import.md).
        name = node.target.rsplit(".", 1)[-1]
        plain = name.isdigit() or re.fullmatch(rf"{op[0]}(_\d+)?", name) is not None
        label = None if stateless and (op[0] not in NAMED_STATELESS or plain) else node.target
        if self.calls[node.target] > 1:
            if not stateless:
                uses = [self._where(n) for n in self.graph.nodes if n.op == "call_module" and n.target == node.target]
                raise refusals.shared(node.target, cls, uses)
        path = node.target
        if self.calls[node.target] > 1:
            # one parameter-free module at several points (Res2Net's `self.relu`): each call
            # is a layer of its own, with no key and no name of its module to keep (the
            # built spec has a layer per call, so its re-import sees no such name either)
            label, path = None, ""
        if op == ("identity", (), ()):
            op = None  # a placeholder (timm's `drop = nn.Identity()`): the torch back end builds no module for it
        if stateless and any(path.startswith(owner + ".") for owner in self.owners):
            label, path = None, ""  # beside its owner's layer (BatchNormAct2d's act), not nested in its name
        self._unary(node, op, label=label, source=f"{node.target} ({cls})", path=path, x=x)
        if op is not None and op[0] == "radix_softmax":  # timm's returns it flat: (B, C) of a C×1×1 map
            self._set_view(node, self.values[node], self.value_shape(node.args[0]))

    def _merge(self, node: fx.Node, mode: str, a, b) -> None:
        if any(isinstance(t, fx.Node) and t in self.views for t in (a, b)):
            return self.merge_views(node, mode, a, b)
        pa = self.values.get(a) if isinstance(a, fx.Node) else None
        pb = self.values.get(b) if isinstance(b, fx.Node) else None
        if mode == "mul" and isinstance(pa, tuple) and pa[0] == "param" and isinstance(pb, int):
            return self._layer_scale(node, pa[1:] if len(pa) == 3 else pa[1], pb, b)
        if mode == "mul" and isinstance(pb, tuple) and pb[0] == "param" and isinstance(pa, int):
            return self._layer_scale(node, pb[1:] if len(pb) == 3 else pb[1], pa, a)
        zero_a, zero_b = _number(a) and a == 0, _number(b) and b == 0
        if mode == "add" and (zero_a and isinstance(pb, int) or zero_b and isinstance(pa, int)):
            self.values[node] = pb if zero_a else pa  # Python's `sum(paths)` starts at 0: the identity
            return None
        if mode == "mul" and _number(a) and isinstance(pb, int):
            return self._add(node, [pb], Call("scale", (float(a),), source="*"))
        if mode == "mul" and _number(b) and isinstance(pa, int):
            return self._add(node, [pa], Call("scale", (float(b),), source="*"))
        if not (isinstance(pa, int) and isinstance(pb, int)):
            what = node.target if isinstance(node.target, str) else {"add": "+", "sub": "-", "mul": "*"}[mode]
            raise problem(
                "E721",
                f"{self._where(node)}: `{what}` of a tensor and a constant, buffer or parameter has no archlang op",
                f"archlang's `{'add' if mode == 'sub' else mode} {{ }}` combines the outputs of parallel branches",
            )
        if mode == "sub":  # a - b: `add { a; b then scale(-1) }`, the same bits
            self._add(node, [pb], Call("scale", (-1.0,), source="-"))
            mode, pb = "add", self.values[node]
        self._add(node, [pa, pb], merge=mode)

    def _divide(self, node: fx.Node, a, b) -> None:
        # `(x1 + x2) / 2` (timm's distilled heads): a constant factor 1 / c, exact for powers of two
        x = self.values.get(a) if isinstance(a, fx.Node) else None
        if not (isinstance(x, int) and _number(b) and b != 0):
            raise problem(
                "E721",
                f"{self._where(node)}: `/` other than a tensor divided by a constant has no archlang op",
                "a tensor divided by a nonzero number is a `scale(1 / c)`",
            )
        self._add(node, [x], Call("scale", (1 / b,), source="/"))

    def _flat_param(self, node: fx.Node, source: tuple) -> None:
        # timm's `self.gamma.reshape(1, -1, 1, 1)` or `self.scale.view(C, 1, 1)`: a (C,)
        # parameter broadcast over a map
        dims = node.args[1] if len(node.args) == 2 and isinstance(node.args[1], (tuple, list)) else node.args[1:]
        dims = tuple(dims)
        flat = len(source) == 2 and is_param(self.module, source[1]) and self.module.get_parameter(source[1]).dim() == 1
        c = self.module.get_parameter(source[1]).numel() if flat else None
        if not flat or dims[-3:] not in ((c, 1, 1), (-1, 1, 1)) or dims[:-3] not in ((), (1,)) or node.kwargs:
            raise problem(
                "E721",
                f"{self._where(node)}: `Tensor.{node.target}` of `{source[1]}` has no archlang op",
                "a (C,) parameter reshaped to (1, -1, 1, 1) or (C, 1, 1) and multiplied is a `layer_scale(flat=true)`",
            )
        self.values[node] = ("param", source[1], "flat")

    def _layer_scale(self, node: fx.Node, path, x: int, tensor: fx.Node) -> None:
        flat = isinstance(path, tuple)
        path = path[0] if flat else path
        param = self.module.get_parameter(path) if is_param(self.module, path) else None
        meta = tensor.meta.get("tensor_meta")
        channels = meta.shape[1] if meta is not None and len(meta.shape) == 4 else None
        scalar = param is not None and param.dim() == 0 and not flat
        if param is None or (not scalar and tuple(param.shape) != ((channels,) if flat else (channels, 1, 1))):
            raise problem(
                "E721",
                f"{self._where(node)}: multiplying by `{path}` has no archlang op",
                "only a (C, 1, 1) parameter times a C-channel map, or a 0-d parameter, is a `layer_scale`",
            )
        init = shortest(param.detach().flatten()[0])
        args = () if init == 1e-6 else (init,)
        kwargs = (("flat", True),) if flat else (("scalar", True),) if scalar else ()
        self._add(node, [x], Call("layer_scale", args, kwargs, label=path, source=path), path=path)

    def _call_function(self, node: fx.Node) -> None:
        fn = node.target
        if isinstance(fn, type) and issubclass(fn, tuple) and hasattr(fn, "_fields"):
            self.values[node] = fn(*node.args, **node.kwargs)  # the outputs namedtuple, of nodes
            return None
        if fn in opmap.MERGES or fn in (torch.add, torch.sub, torch.mul):
            mode = opmap.MERGES.get(fn) or {torch.add: "add", torch.sub: "sub", torch.mul: "mul"}[fn]
            if len(node.args) != 2 or node.kwargs:
                raise problem(
                    "E721",
                    f"{self._where(node)}: `{opmap.qualname(fn)}` with these arguments has no archlang op",
                    f"archlang's `{'add' if mode == 'sub' else mode} {{ }}` combines two branches, without `alpha` "
                    "or `out`",
                )
            return self._merge(node, mode, *node.args)
        if fn is operator.truediv:
            return self._divide(node, *node.args)
        if fn in (torch.cat, getattr(torch, "concat", None)):
            return self._cat(node)
        if fn is torch.chunk:
            return self._chunk(node)
        if fn is torch.split:
            return self._split(node)
        if fn is torch.stack:
            return self.stack(node)
        if fn is torch.sum:
            return self.group_sum(node)
        if fn in (torch.transpose, torch.swapaxes):
            return self.transpose(node)
        if (fn in RESHAPE_FUNCTIONS or fn in FLATTENS and node.args and self.grouped(node.args[0])) and self.reshape(
            node
        ):
            return None
        if fn in SOFTMAX_FUNCTIONS and node.args and self.grouped(node.args[0]):
            return self.group_softmax(node, _arg(node, 1, "dim"), what=opmap.qualname(fn))
        if fn is operator.getitem:
            return self._getitem(node)
        if isinstance(fn, Inline):
            op = self._inline_op(node, fn.module)
            return self._unary(node, op, source=f"{opmap.public_name(type(fn.module))} made in forward")
        if fn is getattr and node.args[1:2] in (("shape",), ("ndim",)):
            raise refusals.reads_size(self._where(node), f"Tensor.{node.args[1]}")
        stub = self.functions.get(fn)
        if stub is None:
            raise problem(
                "E721",
                f"{self._where(node)}: no archlang op for function `{opmap.qualname(fn)}`",
                "archc import knows the functions of torchvision's classifiers; see docs/import.md",
            )
        self._apply(node, stub, f"{opmap.qualname(fn)}")

    def _call_method(self, node: fx.Node) -> None:
        name = node.target
        if owned.bookkeeping(node, self.owners):
            return  # the layer's own running-statistics count
        if name in ("size", "dim", "numel"):
            raise refusals.reads_size(self._where(node), f"Tensor.{name}")
        source = self.values.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if name in ("reshape", "view") and isinstance(source, tuple) and source[0] == "param":
            return self._flat_param(node, source)
        if name in opmap.MERGE_METHODS:
            return self._merge(node, opmap.MERGE_METHODS[name], *node.args)
        if name == "chunk":
            return self._chunk(node)
        if name == "split":
            return self._split(node)
        if name == "sum":
            return self.group_sum(node)
        if name in ("transpose", "swapaxes"):
            return self.transpose(node)
        if (name in RESHAPE_METHODS or name in FLATTENS and self.grouped(node.args[0])) and self.reshape(node):
            return None
        if name == "softmax" and self.grouped(node.args[0]):
            return self.group_softmax(node, _arg(node, 1, "dim"), what="Tensor.softmax")
        stub = opmap.METHODS.get(name)
        if stub is None:
            raise problem(
                "E721",
                f"{self._where(node)}: no archlang op for method `Tensor.{name}`",
                "archc import knows the tensor methods of torchvision's classifiers; see docs/import.md",
            )
        self._apply(node, stub, f"Tensor.{name}")

    def _apply(self, node: fx.Node, stub, name: str) -> None:
        x = node.args[0] if node.args else None
        path = owned.owner(node, stub) if node.op == "call_function" else None
        if path not in self.owners and _has_node((node.args[1:], node.kwargs)):
            read = [n.target if n.op == "get_attr" else n.name for n in node.all_input_nodes[1:]]
            raise problem(
                "E721",
                f"{self._where(node)}: `{name}` reads tensors besides its input ({', '.join(map(str, read))}) that "
                "are not the own parameters of the module it runs in",
                "a functional layer is imported where it runs inside a module and reads that module's own "
                "parameters and buffers by their names (`self.weight`, `self.bias`)",
            )
        args, kwargs = owned.state_values(node, self.module) if path in self.owners else (node.args, node.kwargs)
        ref, args, kwargs = self._size_from(node, stub, args, kwargs)
        try:
            last = self.last.get(self.values.get(x), False) if isinstance(x, fx.Node) else False
            op = opmap.function_op(stub, (None, *args[1:]), dict(kwargs), rank(x), last)
        except opmap.Unsupported as err:
            raise problem("E722", f"{self._where(node)}: `{name}`: {err}") from None
        if ref is not None and op is not None:  # `upsample from x, ref`: ref's H×W when it runs
            call = Call(op[0], tuple(op[1]), tuple(op[2]), source=name)
            return self._add(node, [self._tensor(node, x, name), ref], call)
        if path in self.owners and op is not None:  # the layer of module `path`, with its keys
            call = Call(op[0], tuple(op[1]), tuple(op[2]), label=path, source=f"{path} ({name})")
            return self._add(node, [self._tensor(node, x, name)], call, path=path)
        self._unary(node, op, source=name)

    def _size_from(self, node: fx.Node, stub, args, kwargs):
        """``F.interpolate(x, size=ref.shape[-2:])``: the size is ``ref``'s H×W wherever the
        model runs, not the number it has at the traced input. Returns ``ref``'s value (None
        where the size is no other tensor's H×W) and the arguments with that size left out."""
        if stub is not self._interpolate:
            return None, args, kwargs
        params = list(inspect.signature(stub).parameters)
        i = params.index("size")
        size = args[i] if len(args) > i else kwargs.get("size")
        dims = list(size) if isinstance(size, (tuple, list)) else []
        source = dims[0].node if dims and all(isinstance(d, Dim) for d in dims) else None
        if len(dims) != 2 or source is None or any(d.node is not source for d in dims) or source is args[0]:
            return None, args, kwargs
        ndim = rank(source)
        ref = self.values.get(source)
        if ndim is None or [d.axis for d in dims] != [ndim - 2, ndim - 1] or not isinstance(ref, int):
            return None, args, kwargs
        if len(args) > i:
            return ref, (*args[:i], None, *args[i + 1 :]), kwargs
        return ref, args, {**kwargs, "size": None}

    def _cat(self, node: fx.Node) -> None:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        if not isinstance(tensors, (list, tuple)) or not tensors:
            raise problem("E721", f"{self._where(node)}: torch.cat of something other than a list of tensors")
        if (
            any(isinstance(t, fx.Node) and t in self.views for t in tensors)
            and isinstance(dim, int)
            and dim % (rank(tensors[0]) or 1) == 1
        ):
            return self.cat_views(node, tensors)  # paths unsqueezed on dim 1, joined: a stack
        inputs = [self._tensor(node, t, "torch.cat") for t in tensors]
        if not self._channel_dim(tensors[0], inputs[0], dim):
            raise problem(
                "E722",
                f"{self._where(node)}: `torch.cat` on dim={dim}: archlang's `concat` joins the channels "
                "(dim=1, or the last dim of a channels-last tensor)",
            )
        if len(inputs) == 1:
            self.values[node] = inputs[0]
            return
        self._add(node, inputs, merge="concat")

    def _channel_dim(self, tensor: fx.Node, value: int, dim) -> bool:
        """Whether torch's ``dim`` of ``tensor`` is its channels: 1, or the last dim where
        archlang's shape pass makes the value channels-last (after ``permute((0, 2, 3, 1))``)."""
        ndim = rank(tensor)
        if ndim is None or not isinstance(dim, int) or isinstance(dim, bool) or not -ndim <= dim < ndim:
            return False
        return dim % ndim == (ndim - 1 if self.last.get(value, False) else 1)

    def _chunk(self, node: fx.Node) -> None:
        x = self._tensor(node, node.args[0], "chunk")
        chunks = node.args[1] if len(node.args) > 1 else node.kwargs.get("chunks")
        dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
        if not isinstance(chunks, int) or not self._channel_dim(node.args[0], x, dim):
            raise problem(
                "E722",
                f"{self._where(node)}: `chunk` on dim={dim}: archlang's `split` cuts the channels "
                "(dim=1, or the last dim of a channels-last tensor)",
            )
        self.values[node] = ("chunk", x, chunks)

    def _split(self, node: fx.Node) -> None:
        """``torch.split(x, size, 1)`` into equal parts is ``chunk`` (``split(n, i)``); other
        sizes are ``split((10, 30), i)``."""
        x = self._tensor(node, node.args[0], "split")
        sizes = (
            node.args[1]
            if len(node.args) > 1
            else node.kwargs.get("split_size_or_sections", node.kwargs.get("split_size"))
        )
        dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
        if not self._channel_dim(node.args[0], x, dim):
            raise problem(
                "E722",
                f"{self._where(node)}: `split` on dim={dim}: archlang's `split` cuts the channels "
                "(dim=1, or the last dim of a channels-last tensor)",
            )
        shape = node.args[0].meta["tensor_meta"].shape
        channels = shape[dim]
        if isinstance(sizes, int) and not isinstance(sizes, bool) and sizes > 0:
            sizes = [min(sizes, channels - start) for start in range(0, channels, sizes)]
        ok = isinstance(sizes, (list, tuple)) and all(isinstance(n, int) and not isinstance(n, bool) for n in sizes)
        if not ok or sum(sizes) != channels or any(n <= 0 for n in sizes):
            raise problem(
                "E722",
                f"{self._where(node)}: `split` of {channels} channels into {sizes}: archlang's `split` takes "
                "positive channel counts that add up to the channels",
            )
        equal = len(set(sizes)) == 1
        self.values[node] = ("chunk", x, len(sizes) if equal else tuple(sizes))

    def _getitem(self, node: fx.Node) -> None:
        source, index = node.args
        if isinstance(source, fx.Node) and source in self.views:
            raise self.refuse_view(node, source, "indexing (`operator.getitem`)")
        value = self.values.get(source) if isinstance(source, fx.Node) else None
        if isinstance(value, int) and _whole(source, index):
            self.values[node] = value  # `o[..., :H, :W]` that keeps every row and column at this input
            return None
        channels = _channel_slice(source, index) if isinstance(value, int) else None
        if channels is not None:
            start, length = channels
            return self._add(node, [value], Call("narrow", (start, length), source="slice"))
        if not (isinstance(value, tuple) and value[0] == "chunk" and isinstance(index, int)):
            raise problem(
                "E721",
                f"{self._where(node)}: indexing (`operator.getitem`) has no archlang op",
                "archlang slices consecutive channels (`x[:, a:b]` is `narrow`); a slice that keeps the whole "
                "map (`x[..., :H, :W]` at its own size) is dropped",
            )
        _, x, chunks = value
        count = len(chunks) if isinstance(chunks, tuple) else chunks
        self._add(node, [x], Call("split", (chunks, index % count), source="chunk"))


def _layout(call: Call | None, last: bool) -> bool:
    """Whether an op's output is channels-last given its inputs' (``last``): the rule of
    archlang's shape pass (graph/shape_pass.py), which a permute and a flatten change."""
    if call is None:
        return last
    if call.op == "permute":
        return permuted_layout(tuple(call.args[0]), last) is True
    return last and call.op != "flatten"


def _arg(node: fx.Node, i: int, name: str):
    return node.args[i] if len(node.args) > i else node.kwargs.get(name)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(source: fx.Node, index) -> bool:
    """``x[..., :H, :W]`` (slices and one ``...``) that keeps all of every axis of ``x``."""
    meta = source.meta.get("tensor_meta")
    index = index if isinstance(index, tuple) else (index,)
    if meta is None or index.count(Ellipsis) > 1 or not all(i is Ellipsis or isinstance(i, slice) for i in index):
        return False
    shape = tuple(meta.shape)
    if Ellipsis in index:
        at = index.index(Ellipsis)
        fill = len(shape) - len(index) + 1
        index = (*index[:at], *(slice(None),) * fill, *index[at + 1 :])
    if len(index) > len(shape):
        return False
    for cut, size in zip(index, shape):
        if any(v is not None and not isinstance(v, int) for v in (cut.start, cut.stop, cut.step)):
            return False
        if cut.indices(size) != (0, size, 1):
            return False
    return True


def _channel_slice(source: fx.Node, index) -> tuple[int, int] | None:
    """``(start, length)`` for ``x[:, a:b]`` (more dims taken whole, or ``...``), the only
    indexing archlang has an op for: consecutive channels at every position."""
    meta = source.meta.get("tensor_meta")
    if meta is None or not isinstance(index, tuple) or len(index) < 2 or len(index) > len(meta.shape):
        return None
    whole = slice(None)
    rest = [i for i in index[2:] if i is not Ellipsis]
    if index[0] != whole or not isinstance(index[1], slice) or any(i != whole for i in rest):
        return None
    cut = index[1]
    if any(v is not None and not isinstance(v, int) for v in (cut.start, cut.stop, cut.step)) or cut.step not in (
        None,
        1,
    ):
        return None
    start, stop, _ = cut.indices(meta.shape[1])
    return (start, stop - start) if stop > start else None


def _has_node(args) -> bool:
    found = []
    fx.node.map_arg(args, lambda n: found.append(n))
    return bool(found)
