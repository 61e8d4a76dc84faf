"""Layer statements: primitive ops, conv units, block instances, sequences and concat/add
groups; aux heads. Holds the statement table and the two walking modes."""

from __future__ import annotations

import difflib
from dataclasses import replace

from archlang.frontend import ir
from archlang.frontend.expressions import Env, evaluate
from archlang.lower.layer_names import check_label, label_text
from archlang.ops.binding import bind_args
from archlang.ops.shape_rules import resolve_padding

from ..diagnostics import Note
from ..ops import ALIASES, CALLABLE_OPS, GROUP_OPS, RECORDS, SIGNATURES, ArgError, Op, ShapeError
from . import settings
from .program import bind_block_args
from .state import MAX_BLOCK_DEPTH, Frame, Lowering, Scope, arg_span, lowering_error
from .symbolic import evaluate_recorded
from .walk import Mode, walk


def layer_stmt(lw: Lowering, stmt: ir.LayerStmt, cur, frame: Frame):
    if cur is None:
        raise lowering_error(
            "E503", "a layer before the network's `input`", stmt.span, help="declare the input first: `input 3x224x224`"
        )
    if stmt.sources:
        inputs = tuple(resolve(lw, src, frame) for src in stmt.sources)
        if stmt.layer.kind == "merge":
            return _merge(lw, stmt, inputs, frame)
        wanted = _inputs_wanted(lw, stmt.layer, frame)
        if len(inputs) != wanted and not (wanted == 1 and len(inputs) == 2 and _sized(stmt.layer, frame)):
            what = f"block `{stmt.layer.name}` reads {wanted} values" if wanted > 1 else "this layer reads one value"
            raise lowering_error(
                "E210",
                f"{what}; `from` names {len(inputs)}",
                stmt.sources[min(wanted, len(inputs) - 1)].span,
                help="merge them first: `add from a, b` or `concat from a, b`"
                if wanted == 1
                else f"name one value per input of `{stmt.layer.name}`",
            )
        cur, extra = inputs[0], inputs[1:]
        return lower_layer(lw, stmt.layer, _labels(lw, stmt, frame), cur, frame, extra)
    wanted = _inputs_wanted(lw, stmt.layer, frame)
    if wanted > 1:
        raise lowering_error(
            "E210",
            f"block `{stmt.layer.name}` reads {wanted} values; name them with `from`",
            stmt.layer.span,
            help=f"`{stmt.layer.name}(...) from a, b`, one value per input",
        )
    return lower_layer(lw, stmt.layer, _labels(lw, stmt, frame), cur, frame)


def _inputs_wanted(lw: Lowering, layer, frame: Frame) -> int:
    """How many values a layer reads: a block's declared inputs, else one."""
    if layer.kind == "call" and layer.name in lw.blocks and layer.name not in frame.ctx.unit:
        return max(1, len(lw.blocks[layer.name].inputs))
    return 1


def _sized(layer, frame: Frame) -> bool:
    """An op that may read a second value for its size (``upsample ... from x, input``)."""
    if layer.kind != "call" or layer.name in frame.ctx.unit:
        return False
    op = CALLABLE_OPS.get(layer.name) or ALIASES.get(layer.name, (None,))[0]
    return op is not None and RECORDS[op].size_from_value is not None


def _labels(lw: Lowering, stmt: ir.LayerStmt, frame: Frame):
    labels = stmt.labels
    if not labels and frame.inline is not None:
        if not frame.inline:
            raise lowering_error(
                "E207", "more layers than names", stmt.span, help="give one name per layer of the block"
            )
        labels = (frame.inline.pop(0),)
    return labels


def resolve(lw: Lowering, source, frame: Frame) -> str:
    """The node a ``from`` source names: a value labelled earlier in this scope or an
    enclosing one (up to the block or network it is in), or ``input``."""
    if isinstance(source, ir.InputRef):
        scope = frame.scope
        while scope.parent is not None:
            scope = scope.parent
        entry = scope.entry if scope.path else lw.g.input
        if entry is None:
            raise lowering_error("E503", "`from input` before the network's `input`", source.span)
        return entry
    if isinstance(source, ir.PathRef):
        return _resolve_path(lw, source, frame)
    return _lookup(lw, source, frame)[0]


def _lookup(lw: Lowering, source: ir.Label, frame: Frame) -> tuple[str, Scope]:
    """(node id, the scope that names it) of a plain name."""
    name = label_text(source, frame.env)
    scope, visible = frame.scope, []
    while scope is not None:
        entry = scope.labels.get(name)
        if entry is not None:
            if entry[0] is None:
                raise lowering_error(
                    "E211",
                    f"`{name}` is still being built here: a layer cannot read the value it is part of",
                    source.span,
                    notes=[Note(f"`{name}` starts here", entry[1])],
                    help="read an earlier value, or name the layer inside it",
                )
            return entry[0], scope
        visible += [n for n, e in scope.labels.items() if e[0] is not None]
        scope = scope.parent
    close = difflib.get_close_matches(name, visible, n=1)
    raise lowering_error(
        "E208",
        f"no value named `{name}` before this layer",
        source.span,
        help=f"did you mean `{close[0]}`?"
        if close
        else "`from` reads a layer, block or group named earlier in the same block or network (or `input`)",
    )


def _resolve_path(lw: Lowering, ref: ir.PathRef, frame: Frame) -> str:
    """``a.b.c``: the value named ``b.c`` inside the block, sequence or group ``a``."""
    head, *rest = ref.parts
    _, scope = _lookup(lw, head, frame)
    path = (*scope.path, label_text(head, frame.env))
    for part in rest:
        path = (*path, label_text(part, frame.env))
        if path not in lw.values:
            inside = [p[-1] for p in lw.values if p[:-1] == path[:-1]]
            close = difflib.get_close_matches(path[-1], inside, n=1)
            raise lowering_error(
                "E208",
                f"no value named `{path[-1]}` inside `{'.'.join(path[len(scope.path) : -1])}`",
                part.span,
                help=f"did you mean `{close[0]}`?" if close else f"it names: {', '.join(inside[:12]) or 'nothing'}",
            )
    return lw.values[path]


def _merge(lw: Lowering, stmt: ir.LayerStmt, inputs: tuple, frame: Frame) -> str:
    """``name: add from a, b``: one merge node reading the named values."""
    layer, scope = stmt.layer, frame.scope
    if len(stmt.labels) > 1:
        raise lowering_error("E207", "several names for a single layer", stmt.labels[1].span)
    name = label_text(stmt.labels[0], frame.env) if stmt.labels else None
    if name is not None:
        check_label(name, stmt.labels[0].span, scope)
    else:
        name = scope.auto_name(layer.mode)
    scope.position += 1
    return lw.add_node(scope, name, GROUP_OPS[layer.mode], {}, inputs, layer.span, frame.ctx)


def branch_stmt(lw: Lowering, stmt: ir.LayerStmt, outputs: list, frame: Frame) -> list:
    """A layer statement inside a group: one more branch from the group's input."""
    outputs.append(layer_stmt(lw, stmt, frame.source, frame))
    return outputs


def not_a_branch(lw: Lowering, stmt, outputs, frame: Frame):
    raise lowering_error(
        "E508",
        f"`{stmt.kind}` cannot stand inside a concat/add group",
        stmt.span,
        help="each statement in a group is a parallel branch",
    )


def not_a_statement(lw: Lowering, stmt, cur, frame: Frame):
    raise AssertionError(f"no handler for `{stmt.kind}` statements")  # a new IR kind, not a user error


def aux_stmt(lw: Lowering, stmt: ir.AuxStmt, cur, frame: Frame):
    if frame.ctx.aux:
        raise lowering_error("E508", "an aux head inside an aux head", stmt.span)
    entry = frame.scope.labels.get(stmt.at)
    if entry is None:
        close = difflib.get_close_matches(stmt.at, frame.scope.labels, n=1)
        raise lowering_error(
            "E208",
            f"no layer named `{stmt.at}` before this aux head",
            stmt.at_span,
            help=f"did you mean `{close[0]}`?"
            if close
            else "aux heads attach to a named layer or block defined earlier in the same scope",
        )
    name = label_text(stmt.label, frame.env)
    head = Frame(frame.scope, frame.env, frame.ctx.inner(aux=name))
    out = lower_layer(lw, stmt.layer, (ir.Label(span=stmt.label.span, text=name),), entry[0], head)
    if name in lw.aux_outputs:
        raise lowering_error("E302", f"aux head `{name}` is declared twice", stmt.label.span)
    lw.aux_outputs[name] = out
    return cur


STATEMENTS = {
    "layer": layer_stmt,
    "aux": aux_stmt,
    "input": settings.input_stmt,
    "unit": settings.unit_stmt,
    "init": settings.init_stmt,
    "outputs": settings.outputs_stmt,
}
BODY = Mode(STATEMENTS, other=not_a_statement, recovers=True)
BRANCHES = Mode({"layer": branch_stmt}, other=not_a_branch, recovers=False)


def lower_layer(lw: Lowering, layer, labels, cur, frame: Frame, extra: tuple = ()):
    scope, env, ctx = frame.scope, frame.env, frame.ctx
    names = [label_text(lbl, env) for lbl in labels]
    # a labelled sequence named again goes on (its numbering too): one module's ModuleLists
    # called in turn (Res2Net's `convs` and `bns`), or a sequence in a `repeat`
    reopen = layer.kind == "seq" and len(names) == 1 and names[0] in scope.sequences
    for lbl, text in zip(labels, names):
        if not reopen:
            check_label(text, lbl.span, scope)
    if len(names) > 1:
        return _inline(lw, layer, names, labels, cur, frame)
    name = names[0] if names else None
    span = labels[0].span if labels else layer.span
    scope.position += 1
    if layer.kind == "call":
        out = _call(lw, layer, name, cur, frame, extra)
    elif layer.kind == "seq":
        if reopen:
            scope = scope.sequences[name]
        elif name is not None:
            scope.sequences[name] = lw.open_scope(scope, name, "branch", layer.span, ctx, sequential=True)
            scope = scope.sequences[name]
        out = walk(lw, layer.body, cur, Frame(scope, env.child(), ctx.inner()), BODY)
    else:
        out = _group(lw, layer, name, cur, frame)
    if name is not None:
        # `from convs` reads its last layer so far; a clash later points at its first opening
        frame.scope.labels[name] = (out, frame.scope.labels[name][1] if reopen else span)
        lw.values[(*frame.scope.path, name)] = out
    return out


def _inline(lw: Lowering, layer, names, labels, cur, frame: Frame):
    """``a, b: Block(...)`` / ``a, b: { x; y }``: the body's layers take the names."""
    queue = [ir.Label(span=lbl.span, text=n) for lbl, n in zip(labels, names)]
    if layer.kind == "call" and layer.name in lw.blocks:
        block = lw.blocks[layer.name]
        benv, sub_ctx = _enter_block(lw, block, layer, frame, cur)
        out = walk(lw, block.body, cur, Frame(frame.scope, benv, sub_ctx, inline=queue), BODY)
    elif layer.kind == "seq":
        out = walk(lw, layer.body, cur, Frame(frame.scope, frame.env.child(), frame.ctx.inner(), inline=queue), BODY)
    else:
        raise lowering_error(
            "E207",
            "several names for a single layer",
            labels[1].span,
            help="several names fit a block or a { ... } sequence, one name per layer",
        )
    if queue:
        raise lowering_error(
            "E207",
            f"{len(queue)} name{'s' if len(queue) > 1 else ''} left over: the body has fewer layers than names",
            queue[0].span,
        )
    return out


def _call(lw: Lowering, call: ir.Call, name, cur, frame: Frame, extra: tuple = ()):
    callee, ctx = call.name, frame.ctx
    if callee in ctx.unit:
        return _unit(lw, call, name, cur, frame)
    if callee in lw.blocks and isinstance(lw.blocks[callee], ir.ExternDef):
        return _extern(lw, lw.blocks[callee], call, name, cur, frame)
    if callee in lw.blocks:
        block = lw.blocks[callee]
        benv, sub_ctx = _enter_block(lw, block, call, frame, cur)
        if name is None:
            name = frame.scope.auto_name(callee)
        exprs = {q: expr for q, (expr, _) in (benv.syms or {}).items()}
        sub = lw.open_scope(
            frame.scope,
            name,
            "block",
            call.span,
            ctx,
            template=block.name,
            args=dict(benv.vars),
            exprs=exprs,
            entry=cur,
        )
        for label, node in zip(block.inputs, (cur, *extra)):  # `block B() from x, skip`
            check_label(label.text, label.span, sub)
            sub.labels[label.text] = (node, label.span)
        out = walk(lw, block.body, cur, Frame(sub, benv, sub_ctx), BODY)
        info = lw.scopes["/".join(sub.path)]
        lw.scopes[info.id] = replace(info, inputs=(cur, *extra) if extra else (), output=out)
        return out
    op, fixed = (CALLABLE_OPS[callee], {}) if callee in CALLABLE_OPS else ALIASES.get(callee, (None, {}))
    if op is None:
        known = list(CALLABLE_OPS) + list(ALIASES) + list(lw.blocks) + list(ctx.unit)
        close = difflib.get_close_matches(callee, known, n=1)
        raise lowering_error(
            "E201",
            f"unknown layer or block `{callee}`",
            call.span,
            help=f"did you mean `{close[0]}`?" if close else "define it with `block` or import the library that does",
        )
    if extra:  # `upsample(...) from x, ref`: ref's H×W is the size, read when the forward runs
        attr = RECORDS[op].size_from_value
        if any(kw.name == attr for kw in call.kwargs):
            raise lowering_error(
                "E206", f"`{attr}` given twice: by an argument and by the value read after `from`", call.span
            )
        shape = lw.shape_of(extra[0])
        if shape is None or len(shape) != 3:
            raise lowering_error("E406", f"`{callee}` takes the size of a C×H×W value; this one is not", call.span)
        fixed = {**fixed, attr: tuple(shape[1:])}
    attrs, exprs = _bind(op, call, frame.env, fixed)
    if name is None:
        name = frame.scope.auto_name(callee)
    return lw.add_node(frame.scope, name, op, attrs, (cur, *extra), call.span, ctx, exprs)


EXTERN_RULES = ("shape", "params", "flops")


def _extern(lw: Lowering, ext: ir.ExternDef, call: ir.Call, name, cur, frame: Frame):
    """An ``extern`` module: one node whose attributes hold the class to import, the
    constructor arguments (the declared parameters, by name) and the declaration's output
    shape, parameter count and FLOPs, evaluated for this call and its input."""
    values = bind_block_args(ext, call, frame.env, lw.globals)
    env = Env(BlockInput(lw, cur, call.span, lw.globals), values)
    found = {"shape": lw.shape_of(cur), "params": 0, "flops": 0}
    for rule in ext.rules:
        if rule.name not in EXTERN_RULES:
            close = difflib.get_close_matches(rule.name, EXTERN_RULES, n=1)
            raise lowering_error(
                "E202",
                f"`extern` declares {', '.join(EXTERN_RULES)}, not `{rule.name}`",
                rule.span,
                help=f"did you mean `{close[0]}`?" if close else None,
            )
        found[rule.name] = evaluate(rule.value, env)
    shape = found["shape"]
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple) or len(shape) not in (1, 3) or not all(_count(v) and v > 0 for v in shape):
        raise lowering_error("E303", f"`{ext.name}`'s shape must be C×H×W or a feature count, got {shape!r}", call.span)
    for key in ("params", "flops"):
        if not _count(found[key]) or found[key] < 0:
            raise lowering_error("E303", f"`{ext.name}`'s {key} must be a count, got {found[key]!r}", call.span)
    module, _, cls = ext.target.replace(":", ".").rpartition(".")
    if not module or not all(part.isidentifier() for part in ext.target.replace(":", ".").split(".")):
        raise lowering_error(
            "E207",
            f'`{ext.target}` is not a module and class such as "mypkg.layers:DropBlock"',
            ext.target_span,
        )
    attrs = {
        "target": f"{module}:{cls}",
        "class": cls,
        "args": tuple(values.items()),
        "shape": tuple(shape),
        "params": found["params"],
        "flops": found["flops"],
    }
    if name is None:
        name = frame.scope.auto_name(ext.name)
    return lw.add_node(frame.scope, name, Op.EXTERNAL, attrs, (cur,), call.span, frame.ctx)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bind(op, call: ir.Call, env, fixed: dict):
    """(attributes, expressions of those a network parameter reaches)."""
    positional, exprs = [], {}
    names = SIGNATURES[op].args
    for i, a in enumerate(call.args):
        value, sym = evaluate_recorded(a, env)
        positional.append(value)
        if sym is not None:
            exprs[names[i].name if i < len(names) else i] = sym[0]
    keyword = dict(fixed)
    for kw in call.kwargs:
        if kw.name in keyword and kw.name not in fixed:
            raise lowering_error("E206", f"argument `{kw.name}` given twice", kw.span)
        keyword[kw.name], sym = evaluate_recorded(kw.value, env)
        if sym is not None:
            exprs[kw.name] = sym[0]
    try:
        attrs = bind_args(op, positional, keyword)
        if op in (Op.CONV2D, Op.STD_CONV2D, Op.SCALED_STD_CONV2D):
            attrs["padding"] = resolve_padding(attrs)
    except ArgError as e:
        message, help = e.message, e.help
        if call.name != op.value:  # speak of what the user wrote: `conv`, `fc`, ...
            message = message.replace(f"{op.value} ", f"{call.name} ", 1)
            help = help and help.replace(f"usage: {op.value}(", f"usage: {call.name}(", 1)
        raise lowering_error(e.code, message, arg_span(call, e.arg), help) from None
    except ShapeError as e:
        raise lowering_error(e.code, e.message, call.span, e.help) from None
    return attrs, exprs


def _unit(lw: Lowering, call: ir.Call, name, cur, frame: Frame):
    ctx = frame.ctx
    style = ctx.unit[call.name]
    after, _ = settings.UNIT_STYLES[style["style"]]
    fixed = {} if any(kw.name == "bias" for kw in call.kwargs) else {"bias": style["bias"]}
    attrs, exprs = _bind(Op.CONV2D, call, frame.env, fixed)
    if name is None:
        name = frame.scope.auto_name(call.name)
    if not after:
        return lw.add_node(frame.scope, name, Op.CONV2D, attrs, (cur,), call.span, ctx, exprs)
    sub = lw.open_scope(frame.scope, name, "unit", call.span, ctx, template=call.name, args={"style": style["style"]})
    out = lw.add_node(sub, "conv", Op.CONV2D, attrs, (cur,), call.span, ctx, exprs)
    for step in after:
        if step == "bn":
            bn = bind_args(Op.BATCHNORM, [], dict(style["bn"]))
            out = lw.add_node(sub, "bn", Op.BATCHNORM, bn, (out,), call.span, ctx)
        else:
            out = lw.add_node(sub, "relu", Op.RELU, {}, (out,), call.span, ctx)
    return out


class BlockInput(Env):
    """What a block body knows of its input, between its parameters and the top-level
    constants: ``in_channels`` and ``in_shape`` (``(C, H, W)``, or ``(F,)`` after a flatten),
    found when first read (:meth:`Lowering.shape_of`). A parameter of that name wins."""

    __slots__ = ("lw", "node", "span")
    NAMES = ("in_channels", "in_shape")

    def __init__(self, lw: Lowering, node: str, span, parent: Env):
        super().__init__(parent)
        self.lw, self.node, self.span = lw, node, span

    def lookup(self, name: str):
        if name not in self.NAMES:
            return self.parent.lookup(name)
        shape = self.lw.shape_of(self.node)
        if shape is None:  # an error before the block, reported on its own
            raise lowering_error("E406", f"`{name}`: the block's input has no shape", self.span)
        return shape[0] if name == "in_channels" else tuple(shape)

    def names(self) -> set[str]:
        return {*self.NAMES, *self.parent.names()}


def _enter_block(lw: Lowering, block: ir.BlockDef, call: ir.Call, frame: Frame, cur: str):
    ctx = frame.ctx
    if block.name in ctx.blocks:
        chain = " -> ".join(ctx.blocks[ctx.blocks.index(block.name) :] + (block.name,))
        raise lowering_error(
            "E602",
            f"block `{block.name}` instantiates itself",
            call.span,
            notes=[Note(f"instantiation chain: {chain}")],
            help="blocks cannot be recursive; use `repeat` for repetition",
        )
    if len(ctx.blocks) >= MAX_BLOCK_DEPTH:
        raise lowering_error("E602", f"blocks nested more than {MAX_BLOCK_DEPTH} deep", call.span)
    lw.check_expansion(lw.estimate.body(block.body), call.span, f"block `{block.name}`")
    syms: dict = {}
    values = bind_block_args(block, call, frame.env, lw.globals, syms)
    inputs = BlockInput(lw, cur, call.span, lw.globals)
    return Env(inputs, values, syms or None), ctx.inner(blocks=ctx.blocks + (block.name,))


def _group(lw: Lowering, layer: ir.Group, name, cur, frame: Frame):
    inner: Scope = frame.scope
    if name is not None:
        inner = lw.open_scope(inner, name, "group", layer.span, frame.ctx)
        # The merge node is named after the mode; reserve it so a nested unnamed group
        # is auto-named `concat_2` instead of colliding with it.
        inner.labels[layer.mode] = (None, layer.span)
    branches = Frame(inner, frame.env, frame.ctx.inner(), source=cur)
    outputs = walk(lw, layer.branches, [], branches, BRANCHES)
    if not outputs:
        raise lowering_error(
            "E209", f"`{layer.mode}` with no branches", layer.span, help="a group needs at least one branch"
        )
    op = GROUP_OPS[layer.mode]
    # In a numbered sequence the merge node is `concat`, then `concat_2`, ... (several
    # unnamed groups in one `b: { ... }`: DenseNet's dense blocks as imported).
    merge_name = layer.mode if name is not None else inner.counted_name(layer.mode)
    return lw.add_node(inner, merge_name, op, {}, tuple(outputs), layer.span, frame.ctx)
