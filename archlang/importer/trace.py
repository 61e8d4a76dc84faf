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

from archlang.importer.series_parallel import CONTAINERS, INPUT, Elem, Scope, build, problem
from archlang.importer.shape_prop import ndim as rank
from archlang.importer.shape_prop import propagate_shapes

from . import calls, generated, inplace, opmap, owned, refusals
from .concrete import ConcreteTracing, Dim, Inline
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


def _autowrap() -> tuple:
    found = []
    for module, name in (
        ("torchvision.models.shufflenetv2", "channel_shuffle"),
        ("torchvision.ops", "stochastic_depth"),
    ):
        try:
            found.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


def trace(module: torch.nn.Module, input_shape: tuple[int, ...], name: str | None = None) -> Network:
    """The tree of ``module``'s forward on a ``(1, *input_shape)`` input."""
    flags = [(m, m.training) for m in module.modules()]
    patched = _patch_transform_input(module)
    helpers = generated.helper_functions(module)  # archlang's own, in a built spec
    tracer = _Tracer((*_autowrap(), *helpers), module, tuple(input_shape))
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
        converter = _Converter(module, graph, helpers)
        converter.call_args, converter.call_returns = tracer.call_args, tracer.call_returns
        with refusals.at_source(converter):
            converter.precheck()
        inplace.check(graph, module, converter.functions)
        refusals.same_in_eval(graph, _Tracer((*_autowrap(), *helpers), module, tuple(input_shape)), module)
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


class _Converter:
    """Graph nodes -> :class:`~.structure.Elem` list, then :func:`~.structure.build`."""

    def __init__(self, module: torch.nn.Module, graph: fx.Graph, helpers: dict | None = None):
        self.module = module
        self.graph = graph
        self.values: dict[fx.Node, object] = {}  # node -> value id | ("param", path) | ("chunk", id, n)
        self.elems: list[Elem] = []
        self.scopes: dict[str, Scope] = {}
        self.functions = {**opmap.function_table(), **(helpers or {})}
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

    def _tensor(self, node: fx.Node, arg, what: str) -> int:
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

    def _unary(self, node: fx.Node, op_tuple, label: str | None = None, source: str = "", path: str = "") -> None:
        x = self._tensor(node, node.args[0] if node.args else None, source or str(node.target))
        if _has_node((node.args[1:], node.kwargs)):
            raise problem("E721", f"{self._where(node)}: `{source}` takes a tensor-dependent argument")
        if op_tuple is None:  # the identity: the value passes through
            self.values[node] = x
            return
        op, args, kwargs = op_tuple
        self._add(node, [x], Call(op, tuple(args), tuple(kwargs), label=label, source=source), path=path)

    # -- nodes

    def network(self, name: str, input_shape: tuple[int, ...]) -> Network:
        output = None
        for node in self.graph.nodes:
            self.current = node
            if node.op == "placeholder":
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
        value = self.values.get(node) if isinstance(node, fx.Node) else None
        if not isinstance(value, int) or value == INPUT:
            raise problem("E725", "the module returns something other than a layer's output tensor")
        return value

    def precheck(self) -> None:
        """Modules, functions and methods with no archlang op, before anything runs."""
        for node in self.graph.nodes:
            self.current = node
            if node.op == "call_module":
                self._module_op(node)
            elif node.op == "call_function" and not self._known(node.target):
                self._call_function(node)  # raises E721
            elif node.op == "call_method" and node.target not in {
                *opmap.MERGE_METHODS,
                "chunk",
                "split",
                *opmap.METHODS,
            }:
                self._call_method(node)  # raises E721

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
            or fn in (torch.add, torch.mul, torch.cat, torch.chunk, torch.split, operator.getitem, operator.truediv)
            or fn is getattr(torch, "concat", None)
        )

    def _module_op(self, node: fx.Node):
        sub = self.module.get_submodule(node.target)
        refusals.lazy(sub, node.target)
        refusals.hooks(sub, node.target)
        try:
            return opmap.module_op(sub)
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
        op = self._module_op(node)
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
        self._unary(node, op, label=label, source=f"{node.target} ({cls})", path=path)

    def _merge(self, node: fx.Node, mode: str, a, b) -> None:
        pa = self.values.get(a) if isinstance(a, fx.Node) else None
        pb = self.values.get(b) if isinstance(b, fx.Node) else None
        if mode == "mul" and isinstance(pa, tuple) and pa[0] == "param" and isinstance(pb, int):
            return self._layer_scale(node, pa[1:] if len(pa) == 3 else pa[1], pb, b)
        if mode == "mul" and isinstance(pb, tuple) and pb[0] == "param" and isinstance(pa, int):
            return self._layer_scale(node, pb[1:] if len(pb) == 3 else pb[1], pa, a)
        if mode == "mul" and _number(a) and isinstance(pb, int):
            return self._add(node, [pb], Call("scale", (float(a),), source="*"))
        if mode == "mul" and _number(b) and isinstance(pa, int):
            return self._add(node, [pa], Call("scale", (float(b),), source="*"))
        if not (isinstance(pa, int) and isinstance(pb, int)):
            what = node.target if isinstance(node.target, str) else {"add": "+", "mul": "*"}[mode]
            raise problem(
                "E721",
                f"{self._where(node)}: `{what}` of a tensor and a constant, buffer or parameter has no archlang op",
                f"archlang's `{mode} {{ }}` combines the outputs of parallel branches",
            )
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
        # timm's `self.gamma.reshape(1, -1, 1, 1)`: a (C,) parameter broadcast over a map
        dims = node.args[1] if len(node.args) == 2 and isinstance(node.args[1], (tuple, list)) else node.args[1:]
        if len(source) != 2 or tuple(dims) != (1, -1, 1, 1) or node.kwargs:
            raise problem(
                "E721",
                f"{self._where(node)}: `Tensor.{node.target}` of `{source[1]}` has no archlang op",
                "a (C,) parameter reshaped to (1, -1, 1, 1) and multiplied is a `layer_scale(flat=true)`",
            )
        self.values[node] = ("param", source[1], "flat")

    def _layer_scale(self, node: fx.Node, path, x: int, tensor: fx.Node) -> None:
        flat = isinstance(path, tuple)
        path = path[0] if flat else path
        param = self.module.get_parameter(path) if is_param(self.module, path) else None
        meta = tensor.meta.get("tensor_meta")
        channels = meta.shape[1] if meta is not None and len(meta.shape) == 4 else None
        if param is None or tuple(param.shape) != ((channels,) if flat else (channels, 1, 1)):
            raise problem(
                "E721",
                f"{self._where(node)}: multiplying by `{path}` has no archlang op",
                "only a (C, 1, 1) parameter times a C-channel map is a `layer_scale`",
            )
        init = shortest(param.detach().flatten()[0])
        args = () if init == 1e-6 else (init,)
        kwargs = (("flat", True),) if flat else ()
        self._add(node, [x], Call("layer_scale", args, kwargs, label=path, source=path), path=path)

    def _call_function(self, node: fx.Node) -> None:
        fn = node.target
        if isinstance(fn, type) and issubclass(fn, tuple) and hasattr(fn, "_fields"):
            self.values[node] = fn(*node.args, **node.kwargs)  # the outputs namedtuple, of nodes
            return None
        if fn in opmap.MERGES or fn in (torch.add, torch.mul):
            mode = opmap.MERGES.get(fn) or ("add" if fn is torch.add else "mul")
            if len(node.args) != 2 or node.kwargs:
                raise problem(
                    "E721",
                    f"{self._where(node)}: `{opmap.qualname(fn)}` with these arguments has no archlang op",
                    f"archlang's `{mode} {{ }}` combines two branches, without `alpha` or `out`",
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
            op = opmap.function_op(stub, (None, *args[1:]), dict(kwargs), rank(x))
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
        ndim = rank(tensors[0])
        if ndim is None or not isinstance(dim, int) or dim % ndim != 1:
            raise problem(
                "E722",
                f"{self._where(node)}: `torch.cat` on dim={dim}: archlang's `concat` joins channels (dim=1)",
            )
        inputs = [self._tensor(node, t, "torch.cat") for t in tensors]
        if len(inputs) == 1:
            self.values[node] = inputs[0]
            return
        self._add(node, inputs, merge="concat")

    def _chunk(self, node: fx.Node) -> None:
        x = self._tensor(node, node.args[0], "chunk")
        chunks = node.args[1] if len(node.args) > 1 else node.kwargs.get("chunks")
        dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
        ndim = rank(node.args[0])
        if not isinstance(chunks, int) or ndim is None or not isinstance(dim, int) or dim % ndim != 1:
            raise problem(
                "E722", f"{self._where(node)}: `chunk` on dim={dim}: archlang's `split` cuts channels (dim=1)"
            )
        self.values[node] = ("chunk", x, chunks)

    def _split(self, node: fx.Node) -> None:
        """``torch.split(x, size, 1)`` into equal parts is ``chunk``: the parts of ``split``."""
        x = self._tensor(node, node.args[0], "split")
        sizes = (
            node.args[1]
            if len(node.args) > 1
            else node.kwargs.get("split_size_or_sections", node.kwargs.get("split_size"))
        )
        dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
        meta = node.args[0].meta.get("tensor_meta")
        ndim = len(meta.shape) if meta is not None else None
        if ndim is None or not isinstance(dim, int) or dim % ndim != 1:
            raise problem(
                "E722", f"{self._where(node)}: `split` on dim={dim}: archlang's `split` cuts channels (dim=1)"
            )
        channels = meta.shape[1]
        sizes = [sizes] * (channels // sizes) if isinstance(sizes, int) and sizes and channels % sizes == 0 else sizes
        if not isinstance(sizes, (list, tuple)) or len(set(sizes)) != 1 or sum(sizes) != channels:
            raise problem(
                "E722",
                f"{self._where(node)}: `split` of {channels} channels into {sizes}: archlang's `split` cuts "
                "channels into equal parts",
            )
        self.values[node] = ("chunk", x, len(sizes))

    def _getitem(self, node: fx.Node) -> None:
        source, index = node.args
        value = self.values.get(source) if isinstance(source, fx.Node) else None
        channels = _channel_slice(source, index) if isinstance(value, int) else None
        if channels is not None:
            start, length = channels
            return self._add(node, [value], Call("narrow", (start, length), source="slice"))
        if not (isinstance(value, tuple) and value[0] == "chunk" and isinstance(index, int)):
            raise problem("E721", f"{self._where(node)}: indexing (`operator.getitem`) has no archlang op")
        _, x, chunks = value
        self._add(node, [x], Call("split", (chunks, index % chunks), source="chunk"))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
