"""The generator behind ``archc FILE --emit torch``: classes from a module plan.

One class per conv unit style (``BasicConv2d``), per block template (``Inception``) and the
network. The instances of a template share a class when they have the same structure; a
width, rate or stride that differs between them becomes a constructor parameter, bound from
the template's parameters (:func:`.symbols.bind_group`). Instances whose structure differs
(an ``if`` on a parameter) share one class that takes the choice when one boolean tells
them apart (``BasicBlock(..., downsample=False)``), else get one class per structure named
after what tells them apart (``CKindA`` / ``CKindB``), see :mod:`.variants`. The network
class takes the network parameters :mod:`.source` finds. This module does not import torch.
"""

from __future__ import annotations

import re
from pathlib import Path

from archlang.frontend.ir import Const
from archlang.graph.symbolic import params_of
from archlang.ops import Op
from archlang.version import __version__

from .codegen_init import initialize_weights
from .conditions import flags_of, grouped
from .describe import Described, Describer
from .naming import Namespace, class_name, docstring_text, is_plain_attribute
from .ops import TORCH_OPS
from .plan import UNIT_CLASSES, Leaf, ModulePlan, iter_plans
from .pyfmt import Call, Seq, lines, py_str, py_value, signature, statement
from .symbols import Scaled, bind_group, bind_slots, used_params
from .texts import BLOCK_MARKER, HELPER_FUNCTIONS, HELPER_NEEDS, HELPERS, I1, I2, Stmt, docstring, shape_comment, show
from .variants import merge_variants, separating_flag, unify, variant_names


class Emitter:
    def __init__(self, root: ModulePlan, graph, templates: dict):
        self.root = root
        self.graph = graph
        self.templates = templates
        self.extras = root.extras
        extra_names = set(self.extras.reserved) if self.extras else set()
        self.classes = Namespace({*HELPERS, "OrderedDict", "namedtuple", *extra_names})
        self.class_of: dict[tuple, str] = {}  # block instance path -> class name
        self.params_of: dict[str, list[tuple]] = {}  # class -> (param, ident, keyword?, default)
        # class -> the network flags it takes (tested inside it, or passed on to a block)
        self.flags_of_class: dict[str, list[str]] = {}
        # block instance path -> (its description, the binding its class prints it with)
        self.instances: dict[tuple, tuple[Described, dict]] = {}
        self.unit_classes: dict[tuple, str] = {}
        self.texts: list[str] = []
        self.fused_classes: dict[bool, str] = {}  # relu? -> class name
        self.network_name = self.outputs_name = None  # set by prepare
        # classes of `extern` modules, imported by the file: module -> class names
        self.externals: dict[str, set[str]] = {}
        for node in graph.nodes.values():
            if node.op is Op.EXTERNAL:
                module, _, cls = node.attrs["target"].partition(":")
                self.externals.setdefault(module, set()).add(cls)
        extern_names = {c for names in self.externals.values() for c in names}
        # an extern class named like a class the file defines (SpaceToDepth) is imported as
        # ``SpaceToDepth as ExternSpaceToDepth``: the definition would shadow the import
        defined = {name for node in graph.nodes.values() if node.op in TORCH_OPS for name in TORCH_OPS[node.op].helpers}
        self.extern_alias = {c: f"Extern{c}" for c in extern_names if c in HELPERS and c in defined}
        self.reserved: set[str] = {
            *HELPERS,
            "OrderedDict",
            "namedtuple",
            *extra_names,
            *extern_names,
            *self.extern_alias.values(),
        }
        self.describer = Describer(graph, self)
        # (batch norms, network flag): zero_init batch norms zeroed only when the flag is true
        self.zero_init: tuple[list[str], str] | None = None
        # the graph holds the structures its network flags do not choose (.conditions):
        # the network class writes each choice as an `if` (set by .source)
        self.conditional = False

    # -- what the describer asks -------------------------------------------------------------
    def block_call(self, p: ModulePlan):
        cls = self.class_of[p.path]
        return cls, self.params_of[cls]

    def fused_class(self, relu: bool) -> str:
        if relu not in self.fused_classes:
            name = self.classes.name("FusedConv1x1" + ("ReLU" if relu else ""), key=("fused", relu))
            self.fused_classes[relu] = name
            self.texts.append(self.extras.fused_source(name, relu))
        return self.fused_classes[relu]

    def unit_class(self, unit: ModulePlan) -> str:
        conv, rest = unit.children[0], unit.children[1:]
        bn = next((c for c in rest if c.op is Op.BATCHNORM), None)
        relu = next((s.leaf for s in unit.steps if s.leaf is not None and s.leaf.op is Op.RELU), None)
        style = unit.args.get("style", "conv")
        bn_kwargs = [(a.name, py_value(a.value)) for a in bn.args if a.name != "num_features"] if bn else None
        inplace = relu is not None and relu.inplace
        folded = unit.args.get("folded_from")
        key = (style, conv.attrs["bias"], tuple(bn_kwargs or ()), bn is not None, inplace, relu is not None, folded)
        if key in self.unit_classes:
            return self.unit_classes[key]
        wanted = UNIT_CLASSES.get(style, "ConvUnit") if folded is None else "Conv" + "ReLU" * (relu is not None)
        name = self.classes.name(wanted, key=("unit", key))
        self.unit_classes[key] = name
        parts = ["Conv2d" + ("" if conv.attrs["bias"] else " (no bias)")]
        about = f"Conv unit `{style}`"
        if folded is not None:
            about = f"Conv unit `{folded}` for inference"
            parts = ["Conv2d (BatchNorm folded into it)" if folded in ("conv_bn", "conv_bn_relu") else "Conv2d"]
        parts += ["BatchNorm2d"] * (bn is not None) + ["ReLU"] * (relu is not None)
        bias = "" if conv.attrs["bias"] else ", bias=False"
        out = [
            f"class {name}(nn.Module):",
            *docstring([f"{about}: {', '.join(parts)}."]),
            "",
            f"{I1}def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:",
            f"{I2}super().__init__()",
            f"{I2}self.conv = nn.Conv2d(in_channels, out_channels{bias}, **kwargs)",
        ]
        fwd = [f"{I2}x = self.conv(x)"]
        if bn is not None:
            out += statement("self.bn", Call("nn.BatchNorm2d", ["out_channels"], bn_kwargs), I2)
            fwd.append(f"{I2}x = self.bn(x)")
        fwd.append(f"{I2}return F.relu(x{', inplace=True' if inplace else ''})" if relu else f"{I2}return x")
        out += ["", f"{I1}def forward(self, x: torch.Tensor) -> torch.Tensor:", *fwd]
        self.texts.append("\n".join(out))
        return name

    # -- block classes -----------------------------------------------------------------------
    def _param_default(self, template: str, param: str):
        """The template parameter's default when it is a literal, else None."""
        for q in self.templates[template].params:
            if q.name == param and isinstance(q.default, Const):
                return q.default.value
        return None

    def _has_default(self, template: str, param: str) -> bool:
        return any(q.name == param and q.default is not None for q in self.templates[template].params)

    def template_classes(self, template: str, instances: list[ModulePlan]) -> None:
        groups: dict[str, list[Described]] = {}
        for p in instances:
            d = self.describer.describe(p)
            groups.setdefault(d.key, []).append(d)
        params = [q.name for q in self.templates[template].params]
        defaults = {q: self._param_default(template, q) for q in params}
        final = [bound for members in groups.values() for bound in bind_group(members, params, defaults)]
        inputs = [label.text for label in self.templates[template].inputs[1:]]  # `from x, skip`
        for _, binding in final:
            binding.update({f"in:{n}": f"{n}_channels" for n in inputs})
        flag = separating_flag([members for members, _ in final], params)
        if flag is not None and self._merged_class(template, final, params, flag):
            return
        names = variant_names(template, [members for members, _ in final], params)
        for index, ((members, binding), wanted) in enumerate(zip(final, names)):
            name = (
                class_name(wanted, self.classes)
                if len(final) == 1
                else self.classes.name(class_name(wanted, Namespace()), key=("class", template, index))
            )
            self.instances.update((d.plan.path, (d, binding)) for d in members)
            used = [q for q in params if q in used_params(binding)]
            rename = self._idents(used)
            binding = _renamed(binding, rename)
            self._register(name, template, members, used, rename)
            self.texts.append(self._block_text(name, template, members, binding, used, rename, len(final) > 1))

    @staticmethod
    def _idents(used: list[str]) -> dict[str, str]:
        idents = Namespace({"in_channels"})
        return {q: idents.name(q) for q in used}

    def _register(self, name, template, members, used, rename) -> None:
        self.params_of[name] = [
            (q, rename[q], self._has_default(template, q), self._param_default(template, q)) for q in used
        ]
        self.flags_of_class[name] = self._class_flags(members)
        for d in members:
            self.class_of[d.plan.path] = name

    def _class_flags(self, members: list[Described]) -> list[str]:
        """The network flags a block class takes: those its layers exist under or whose
        attributes they read, beyond the conditions its instances exist under (a flag
        reaches the class as an argument named like the network's, `batch_norm`)."""
        flags = self.describer.flag_args
        if not flags:
            return []
        found: set[str] = set()
        for d in members:
            path, outer = d.plan.path, d.plan.when
            for data in self.graph.nodes.values():
                if len(data.path) > len(path) and data.path[: len(path)] == path:
                    when = data.when[len(outer) :] if data.when[: len(outer)] == outer else data.when
                    found |= flags_of([when]) | {q for e in data.exprs.values() for q in params_of(e)}
        return [q for q in self.graph.params if q in found and q in flags]

    def _signature(self, template, first: Described, used, rename) -> list[str]:
        params = ["self", "in_channels: int", *(f"{q.text}_channels: int" for q in self.templates[template].inputs[1:])]
        for q in used:
            v = first.plan.args[q]
            kind = "float" if isinstance(v, float) else "bool" if isinstance(v, bool) else "int"
            default = self._param_default(template, q)
            params.append(f"{rename[q]}: {kind}" + (f" = {py_value(default)}" if default is not None else ""))
        idents, values = self.idents(), self.graph.params
        cls = self.class_of[first.plan.path]
        params += [f"{idents[q]}: bool = {py_value(values[q])}" for q in self.flags_of_class.get(cls, ())]
        return params

    def _merged_class(self, template, final, params, flag) -> bool:
        """One class for two structures told apart by ``flag`` (see :mod:`.variants`)."""
        true, false = ((m, dict(b)) for m, b in sorted(final, key=lambda group: not group[0][0].plan.args[flag]))
        unify(true, false)
        self.instances.update((d.plan.path, (d, binding)) for members, binding in (true, false) for d in members)
        used = [q for q in params if q == flag or q in used_params(true[1]) | used_params(false[1])]
        rename = self._idents(used)
        sides = []
        for members, binding in (true, false):
            d, bound = members[0], _renamed(binding, rename)
            forward = [*self.forward_statements(d, bound), Stmt.line(f"return {d.ret}")]
            sides.append((self.init_statements(d, bound), forward))
        attrs = [{a for a, _ in group[0][0].init} for group in (true, false)]
        merged = merge_variants(flag, rename[flag], *sides, *attrs)
        if merged is None:
            return False
        members = sorted([*true[0], *false[0]], key=lambda d: self.describer.order[d.plan.output])
        if self._class_flags(members):
            return False  # its statements under network flags: a class per structure writes them
        name = class_name(template, self.classes)
        self._register(name, template, members, used, rename)
        block = self.templates[template]
        doc = [
            f"Block `{template}` ({Path(block.span.file).name}:{block.name_span.line}).",
            "",
            f"Instances: {', '.join(d.plan.qualname for d in members)}.",
            f"Shape comments are for {true[0][0].plan.qualname} ({flag}=true) and "
            f"{false[0][0].plan.qualname} ({flag}=false).",
        ]
        signature = self._signature(template, true[0][0], used, rename)
        outputs = 1 + len(true[0][0].plan.extra_outputs)
        self.texts.append(self.class_text(name, doc, signature, *merged, block=template, forward_outputs=outputs))
        return True

    def _block_text(self, name, template, members, binding, used, rename, variant) -> str:
        first = members[0]
        block = self.templates[template]
        doc = f"Block `{template}` ({Path(block.span.file).name}:{block.name_span.line})"
        if variant:
            fixed = [q.name for q in block.params if q.name not in used]
            values = ", ".join(f"{q}={show(first.plan.args[q])}" for q in fixed if q in first.plan.args)
            doc += f" for {values}" if values else ", one of its structures"
        body = [doc + ".", "", f"Instances: {', '.join(d.plan.qualname for d in members)}."]
        if len(members) > 1:
            body.append(f"Shape comments are for {first.plan.qualname}.")
        params = self._signature(template, first, used, rename)
        return self._module_class(name, body, params, first, binding, block=template)

    # -- class text --------------------------------------------------------------------------
    @staticmethod
    def init_statements(d: Described, binding) -> list[Stmt]:
        """The submodule assignments of ``__init__``."""
        out = []
        for attr, tree in d.init:
            value = bind_slots(tree, binding)
            if is_plain_attribute(attr):
                out.append(Stmt.assign(f"self.{attr}", value))
            else:
                out.append(Stmt.expression(Call("self.add_module", [py_str(attr), value])))
        return out

    @staticmethod
    def forward_statements(d: Described, binding) -> list[Stmt]:
        """The statements of ``forward``, ``return`` included."""
        out = []
        for s in d.forward:
            stmt = Stmt.assign(s.target, bind_slots(s.value, binding), shape_comment(s.shape))
            out.append(Stmt.block("if self.training:", [stmt]) if s.aux is not None else stmt)
        return out

    def _module_class(self, name, doc, params, d: Described, binding, block=None) -> str:
        forward = self.forward_statements(d, binding)
        outputs = 1 + len(d.plan.extra_outputs)
        init = self.init_statements(d, binding)
        if self.conditional and block is not None:
            # statements under network flags the class takes (.conditions), as in the network
            idents = self.idents()
            attrs = {q: f"self.{ident}" for q, ident in idents.items()}
            init = grouped([(d.init_when.get(a, ()), st) for (a, _), st in zip(d.init, init, strict=True)], idents)
            forward = grouped([(s.when, st) for s, st in zip(d.forward, forward, strict=True)], attrs)
            tested = flags_of([s.when for s in d.forward])
            init = [*(Stmt.line(f"self.{idents[q]} = {idents[q]}") for q in self.graph.params if q in tested), *init]
        forward = [*forward, Stmt.line(f"return {d.ret}")]
        return self.class_text(name, doc, params, init, forward, block=block, forward_outputs=outputs)

    def class_text(self, name, doc, params, init, forward, root=False, block=None, forward_outputs=1) -> str:
        """``block``: the spec block the class was written for (``BLOCK_MARKER``)."""
        out = [f"class {name}(nn.Module):", *docstring(doc), ""]
        if block is not None:
            out += [f"{I1}{BLOCK_MARKER} = {py_str(block)}", ""]
        out += signature("__init__", params, "None", I1)
        out.append(f"{I2}super().__init__()")
        out += [line for stmt in init for line in stmt.render(I2)]
        inits = self.init_lines() if root else []
        init_flag = self.idents()[self.zero_init[1]] if inits and self.zero_init else ""
        if inits:
            out.append(f"{I2}self._initialize_weights({init_flag})")
        extras = self.extras if root else None
        if extras:
            out += extras.init_lines()
        returns = f"torch.Tensor | {self.outputs_name}" if root and self.outputs_name else "torch.Tensor"
        if root and self.root.outputs_dict:
            returns = "dict[str, torch.Tensor]"
        if forward_outputs > 1:  # a block whose inner values are read outside it
            returns = f"tuple[{', '.join(['torch.Tensor'] * forward_outputs)}]"
        inputs = [f"{q.text}: torch.Tensor" for q in (self.templates[block].inputs[1:] if block else ())]
        out += ["", *signature("forward", ["self", "x: torch.Tensor", *inputs], returns, I1)]
        if extras:
            out += extras.forward_prologue()
        out += [line for stmt in forward for line in stmt.render(I2)]
        if inits:
            params = ["self", f"{init_flag}: bool"] if init_flag else ["self"]
            out += ["", *signature("_initialize_weights", params, "None", I1), *inits]
        if extras:
            out += extras.methods(name)
        return "\n".join(out)

    def weight_inits(self) -> dict[str, dict | None]:
        """Every conv / linear module by name -> its init (None: PyTorch's default)."""
        return {
            ".".join((*p.path, c.name)): c.init
            for p in iter_plans(self.root)
            for c in p.children
            if isinstance(c, Leaf) and TORCH_OPS[c.op].init
        }

    def init_lines(self) -> list[str]:
        if self.zero_init is not None:  # zeroed under a network flag (see .source)
            norms, flag = self.zero_init
            return initialize_weights(self.root, norms, self.idents()[flag])
        return initialize_weights(self.root)

    # -- the whole file ----------------------------------------------------------------------
    def _children_ready(self, p: ModulePlan) -> bool:
        for c in p.children:
            if isinstance(c, ModulePlan):
                if (c.kind == "block" and c.path not in self.class_of) or not self._children_ready(c):
                    return False
        return True

    def prepare(self) -> Described:
        """Classes for every conv unit and block template, then the network's description."""
        root = self.root
        # The network class (what archlang.build returns) keeps its name; the blocks' come
        # next, then the outputs namedtuple (see _outputs_name).
        self.network_name = class_name(root.template, self.classes, kind="network")
        # templates bottom-up: a template once all its instances' children have classes
        pending: dict[str, list[ModulePlan]] = {}
        for p in iter_plans(root):
            if p.kind == "block":
                pending.setdefault(p.template, []).append(p)
        while pending:
            template = next(t for t, ps in pending.items() if all(self._children_ready(p) for p in ps))
            self.template_classes(template, pending.pop(template))
        self.reserved |= set(self.class_of.values()) | set(self.unit_classes.values())
        self.outputs_name = self._outputs_name(root.outputs_type) if root.outputs_type else None
        if self.outputs_name:
            self.reserved.add(self.outputs_name)
        return self.describer.describe(root)

    def _outputs_name(self, otype: str) -> str:
        """The name the outputs namedtuple is bound to: the spec's (``GoogLeNetOutputs``, as
        torchvision names it), or ``<name>Outputs`` where that is the network's, a class's or
        a name the file uses (``outputs Net(...)`` in ``network Net``:
        ``NetOutputs = namedtuple("Net", ...)``)."""
        base = class_name(otype, Namespace())
        if base in self.classes:
            base += "Outputs"
        return self.classes.name(base, key=("outputs", otype))

    def idents(self) -> dict[str, str]:
        """Identifiers of the network parameters as constructor arguments."""
        # (the helper functions, transform_input ..., are only called in forward: a parameter
        # may take their names in __init__)
        names = Namespace(self.reserved - HELPER_FUNCTIONS)
        return {q: names.name(q) for q in self.graph.params or {}}

    def root_statements(self, d: Described, arguments: dict[str, dict[int, str]]):
        """(init statements, forward statements) of the network class; ``arguments``: the
        network parameters it takes, each with the root slots it gives (slot -> the
        source text of the expression that fills it, ``num_classes``, ``width * 2``)."""
        binding = {"in": self.graph.input_shape[0], **dict(enumerate(d.slots))}
        for texts in arguments.values():
            binding.update(texts)
        forward = self.forward_statements(d, binding)
        init = self.init_statements(d, binding)
        idents = self.idents()
        attrs = {q: f"self.{ident}" for q, ident in idents.items()}
        outputs_when = self.graph.outputs_when if self.conditional and d.plan.outputs else ()
        # statements under network flags (see .conditions): the constructor tests its
        # arguments, forward the attributes it keeps them in
        if self.conditional:
            init = grouped([(d.init_when.get(a, ()), st) for (a, _), st in zip(d.init, init, strict=True)], idents)
            forward = grouped([(s.when, st) for s, st in zip(d.forward, forward, strict=True)], attrs)
        others = [w for w, _ in d.other_outputs]
        tested = flags_of([outputs_when, *others, *(s.when for s in d.forward)]) if self.conditional else set()
        kept = [Stmt.line(f"self.{idents[q]} = {idents[q]}") for q in self.graph.params if q in tested]
        init = [*kept, *init]
        if d.plan.outputs_dict:
            # what other flag values return first (the one `if` of .source._conditional),
            # then this compile's
            for when, outs in d.other_outputs if self.conditional else ():
                forward += grouped([(when, _dict_return(outs))], attrs)
            forward.append(_dict_return(d.outputs))
            return init, forward
        if d.plan.outputs:
            fields = ", ".join(v for _, v in d.outputs)
            ret = Stmt.block("if self.training:", [Stmt.line(f"return {self.outputs_name}({fields})")])
            forward += grouped([(outputs_when, ret)], attrs)
        forward.append(Stmt.line(f"return {d.ret}"))
        return init, forward

    def generate(
        self, d: Described, arguments: dict, statements=None, flags=(), params: dict | None = None
    ) -> tuple[str, str]:
        """(source, network class name). ``statements``: the network's (init, forward) when
        they are not ``d``'s alone (merged over ``flags``, see :mod:`.source`); ``params``:
        the network parameters' values (defaults of the constructor), if not this graph's."""
        root = self.root
        net = self.network_name
        params = params if params is not None else self.graph.params or {}
        idents = self.idents()
        signature = ["self"]
        for q, value in params.items():
            if q in arguments or q in flags:
                signature.append(f"{idents[q]}: {type(value).__name__} = {py_value(value)}")
        fixed = [f"{k}={show(v)}" for k, v in params.items() if k not in arguments and k not in flags]
        doc = [f"Network `{root.template}`" + (f", compiled with {', '.join(fixed)}" if fixed else "")]
        doc[0] += f", {self.extras.network_note}." if self.extras else "."
        if self.outputs_name:
            outputs = ", ".join(f for f, _ in root.outputs) or "..."
            when = " (with its aux heads)" if flags else ""
            doc.append(
                f"In training mode{when} forward returns {self.outputs_name}({outputs}); "
                "in eval mode the logits tensor."
            )
        init, forward = statements or self.root_statements(d, arguments)
        return self._file(self.class_text(net, doc, signature, init, forward, root=True)), net

    def _file(self, root_text: str) -> str:
        g = self.graph
        source = Path(str(g.file or "spec")).name
        body = [*self.texts, root_text]
        network = docstring_text(g.network)
        if self.extras:
            header = self.extras.header(g.network, __version__, source)
            text = "\n".join(docstring(header, indent="")) + "\n\n"
        else:
            text = (
                f'"""PyTorch model for `{network}`, generated by archc {__version__} from '
                f"{docstring_text(source)}.\n\n"
                'Do not edit: regenerate with `archc SPEC --emit torch`.\n"""\n\n'
            )
        uses_ordered = any("OrderedDict(" in t for t in body)
        wanted = [n for n, used in (("OrderedDict", uses_ordered), ("namedtuple", self.outputs_name)) if used]
        if wanted:
            text += f"from collections import {', '.join(wanted)}\n\n"
        helpers = []
        for name in HELPERS:
            if name in self.describer.uses or any(name in HELPER_NEEDS.get(u, ()) for u in self.describer.uses):
                helpers.append(HELPERS[name])
        uses_f = any(re.search(r"\bF\.", t) for t in body)
        imports = [("torch", "nn")]
        for m, c in self.externals.items():
            plain = sorted(n for n in c if n not in self.extern_alias)
            imports += [(m, ", ".join(plain))] if plain else []
            imports += [(m, f"{n} as {self.extern_alias[n]}") for n in sorted(c) if n in self.extern_alias]
        text += "import torch\n" + ("import torch.nn.functional as F\n" if uses_f else "")
        text += "".join(f"from {m} import {names}\n" for m, names in sorted(imports))
        if self.outputs_name:
            fields = Seq("[", "]", [py_str(f) for f, _ in self.root.outputs])
            # the type keeps the spec's name (type(out).__name__); the binding is unique
            value = Call("namedtuple", [py_str(self.root.outputs_type), fields])
            text += "\n" + "\n".join(statement(self.outputs_name, value, "")) + "\n"
        tail = []
        if self.extras:
            tail = self.extras.definitions(list(self.unit_classes.values()), list(self.fused_classes.values()))
        for part in [*helpers, *body, *tail]:
            text += "\n\n" + part + "\n"
        return text


def _dict_return(outputs: list) -> Stmt:
    """``return OrderedDict([("out", x), ...])``: a pyramid's five levels do not fit one
    line, split as ruff would."""
    value = Call("OrderedDict", [Seq("[", "]", [Seq("(", ")", [py_str(key), v]) for key, v in outputs])])
    return Stmt(lambda indent: lines(value, indent, prefix="return "))


def _renamed(binding: dict, rename: dict) -> dict:
    """A binding with template parameters replaced by their identifiers in the class."""
    out = {}
    for k, v in binding.items():
        if isinstance(v, Scaled):
            out[k] = Scaled(rename[v.param], v.factor)
        elif isinstance(v, str) and k != "in":
            out[k] = rename.get(v, v)
        else:
            out[k] = v
    return out
