"""Source of the optimized model (see :mod:`.torch_optimize` for what is rewritten and why).

The file has the layout of ``archc --emit torch``: a class per conv-unit kind, one per fused
1×1 kind, one per block template (widths that equal a template parameter in every instance
are written as that parameter), the network, and the weight converter. Every submodule
keeps its path from the unoptimized model (``Mixed_5b.branch5x5_2.conv``), so the converter
only folds, concatenates and copies by name; a sequential branch that lost a member to a
fusion becomes an ``nn.ModuleDict`` with the same keys (``inception3a.branch2["1"]``).
Fused convs are new submodules named ``fused_1x1`` whose ``widths`` list the units they
replace, in split order. This module does not import torch.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from archlang import __version__
from archlang.ops import Op

from .describe import accessor as _accessor
from .emit import variant_names
from .naming import Namespace, class_name, docstring_text, is_plain_attribute
from .ops import SYMBOLIC, TORCH_OPS, Arg, explicit
from .optimize import EVAL_IDENTITY, PARAM_OPS, Fusion, flat_steps, fusions, lookup, unit_parts
from .optimize_text import (
    CONVERTER_SOURCE,
    FOLD_SOURCE,
    FUSED_SOURCE,
    UNIT_SOURCE,
    shape_comment,
    show,
    tuple_source,
)
from .plan import Leaf, ModulePlan, iter_plans, plan
from .pyfmt import INDENT, LIMIT, Call, Seq, flat, lines, py_str, py_value, signature, statement
from .symbols import IN, Lin, Placeholders, Slot, bind_group, bind_slots, used_params
from .texts import HELPERS, docstring

I1, I2, I3 = INDENT, INDENT * 2, INDENT * 3


@dataclass
class _Entry:
    """One line of a forward: targets (node ids) from a module call or a functional op."""

    targets: tuple[str, ...]
    inputs: tuple[str, ...]
    kind: str  # "module" | "fused" | "fn"
    payload: object  # accessor path / Fusion / Leaf
    shape: str


@dataclass
class _Described:
    plan: ModulePlan
    slots: list = field(default_factory=list)
    roles: list = field(default_factory=list)
    init: list = field(default_factory=list)  # (attribute, value tree)
    forward: list = field(default_factory=list)  # (target text, value tree, comment)
    ret: str = "x"
    key: str = ""
    fused: set = field(default_factory=set)  # attributes holding fused convs


# ---- the generator ----------------------------------------------------------------------------


class _Gen:
    def __init__(self, compiled, channels_last: bool, fuse: bool):
        self.graph = compiled.graph
        self.root = plan(self.graph)
        self.channels_last = channels_last
        self.fuse = fuse
        self.templates = self.graph.graph["templates"]
        self.classes = Namespace({"transform_input", "convert_unoptimized", "fold_batchnorm", "BN_EPS", "OrderedDict"})
        self.class_of: dict[tuple, str] = {}
        self.params_of: dict[str, list[str]] = {}
        self.unit_classes: dict[tuple[bool, bool], str] = {}  # (fused, relu) -> class name
        self.unit_texts: list[str] = []
        self.texts: list[str] = []
        self.uses_transform = False
        self.uses_ordered_dict = False
        self.eps: dict[str, float] = {}  # unit path -> its BatchNorm's eps

    # -- conv units ----------------------------------------------------------------------------
    def unit_class(self, fused: bool, relu: bool) -> str:
        key = (fused, relu)
        if key in self.unit_classes:
            return self.unit_classes[key]
        base = ("FusedConv1x1" if fused else "Conv") + ("ReLU" if relu else "")
        name = self.classes.name(base, key=("unit", key))
        self.unit_classes[key] = name
        self.unit_texts.append(
            (FUSED_SOURCE if fused else UNIT_SOURCE).format(
                name=name,
                act="then ReLU" if relu else "no activation",
                out="F.relu(self.conv(x), inplace=True)" if relu else "self.conv(x)",
            )
        )
        return name

    def _conv_kwargs(self, conv: Leaf, skip=("in_channels", "out_channels", "bias")) -> list:
        return [(a.name, py_value(a.value)) for a in explicit(conv.args) if a.name not in skip]

    # -- one module instance -------------------------------------------------------------------
    def _slot(self, d: _Described, value) -> Slot:
        d.slots.append(value)
        d.roles.append("channels")
        return Slot(len(d.slots) - 1)

    def _ctor(self, d: _Described, item, path, in_chan: Lin):
        """Constructor tree of a submodule, and the channels of what it outputs."""
        if isinstance(item, Leaf):  # a conv / linear / batchnorm outside a conv unit
            call = Call(TORCH_OPS[item.op].module)
            out = in_chan
            for a in explicit(item.args):
                if a.name in ("in_channels", "in_features", "num_features"):
                    value = in_chan
                elif (
                    SYMBOLIC.get(a.name) in ("channels", "rate")
                    and isinstance(a.value, int)
                    and not isinstance(a.value, bool)
                ):
                    value = self._slot(d, a.value)
                    if a.name in ("out_channels", "out_features"):
                        out = Lin(((value.index, 1),))
                else:
                    value = py_value(a.value)
                (call.args.append(value) if a.positional else call.kwargs.append((a.name, value)))
            return call, out
        if item.kind == "sequential":
            return self._sequential(d, item, path, in_chan)
        if item.kind == "unit":
            conv, bn, relu = unit_parts(item)
            self._note_eps(item, bn)
            out = self._slot(d, conv.attrs["out_channels"])
            call = Call(self.unit_class(False, relu), [in_chan, out], self._conv_kwargs(conv))
            return call, Lin(((out.index, 1),))
        cls = self.class_of[item.path]  # a nested block
        call = Call(cls, [in_chan])
        for p in self.params_of[cls]:
            slot = self._slot(d, item.args[p])
            if any(q.name == p and q.default is not None for q in self.templates[item.template].params):
                call.kwargs.append((p, slot))
            else:
                call.args.append(slot)
        return call, Lin(((self._slot(d, self.graph.nodes[item.output]["shape"][0]).index, 1),))

    def _sequential(self, d: _Described, seq: ModulePlan, path: tuple, in_chan: Lin):
        """An untouched sequential branch: ``nn.Sequential`` with the same keys."""
        items, chan = [], in_chan
        for step in seq.steps:
            child = lookup(seq, step.module)
            if isinstance(child, Leaf) and child.op not in PARAM_OPS:
                tree = Call(TORCH_OPS[child.op].module)
                for a in explicit(child.args):
                    (
                        tree.args.append(py_value(a.value))
                        if a.positional
                        else tree.kwargs.append((a.name, py_value(a.value)))
                    )
                chan = _fn_chan(child, [chan])
            else:
                tree, chan = self._ctor(d, child, (*path, *step.module), chan)
            items.append((child.name, tree))
        if [n for n, _ in items] == [str(i) for i in range(len(items))]:
            return Call("nn.Sequential", [t for _, t in items], explode=True), chan
        self.uses_ordered_dict = True
        pairs = [Seq("(", ")", [py_str(n), t]) for n, t in items]
        return Call("nn.Sequential", [Call("OrderedDict", [Seq("[", "]", pairs, explode=True)])]), chan

    def _note_eps(self, unit: ModulePlan, bn: Leaf | None) -> None:
        if bn is not None:
            self.eps[".".join(unit.path)] = float(bn.attrs["eps"])

    def _fused_ctor(self, d: _Described, g: Fusion, in_chan: Lin, chans: dict):
        widths = []
        conv = None
        for m in g.members:
            if isinstance(m.item, ModulePlan):
                conv, bn, _ = unit_parts(m.item)
                self._note_eps(m.item, bn)
            else:
                conv = m.item
            slot = self._slot(d, conv.attrs["out_channels"])
            chans[m.target] = Lin(((slot.index, 1),))
            widths.append((py_str(".".join(m.path)), slot))
        kwargs = self._conv_kwargs(conv, skip=("in_channels", "out_channels", "bias", "kernel_size"))
        return Call(self.unit_class(True, g.relu), [in_chan, Seq("{", "}", widths)], kwargs)

    def describe(self, p: ModulePlan) -> _Described:
        d = _Described(p)
        groups = fusions(flat_steps(p)) if self.fuse else []
        fused_paths = [m.path for g in groups for m in g.members]
        # Open a sequential branch only where a member is fused; the others stay nn.Sequential.
        steps = flat_steps(p, lambda path: any(f[: len(path)] == path for f in fused_paths))
        group_of = {m.target: g for g in groups for m in g.members}
        attrs = Namespace({c.name for c in p.children})
        canon: dict[str, str] = {}
        chans: dict[str, Lin] = {p.input: IN}
        entries: list[_Entry] = []
        trees: dict[tuple, object] = {}
        fused_attrs: list[tuple[str, str, object]] = []  # (first member's top name, attribute, tree)

        def c(nid):
            return canon.get(nid, nid)

        for s in steps:
            inputs = tuple(c(i) for i in s.inputs)
            g = group_of.get(s.target)
            if g is not None:
                if s.target == g.members[0].target:
                    attr = attrs.name("fused_1x1", key=("fused", s.target))
                    d.fused.add(attr)
                    fused_attrs.append((s.path[0], attr, self._fused_ctor(d, g, chans[inputs[0]], chans)))
                    parts = [str(m.shape[0]) for m in g.members]
                    shape = shape_comment((" + ".join(parts), *s.shape[1:]))
                    entries.append(_Entry(tuple(m.target for m in g.members), inputs, "fused", attr, shape))
                continue
            item = s.item
            functional = isinstance(item, Leaf) and item.op not in PARAM_OPS
            if functional and item.op in EVAL_IDENTITY:
                canon[s.target] = inputs[0] if inputs else s.target
                chans[s.target] = chans[inputs[0]] if inputs else IN
                continue
            if functional:
                chans[s.target] = _fn_chan(item, [chans[i] for i in inputs])
                if item.op is Op.TRANSFORM_INPUT:
                    self.uses_transform = True
                entries.append(_Entry((s.target,), inputs, "fn", item, shape_comment(s.shape)))
            else:
                trees[s.path], chans[s.target] = self._ctor(d, item, s.path, chans[inputs[0]])
                entries.append(_Entry((s.target,), inputs, "module", s.path, shape_comment(s.shape)))
        d.init = self._assemble(p.children, (), trees, fused_attrs)
        self._forward(d, entries, c(p.output))
        keys = Placeholders()
        parts = [f"{n}={flat(bind_slots(t, keys))}" for n, t in d.init]
        parts += [f"{t}={flat(v)}" for t, v, _ in d.forward]
        d.key = "\n".join(parts) + f"\nreturn {d.ret}"
        return d

    def _assemble(self, children, prefix: tuple, trees: dict, fused_attrs=()) -> list:
        out = []
        for child in children:
            for top, attr, tree in fused_attrs:
                if top == child.name and (attr, tree) not in out:
                    out.append((attr, tree))
            path = (*prefix, child.name)
            if path in trees:
                out.append((child.name, trees[path]))
            elif isinstance(child, ModulePlan) and child.kind in ("sequential", "container"):
                inner = self._assemble(child.children, path, trees)
                if inner:
                    items = [(py_str(n), t) for n, t in inner]
                    out.append((child.name, Call("nn.ModuleDict", [Seq("{", "}", items)])))
        return out

    def _forward(self, d: _Described, entries: list[_Entry], output: str) -> None:
        last_read = {d.plan.input: -1, output: len(entries)}
        for i, e in enumerate(entries):
            for src in e.inputs:
                last_read[src] = max(last_read.get(src, -1), i)
        names = Namespace(self.classes_taken())
        var = {d.plan.input: "x"}
        produced = [d.plan.input]
        for i, e in enumerate(entries):
            produced += e.targets
            live = [n for n in produced if n not in e.targets and last_read.get(n, -1) > i]
            args = [var[n] for n in e.inputs]
            if len(e.targets) == 1 and not live:
                var[e.targets[0]] = "x"
            else:
                for t in e.targets:
                    var[t] = names.name(self._label(d.plan, t, e), key=t)
            target = ", ".join(var[t] for t in e.targets)
            if e.kind == "fused":
                value = Call(f"self.{e.payload}", args)
            elif e.kind == "module":
                value = Call(_accessor(e.payload), args)
            else:
                value = _functional(e.payload, args)
            d.forward.append((target, value, e.shape))
        d.ret = var[output]

    def _label(self, p: ModulePlan, target: str, e: _Entry) -> str:
        path = self.graph.nodes[target]["path"][len(p.path) :]
        if e.kind == "module":
            path = e.payload
        elif e.kind == "fused":
            scope = [n for n in path]
            while scope and scope[-1] in ("conv", "bn", "relu"):
                scope.pop()
            path = tuple(scope) or path
        return "_".join(path)

    def classes_taken(self) -> set[str]:
        return {
            *self.class_of.values(),
            *self.unit_classes.values(),
            "transform_input",
            "convert_unoptimized",
            "fold_batchnorm",
            "BN_EPS",
        }

    # -- classes ---------------------------------------------------------------------------------
    def template_classes(self, template: str, instances: list[ModulePlan]) -> None:
        groups: dict[str, list[_Described]] = {}
        for p in instances:
            dd = self.describe(p)
            groups.setdefault(dd.key, []).append(dd)
        params = [q.name for q in self.templates[template].params]
        final = []
        for members in groups.values():
            final += bind_group(members, params)
        labels = variant_names(template, [members for members, _ in final], params)
        for index, ((members, binding), label) in enumerate(zip(final, labels)):
            name = self.classes.name(class_name(label, Namespace()), key=("class", template, index))
            used = [q for q in params if q in used_params(binding)]
            self.params_of[name] = used
            for dd in members:
                self.class_of[dd.plan.path] = name
            first = members[0]
            block = self.templates[template]
            where = f" ({Path(block.span.file).name}:{block.name_span.line})"
            doc = [
                f"Block `{template}`{where}, optimized for inference"
                + (", specialised: its instances differ in structure." if len(final) > 1 else "."),
                "",
                f"Instances: {', '.join(dd.plan.qualname for dd in members)}.",
            ]
            if len(members) > 1:
                doc.append(f"Shape comments are for {first.plan.qualname}.")
            sig = ["self", "in_channels: int"]
            sig += [f"{q}: {'float' if isinstance(first.plan.args[q], float) else 'int'}" for q in used]
            self.texts.append(self._class_text(name, doc, sig, first, binding))

    def _class_text(self, name, doc, sig, d: _Described, binding, root_extra=()) -> str:
        out = [f"class {name}(nn.Module):", *docstring(doc), ""]
        out += signature("__init__", sig, "None", I1)
        out.append(f"{I2}super().__init__()")
        for attr, tree in d.init:
            value = bind_slots(tree, binding)
            if is_plain_attribute(attr):
                if attr in d.fused:
                    out.append(f"{I2}# sibling 1x1 conv units that read the same input, as one conv")
                out += statement(f"self.{attr}", value, I2)
            else:
                out += lines(Call("self.add_module", [py_str(attr), value]), I2)
        out += root_extra
        out += ["", f"{I1}def forward(self, x: torch.Tensor) -> torch.Tensor:"]
        for target, value, comment in d.forward:
            out += statement(target, value, I2, comment)
        out.append(f"{I2}return {d.ret}")
        return "\n".join(out)

    # -- the file ----------------------------------------------------------------------------------
    def generate(self) -> tuple[str, str]:
        by_template: dict[str, list[ModulePlan]] = {}
        aux_heads = set(self.graph.graph.get("aux_outputs") or {})
        for p in iter_plans(self.root):
            if p.kind == "block" and p.path[0] not in aux_heads:  # aux heads: training only
                by_template.setdefault(p.template, []).append(p)
        pending = dict(by_template)
        while pending:
            for template, instances in list(pending.items()):
                if all(_children_ready(p, self.class_of) for p in instances):
                    self.template_classes(template, instances)
                    del pending[template]
                    break
            else:  # pragma: no cover - templates cannot nest cyclically
                raise AssertionError("cyclic templates")
        root = self.root
        net = class_name(root.template, self.classes)
        d = self.describe(root)
        binding = {"in": self.graph.graph["input_shape"][0], **dict(enumerate(d.slots))}
        if self.channels_last:
            d.forward.insert(0, ("x", "x.contiguous(memory_format=torch.channels_last)", ""))
        params = self.graph.graph.get("params") or {}
        doc = [
            f"Network `{root.template}`, compiled with "
            + (", ".join(f"{k}={show(v)}" for k, v in params.items()) or "no parameters")
            + ", optimized for inference: eval semantics only, forward returns the logits."
        ]
        extra = []
        if self.channels_last:
            extra += [
                f"{I2}# NHWC (channels_last) weights and activations: oneDNN's fast path on CPU.",
                f"{I2}self.to(memory_format=torch.channels_last)",
            ]
        extra += [
            "",
            f"{I1}@classmethod",
            f'{I1}def from_unoptimized(cls, state_dict: dict) -> "{net}":',
            f'{I2}"""This network with weights of the unoptimized one (torchvision\'s layout)."""',
            f"{I2}model = cls()",
            f"{I2}model.load_state_dict(convert_unoptimized(model, state_dict))",
            f"{I2}return model.eval()",
        ]
        root_text = self._class_text(net, doc, ["self"], d, binding, extra)
        return self._file(root_text), net

    def _file(self, root_text: str) -> str:
        g = self.graph
        source = Path(str(g.graph.get("file", "spec"))).name
        header = (
            f"Inference-optimized PyTorch model for `{g.graph['network']}`, generated by archc "
            f"{__version__} --optimize from {source}."
        )
        about = (
            "BatchNorm is folded into each convolution's weight and bias, and sibling 1x1 "
            "convolutions that read the same input run as one wider convolution whose output "
            "is split along channels. Eval semantics only: BatchNorm uses the running "
            "statistics it was folded from; dropout (the identity in eval) and auxiliary heads "
            "(training only) are left out. "
            + ("Weights and inputs are converted to channels_last. " if self.channels_last else "")
            + f"Load weights of the unoptimized model (`archc SPEC --emit torch`, torchvision's "
            f"layout) with `{self.root.template}.from_unoptimized(state_dict)`."
        )
        doc = [
            *textwrap.wrap(docstring_text(header), LIMIT - 3),
            "",
            *textwrap.wrap(docstring_text(about), LIMIT),
            "",
            "Do not edit: regenerate with `archc SPEC --emit torch --optimize`.",
        ]
        text = '"""' + "\n".join(doc) + '\n"""\n\n'
        if self.uses_ordered_dict:
            text += "from collections import OrderedDict\n\n"
        text += "import torch\n"
        body = [*self.unit_texts, *self.texts, root_text]
        if any("F." in t for t in body) or self.uses_transform:
            text += "import torch.nn.functional as F\n"
        text += "from torch import nn\n"
        eps_values = set(self.eps.values())
        if len(eps_values) <= 1:
            eps = py_value(eps_values.pop() if eps_values else 1e-5)
            text += f"\n# eps of every BatchNorm in the unoptimized model (folded into the convs).\nBN_EPS = {eps}\n"
            eps_expr = "BN_EPS"
        else:
            table = Seq("{", "}", [(py_str(k), py_value(v)) for k, v in sorted(self.eps.items())], explode=True)
            text += "\n# eps of the BatchNorm in each conv unit of the unoptimized model.\n"
            text += "\n".join(statement("BN_EPS", table, "")) + "\n"
            eps_expr = "BN_EPS[unit]"
        defs = [HELPERS["transform_input"]] if self.uses_transform else []
        units = sorted(n for (fused, _), n in self.unit_classes.items() if not fused)
        fused = sorted(n for (f, _), n in self.unit_classes.items() if f)
        converter = CONVERTER_SOURCE.format(eps=eps_expr, units=tuple_source(units), fused=tuple_source(fused))
        for part in [*defs, *body, FOLD_SOURCE.format(eps=eps_expr), converter]:
            text += "\n\n" + part + "\n"
        return text


def _children_ready(p: ModulePlan, class_of: dict) -> bool:
    for c in p.children:
        if isinstance(c, ModulePlan):
            if c.kind == "block" and c.path not in class_of:
                return False
            if not _children_ready(c, class_of):
                return False
    return True


def _fn_chan(leaf: Leaf, ins: list[Lin]) -> Lin:
    if leaf.op is Op.CONCAT:
        total = Lin()
        for ch in ins:
            total = total + ch
        return total
    if leaf.op is Op.FLATTEN:
        k = 1
        for v in leaf.in_shape[1:]:
            k *= v
        return ins[0].scale(k)
    return ins[0] if ins else IN


def _functional(leaf: Leaf, args: list[str]):
    row = TORCH_OPS[leaf.op]
    if row.inputs == "sum":
        return " + ".join(args)
    lead = [Seq("[", "]", args)] if row.inputs == "list" else args
    extra = [Arg("inplace", True)] if leaf.op is Op.RELU and leaf.inplace else []
    call = Call(row.functional, list(lead))
    for a in [*row.functional_args(leaf.attrs, leaf.in_shape), *extra, *row.extra]:
        if a.positional:
            call.args.append(py_value(a.value))
        else:
            call.kwargs.append((a.name, py_value(a.value)))
    return call


def generate(compiled, channels_last: bool = True, fuse: bool = True) -> tuple[str, str]:
    """(source, network class name) of the optimized model; ``fuse=False`` only folds
    BatchNorm (to measure each rewrite on its own)."""
    return _Gen(compiled, channels_last, fuse).generate()
