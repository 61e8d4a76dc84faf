"""One module instance (a block, or the network) described for the code generator.

:class:`Describer` turns a :class:`~.plan.ModulePlan` into the constructor calls of its
``__init__`` and the statements of its ``forward``, as value trees (:mod:`.pyfmt`) whose
widths, rates and strides are :class:`~.symbols.Slot` s. Two instances with the same
*structure key* (the trees with every slot as a placeholder) can share a class.
This module does not import torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from archlang.graph.symbolic import Unknown, evaluate, params_of
from archlang.ops import MERGE_OPS, RECORDS, Op

from .conditions import render, simplified, value_source
from .naming import Namespace, is_plain_attribute
from .ops import SYMBOLIC, TORCH_OPS, TRAINING, Arg, explicit
from .plan import Leaf, ModulePlan, lookup
from .pyfmt import Call, Seq, flat, py_str, py_value
from .symbols import IN, Lin, Placeholders, Slot, bind_slots
from .texts import HELPERS

# Argument names whose value is the input's channel count (an expression, never a slot).
INPUT_WIDTH = ("in_channels", "in_features", "num_features", "normalized_shape")


@dataclass
class Statement:
    """One forward statement: ``target = value``; ``aux``: runs in training only."""

    target: str
    value: object
    aux: str | None = None
    shape: tuple = ()
    when: tuple = ()  # the conditions on network flags it runs under (root only)


@dataclass
class Described:
    plan: ModulePlan
    slots: list = field(default_factory=list)  # concrete values, by slot index
    roles: list = field(default_factory=list)  # SYMBOLIC role of each slot ("channels", "size", ...)
    # what each slot holds: (node id, argument) of a layer's, (block instance path, parameter)
    # of a block call's, None (a block's output width, a fused conv's)
    origins: list = field(default_factory=list)
    init: list = field(default_factory=list)  # (attribute name, value tree)
    forward: list[Statement] = field(default_factory=list)
    ret: str = "x"
    outputs: list = field(default_factory=list)  # (field, variable) of the outputs namedtuple
    key: str = ""
    init_when: dict = field(default_factory=dict)  # attribute -> its conditions (root only)
    other_outputs: list = field(default_factory=list)  # (conditions, [(key, variable)]) (root only)


# Modules whose `bias` argument defaults to True (left out of the arguments when it is).
_BIAS_DEFAULT_TRUE = frozenset({"nn.Conv2d", "nn.Linear", "nn.ConvTranspose2d"})


def _relative(when: tuple, outer: tuple) -> tuple:
    """Conditions of a block's statement beyond those its instance exists under."""
    return when[len(outer) :] if when[: len(outer)] == outer else when


def _is_number(value) -> bool:
    if isinstance(value, tuple):
        return bool(value) and all(_is_number(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def accessor(path: tuple[str, ...]) -> str:
    """``self.a["b"]`` for a submodule path (``getattr`` for names that are not identifiers)."""
    head, rest = path[0], path[1:]
    text = f"self.{head}" if is_plain_attribute(head) else f"getattr(self, {py_str(head)})"
    return text + "".join(f"[{py_str(name)}]" for name in rest)


def channels(data: dict) -> int:
    """The channel count of a node's output: the last dim of a channels-last (H×W×C)
    tensor (what layernorm and linear read), else the first."""
    return data.shape[-1] if data.channels_last else data.shape[0]


def _weights_out(leaf: Leaf, call: Call | None, in_lins: list[Lin]) -> Lin:
    return Lin(((call.args[1].index, 1),))  # conv2d / linear: their out width argument


def _flatten_out(leaf: Leaf, call: Call | None, in_lins: list[Lin]) -> Lin:
    # channels × the positions per channel (H×W×C: all but the last dim)
    positions = leaf.in_shape[:-1] if leaf.in_last else leaf.in_shape[1:]
    return in_lins[0].scale(math.prod(positions))


def _split_out(leaf: Leaf, call: Call | None, in_lins: list[Lin]) -> Lin:
    # an exact division of the input width (`in_channels // 2`), else a literal (the sizes)
    chunks, axis = leaf.attrs["chunks"], -1 if leaf.in_last else 0
    if isinstance(chunks, int) and leaf.in_shape[axis] % chunks == 0:
        return in_lins[0].divide(chunks)
    return Lin((), leaf.shape[axis])


def _concat_out(leaf: Leaf, call: Call | None, in_lins: list[Lin]) -> Lin:
    total = Lin()
    for lin in in_lins:
        total = total + lin
    return total


def _literal_out(leaf: Leaf, call: Call | None, in_lins: list[Lin]) -> Lin:
    return Lin((), leaf.shape[0])


# How an op's output width follows, by its torch form's ``width`` ("same": the input's).
_OUT_CHANNELS = {
    "out_arg": _weights_out,
    "flatten": _flatten_out,
    "split": _split_out,
    "concat": _concat_out,
    "shape": _literal_out,
}


def out_channels(leaf: Leaf, call: Call | None, in_lins: list[Lin]) -> Lin:
    """Channels of a primitive op's output, from its constructor call and input channels."""
    rule = _OUT_CHANNELS.get(TORCH_OPS[leaf.op].width)
    if rule is not None:
        return rule(leaf, call, in_lins)
    return in_lins[0] if in_lins else IN


class _Source:
    """An argument written as an expression of the forward's values (``x.shape[-2:]``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _value_path(path: tuple[str, ...]) -> tuple[str, ...]:
    """The name of an inner value a block gives out: ``a/1`` (the last layer of the
    sequence ``a``) is ``a``."""
    while len(path) > 1 and path[-1].isdigit():
        path = path[:-1]
    return path


class Describer:
    """Describes plan instances; ``classes`` knows the class of every nested block and unit.

    ``classes`` provides ``unit_class(unit_plan) -> name``, ``fused_class(relu) -> name``,
    ``block_call(child_plan) ->
    (class name, [(param, identifier, keyword?, literal default or None)])`` and
    ``reserved`` (top-level names)."""

    def __init__(self, graph, classes):
        self.graph = graph
        self.classes = classes
        self.order = {nid: i for i, nid in enumerate(graph.nodes)}
        self.uses: set[str] = set()  # helper definitions the file needs ("transform_input", ...)
        # root values whose variable the last value of an `if` branch on flags assigns
        # (.conditions.joins)
        self.joins: dict[str, str] = {}
        # flags the classes take as arguments (.source): a layer attribute whose value is an
        # expression over them prints the expression (`bias=not batch_norm`)
        self.flag_args: frozenset = frozenset()
        self.flag_uses: set[str] = set()
        self.flag_printed: set[tuple] = set()  # (node id, attribute) printed as its expression

    # -- constructor calls -----------------------------------------------------------------
    def _slot(self, d: Described, value, default=None, role="channels", origin=None) -> Slot:
        d.slots.append(value)
        d.roles.append(role)
        d.origins.append(origin)
        return Slot(len(d.slots) - 1) if default is None else Slot(len(d.slots) - 1, default)

    def _call(self, func: str, d: Described, args: list[Arg], in_lin: Lin, lead=None, symbolic=True, node=None) -> Call:
        """A call whose widths, rates and strides become slots (only constructors: a forward
        cannot see constructor parameters)."""
        call = Call(func, list(lead or []))
        for a in args:
            text = self._flag_value(node, a)
            if text is not None:
                value = text
            elif a.name in INPUT_WIDTH:
                value = in_lin
            elif symbolic and SYMBOLIC.get(a.name) and _is_number(a.value):
                default = a.default if a.has_default else None
                value = self._slot(d, a.value, default, SYMBOLIC[a.name], (node, a.name))
            elif a.value is TRAINING:
                value = "self.training"
            elif a in explicit([a]):
                value = py_value(a.value)
            else:
                continue  # equal to PyTorch's default
            (call.args.append(value) if a.positional else call.kwargs.append((a.name, value)))
        if node is not None and all(a.name != "bias" for a in args) and func in _BIAS_DEFAULT_TRUE:
            # a bias at PyTorch's default (True) is not among the arguments: over flags it is
            text = self._flag_value(node, Arg("bias", True))
            if text is not None:
                call.kwargs.append(("bias", text))
        return call

    def _flag_value(self, node, a: Arg) -> str | None:
        """The source of an argument whose attribute is an expression over the flags the
        classes take, when the torch argument is the attribute's value unchanged."""
        data = self.graph.nodes.get(node) if self.flag_args and node is not None else None
        expr = data.exprs.get(a.name) if data is not None else None
        if expr is None or not params_of(expr) or not params_of(expr) <= self.flag_args:
            return None
        try:
            value = evaluate(expr, self.graph.params)
        except (Unknown, ArithmeticError, KeyError, TypeError, IndexError, ValueError):
            return None
        if type(value) is not type(a.value) or value != a.value:
            return None  # the argument is not the attribute's value as written
        text = value_source(expr, self.classes.idents())
        if text is not None:
            self.flag_uses |= params_of(expr)
            self.flag_printed.add((node, a.name))
        return text

    def _ctor(self, d: Described, item, lins: dict, in_lin: Lin):
        """Constructor tree for a child module reading ``in_lin`` channels; records the
        channels of what it outputs in ``lins``. Returns (tree, output channels)."""
        if isinstance(item, Leaf):
            lins[item.node] = in_lin
            if item.op is Op.LAYER_SCALE:  # a bare parameter, C×1×1 (or C, reshaped where used; or a scalar)
                if item.attrs["scalar"]:
                    shape = "()"
                elif item.attrs["flat"]:
                    shape = Seq("[", "]", [in_lin])
                else:
                    shape = Seq("(", ")", [in_lin, "1", "1"])
                return Call("nn.Parameter", [Call("torch.full", [shape, py_value(item.attrs["init"])])]), in_lin
            if item.op is Op.EXTERNAL:  # the user's class, imported (under another name where a helper has its own)
                module = self.classes.extern_alias.get(item.attrs["class"], item.attrs["class"])
            else:
                module = TORCH_OPS[item.op].module_name(item.attrs)
            call = self._call(module, d, item.args, in_lin, node=item.node)
            lins[item.node] = out_channels(item, call, [in_lin])
            if (
                call.func in HELPERS and item.op is not Op.EXTERNAL
            ):  # defined by the generated file (TransformInput, ...)
                self.uses.add(call.func)
            return call, lins[item.node]
        if item.kind == "unit":
            conv = item.children[0]
            args = [a for a in conv.args if a.name not in ("in_channels", "bias")]
            call = self._call(self.classes.unit_class(item), d, args, in_lin, lead=[in_lin], node=conv.node)
            lins[item.output] = Lin(((call.args[1].index, 1),))
            return call, lins[item.output]
        if item.kind == "fused":
            widths = []
            for label, node, conv in item.args["members"]:
                slot = self._slot(d, conv.attrs["out_channels"])
                lins[node] = Lin(((slot.index, 1),))
                widths.append((py_str(label), slot))
            skip = ("in_channels", "out_channels", "bias", "kernel_size")
            args = [a for a in conv.args if a.name not in skip]
            lead = [in_lin, Seq("{", "}", widths)]
            return self._call(self.classes.fused_class(item.args["relu"]), d, args, in_lin, lead=lead), None
        if item.kind == "sequential":
            items = []
            for sub in item.children:
                tree, in_lin = self._ctor(d, sub, lins, in_lin)
                items.append((sub.name, self._conditional_item(tree, sub.when, item.when)))
            if any(sub.when != item.when for sub in item.children):
                # items under network flags: nn.Sequential numbers what it is given
                return Call("nn.Sequential", [v for _, v in items], explode=True), in_lin
            if [n for n, _ in items] == [str(i) for i in range(len(items))]:
                return Call("nn.Sequential", [v for _, v in items], explode=True), in_lin
            pairs = [Seq("(", ")", [py_str(n), v]) for n, v in items]
            return Call("nn.Sequential", [Call("OrderedDict", [Seq("[", "]", pairs, explode=True)])]), in_lin
        cls, params = self.classes.block_call(item)
        call = Call(
            cls, [in_lin, *(lins[extra] for extra in item.extra_inputs)]
        )  # `Up(in_channels, skip_channels, ...)`
        for param, ident, keyword, default in params:
            slot = self._slot(d, item.args[param], default if keyword else None, origin=(item.path, param))
            (call.kwargs.append((ident, slot)) if keyword else call.args.append(slot))
        names = self.classes.idents()
        call.kwargs += [(names[q], names[q]) for q in self.classes.flags_of_class.get(cls, ())]
        for out in (item.output, *item.extra_outputs):
            lins[out] = Lin(((self._slot(d, channels(self.graph.nodes[out])).index, 1),))
        return call, lins[item.output]

    def _conditional_item(self, tree, when: tuple, outer: tuple):
        """``*([item] if flag else [])`` for an item of a sequence under conditions of its
        own (VGG's batch norms with ``batch_norm``), in the constructor's arguments."""
        own = simplified(when[len(outer) :]) if when[: len(outer)] == outer else simplified(when)
        if not own:
            return tree
        names = self.classes.idents()
        test = " and ".join(
            render(c, names) if c[0] != "bin" or c[1] == "and" else f"({render(c, names)})" for c in own
        )
        return Seq("*([", f"] if {test} else [])", [tree])

    # -- an instance -------------------------------------------------------------------------
    def describe(self, p: ModulePlan) -> Described:
        d = Described(p)
        lins = {p.input: IN}
        for extra, name in self.input_names(p).items():  # a further input's width: `skip_channels`
            lins[extra] = Lin(((f"in:{name}", 1),))
        trees: dict[tuple, object] = {}
        index: dict[int, dict] = {}
        # Channels flow in creation order; constructors are built as their step comes up.
        for step in sorted(p.steps, key=lambda s: self.order[s.target]):
            if step.module is None:
                lins[step.target] = out_channels(step.leaf, None, [lins[i] for i in step.inputs])
            else:
                trees[step.module] = self._ctor(d, lookup(p, step.module, index), lins, lins[step.inputs[0]])[0]
        for c in p.children:
            d.init.append((c.name, self._assemble(c, (c.name,), trees)))
            own = _relative(c.when, p.when)
            if own:
                d.init_when[c.name] = own
        self._forward(d)
        keys = Placeholders()
        parts = [f"{n}={flat(bind_slots(t, keys))}" for n, t in d.init]
        parts += [f"{s.target}={flat(bind_slots(s.value, keys))}|{s.aux}|{s.when}" for s in d.forward]
        parts += [f"{n}|{w}" for n, w in d.init_when.items()]
        d.key = "\n".join(parts) + f"\nreturn {d.ret}"
        return d

    def _assemble(self, c, path: tuple, trees: dict):
        if isinstance(c, ModulePlan) and c.kind == "container":
            items = [(py_str(g.name), self._assemble(g, (*path, g.name), trees)) for g in c.children]
            return Call("nn.ModuleDict", [Seq("{", "}", items, explode=True)])
        return trees[path]

    def _forward(self, d: Described) -> None:
        p = d.plan
        steps = p.steps
        aux_out = set((self.graph.aux_outputs or {}).values()) if p.kind == "root" else set()
        last_read: dict[str, int] = {}
        for i, s in enumerate(steps):
            for src in s.inputs:
                last_read[src] = i
        aux_of = {s.target: s.aux for s in steps}
        end = len(steps)
        last_read[p.output] = end
        others = [n for _, outs in p.other_outputs for _, n in outs]
        for nid in (*(n for _, n in p.outputs), *p.extra_outputs, *others):
            last_read[nid] = end
        names = Namespace(self.classes.reserved)
        index: dict[int, dict] = {}
        var = {p.input: "x"}
        for extra in p.extra_inputs:  # `block Up() from x, skip`: forward(self, x, skip)
            var[extra] = names.name(self.input_names(p)[extra], key=extra)
            last_read.setdefault(extra, -1)
        # Values on the main path still read after the current step, expired by the step
        # that reads them last (a set, not a scan of every earlier value: linear in steps).
        alive: set[str] = set()
        expiring: dict[int, list[str]] = {}

        def produced(node: str, i: int) -> None:
            if aux_of.get(node) is None and last_read.get(node, -1) > i:
                alive.add(node)
                expiring.setdefault(last_read[node], []).append(node)

        produced(p.input, -1)
        root = p.kind == "root"
        for i, s in enumerate(steps):
            leaf = s.leaf
            when = s.when if root else _relative(s.when, p.when)
            for node in expiring.pop(i, ()):
                alive.discard(node)
            produced(s.target, i)
            row = TORCH_OPS[leaf.op] if leaf is not None else None
            single_merge = row is not None and row.inputs in ("sum", "product", "list") and len(s.inputs) == 1
            if s.module is None and row is not None and (row.inputs == "alias" or single_merge):
                # identity, or a merge of one value (`add { if use_res { identity } body }`
                # with the flag off): the value itself, no `x = x`
                var[s.target] = var[s.inputs[0]]
                continue
            if s.targets:  # a module with several outputs (a fused conv, a block read inside)
                child = lookup(p, s.module, index)
                if child.kind == "fused":
                    labels = {node: label for label, node, _ in child.args["members"]}
                else:
                    labels = {
                        t: "_".join((*s.module, *_value_path(self.graph.nodes[t].path[len(child.path) :])))
                        for t in s.targets
                    }
                    labels[child.output] = "_".join(s.module)
                for t in s.targets:
                    produced(t, i)
                for t in s.targets:
                    var[t] = names.name(labels[t].replace(".", "_"), key=t)
                target = ", ".join(var[t] for t in s.targets)
                d.forward.append(Statement(target, self._step_value(d, s, var), s.aux, s.shape, when))
                continue
            if s.target in self.joins and self.joins[s.target] in var:
                target = var[self.joins[s.target]]  # the branch's value replaces the one before
            elif s.target in aux_out:
                target = names.name(s.aux, key=("aux", s.aux))
            elif s.target not in last_read:
                target = "_"  # a value nothing reads (warning W201): computed, as the spec says, then dropped
            elif s.aux is None and len(alive) == (s.target in alive):
                target = "x"  # nothing else alive on the main path: reuse x
            else:
                target = names.name("_".join(s.module) if s.module else self._local(p, leaf), key=s.target)
            var[s.target] = target
            d.forward.append(Statement(target, self._step_value(d, s, var), s.aux, s.shape, when))
        d.ret = ", ".join(var[o] for o in (p.output, *p.extra_outputs))
        d.outputs = [(f, var[n]) for f, n in p.outputs]
        d.other_outputs = [(when, [(f, var[n]) for f, n in outs]) for when, outs in p.other_outputs]

    def _local(self, p: ModulePlan, leaf) -> str:
        """The local a functional step assigns: the layer's name; a named group's merge
        (``inner4/add``) takes the group's (``inner4``)."""
        path = self.graph.nodes[leaf.node].path
        group = "/".join(path[:-1])
        if len(path) > len(p.path) + 1 and self.graph.scopes.get(group) is not None:
            if self.graph.scopes[group].kind == "group" and leaf.op in MERGE_OPS and path[-1] == leaf.op.value:
                return "_".join(path[len(p.path) : -1])
        return leaf.name

    def input_names(self, p: ModulePlan) -> dict[str, str]:
        """The forward parameter of each further input: the name the block gives it
        (``block Up() from x, skip``: ``skip``)."""
        if not p.extra_inputs:
            return {}
        declared = [label.text for label in self.classes.templates[p.template].inputs]
        return {extra: declared[i] for i, extra in enumerate(p.extra_inputs, start=1)}

    def _step_value(self, d: Described, s, var: dict):
        inputs = [var[i] for i in s.inputs]
        leaf = s.leaf
        row = TORCH_OPS[leaf.op] if leaf is not None else None
        if s.module is not None:
            if row is not None and row.inputs == "scale":  # a bare parameter times the input
                flat = ".reshape(1, -1, 1, 1)" if leaf.attrs["flat"] else ""
                return f"{accessor(s.module)}{flat} * {inputs[0]}"
            return Call(accessor(s.module), inputs)
        if row.inputs in ("sum", "product"):
            return (" + " if row.inputs == "sum" else " * ").join(inputs)
        lead = [Seq("[", "]", inputs)] if row.inputs == "list" else inputs
        args = leaf.args
        attr = RECORDS[leaf.op].size_from_value
        if attr is not None and len(inputs) == 2:  # `from x, ref`: ref's size when the forward runs
            lead = inputs[:1]
            args = [
                Arg(a.name, _Source(f"{inputs[1]}.shape[-2:]"), a.positional) if a.name == attr else a for a in args
            ]
        func = row.function(leaf.attrs)
        if func in HELPERS:
            self.uses.add(func)
        call = self._call(func, d, [*args, *row.extras(leaf.in_last)], Lin(), lead=lead, symbolic=False)
        if row.index is not None:  # split: torch.chunk(x, 2, dim=1)[index]
            call.subscript = f"[{leaf.attrs[row.index]}]"
        return call
