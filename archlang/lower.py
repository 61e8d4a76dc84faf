"""Lowering: IR program -> networkx graph of primitive ops.

Blocks are instantiated, ``if``/``for``/``repeat`` expanded, conv units expanded into
conv2d (+ batchnorm) (+ relu), and every node gets its hierarchy path and source span.
Shapes are not computed here (see :mod:`archlang.shapes`), so a different input size does
not need lowering again.
"""

from __future__ import annotations

import difflib
import reprlib
import sys
from dataclasses import dataclass, field, replace

import networkx as nx

from . import ir
from .diagnostics import Diagnostic, Note, Span, SpecError
from .evaluate import Env, budget, charge, evaluate, type_name
from .graph import OutputsType, ScopeInfo
from .loader import Program
from .ops import ALIASES, CALLABLE_OPS, ArgError, Op, ShapeError, bind_args, positive_int, resolve_padding

DEFAULT_MAX_NODES = 1_000_000
MAX_BLOCK_DEPTH = 64
# Statement lists (bodies, branches) open inside each other, counted across block
# instances: lowering recurses along them, so this bounds its Python stack.
MAX_LOWER_DEPTH = 100
# Evaluation steps (statements, loop iterations, items of built sequences) allowed per
# graph node of --max-nodes, plus a floor for small limits (see evaluate.Budget).
STEPS_PER_NODE = 4
MIN_STEPS = 100_000
# Frames that the depth limits above (and syntax.MAX_NESTING for expressions) can need.
RECURSION_LIMIT = 5000
MAX_REPORTED_ERRORS = 20
PARAM_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}

# What a conv unit expands to: the layers after the conv2d, and the conv's bias default.
UNIT_STYLES = {
    "conv2d": ((), True),
    "conv_relu": (("relu",), True),
    "conv_bn": (("bn",), False),
    "conv_bn_relu": (("bn", "relu"), False),
}
INIT_SCHEMES = {"default", "trunc_normal", "normal"}


@dataclass
class Scope:
    path: tuple[str, ...]
    sequential: bool = False  # unnamed items are numbered like nn.Sequential's children
    labels: dict = field(default_factory=dict)  # name -> (output node id, span)
    counts: dict = field(default_factory=dict)
    position: int = 0

    def auto_name(self, callee: str) -> str:
        if self.sequential:
            return str(self.position - 1)
        k = self.counts.get(callee, 0)
        while True:
            k += 1
            name = callee if k == 1 else f"{callee}_{k}"
            if name not in self.labels:
                self.counts[callee] = k
                return name


@dataclass
class Ctx:
    """Settings inherited down the instantiation tree (dynamically scoped)."""

    unit: dict = field(default_factory=lambda: {"conv": {"style": "conv2d", "bn": {}, "bias": True}})
    init: dict | None = None
    aux: str | None = None
    blocks: tuple[str, ...] = ()
    in_group: bool = False


def _err(code, message, span, help=None, notes=()):
    return SpecError(Diagnostic(code=code, message=message, span=span, help=help, notes=tuple(notes)))


class Lowerer:
    def __init__(
        self,
        program: Program,
        params: dict | None = None,
        max_nodes: int = DEFAULT_MAX_NODES,
        input_shape: tuple[int, ...] | None = None,
    ):
        self.program = program
        self.overrides = dict(params or {})
        self.max_nodes = max_nodes
        self.input_override = input_shape
        self.g = nx.DiGraph()
        self.scopes: dict[str, ScopeInfo] = {}
        self.aux_outputs: dict[str, str] = {}
        self.outputs_type: OutputsType | None = None
        self.errors: list[Diagnostic] = []
        self._seen_errors: set = set()
        self.depth = 0
        self.blocks = self._collect_blocks()
        self.globals = _GlobalEnv(self._collect_consts())

    # ---- program-level checks ----------------------------------------------------------
    def _collect_blocks(self) -> dict[str, ir.BlockDef]:
        blocks: dict[str, ir.BlockDef] = {}
        for module in self.program.modules:
            for item in module.items:
                if not isinstance(item, ir.BlockDef):
                    continue
                if item.name in blocks and module.file != "<prelude>":
                    prev = blocks[item.name]
                    raise _err(
                        "E302",
                        f"block `{item.name}` is defined twice",
                        item.name_span,
                        notes=[Note("first defined here", prev.name_span)],
                    )
                if item.name in CALLABLE_OPS or item.name in ALIASES:
                    raise _err(
                        "E302",
                        f"block `{item.name}` has the name of a built-in op",
                        item.name_span,
                        help="choose another name",
                    )
                blocks.setdefault(item.name, item)
        return blocks

    def _collect_consts(self) -> dict[str, ir.ConstStmt]:
        consts: dict[str, ir.ConstStmt] = {}
        for module in self.program.modules:
            for item in module.items:
                if isinstance(item, ir.ConstStmt):
                    if item.name in consts:
                        raise _err(
                            "E302",
                            f"constant `{item.name}` is defined twice",
                            item.span,
                            notes=[Note("first defined here", consts[item.name].span)],
                        )
                    consts[item.name] = item
        return consts

    def network(self) -> ir.NetworkDef:
        nets = [i for i in self.program.main.items if isinstance(i, ir.NetworkDef)]
        if not nets:
            span = Span(file=self.program.main.file, line=1, col=1, end_line=1, end_col=2)
            raise _err(
                "E501",
                "no `network` in this file",
                span,
                help="a spec needs `network Name { input 3x224x224 ... }`; block libraries are imported",
            )
        if len(nets) > 1:
            raise _err(
                "E502",
                "more than one `network` in this file",
                nets[1].name_span,
                notes=[Note("the first is here", nets[0].name_span)],
            )
        return nets[0]

    # ---- entry point -------------------------------------------------------------------
    def lower(self) -> nx.DiGraph:
        net = self.network()
        values = self._bind_network_params(net)
        env = self.globals.child(values)
        scope = Scope(())
        ctx = Ctx()
        out = self._body(net.body, None, scope, env, ctx, top=True)
        if self.errors:
            raise SpecError(self.errors)
        if self.g.graph.get("input") is None:
            raise _err(
                "E503",
                "the network declares no input",
                net.name_span,
                help="start the network with e.g. `input 3x224x224`",
            )
        if out is None or out == self.g.graph["input"]:
            raise _err("E504", "the network has no layers", net.name_span)
        self._check_outputs()
        self.g.graph.update(
            network=net.name,
            params=values,
            output=out,
            aux_outputs=self.aux_outputs,
            outputs_type=self.outputs_type,
            scopes=self.scopes,
            templates=self.blocks,
            file=self.program.main.file,
        )
        return self.g

    def _check_outputs(self) -> None:
        """Every `outputs` field names a distinct field and an aux head that exists (back ends
        look the heads up by these names)."""
        if self.outputs_type is None:
            return
        seen = set()
        for (name, source), span in zip(self.outputs_type.fields, self._outputs_field_spans):
            if name in seen:
                raise _err("E302", f"the outputs field `{name}` is named twice", span)
            seen.add(name)
            if source is not None and source not in self.aux_outputs:
                close = difflib.get_close_matches(source, self.aux_outputs, n=1)
                raise _err(
                    "E208",
                    f"no aux head named `{source}` for the outputs field `{name}`",
                    span,
                    help=f"did you mean `{close[0]}`?"
                    if close
                    else f"aux heads: {', '.join(self.aux_outputs) or 'none'}",
                )

    def _bind_network_params(self, net: ir.NetworkDef) -> dict:
        declared = {p.name: p for p in net.params}
        for name in self.overrides:
            if name not in declared:
                close = difflib.get_close_matches(name, declared, n=1)
                raise _err(
                    "E505",
                    f"network `{net.name}` has no parameter `{name}`",
                    net.name_span,
                    help=(f"did you mean `{close[0]}`? " if close else "")
                    + f"parameters: {', '.join(declared) or 'none'}",
                )
        env = self.globals.child()
        values = env.vars
        for p in net.params:
            if p.name in self.overrides:
                value = self._coerce_override(p, self.overrides[p.name], net)
            elif p.default is not None:
                value = evaluate(p.default, env)
            else:
                raise _err(
                    "E204",
                    f"network parameter `{p.name}` has no default and was not set",
                    p.span,
                    help=f"give a default, or pass --set {p.name}=VALUE",
                )
            self._check_param_type(p, value, p.span)
            values[p.name] = value
        return values

    def _coerce_override(self, p: ir.Param, value, net):
        if isinstance(value, str) and p.type != "str":
            from .syntax import parse_expr_source

            try:
                value = evaluate(parse_expr_source(value), Env())
            except SpecError:
                raise _err(
                    "E506",
                    f"cannot read `{value}` as a value for `{p.name}`",
                    p.span,
                    help=f"`{p.name}` is {p.type or 'untyped'}; e.g. --set {p.name}=10",
                ) from None
        return value

    def _check_param_type(self, p: ir.Param, value, span):
        if p.type is None:
            return
        allowed = PARAM_TYPES.get(p.type)
        if allowed is None:
            raise _err(
                "E205", f"unknown type `{p.type}`", p.type_span or p.span, help="types are int, float, bool and str"
            )
        ok = isinstance(value, allowed) and not (p.type in ("int", "float") and isinstance(value, bool))
        if not ok:
            raise _err("E205", f"parameter `{p.name}` is {p.type}, got {type_name(value)} {value!r}", span)

    # ---- statements --------------------------------------------------------------------
    def _nest(self, stmts, ctx):
        """Enter a statement list: count the depth (E601) before recursing further."""
        self.depth += 1
        if self.depth > MAX_LOWER_DEPTH and stmts:
            chain = " -> ".join(ctx.blocks)
            raise _err(
                "E601",
                f"layers nest more than {MAX_LOWER_DEPTH} levels deep (counting inside blocks)",
                stmts[0].span,
                notes=[Note(f"inside blocks: {chain}")] if chain else (),
                help="flatten the spec: use `repeat` or a sequence instead of nesting",
            )

    def _body(self, stmts, cur, scope, env, ctx, top=False, inline=None):
        try:
            self._nest(stmts, ctx)
            return self._body_items(stmts, cur, scope, env, ctx, top, inline)
        finally:
            self.depth -= 1

    def _body_items(self, stmts, cur, scope, env, ctx, top, inline):
        for stmt in stmts:
            charge(stmt)
            try:
                cur = self._stmt(stmt, cur, scope, env, ctx, top, inline)
            except SpecError as err:
                # Keep going after a local mistake so independent errors are reported
                # together; limits (E6xx) and a missing input stop at once.
                if cur is None or any(d.code.startswith("E6") for d in err.diagnostics):
                    raise
                self._record(err)
        return cur

    def _record(self, err: SpecError) -> None:
        for d in err.diagnostics:
            key = (d.code, d.message, d.span)
            if key not in self._seen_errors:
                self._seen_errors.add(key)
                self.errors.append(d)
        if len(self.errors) >= MAX_REPORTED_ERRORS:
            raise SpecError(self.errors)

    def _stmt(self, stmt, cur, scope, env, ctx, top, inline):
        kind = stmt.kind
        if kind == "layer":
            if cur is None:
                raise _err(
                    "E503",
                    "a layer before the network's `input`",
                    stmt.span,
                    help="declare the input first: `input 3x224x224`",
                )
            labels = stmt.labels
            if not labels and inline is not None:
                if not inline:
                    raise _err("E207", "more layers than names", stmt.span, help="give one name per layer of the block")
                labels = (inline.pop(0),)
            return self._layer(stmt.layer, labels, cur, scope, env, ctx)
        if kind == "input":
            return self._input(stmt, cur, scope, env, ctx, top)
        if kind == "const_stmt":
            if stmt.name in env.vars:
                raise _err("E302", f"`{stmt.name}` is already defined here", stmt.span)
            env.vars[stmt.name] = evaluate(stmt.value, env)
            return cur
        if kind == "unit":
            ctx.unit = {**ctx.unit, stmt.name: self._unit_style(stmt, env)}
            return cur
        if kind == "init":
            ctx.init = self._init_scheme(stmt.scheme, env)
            return cur
        if kind == "if":
            for branch in stmt.branches:
                if _truth(branch.test, evaluate(branch.test, env)):
                    return self._body(branch.body, cur, scope, env.child(), ctx, top, inline)
            if stmt.orelse is not None:
                return self._body(stmt.orelse, cur, scope, env.child(), ctx, top, inline)
            return cur
        if kind in ("for", "repeat"):
            for values in self._iterations(stmt, env):
                cur = self._body(stmt.body, cur, scope, env.child(values), ctx, top, inline)
            return cur
        if kind == "aux":
            return self._aux(stmt, cur, scope, env, ctx, top)
        if kind == "outputs":
            if not top:
                raise _err("E508", "`outputs` belongs at the top level of the network", stmt.span)
            self.outputs_type = OutputsType(stmt.type_name, tuple((f.name, f.source) for f in stmt.fields))
            self._outputs_spans = {f.source: f.span for f in stmt.fields if f.source}
            self._outputs_field_spans = [f.span for f in stmt.fields]
            return cur
        raise AssertionError(kind)

    def _iterations(self, stmt, env):
        """The loop variables of each iteration, made one at a time (a list of a million
        dicts would cost hundreds of MiB before the budget could stop a runaway loop)."""
        if stmt.kind == "repeat":
            count = evaluate(stmt.count, env)
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise _err("E303", f"repeat count must be a non-negative integer, got {count!r}", stmt.count.span)
            if count > self.max_nodes:
                raise _err(
                    "E603",
                    f"repeat {count} is beyond the graph size limit of {self.max_nodes} ops",
                    stmt.count.span,
                    help="raise the limit with --max-nodes if this is intended",
                )
            charge(stmt, count)
            return ({stmt.var: i} if stmt.var else {} for i in range(count))
        items = evaluate(stmt.iterable, env)
        if not isinstance(items, tuple):
            raise _err("E305", f"`for` needs a list or tuple, got {type_name(items)}", stmt.iterable.span)
        charge(stmt, len(items))
        return self._unpacked(stmt, items)

    @staticmethod
    def _unpacked(stmt, items):
        targets = stmt.targets
        for item in items:
            if len(targets) == 1:
                yield {targets[0]: item}
            elif isinstance(item, tuple) and len(item) == len(targets):
                yield dict(zip(targets, item))
            else:
                raise _err("E305", f"cannot unpack {reprlib.repr(item)} into {len(targets)} names", stmt.iterable.span)

    def _input(self, stmt, cur, scope, env, ctx, top):
        if not top:
            raise _err("E507", "`input` belongs at the top level of the network", stmt.span)
        if cur is not None:
            raise _err("E302", "the network's input is declared twice", stmt.span)
        shape = evaluate(stmt.shape, env)
        if isinstance(shape, int) and not isinstance(shape, bool):
            shape = (shape,)
        if not isinstance(shape, tuple) or len(shape) not in (1, 3):
            raise _err(
                "E303", f"input must be C×H×W (like 3x224x224) or a feature count, got {shape!r}", stmt.shape.span
            )
        try:
            shape = tuple(positive_int(v, "input size") for v in shape)
        except ArgError as e:
            raise _err("E303", e.message, stmt.shape.span, e.help) from None
        if self.input_override is not None:
            shape = self.input_override
        nid = self._add_node(scope, "input", Op.INPUT, {"shape": shape}, (), stmt.span, ctx)
        self.g.graph["input"] = nid
        self.g.graph["input_shape"] = shape
        return nid

    def _aux(self, stmt, cur, scope, env, ctx, top):
        if ctx.aux:
            raise _err("E508", "an aux head inside an aux head", stmt.span)
        entry = scope.labels.get(stmt.at)
        if entry is None:
            close = difflib.get_close_matches(stmt.at, scope.labels, n=1)
            raise _err(
                "E208",
                f"no layer named `{stmt.at}` before this aux head",
                stmt.at_span,
                help=f"did you mean `{close[0]}`?"
                if close
                else "aux heads attach to a named layer or block defined earlier in the same scope",
            )
        name = self._label_text(stmt.label, env)
        sub = replace(ctx, aux=name, unit=dict(ctx.unit))
        label = ir.Label.model_construct(span=stmt.label.span, text=name)  # no validation: see ir._CONFIG
        out = self._layer(stmt.layer, (label,), entry[0], scope, env, sub)
        if name in self.aux_outputs:
            raise _err("E302", f"aux head `{name}` is declared twice", stmt.label.span)
        self.aux_outputs[name] = out
        return cur

    # ---- layers ------------------------------------------------------------------------
    def _layer(self, layer, labels, cur, scope, env, ctx):
        names = [self._label_text(lbl, env) for lbl in labels]
        for lbl, text in zip(labels, names):
            self._check_label(text, lbl.span, scope)
        if len(names) > 1:
            return self._inline(layer, names, labels, cur, scope, env, ctx)
        name = names[0] if names else None
        span = labels[0].span if labels else layer.span
        scope.position += 1
        if layer.kind == "call":
            out = self._call(layer, name, cur, scope, env, ctx)
        elif layer.kind == "seq":
            if name is None:
                out = self._body(layer.body, cur, scope, env.child(), replace(ctx, unit=dict(ctx.unit)))
            else:
                sub = self._open_scope(scope, name, "branch", layer.span, ctx, sequential=True)
                out = self._body(layer.body, cur, sub, env.child(), replace(ctx, unit=dict(ctx.unit)))
        else:
            out = self._group(layer, name, cur, scope, env, ctx)
        if name is not None:
            scope.labels[name] = (out, span)
        return out

    def _inline(self, layer, names, labels, cur, scope, env, ctx):
        """``a, b: Block(...)`` / ``a, b: { x; y }``: the body's layers take the names."""
        queue = [ir.Label.model_construct(span=lbl.span, text=n) for lbl, n in zip(labels, names)]
        if layer.kind == "call" and layer.name in self.blocks:
            block = self.blocks[layer.name]
            benv, sub_ctx = self._enter_block(block, layer, env, ctx)
            out = self._body(block.body, cur, scope, benv, sub_ctx, inline=queue)
        elif layer.kind == "seq":
            out = self._body(layer.body, cur, scope, env.child(), replace(ctx, unit=dict(ctx.unit)), inline=queue)
        else:
            raise _err(
                "E207",
                "several names for a single layer",
                labels[1].span,
                help="several names fit a block or a { ... } sequence, one name per layer",
            )
        if queue:
            raise _err(
                "E207",
                f"{len(queue)} name{'s' if len(queue) > 1 else ''} left over: the body has fewer layers than names",
                queue[0].span,
            )
        return out

    def _label_text(self, label: ir.Label, env) -> str:
        if not label.template:
            return label.text
        return _render_template(label, env)

    def _check_label(self, text, span, scope):
        if not text or "/" in text or any(ord(ch) < 32 for ch in text):
            raise _err(
                "E207",
                f"invalid name {text!r}",
                span,
                help="names must be non-empty and contain no '/' or control characters",
            )
        if text in scope.labels:
            raise _err(
                "E302",
                f"the name `{text}` is used twice in this scope",
                span,
                notes=[Note("first used here", scope.labels[text][1])],
                help="give each layer, block and branch in a scope its own name",
            )

    def _open_scope(self, scope, name, kind, span, ctx, sequential=False, template=None, args=None):
        path = scope.path + (name,)
        info = ScopeInfo(path=path, kind=kind, span=span, template=template, args=args or {}, aux=ctx.aux)
        self.scopes[info.id] = info
        scope.labels.setdefault(name, (None, span))
        return Scope(path, sequential=sequential)

    def _group(self, layer: ir.Group, name, cur, scope, env, ctx):
        inner = scope
        if name is not None:
            inner = self._open_scope(scope, name, "group", layer.span, ctx)
            # The merge node is named after the mode; reserve it so a nested unnamed group
            # is auto-named `concat_2` instead of colliding with it.
            inner.labels[layer.mode] = (None, layer.span)
        outputs = self._branches(layer.branches, cur, inner, env, replace(ctx, unit=dict(ctx.unit)))
        if not outputs:
            raise _err("E209", f"`{layer.mode}` with no branches", layer.span, help="a group needs at least one branch")
        op = Op.CONCAT if layer.mode == "concat" else Op.ADD
        merge_name = layer.mode if name is not None or inner.sequential else inner.auto_name(layer.mode)
        return self._add_node(inner, merge_name, op, {}, tuple(outputs), layer.span, ctx)

    def _branches(self, stmts, cur, scope, env, ctx) -> list[str]:
        try:
            self._nest(stmts, ctx)
            return self._branch_items(stmts, cur, scope, env, ctx)
        finally:
            self.depth -= 1

    def _branch_items(self, stmts, cur, scope, env, ctx) -> list[str]:
        outputs = []
        for stmt in stmts:
            charge(stmt)
            kind = stmt.kind
            if kind == "layer":
                outputs.append(self._stmt(stmt, cur, scope, env, ctx, False, None))
            elif kind == "if":
                for branch in stmt.branches:
                    if _truth(branch.test, evaluate(branch.test, env)):
                        outputs += self._branches(branch.body, cur, scope, env.child(), ctx)
                        break
                else:
                    if stmt.orelse is not None:
                        outputs += self._branches(stmt.orelse, cur, scope, env.child(), ctx)
            elif kind in ("for", "repeat"):
                for values in self._iterations(stmt, env):
                    outputs += self._branches(stmt.body, cur, scope, env.child(values), ctx)
            elif kind == "const_stmt":
                self._stmt(stmt, cur, scope, env, ctx, False, None)
            else:
                raise _err(
                    "E508",
                    f"`{kind}` cannot stand inside a concat/add group",
                    stmt.span,
                    help="each statement in a group is a parallel branch",
                )
        return outputs

    def _call(self, call: ir.Call, name, cur, scope, env, ctx):
        callee = call.name
        if callee in ctx.unit:
            return self._unit(call, name, cur, scope, env, ctx)
        if callee in self.blocks:
            return self._block(call, name, cur, scope, env, ctx)
        op, fixed = (CALLABLE_OPS[callee], {}) if callee in CALLABLE_OPS else ALIASES.get(callee, (None, {}))
        if op is None:
            known = list(CALLABLE_OPS) + list(ALIASES) + list(self.blocks) + list(ctx.unit)
            close = difflib.get_close_matches(callee, known, n=1)
            raise _err(
                "E201",
                f"unknown layer or block `{callee}`",
                call.span,
                help=f"did you mean `{close[0]}`?"
                if close
                else "define it with `block` or import the library that does",
            )
        attrs = self._bind(op, call, env, fixed)
        if name is None:
            name = scope.auto_name(callee)
        return self._add_node(scope, name, op, attrs, (cur,), call.span, ctx)

    def _bind(self, op, call: ir.Call, env, fixed=None):
        positional = [evaluate(a, env) for a in call.args]
        keyword = dict(fixed or {})
        for kw in call.kwargs:
            if kw.name in keyword and kw.name not in (fixed or {}):
                raise _err("E206", f"argument `{kw.name}` given twice", kw.span)
            keyword[kw.name] = evaluate(kw.value, env)
        try:
            attrs = bind_args(op, positional, keyword)
            if op is Op.CONV2D:
                attrs["padding"] = resolve_padding(attrs)
        except ArgError as e:
            message, help = e.message, e.help
            if call.name != op.value:  # speak of what the user wrote: `conv`, `fc`, ...
                message = message.replace(f"{op.value} ", f"{call.name} ", 1)
                help = help and help.replace(f"usage: {op.value}(", f"usage: {call.name}(", 1)
            raise _err(
                getattr(e, "code", "E205"), message, self._arg_span(call, getattr(e, "arg", None)), help
            ) from None
        except ShapeError as e:
            raise _err(e.code, e.message, call.span, e.help) from None
        return attrs

    @staticmethod
    def _arg_span(call: ir.Call, arg):
        for kw in call.kwargs:
            if kw.name == arg:
                return kw.span
        if isinstance(arg, int) and arg < len(call.args):
            return call.args[arg].span
        return call.span

    def _unit(self, call: ir.Call, name, cur, scope, env, ctx):
        style = ctx.unit[call.name]
        after, _ = UNIT_STYLES[style["style"]]
        fixed = {}
        if not any(kw.name == "bias" for kw in call.kwargs):
            fixed["bias"] = style["bias"]
        attrs = self._bind(Op.CONV2D, call, env, fixed)
        if name is None:
            name = scope.auto_name(call.name)
        if not after:
            return self._add_node(scope, name, Op.CONV2D, attrs, (cur,), call.span, ctx)
        sub = self._open_scope(scope, name, "unit", call.span, ctx, template=call.name, args={"style": style["style"]})
        out = self._add_node(sub, "conv", Op.CONV2D, attrs, (cur,), call.span, ctx)
        for step in after:
            if step == "bn":
                bn = bind_args(Op.BATCHNORM, [], dict(style["bn"]))
                out = self._add_node(sub, "bn", Op.BATCHNORM, bn, (out,), call.span, ctx)
            else:
                out = self._add_node(sub, "relu", Op.RELU, {}, (out,), call.span, ctx)
        return out

    def _unit_style(self, stmt: ir.UnitStmt, env) -> dict:
        call = stmt.style
        if call.name not in UNIT_STYLES:
            close = difflib.get_close_matches(call.name, UNIT_STYLES, n=1)
            raise _err(
                "E201",
                f"unknown unit style `{call.name}`",
                call.span,
                help=(f"did you mean `{close[0]}`? " if close else "") + f"styles: {', '.join(UNIT_STYLES)}",
            )
        if call.args:
            raise _err(
                "E203",
                "unit styles take keyword arguments only",
                call.args[0].span,
                help="e.g. unit conv = conv_bn_relu(eps=0.001)",
            )
        bn, bias = {}, UNIT_STYLES[call.name][1]
        for kw in call.kwargs:
            value = evaluate(kw.value, env)
            if kw.name in ("eps", "momentum") and "bn" in UNIT_STYLES[call.name][0]:
                bn[kw.name] = value
            elif kw.name == "bias" and isinstance(value, bool):
                bias = value
            else:
                raise _err(
                    "E202",
                    f"unit style `{call.name}` has no argument `{kw.name}` of that type",
                    kw.span,
                    help="conv_bn and conv_bn_relu take eps and momentum; all take bias",
                )
        try:
            bind_args(Op.BATCHNORM, [], dict(bn))
        except ArgError as e:
            raise _err("E205", e.message, call.span, e.help) from None
        if stmt.name in CALLABLE_OPS or stmt.name in self.blocks:
            raise _err("E302", f"unit `{stmt.name}` would hide the op or block of that name", stmt.span)
        return {"style": call.name, "bn": bn, "bias": bias}

    def _init_scheme(self, call: ir.Call, env) -> dict | None:
        if call.name not in INIT_SCHEMES:
            raise _err(
                "E201",
                f"unknown init scheme `{call.name}`",
                call.span,
                help=f"schemes: {', '.join(sorted(INIT_SCHEMES))}",
            )
        if call.name == "default":
            return None
        out = {"scheme": call.name, "std": 0.01, "a": -2.0, "b": 2.0}
        for i, arg in enumerate(call.args):
            if i > 0:
                raise _err("E203", "init takes one positional argument (std)", arg.span)
            out["std"] = evaluate(arg, env)
        for kw in call.kwargs:
            if kw.name not in ("std", "a", "b"):
                raise _err("E202", f"init has no argument `{kw.name}`", kw.span, help="init trunc_normal(std=0.01)")
            out[kw.name] = evaluate(kw.value, env)
        for key in ("std", "a", "b"):
            v = out[key]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _err("E205", f"init {key} must be a number", call.span)
            out[key] = float(v)
        return out

    # ---- blocks ------------------------------------------------------------------------
    def _enter_block(self, block: ir.BlockDef, call: ir.Call, env, ctx):
        if block.name in ctx.blocks:
            chain = " -> ".join(ctx.blocks[ctx.blocks.index(block.name) :] + (block.name,))
            raise _err(
                "E602",
                f"block `{block.name}` instantiates itself",
                call.span,
                notes=[Note(f"instantiation chain: {chain}")],
                help="blocks cannot be recursive; use `repeat` for repetition",
            )
        if len(ctx.blocks) >= MAX_BLOCK_DEPTH:
            raise _err("E602", f"blocks nested more than {MAX_BLOCK_DEPTH} deep", call.span)
        values = self._bind_block_args(block, call, env)
        sub_ctx = replace(ctx, blocks=ctx.blocks + (block.name,), unit=dict(ctx.unit))
        return self.globals.child(values), sub_ctx

    def _block(self, call: ir.Call, name, cur, scope, env, ctx):
        block = self.blocks[call.name]
        benv, sub_ctx = self._enter_block(block, call, env, ctx)
        if name is None:
            name = scope.auto_name(call.name)
        sub = self._open_scope(scope, name, "block", call.span, ctx, template=block.name, args=dict(benv.vars))
        return self._body(block.body, cur, sub, benv, sub_ctx)

    def _bind_block_args(self, block: ir.BlockDef, call: ir.Call, env) -> dict:
        params = block.params
        if len(call.args) > len(params):
            raise _err(
                "E203",
                f"block `{block.name}` takes {len(params)} argument"
                f"{'s' if len(params) != 1 else ''}, got {len(call.args)}",
                call.args[len(params)].span,
                help=_block_usage(block),
            )
        given = {}
        for p, arg in zip(params, call.args):
            given[p.name] = (evaluate(arg, env), arg.span)
        names = {p.name for p in params}
        for kw in call.kwargs:
            if kw.name not in names:
                close = difflib.get_close_matches(kw.name, names, n=1)
                raise _err(
                    "E202",
                    f"block `{block.name}` has no parameter `{kw.name}`",
                    kw.span,
                    help=(f"did you mean `{close[0]}`? " if close else "") + _block_usage(block),
                )
            if kw.name in given:
                raise _err("E206", f"argument `{kw.name}` given twice", kw.span)
            given[kw.name] = (evaluate(kw.value, env), kw.span)
        penv = self.globals.child()
        values = penv.vars
        for p in params:
            if p.name in given:
                value, span = given[p.name]
            elif p.default is not None:
                value, span = evaluate(p.default, penv), p.span
            else:
                raise _err(
                    "E204", f"block `{block.name}` needs its argument `{p.name}`", call.span, help=_block_usage(block)
                )
            self._check_param_type(p, value, span)
            values[p.name] = value
        return values

    # ---- nodes -------------------------------------------------------------------------
    def _add_node(self, scope, name, op, attrs, inputs, span, ctx):
        path = scope.path + (name,)
        nid = "/".join(path)
        if nid in self.g:
            prev = self.g.nodes[nid]["span"]
            raise _err(
                "E302", f"the name `{name}` is used twice in this scope", span, notes=[Note("first used here", prev)]
            )
        if len(self.g) >= self.max_nodes:
            raise _err(
                "E603",
                f"the network expands to more than {self.max_nodes} ops",
                span,
                help="raise the limit with --max-nodes if this is intended",
            )
        init = None
        if op in (Op.CONV2D, Op.LINEAR) and ctx.init is not None:
            init = dict(ctx.init)
            if attrs.get("init_std") is not None:
                init["std"] = attrs["init_std"]
        elif op in (Op.CONV2D, Op.LINEAR) and attrs.get("init_std") is not None:
            init = {"scheme": "trunc_normal", "std": attrs["init_std"], "a": -2.0, "b": 2.0}
        self.g.add_node(
            nid, op=op, attrs=attrs, inputs=tuple(inputs), path=path, span=span, aux=ctx.aux, init=init, shape=None
        )
        for i, src in enumerate(inputs):
            self.g.add_edge(src, nid, index=i)
        scope.labels.setdefault(name, (nid, span))
        if name in scope.labels and scope.labels[name][0] is None:
            scope.labels[name] = (nid, span)
        return nid


def _block_usage(block: ir.BlockDef) -> str:
    parts = [
        p.name + (": " + p.type if p.type else "") + (" = ..." if p.default is not None else "") for p in block.params
    ]
    return f"usage: {block.name}({', '.join(parts)})"


def _truth(node, v) -> bool:
    if not isinstance(v, bool):
        raise _err("E305", f"condition must be true or false, got {type_name(v)}", node.span)
    return v


def _render_template(label: ir.Label, env) -> str:
    from .syntax import parse_expr_source

    text, out, i = label.text, [], 0
    while i < len(text):
        ch = text[i]
        if ch == "{":
            end = text.find("}", i)
            if end < 0:
                raise _err("E102", "unclosed `{` in a name template", label.span)
            try:
                expr = parse_expr_source(text[i + 1 : end])
            except SpecError:
                raise _err("E101", f"bad expression `{text[i + 1 : end]}` in a name template", label.span) from None
            try:
                value = evaluate(expr, env)
            except SpecError as e:
                d = e.diagnostics[0]
                raise _err(d.code, d.message + " (in a name template)", label.span, d.help) from None
            out.append(str(value).lower() if isinstance(value, bool) else str(value))
            i = end + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


class _GlobalEnv(Env):
    """Top-level constants, evaluated on first use (so order across imports is free)."""

    def __init__(self, defs: dict[str, ir.ConstStmt]):
        super().__init__()
        self.defs = defs
        self.evaluating: list[str] = []

    def lookup(self, name):
        if name in self.vars:
            return self.vars[name]
        stmt = self.defs.get(name)
        if stmt is None:
            raise KeyError(name)
        if name in self.evaluating:
            raise _err("E309", f"constant `{name}` is defined in terms of itself", stmt.span)
        self.evaluating.append(name)
        try:
            self.vars[name] = evaluate(stmt.value, self)
        finally:
            self.evaluating.pop()
        return self.vars[name]

    def names(self):
        return set(self.vars) | set(self.defs)


def lower(
    program: Program,
    params: dict | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    input_shape: tuple[int, ...] | None = None,
) -> nx.DiGraph:
    """Lower a loaded program to a graph; raise :class:`SpecError` on the first error."""
    if sys.getrecursionlimit() < RECURSION_LIMIT:  # only ever raised, never lowered (other threads)
        sys.setrecursionlimit(RECURSION_LIMIT)
    steps = max(MIN_STEPS, STEPS_PER_NODE * max_nodes)
    with budget(
        steps,
        help=f"loops build too much; the budget is {STEPS_PER_NODE} steps per node of "
        f"--max-nodes ({max_nodes:,}): raise --max-nodes if this is intended",
    ):
        return Lowerer(program, params, max_nodes, input_shape).lower()
