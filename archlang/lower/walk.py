"""The one walker over statement lists. It expands the control statements (``if``,
``for``, ``repeat``, ``const``) itself, the same way everywhere, and hands every other
statement to the handler its :class:`Mode` has for that kind."""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import dataclass

from archlang.frontend.expressions import charge, evaluate, type_name

from ..diagnostics import SpecError
from .state import Frame, Lowering, lowering_error
from .symbolic import evaluate_recorded

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
    for branch in stmt.branches:
        if truth(branch.test, evaluate(branch.test, frame.env)):
            return walk(lw, branch.body, acc, frame.child(), mode)
    if stmt.orelse is not None:
        return walk(lw, stmt.orelse, acc, frame.child(), mode)
    return acc


def _loop(lw, stmt, acc, frame: Frame, mode):
    for values in _iterations(lw, stmt, frame.env):
        acc = walk(lw, stmt.body, acc, frame.child(values), mode)
    return acc


def _const(lw, stmt, acc, frame: Frame, mode):
    env = frame.env
    if stmt.name in env.vars:
        raise lowering_error("E302", f"`{stmt.name}` is already defined here", stmt.span)
    env.vars[stmt.name], sym = evaluate_recorded(stmt.value, env)
    if sym is not None:
        env.syms = {**(env.syms or {}), stmt.name: sym}
    return acc


CONTROL = {"if": _if, "for": _loop, "repeat": _loop, "const_stmt": _const}


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
