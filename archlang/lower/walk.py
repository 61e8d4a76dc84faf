"""The one walker over statement lists. It expands the control statements (``if``,
``for``, ``repeat``, ``const``) itself, the same way everywhere, and hands every other
statement to the handler its :class:`Mode` has for that kind."""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import dataclass

from archlang.frontend.expressions import USES, Env, charge, evaluate, type_name
from archlang.graph.model import Alternative
from archlang.graph.symbolic import params_of

from ..diagnostics import Diagnostic, Severity, SpecError
from .settings import dict_returns
from .state import Frame, Lowering, lowering_error
from .symbolic import evaluate_recorded, substitute

# handler(lowering, statement, accumulated value, frame) -> accumulated value
Handler = Callable[[Lowering, object, object, Frame], object]


@dataclass(frozen=True)
class Mode:
    """How one kind of statement list is lowered.

    A sequential body threads the current node through its statements and keeps going
    after a local error; a concat/add group collects one output per branch statement."""

    handlers: dict[str, Handler]
    other: Handler  # statements of a kind without a handler here
    recovers: bool


def walk(lw: Lowering, stmts, acc, frame: Frame, mode: Mode):
    try:
        lw.enter(stmts, frame.ctx)
        for stmt in stmts:
            charge(stmt)
            kind = stmt.kind
            try:
                if kind in CONTROL:
                    acc = CONTROL[kind](lw, stmt, acc, frame, mode)
                else:
                    acc = mode.handlers.get(kind, mode.other)(lw, stmt, acc, frame)
            except RecursionError:
                # Only when called with little of Python's recursion limit left (the depth
                # limits keep lowering within ~700 frames): located at the statement; if
                # even this needs too many frames, the walker outside catches it.
                raise lowering_error(
                    "E601", "the spec nests too deeply for Python's recursion limit here", stmt.span
                ) from None
            except SpecError as err:
                # Limits (E6xx), and anything before the input exists, stop at once.
                if not mode.recovers or acc is None or any(d.code.startswith("E6") for d in err.diagnostics):
                    raise
                lw.record(err)
        return acc
    finally:
        lw.depth -= 1


def truth(node, value) -> bool:
    if not isinstance(value, bool):
        raise lowering_error("E305", f"condition must be true or false, got {type_name(value)}", node.span)
    return value


def _if(lw, stmt, acc, frame: Frame, mode):
    if len(stmt.branches) == 1 and acc is not None and not lw.in_other:
        captured = _flag_if(lw, stmt, acc, frame, mode)
        if captured is not None:
            return captured[0]
    for branch in stmt.branches:
        if truth(branch.test, evaluate(branch.test, frame.env)):
            return walk(lw, branch.body, acc, frame.child(), mode)
    if stmt.orelse is not None:
        return walk(lw, stmt.orelse, acc, frame.child(), mode)
    return acc


def _flag_if(lw, stmt, acc, frame: Frame, mode):
    """An ``if`` (in the network body or a block) whose test reads only boolean network parameters
    (``if aux_logits``, ``if not a and b``): lowered as any ``if``, with the nodes it makes
    marked with the condition they exist under (:attr:`Node.when`), and the branch not
    taken lowered too, kept apart as an :class:`Alternative`. A back end then writes the
    choice as code from this one compile. (value,) or None for any other ``if``."""
    test = stmt.branches[0].test
    uses: set = set()
    token = USES.set(uses)
    try:
        value = evaluate(test, frame.env)
    finally:
        USES.reset(token)
    sym = substitute(test, frame.env) if uses else None
    if sym is None or not isinstance(value, bool) or not _flag_test(sym, lw.params) or not uses <= params_of(sym):
        return None  # evaluated again by _if, which notes what it reads as structural
    # (`not b and a` with b true reads only b; the test still names a)
    uses = params_of(sym)
    lw.flag_tests |= uses
    body, orelse = stmt.branches[0].body, stmt.orelse or []
    taken, other = (body, orelse) if value else (orelse, body)
    when_taken, when_other = (sym, ("not", sym)) if value else (("not", sym), sym)
    outer = lw.when
    anchor = len(lw.created)
    ctx = frame.ctx
    settings = (ctx.unit, ctx.init, lw.g.input)
    found = (acc, (), (), (), None, ())
    if other:
        lw.when = (*outer, when_other)
        try:
            found = lw.lower_other(
                frame.scope,
                lambda: walk(lw, other, acc, frame.child(), mode),
                lambda value: dict_returns(lw, frame.scope, value),
            )
        finally:
            lw.when = outer
            changed = (ctx.unit, ctx.init, lw.g.input) != settings
            ctx.unit, ctx.init, lw.g.input = settings
        if found is None or changed:
            lw.flag_failed |= uses
            found = (acc, (), (), (), None, ())
    lw.when = (*outer, when_taken)
    try:
        out = walk(lw, taken, acc, frame.child(), mode) if taken else acc
    finally:
        lw.when = outer
    if (ctx.unit, ctx.init, lw.g.input) != settings:
        lw.flag_failed |= uses  # a `unit`, `init` or `input` under the flag: what follows differs
    value_other, nodes, scopes, aux, otype, returns = found
    if value_other != out and _shape(lw, value_other, nodes) != _shape(lw, out, ()):
        # what follows was lowered for one shape: the other structure changes it
        # (`if wide { conv2d(16, 1) } else { conv2d(8, 1) }`)
        lw.flag_failed |= uses
    lw.alternatives.append(
        Alternative((*outer, when_other), nodes, scopes, acc, out, value_other, anchor, aux, otype, returns)
    )
    return (out,)


def _shape(lw, nid, nodes) -> tuple:
    for node in nodes:
        if node.id == nid:
            return node.shape, node.channels_last
    try:
        return lw.shape_of(nid), lw.g.nodes[nid].channels_last
    except SpecError:
        return None, None


def _flag_test(expr, params: dict) -> bool:
    """Whether ``expr`` is boolean network parameters joined by ``not`` / ``and`` / ``or``."""
    kind = expr[0]
    if kind == "param":
        return isinstance(params.get(expr[1]), bool)
    if kind == "not":
        return _flag_test(expr[1], params)
    if kind == "bin" and expr[1] in ("and", "or"):
        return _flag_test(expr[2], params) and _flag_test(expr[3], params)
    return False


def _loop(lw, stmt, acc, frame: Frame, mode):
    for values in _iterations(lw, stmt, frame.env):
        acc = walk(lw, stmt.body, acc, frame.child(values), mode)
    return acc


def _const(lw, stmt, acc, frame: Frame, mode):
    _define(lw, stmt, frame.env, "const")
    return acc


def _var(lw, stmt, acc, frame: Frame, mode):
    _define(lw, stmt, frame.env, "var")
    frame.env.mutable = {*(frame.env.mutable or ()), stmt.name}  # `name = ...` may change it
    return acc


def _define(lw, stmt, env, what: str) -> None:
    """A ``const`` or ``var`` of this body: its value, and the expression over network
    parameters it came from (kept for the emitter)."""
    if stmt.name in env.vars:
        raise lowering_error("E302", f"`{stmt.name}` is already defined here", stmt.span)
    _warn_shadowing(lw, stmt, env, what)
    env.vars[stmt.name], sym = evaluate_recorded(stmt.value, env)
    if sym is not None:
        env.syms = {**(env.syms or {}), stmt.name: sym}


def _assign(lw, stmt, acc, frame: Frame, mode):
    """``c = expr``: the ``var`` of that name in the nearest body that declares it, so a
    loop body changes it for the next iteration and for what follows the loop."""
    value, sym = evaluate_recorded(stmt.value, frame.env)
    env = frame.env
    while type(env) is Env and stmt.name not in env.vars:
        env = env.parent
    if type(env) is not Env or stmt.name not in (env.mutable or ()):
        declared = type(env) is Env or _visible(frame.env, stmt.name)
        raise lowering_error(
            "E312",
            f"`{stmt.name}` is {'a constant or parameter' if declared else 'not defined'}: only a `var` can change",
            stmt.span,
            help=f"declare it with `var {stmt.name} = ...` before the loop, then write `{stmt.name} = ...` in it",
        )
    env.vars[stmt.name] = value
    if sym is not None:
        env.syms = {**(env.syms or {}), stmt.name: sym}
    elif env.syms and stmt.name in env.syms:
        env.syms = {k: v for k, v in env.syms.items() if k != stmt.name}
    return acc


def _visible(env, name: str) -> bool:
    try:
        env.lookup(name)
    except KeyError:
        return False
    return True


def _warn_shadowing(lw, stmt, env, what: str) -> None:
    """W202: a ``const`` (``var``) that hides a name of an enclosing body — in a loop, each
    iteration starts again from the outer value (``const c = c * 2`` never accumulates)."""
    outer = env.parent
    while type(outer) is Env:
        if stmt.name in outer.vars:
            lw.warn(
                Diagnostic(
                    code="W202",
                    message=f"this {what} `{stmt.name}` hides the `{stmt.name}` of an enclosing body",
                    span=stmt.span,
                    severity=Severity.WARNING,
                    help=f"to carry a value from one loop iteration to the next, declare `var {stmt.name} = ...` "
                    f"outside the loop and write `{stmt.name} = ...` inside; else rename it",
                )
            )
            return
        outer = outer.parent


CONTROL = {"if": _if, "for": _loop, "repeat": _loop, "const_stmt": _const, "var_stmt": _var, "assign": _assign}


def _iterations(lw: Lowering, stmt, env):
    """The loop variables of each iteration, made one at a time (a list of a million
    dicts would cost hundreds of MiB before the budget could stop a runaway loop)."""
    if stmt.kind == "repeat":
        count = evaluate(stmt.count, env)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise lowering_error("E303", f"repeat count must be a non-negative integer, got {count!r}", stmt.count.span)
        if count > lw.max_nodes:
            raise lowering_error(
                "E603",
                f"repeat {count} is beyond the graph size limit of {lw.max_nodes} ops",
                stmt.count.span,
                help="raise the limit with --max-nodes if this is intended",
            )
        lw.check_expansion(lw.estimate.times(count, stmt.body), stmt.count.span, f"repeat {count:,}")
        charge(stmt, count)
        return ({stmt.var: i} if stmt.var else {} for i in range(count))
    items = evaluate(stmt.iterable, env)
    if not isinstance(items, tuple):
        raise lowering_error("E305", f"`for` needs a list or tuple, got {type_name(items)}", stmt.iterable.span)
    lw.check_expansion(
        lw.estimate.times(len(items), stmt.body), stmt.iterable.span, f"this loop of {len(items):,} iterations"
    )
    charge(stmt, len(items))
    return _unpacked(stmt, items)


def _unpacked(stmt, items):
    targets = stmt.targets
    for item in items:
        if len(targets) == 1:
            yield {targets[0]: item}
        elif isinstance(item, tuple) and len(item) == len(targets):
            yield dict(zip(targets, item))
        else:
            raise lowering_error(
                "E305", f"cannot unpack {reprlib.repr(item)} into {len(targets)} names", stmt.iterable.span
            )
