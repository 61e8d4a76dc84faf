"""The statements that declare rather than add layers: ``input``, ``unit``, ``init`` and
``outputs`` (handlers of the statement table), and the checks of ``outputs`` at the end."""

from __future__ import annotations

import difflib
import itertools
import keyword

from archlang.frontend import ir
from archlang.frontend.expressions import USES, evaluate
from archlang.graph.model import OutputsType
from archlang.graph.symbolic import Unknown
from archlang.graph.symbolic import evaluate as symbolic_value
from archlang.ops.binding import bind_args
from archlang.ops.inits import INIT_SCHEMES, InitArgError, resolve_init

from ..ops import CALLABLE_OPS, ArgError, Op, positive_int
from .state import Frame, Lowering, arg_span, lowering_error
from .symbolic import OPAQUE, evaluate_recorded

# What a conv unit expands to: the layers after the conv2d, and the conv's bias default.
UNIT_STYLES = {
    "conv2d": ((), True),
    "conv_relu": (("relu",), True),
    "conv_bn": (("bn",), False),
    "conv_bn_relu": (("bn", "relu"), False),
}


def _sizes_only(sym, params: dict, shape) -> bool:
    """Whether the flags an ``input`` reads choose only its height and width (U-Net's
    ``input if padding then (c, 512, 512) else (c, 572, 572)``): the generated class holds
    no input size, so such a flag may stay an argument; one that can change the channel
    count is structural (as every non-boolean parameter an ``input`` reads)."""
    expr, uses = sym
    flags = sorted(q for q in uses if isinstance(params.get(q), bool))
    if expr is OPAQUE or len(flags) > 4:
        return False

    def channels(value):
        return value[0] if isinstance(value, tuple) and value else value

    for values in itertools.product((True, False), repeat=len(flags)):
        try:
            other = symbolic_value(expr, {**params, **dict(zip(flags, values, strict=True))})
        except (Unknown, ArithmeticError, KeyError, TypeError, IndexError, ValueError):
            return False
        if type(other) is not type(shape) or len(other) != len(shape) or channels(other) != channels(shape):
            return False
    return True


def input_stmt(lw: Lowering, stmt: ir.InputStmt, cur, frame: Frame):
    if not frame.top:
        raise lowering_error("E507", "`input` belongs at the top level of the network", stmt.span)
    if cur is not None:
        raise lowering_error("E302", "the network's input is declared twice", stmt.span)
    shape, sym = evaluate_recorded(stmt.shape, frame.env)
    if sym is not None:
        sink = USES.get()
        if sink is not None:  # structural: all it reads, but flags that choose only sizes
            sink |= {q for q in sym[1] if not isinstance(lw.params.get(q), bool)}
            if not _sizes_only(sym, lw.params, shape):
                sink |= sym[1]
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple) or len(shape) not in (1, 3):
        raise lowering_error(
            "E303", f"input must be C×H×W (like 3x224x224) or a feature count, got {shape!r}", stmt.shape.span
        )
    try:
        shape = tuple(positive_int(v, "input size") for v in shape)
    except ArgError as e:
        raise lowering_error("E303", e.message, stmt.shape.span, e.help) from None
    if lw.input_override is not None:
        shape = lw.input_override
    nid = lw.add_node(frame.scope, "input", Op.INPUT, {"shape": shape}, (), stmt.span, frame.ctx)
    lw.g.input = nid
    lw.g.input_shape = shape
    return nid


def unit_stmt(lw: Lowering, stmt: ir.UnitStmt, cur, frame: Frame):
    ctx = frame.ctx
    ctx.unit = {**ctx.unit, stmt.name: _unit_style(lw, stmt, frame)}
    return cur


def _unit_style(lw: Lowering, stmt: ir.UnitStmt, frame: Frame) -> dict:
    call = stmt.style
    if call.name not in UNIT_STYLES:
        close = difflib.get_close_matches(call.name, UNIT_STYLES, n=1)
        raise lowering_error(
            "E201",
            f"unknown unit style `{call.name}`",
            call.span,
            help=(f"did you mean `{close[0]}`? " if close else "") + f"styles: {', '.join(UNIT_STYLES)}",
        )
    if call.args:
        raise lowering_error(
            "E203",
            "unit styles take keyword arguments only",
            call.args[0].span,
            help="e.g. unit conv = conv_bn_relu(eps=0.001)",
        )
    bn, bias = {}, UNIT_STYLES[call.name][1]
    for kw in call.kwargs:
        value = evaluate(kw.value, frame.env)
        if kw.name in ("eps", "momentum") and "bn" in UNIT_STYLES[call.name][0]:
            bn[kw.name] = value
        elif kw.name == "bias" and isinstance(value, bool):
            bias = value
        else:
            raise lowering_error(
                "E202",
                f"unit style `{call.name}` has no argument `{kw.name}` of that type",
                kw.span,
                help="conv_bn and conv_bn_relu take eps and momentum; all take bias",
            )
    try:
        bind_args(Op.BATCHNORM, [], dict(bn))
    except ArgError as e:
        raise lowering_error("E205", e.message, call.span, e.help) from None
    if stmt.name in CALLABLE_OPS or stmt.name in lw.blocks:
        raise lowering_error("E302", f"unit `{stmt.name}` would hide the op or block of that name", stmt.span)
    return {"style": call.name, "bn": bn, "bias": bias}


def init_stmt(lw: Lowering, stmt: ir.InitStmt, cur, frame: Frame):
    frame.ctx.init = _init_scheme(stmt.scheme, frame.env)
    return cur


def _init_scheme(call: ir.Call, env) -> dict | None:
    if call.name not in INIT_SCHEMES:
        close = difflib.get_close_matches(call.name, INIT_SCHEMES, n=1)
        raise lowering_error(
            "E201",
            f"unknown init scheme `{call.name}`",
            call.span,
            help=(f"did you mean `{close[0]}`? " if close else "") + f"schemes: {', '.join(sorted(INIT_SCHEMES))}",
        )
    positional = [evaluate(a, env) for a in call.args]
    keyword = {kw.name: evaluate(kw.value, env) for kw in call.kwargs}
    try:
        return resolve_init(call.name, positional, keyword)
    except InitArgError as e:
        raise lowering_error(e.code, e.message, arg_span(call, e.arg), e.help) from None


def outputs_stmt(lw: Lowering, stmt: ir.OutputsStmt, cur, frame: Frame):
    if not frame.top:
        raise lowering_error("E508", "`outputs` belongs at the top level of the network", stmt.span)
    if stmt.type_name == "dict":
        return _dict_outputs(lw, stmt, cur)
    _check_outputs_name(stmt.type_name, "type", stmt.span)
    for f in stmt.fields:
        _check_outputs_name(f.name, "field", f.span)
    lw.outputs_type = OutputsType(stmt.type_name, tuple((f.name, f.source) for f in stmt.fields))
    lw.outputs_field_spans = [f.span for f in stmt.fields]
    lw.outputs_when = lw.when
    return cur


def _dict_outputs(lw: Lowering, stmt: ir.OutputsStmt, cur):
    """``outputs dict(out, aux = aux_head, "0" = p2)``: the network returns an OrderedDict of
    these values, in training and in eval (torchvision's segmentation models and feature
    pyramids); a key without ``=`` is the main output. Values are looked up when the body
    is done (:func:`check_outputs`), so the statement may stand before them."""
    if lw.outputs_type is not None or lw.returns:
        raise lowering_error("E302", "the network's outputs are declared twice", stmt.span)
    if not stmt.fields:
        raise lowering_error("E209", "`outputs dict()` with no values", stmt.span, help="name at least one value")
    seen = set()
    for f in stmt.fields:
        if not f.name or not f.name.isprintable():
            raise lowering_error("E207", f"the outputs key {f.name!r} is empty or not printable", f.span)
        if f.name in seen:
            raise lowering_error("E302", f"the outputs key `{f.name}` is named twice", f.span)
        seen.add(f.name)
    lw.returns = [(f.name, f.source, f.span) for f in stmt.fields]
    lw.outputs_when = lw.when
    return cur


def _check_outputs_name(name: str, what: str, span) -> None:
    """The outputs type is a ``namedtuple``: its type and field names must be identifiers that
    are not keywords, and fields must not start with an underscore (namedtuple refuses them)."""
    problem = (
        "is not an identifier"
        if not name.isidentifier()
        else "is a Python keyword"
        if keyword.iskeyword(name)
        else "starts with an underscore"
        if what == "field" and name.startswith("_")
        else None
    )
    if problem:
        raise lowering_error(
            "E207",
            f"the outputs {what} name `{name}` {problem}",
            span,
            help="outputs become a Python namedtuple: use a plain name such as `aux_logits`",
        )


def dict_returns(lw: Lowering, root, out: str) -> tuple[tuple[str, str], ...]:
    """The (key, node id) pairs of ``outputs dict(...)``, its names looked up among the
    network's values; ``out``: the main output."""
    returns = []
    for key, source, span in lw.returns:
        if source is None and (root.labels.get(key) or (None,))[0] is None:
            returns.append((key, out))  # a key no value is named after: the main output
            continue
        source = source or key  # `outputs dict(out, aux)`: the values named out and aux
        if "." in source:  # `fpn.layer_blocks.0`: a value inside a block, sequence or group
            returns.append((key, _dotted_value(lw, root, source, key, span)))
            continue
        entry = root.labels.get(source)
        if entry is None or entry[0] is None:
            close = difflib.get_close_matches(source, [n for n, e in root.labels.items() if e[0]], n=1)
            raise lowering_error(
                "E208",
                f"no value named `{source}` in the network for the outputs key `{key}`",
                span,
                help=f"did you mean `{close[0]}`?" if close else "name a layer, block or group of the network body",
            )
        if entry[0] in lw.aux_outputs.values():
            raise lowering_error(
                "E508",
                f"`{source}` is an aux head, which runs in training only",
                span,
                help="make it a plain layer read with `from`, or return it with `outputs Name(...)`",
            )
        returns.append((key, entry[0]))
    return tuple(returns)


def _dotted_value(lw: Lowering, root, source: str, key: str, span) -> str:
    """The node id of ``a.b.c`` among the network's values, as ``from a.b.c`` reads it."""
    path = tuple(source.split("."))
    if path in lw.values and (root.labels.get(path[0]) or (None,))[0] is not None:
        return lw.values[path]
    known = [".".join(p) for p in lw.values if p[:-1] == path[:-1]]
    close = difflib.get_close_matches(source, known, n=1)
    raise lowering_error(
        "E208",
        f"no value named `{source}` in the network for the outputs key `{key}`",
        span,
        help=f"did you mean `{close[0]}`?" if close else "name a value inside a layer of the network body",
    )


def check_outputs(lw: Lowering) -> None:
    """Every `outputs` field names a distinct field and an aux head that exists (back ends
    look the heads up by these names)."""
    if lw.outputs_type is None:
        return
    seen = set()
    for (name, source), span in zip(lw.outputs_type.fields, lw.outputs_field_spans):
        if name in seen:
            raise lowering_error("E302", f"the outputs field `{name}` is named twice", span)
        seen.add(name)
        if source is not None and source not in lw.aux_outputs:
            close = difflib.get_close_matches(source, lw.aux_outputs, n=1)
            raise lowering_error(
                "E208",
                f"no aux head named `{source}` for the outputs field `{name}`",
                span,
                help=f"did you mean `{close[0]}`?" if close else f"aux heads: {', '.join(lw.aux_outputs) or 'none'}",
            )
