"""``archc FILE --emit torch``: a self-contained, readable PyTorch file for a spec.

The file defines one class per conv unit style (``BasicConv2d``), one per block template
(``Inception``), and the network; it imports only torch and ``collections`` and runs
nothing at import but definitions. It walks the same :mod:`.plan` as the in-memory
builder, so both give the same state_dict keys and the same function.

Block classes take the template's parameters (plus ``in_channels``) as constructor
arguments. Which constructor value is which parameter is inferred from the instances: a
width or rate that equals the same parameter in every instance of the class is written as
that parameter (``BasicConv2d(in_channels, ch1x1, kernel_size=1)``); one that is the same in
every instance is written as a literal. Instances whose structure differs (a template ``if``
on a parameter), or whose values fit no parameter, get their own class, named after the
template and the first instance (``InceptionAux_aux1``). The generated code is exact for the
compiled instances; a single-instance template cannot tell a parameter from a literal that
happens to be equal, so treat other argument values for such classes with care.

This module does not import torch.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from archlang.ops import Op
from archlang.version import __version__

from .codegen_init import init_method, is_legacy, zero_init_norms
from .naming import Namespace, class_name, docstring_text, is_plain_attribute
from .ops import INIT_SCHEMES, SYMBOLIC, TORCH_OPS, TRAINING, Arg
from .plan import UNIT_CLASSES, Leaf, ModulePlan, iter_plans, plan
from .pyfmt import INDENT, LIMIT, Call, Kw, Seq, flat, lines, py_str, py_value, signature, statement

I1, I2, I3, I4 = INDENT, INDENT * 2, INDENT * 3, INDENT * 4


# ---- symbolic values ---------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """A width or rate in a constructor call; a class binds it to a parameter or a literal."""

    index: int


@dataclass(frozen=True)
class Lin:
    """A channel count: sum of coeff × symbol plus a constant (symbols: slot indices or "in")."""

    terms: tuple[tuple[object, int], ...] = ()
    const: int = 0

    def scale(self, k: int) -> Lin:
        return Lin(tuple((s, c * k) for s, c in self.terms), self.const * k)

    def __add__(self, other: Lin) -> Lin:
        terms = dict(self.terms)
        for s, c in other.terms:
            terms[s] = terms.get(s, 0) + c
        return Lin(tuple(terms.items()), self.const + other.const)


IN = Lin((("in", 1),))


def _render_lin(lin: Lin, binding: dict) -> str:
    const, parts = lin.const, []
    for sym, coeff in lin.terms:
        expr = binding[sym]
        if isinstance(expr, (int, float)) and not isinstance(expr, bool):
            const += coeff * expr
        else:
            parts.append(expr if coeff == 1 else f"{coeff} * {expr}")
    if const or not parts:
        parts.append(str(const))
    return " + ".join(parts)


def bind_slots(value, binding: dict):
    """Replace slots and channel expressions in a value tree by source text."""
    if isinstance(value, Slot):
        v = binding[value.index]
        return v if isinstance(v, str) else py_value(v)
    if isinstance(value, Lin):
        return _render_lin(value, binding)
    if isinstance(value, Call):
        return Call(
            value.func,
            [bind_slots(a, binding) for a in value.args],
            [(k, bind_slots(v, binding)) for k, v in value.kwargs],
            value.explode,
        )
    if isinstance(value, Kw):
        return Kw(value.name, bind_slots(value.value, binding))
    if isinstance(value, Seq):
        return Seq(value.open, value.close, [bind_slots(i, binding) for i in value.items], value.explode)
    if isinstance(value, tuple):
        return tuple(bind_slots(v, binding) for v in value)
    return value


class Placeholders(dict):
    """Binding used for structure keys: every symbol renders as a marker."""

    def __missing__(self, key):
        return f"<{key}>"


# ---- one module instance, described --------------------------------------------------------


@dataclass
class _Described:
    plan: ModulePlan
    slots: list = field(default_factory=list)  # concrete values, by slot index
    init: list = field(default_factory=list)  # (attribute name, value tree)
    forward: list = field(default_factory=list)  # (target var or "", value tree, aux, shape, kind)
    ret: object = None
    outputs: list = field(default_factory=list)
    key: str = ""


class _Gen:
    def __init__(self, root: ModulePlan, graph):
        self.root = root
        self.graph = graph
        self.classes = Namespace()
        self.class_of: dict[tuple, str] = {}  # instance path -> class name
        self.params_of: dict[str, list[str]] = {}  # class name -> its parameters (after in_channels)
        self.texts: list[str] = []
        self.unit_classes: dict[tuple, str] = {}
        self.uses_transform = False
        self.top_names: set[str] = set()
        self.order = {nid: i for i, nid in enumerate(graph.nodes)}

    # -- channel bookkeeping and module constructors --------------------------------------
    def _slot(self, d: _Described, value) -> Slot:
        d.slots.append(value)
        return Slot(len(d.slots) - 1)

    def _arg_value(self, d: _Described, arg: Arg, in_lin: Lin, symbolic: bool = True):
        role = SYMBOLIC.get(arg.name) if symbolic else None
        if arg.name in ("in_channels", "in_features", "num_features"):
            return in_lin
        if role and isinstance(arg.value, (int, float)) and not isinstance(arg.value, bool):
            return self._slot(d, arg.value)
        if arg.value is TRAINING:
            return "self.training"
        return py_value(arg.value)

    def _call(
        self, func: str, d: _Described, args: list[Arg], in_lin: Lin, lead: list | None = None, symbolic: bool = True
    ) -> Call:
        """A call whose widths and rates become slots (only constructors: a forward cannot
        see constructor parameters)."""
        call = Call(func, list(lead or []))
        for a in args:
            v = self._arg_value(d, a, in_lin, symbolic)
            if a.positional:
                call.args.append(v)
            else:
                call.kwargs.append((a.name, v))
        return call

    def _out_lin(self, leaf: Leaf, call: Call | None, in_lins: list[Lin]) -> Lin:
        op = leaf.op
        if op in (Op.CONV2D, Op.LINEAR):
            return Lin(((call.args[1].index, 1),))
        if op is Op.FLATTEN:
            return in_lins[0].scale(_prod(leaf.in_shape[1:]))
        if op is Op.CONCAT:
            total = Lin()
            for lin in in_lins:
                total = total + lin
            return total
        return in_lins[0]

    def _ctor(self, d: _Described, child, lins: dict):
        """Constructor tree for a child module; records the channels of what it outputs."""
        if isinstance(child, Leaf):
            in_lin = lins[self.graph.nodes[child.node]["inputs"][0]]
            call = self._call(TORCH_OPS[child.op].module, d, child.args, in_lin)
            lins[child.node] = self._out_lin(child, call, [in_lin])
            if child.op is Op.TRANSFORM_INPUT:
                self.uses_transform = True
            return call
        in_lin = lins[child.input]
        if child.kind == "unit":
            conv = child.children[0]
            name = self._unit_class(child)
            args = [a for a in conv.args if a.name not in ("in_channels", "bias")]
            call = self._call(name, d, args, in_lin, lead=[in_lin])
            lins[child.output] = Lin(((call.args[1].index, 1),))
            return call
        if child.kind == "sequential":
            items = []
            for sub in child.children:
                items.append((sub.name, self._ctor(d, sub, lins)))
            if [n for n, _ in items] == [str(i) for i in range(len(items))]:
                return Call("nn.Sequential", [v for _, v in items], explode=True)
            pairs = [Seq("(", ")", [py_str(n), v]) for n, v in items]
            return Call("nn.Sequential", [Call("OrderedDict", [Seq("[", "]", pairs, explode=True)])])
        cls = self.class_of[child.path]
        call = Call(cls, [in_lin])
        for p, ident in self.params_of[cls]:
            value = child.args[p]
            slot = self._slot(d, value)
            if self._has_default(child.template, p):
                call.kwargs.append((ident, slot))
            else:
                call.args.append(slot)
        lins[child.output] = Lin(((self._slot(d, self.graph.nodes[child.output]["shape"][0]).index, 1),))
        return call

    def _has_default(self, template: str, param: str) -> bool:
        block = self.graph.graph["templates"][template]
        return any(p.name == param and p.default is not None for p in block.params)

    # -- describing an instance -------------------------------------------------------------
    def describe(self, p: ModulePlan) -> _Described:
        d = _Described(p)
        lins = {p.input: IN}
        trees: dict[tuple, object] = {}
        # Channels flow in creation order; constructors are built as their step comes up.
        for step in sorted(p.steps, key=lambda s: self.order[s.target]):
            if step.module is None:
                lins[step.target] = self._out_lin(step.leaf, None, [lins[i] for i in step.inputs])
            else:
                trees[step.module] = self._ctor(d, _child(p, step.module), lins)
        for child in p.children:
            d.init.append((child.name, self._assemble(child, (child.name,), trees)))
        self._forward(d, lins)
        key_binding = Placeholders()
        parts = [f"{n}={flat(bind_slots(t, key_binding))}" for n, t in d.init]
        parts += [f"{t}={flat(bind_slots(v, key_binding))}|{aux}" for t, v, aux, _, _ in d.forward]
        d.key = "\n".join(parts) + f"\nreturn {d.ret}"
        return d

    def _assemble(self, child, path: tuple, trees: dict):
        if isinstance(child, ModulePlan) and child.kind == "container":
            items = [(py_str(c.name), self._assemble(c, (*path, c.name), trees)) for c in child.children]
            return Call("nn.ModuleDict", [Seq("{", "}", items, explode=True)])
        return trees[path]

    def _forward(self, d: _Described, lins: dict) -> None:
        p = d.plan
        steps = p.steps
        aux_out = set()
        if p.kind == "root":
            aux_out = set((self.graph.graph.get("aux_outputs") or {}).values())
        last_read: dict[str, int] = {}
        for i, s in enumerate(steps):
            for src in s.inputs:
                last_read[src] = i
        end = len(steps)
        last_read[p.output] = end
        for _, nid in p.outputs:
            last_read[nid] = end
        names = Namespace(self.top_names)
        var = {p.input: "x"}
        produced = [p.input]
        for i, s in enumerate(steps):
            leaf = s.leaf
            if leaf is not None and TORCH_OPS[leaf.op].inputs == "alias" and s.module is None:
                var[s.target] = var[s.inputs[0]]
                produced.append(s.target)
                continue
            produced.append(s.target)
            if s.target in aux_out:
                target = names.name(s.aux, key=("aux", s.aux))
            elif s.aux is None and self._spine(produced, last_read, i, s.target, steps):
                target = "x"
            else:
                label = s.module[-1] if s.module else leaf.name
                target = names.name(label, key=s.target)
            var[s.target] = target
            d.forward.append((target, self._step_value(d, s, var), s.aux, s.shape, "step"))
        d.ret = var[p.output]
        d.outputs = [(f, var[n]) for f, n in p.outputs]

    @staticmethod
    def _spine(produced, last_read, i, target, steps) -> bool:
        for nid in produced:
            if nid != target and last_read.get(nid, -1) > i and steps_aux(steps, nid) is None:
                return False
        return True

    def _step_value(self, d: _Described, s, var: dict):
        inputs = [var[i] for i in s.inputs]
        if s.module is not None:
            return Call(_accessor(s.module), inputs)
        leaf = s.leaf
        row = TORCH_OPS[leaf.op]
        if row.inputs == "sum":
            return " + ".join(inputs)
        if row.inputs == "list":
            lead = [Seq("[", "]", inputs)]
        else:
            lead = inputs
        func = row.functional
        if leaf.op is Op.TRANSFORM_INPUT:
            self.uses_transform = True
        args = [*leaf.args, *row.extra]
        return self._call(func, d, args, Lin(), lead=lead, symbolic=False)

    # -- classes ---------------------------------------------------------------------------
    def _unit_class(self, unit: ModulePlan) -> str:
        conv, rest = unit.children[0], unit.children[1:]
        bn = next((c for c in rest if c.op is Op.BATCHNORM), None)
        relu = next((s.leaf for s in unit.steps if s.leaf is not None and s.leaf.op is Op.RELU), None)
        style = unit.args.get("style", "conv")
        bn_kwargs = [(a.name, py_value(a.value)) for a in bn.args if a.name != "num_features"] if bn else None
        key = (
            style,
            conv.attrs["bias"],
            tuple(bn_kwargs or ()),
            bn is not None,
            relu is not None and relu.inplace,
            relu is not None,
        )
        if key in self.unit_classes:
            return self.unit_classes[key]
        name = self.classes.name(UNIT_CLASSES.get(style, "ConvUnit"), key=("unit", key))
        self.unit_classes[key] = name
        parts = ["Conv2d" + ("" if conv.attrs["bias"] else " (no bias)")]
        if bn is not None:
            parts.append("BatchNorm2d")
        if relu is not None:
            parts.append("ReLU")
        bias = "" if conv.attrs["bias"] else ", bias=False"
        out = [
            f"class {name}(nn.Module):",
            f'{I1}"""Conv unit `{docstring_text(style)}`: {", ".join(parts)}."""',
            "",
            f"{I1}def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:",
            f"{I2}super().__init__()",
            f"{I2}self.conv = nn.Conv2d(in_channels, out_channels{bias}, **kwargs)",
        ]
        fwd = [f"{I2}x = self.conv(x)"]
        if bn is not None:
            out += statement("self.bn", Call("nn.BatchNorm2d", ["out_channels"], bn_kwargs), I2)
            fwd.append(f"{I2}x = self.bn(x)")
        if relu is not None:
            fwd.append(f"{I2}return F.relu(x{', inplace=True' if relu.inplace else ''})")
        else:
            fwd.append(f"{I2}return x")
        out += ["", f"{I1}def forward(self, x: torch.Tensor) -> torch.Tensor:", *fwd]
        self.texts.append("\n".join(out))
        return name

    def _classes_for_template(self, template: str, instances: list[ModulePlan]) -> None:
        described = [self.describe(p) for p in instances]
        groups: dict[str, list[_Described]] = {}
        for d in described:
            groups.setdefault(d.key, []).append(d)
        params = [p.name for p in self.graph.graph["templates"][template].params]
        final: list[tuple[list[_Described], dict]] = []
        for members in groups.values():
            final += bind_group(members, params)
        for members, binding in final:
            if len(final) == 1:
                name = class_name(template, self.classes)
            else:
                name = class_name(f"{template}_{members[0].plan.name}", self.classes)
            used = [p for p in params if p in binding.values()]
            idents = Namespace({"in_channels"})
            rename = {p: idents.name(p) for p in used}
            binding = {k: rename.get(v, v) if isinstance(v, str) and k != "in" else v for k, v in binding.items()}
            self.params_of[name] = [(p, rename[p]) for p in used]
            for d in members:
                self.class_of[d.plan.path] = name
            self.texts.append(self._class_text(name, members, binding, self.params_of[name], template, len(final) > 1))

    def _class_text(self, name, members, binding, used, template, specialised) -> str:
        first = members[0]
        block = self.graph.graph["templates"].get(template)
        where = f" ({Path(block.span.file).name}:{block.name_span.line})" if block is not None else ""
        doc = f"Block `{template}`{where}"
        doc += ", specialised: its instances differ in structure." if specialised else "."
        inst = ", ".join(d.plan.qualname for d in members)
        body = [doc, "", f"Instances: {inst}."]
        if len(members) > 1:
            body.append(f"Shape comments are for {first.plan.qualname}.")
        params = ["self", "in_channels: int"]
        for p, ident in used:
            value = first.plan.args[p]
            params.append(f"{ident}: {'float' if isinstance(value, float) else 'int'}")
        return self._module_class(name, "nn.Module", body, params, first, binding)

    def _module_class(self, name, base, doc, params, d: _Described, binding, root=False) -> str:
        out = [f"class {name}({base}):", *docstring(doc), ""]
        out += signature("__init__", params, "None", I1)
        out.append(f"{I2}super().__init__()")
        for attr, tree in d.init:
            value = bind_slots(tree, binding)
            if is_plain_attribute(attr):
                out += statement(f"self.{attr}", value, I2)
            else:
                out += lines(Call("self.add_module", [py_str(attr), value]), I2)
        if root and self._init_lines():
            out.append(f"{I2}self._initialize_weights()")
        returns = "torch.Tensor"
        if root and d.plan.outputs:
            returns = f"torch.Tensor | {self.outputs_name}"
        out += ["", f"{I1}def forward(self, x: torch.Tensor) -> {returns}:"]
        for target, value, aux, shape, _ in d.forward:
            comment = _shape_comment(shape)
            if aux is not None:
                out.append(f"{I2}if self.training:")
                out += statement(target, bind_slots(value, binding), I3, comment)
            else:
                out += statement(target, bind_slots(value, binding), I2, comment)
        if root and d.plan.outputs:
            fields = ", ".join(v for _, v in d.outputs)
            out += [f"{I2}if self.training:", f"{I3}return {self.outputs_name}({fields})"]
        out.append(f"{I2}return {d.ret}")
        if root and self._init_lines():
            out += ["", f"{I1}def _initialize_weights(self) -> None:", *self._init_lines()]
        return "\n".join(out)

    # -- weight init -----------------------------------------------------------------------
    def _init_lines(self) -> list[str]:
        if hasattr(self, "_init_cache"):
            return self._init_cache
        inits = []
        for p in iter_plans(self.root):
            for c in p.children:
                if isinstance(c, Leaf) and TORCH_OPS[c.op].init:
                    inits.append((".".join((*p.path, c.name)), c.init, c.op.value, c.attrs["bias"]))
        zero_norms = zero_init_norms(self.root)
        if is_legacy(inits) and not zero_norms:
            self._init_cache = _init_method([(n, i) for n, i, _, _ in inits], self._bn_affine_varies())
        else:  # kaiming / xavier / bias constants / zero_init: see codegen_init.py
            bn_test = "isinstance(m, nn.BatchNorm2d)" + (" and m.affine" if self._bn_affine_varies() else "")
            self._init_cache = init_method(inits, bn_test, zero_norms)
        return self._init_cache

    def _bn_affine_varies(self) -> bool:
        return any(
            isinstance(c, Leaf) and c.op is Op.BATCHNORM and not c.attrs["affine"]
            for p in iter_plans(self.root)
            for c in p.children
        )

    # -- the whole file --------------------------------------------------------------------
    def generate(self) -> str:
        root = self.root
        otype = root.outputs_type
        self.outputs_name = class_name(otype, self.classes) if otype else None
        self.top_names = {"transform_input", "OrderedDict", "namedtuple"}
        if self.outputs_name:
            self.top_names.add(self.outputs_name)
        # units and templates bottom-up: a template once all its instances' children have classes
        by_template: dict[str, list[ModulePlan]] = {}
        for p in iter_plans(root):
            if p.kind == "block":
                by_template.setdefault(p.template, []).append(p)
        pending = dict(by_template)
        while pending:
            for template, instances in list(pending.items()):
                if all(self._children_ready(p) for p in instances):
                    self._classes_for_template(template, instances)
                    del pending[template]
                    break
            else:  # pragma: no cover - templates cannot nest cyclically
                raise AssertionError("cyclic templates")
        self.top_names |= set(self.class_of.values()) | set(self.unit_classes.values())
        net = class_name(root.template, self.classes)
        d = self.describe(root)
        binding = {"in": self.graph.graph["input_shape"][0], **dict(enumerate(d.slots))}
        params = self.graph.graph.get("params") or {}
        doc = [
            f"Network `{root.template}`, compiled with "
            + (", ".join(f"{k}={_show(v)}" for k, v in params.items()) or "no parameters")
            + "."
        ]
        if root.outputs:
            doc.append(
                f"In training mode forward returns {otype}"
                f"({', '.join(f for f, _ in root.outputs)}); in eval mode the logits tensor."
            )
        root_text = self._module_class(net, "nn.Module", doc, ["self"], d, binding, root=True)
        return self._file(root_text)

    def _children_ready(self, p: ModulePlan) -> bool:
        for c in p.children:
            if isinstance(c, ModulePlan):
                if c.kind == "block" and c.path not in self.class_of:
                    return False
                if not self._children_ready(c):
                    return False
        return True

    def _file(self, root_text: str) -> str:
        g = self.graph
        source = Path(str(g.graph.get("file", "spec"))).name
        uses_ordered = any("OrderedDict(" in t for t in [*self.texts, root_text])
        text = (
            f'"""PyTorch model for `{docstring_text(g.graph["network"])}`, generated by archc '
            f"{__version__} from {docstring_text(source)}.\n\n"
            'Do not edit: regenerate with `archc SPEC --emit torch`.\n"""\n\n'
        )
        wanted = [n for n, used in (("OrderedDict", uses_ordered), ("namedtuple", self.outputs_name)) if used]
        if wanted:
            text += f"from collections import {', '.join(wanted)}\n\n"
        uses_f = any(re.search(r"\bF\.", t) for t in [*self.texts, root_text])
        text += "import torch\n" + ("import torch.nn.functional as F\n" if uses_f else "") + "from torch import nn\n"
        if self.outputs_name:
            fields = Seq("[", "]", [py_str(f) for f, _ in self.root.outputs])
            value = Call("namedtuple", [py_str(self.root.outputs_type), fields])
            text += "\n" + "\n".join(statement(self.outputs_name, value, "")) + "\n"
        defs = [TRANSFORM_INPUT_SOURCE] if self.uses_transform else []
        for part in [*defs, *self.texts, root_text]:
            text += "\n\n" + part + "\n"
        return text


TRANSFORM_INPUT_SOURCE = '''def transform_input(x: torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    """torchvision's `_transform_input`: ImageNet-normalised input to [-1, 1]."""
    channels = [
        torch.unsqueeze(x[:, i], 1) * (s / 0.5) + (m - 0.5) / 0.5
        for i, (m, s) in enumerate(zip(mean, std, strict=True))
    ]
    return torch.cat(channels, 1)'''


def _child(p: ModulePlan, path: tuple[str, ...]):
    node = p
    for name in path:
        node = next(c for c in node.children if c.name == name)
    return node


def steps_aux(steps, nid):
    for s in steps:
        if s.target == nid:
            return s.aux
    return None


def _accessor(path: tuple[str, ...]) -> str:
    head, rest = path[0], path[1:]
    text = f"self.{head}" if is_plain_attribute(head) else f"getattr(self, {py_str(head)})"
    for name in rest:
        text += f"[{py_str(name)}]"
    return text


def _shape_comment(shape) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")" if shape else ""


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def docstring(paragraphs: list[str]) -> list[str]:
    """A class docstring, wrapped to the line limit, indented one level."""
    text = []
    for para in paragraphs:
        if not para:
            text.append("")
            continue
        text += textwrap.wrap(docstring_text(para), LIMIT - len(I1) - 3, break_on_hyphens=False)
    if len(text) == 1:
        return [f'{I1}"""{text[0]}"""']
    return [f'{I1}"""{text[0]}', *[(I1 + t) if t else "" for t in text[1:]], f'{I1}"""']


def bind_group(members: list, params: list[str]):
    """Bind each slot to a parameter (equal to it in every instance), else a literal (equal
    in every instance); split the group by the values of slots that fit neither."""
    binding: dict = {"in": "in_channels"}
    loose = []
    for i in range(len(members[0].slots)):
        values = [dd.slots[i] for dd in members]
        match = next((q for q in params if all(_same(dd.plan.args.get(q), v) for dd, v in zip(members, values))), None)
        if match is not None:
            binding[i] = match
        elif all(_same(v, values[0]) for v in values):
            binding[i] = values[0]
        else:
            loose.append(i)
    if not loose:
        return [(members, binding)]
    split: dict[tuple, list] = {}
    for dd in members:
        split.setdefault(tuple(repr(dd.slots[i]) for i in loose), []).append(dd)
    out = []
    for sub in split.values():
        if len(sub) < len(members):
            out += bind_group(sub, params)
        else:  # pragma: no cover - one value per loose slot means they were all equal
            out.append((sub, {**binding, **{i: sub[0].slots[i] for i in loose}}))
    return out


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return False
    return type(a) is type(b) and a == b


def _show(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return repr(v)
    return str(v)


def _init_method(inits: list[tuple[str, dict | None]], bn_affine_varies: bool) -> list[str]:
    """The body of ``_initialize_weights``: torchvision's loop over ``modules()``."""
    given = [(n, i) for n, i in inits if i is not None]
    if not given:
        return []
    out = [
        f"{I2}# The spec's init on conv / linear weights (biases keep PyTorch's default),",
        f"{I2}# BatchNorm weight 1 and bias 0: one pass in module order, as torchvision does.",
    ]
    schemes = {(i["scheme"], i["a"], i["b"]) for _, i in given}
    skip = [n for n, i in inits if i is None]
    bn_test = "isinstance(m, nn.BatchNorm2d)" + (" and m.affine" if bn_affine_varies else "")
    if len(schemes) == 1:
        ((scheme, a, b),) = schemes
        stds = [i["std"] for _, i in given]
        common = max(sorted(set(stds)), key=stds.count)
        special = [(n, i["std"]) for n, i in given if i["std"] != common]
        loop_var = "name, m" if special or skip else "m"
        iterate = "self.named_modules()" if special or skip else "self.modules()"
        if special:
            out += statement("stds", Seq("{", "}", [(py_str(n), py_value(s)) for n, s in special]), I2)
        if skip:
            out += statement("keep_default", Seq("{", "}", [py_str(n) for n in skip]), I2)
        out.append(f"{I2}for {loop_var} in {iterate}:")
        cond = "isinstance(m, (nn.Conv2d, nn.Linear))" + (" and name not in keep_default" if skip else "")
        out.append(f"{I3}if {cond}:")
        std = f"stds.get(name, {py_value(common)})" if special else py_value(common)
        kwargs = [("mean", "0.0"), ("std", std)]
        if scheme == "trunc_normal":
            kwargs += [("a", py_value(a)), ("b", py_value(b))]
        out += lines(Call(INIT_SCHEMES[scheme], ["m.weight"], kwargs), I4)
    else:
        table = Seq(
            "{",
            "}",
            [
                (
                    py_str(n),
                    Seq("(", ")", [py_str(i["scheme"]), py_value(i["std"]), py_value(i["a"]), py_value(i["b"])]),
                )
                for n, i in given
            ],
            explode=True,
        )
        out += statement("inits", table, I2)
        out.append(f"{I2}for name, m in self.named_modules():")
        out.append(f"{I3}if name in inits:")
        out.append(f"{I4}scheme, std, a, b = inits[name]")
        out.append(f'{I4}if scheme == "trunc_normal":')
        out += lines(
            Call("nn.init.trunc_normal_", ["m.weight"], [("mean", "0.0"), ("std", "std"), ("a", "a"), ("b", "b")]),
            I4 + I1,
        )
        out.append(f"{I4}else:")
        out += lines(Call("nn.init.normal_", ["m.weight"], [("mean", "0.0"), ("std", "std")]), I4 + I1)
    out.append(f"{I3}elif {bn_test}:")
    out += [f"{I4}nn.init.constant_(m.weight, 1)", f"{I4}nn.init.constant_(m.bias, 0)"]
    return out


def emit(compiled) -> str:
    """The generated Python source for a compiled spec."""
    return _Gen(plan(compiled.graph), compiled.graph).generate()


def emit_cli(compiled, fmt: str, options: dict) -> str:
    """``archc FILE --emit torch``; ``--optimize`` emits the inference model of :mod:`.torch_optimize`."""
    if options.get("optimize"):
        from .optimize import emit_cli as emit_optimized

        return emit_optimized(compiled, fmt, options)
    return emit(compiled)
