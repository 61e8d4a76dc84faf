"""Network parameters kept symbolic through lowering (see :mod:`archlang.graph.symbolic`).

Lowering evaluates each expression to a value as before. The network parameters' names
carry their expression (``("param", "num_classes")``) in the environment; a ``const`` or a
block argument computed from them carries the expression it was computed by, with every
other name folded to its value. Two kinds of reads:

* *recorded*: a layer's arguments (node data ``exprs``), a block instance's arguments
  (:attr:`ScopeInfo.exprs`) and ``const`` values keep the expression;
* *everything else* — an ``if`` test, a loop's count or list, a name template, ``input``,
  ``unit``, ``init`` — notes the parameters it read in ``graph.structural_params``:
  they choose structure, so a back end cannot pass them through as values. Reads are noted
  by the environment itself (:data:`archlang.frontend.expressions.USES`), so a read this
  module does not know about counts as structural, never as a free value.

Values are computed once; keeping the expressions costs a second walk of the (few)
expressions that name a parameter.
"""

from __future__ import annotations

from contextlib import contextmanager

from archlang.frontend.expressions import USES, Env, evaluate

from ..diagnostics import SpecError

OPAQUE = ("call", "<opaque>", ())  # a part that could not be folded: never printed or re-evaluated


def network_env(parent: Env, values: dict) -> Env:
    """The network body's environment: every parameter is its own expression."""
    return Env(parent, values, {p: (("param", p), frozenset((p,))) for p in values})


@contextmanager
def structural(sink: set):
    """Note in ``sink`` every parameter read outside a recorded evaluation."""
    token = USES.set(sink)
    try:
        yield sink
    finally:
        USES.reset(token)


def evaluate_recorded(node, env: Env):
    """(value, None) for a value no network parameter reaches, else (value, (expression,
    parameters)); the parameters are not noted as structural."""
    uses: set = set()
    token = USES.set(uses)
    try:
        value = evaluate(node, env)
    finally:
        USES.reset(token)
    if not uses:
        return value, None
    expr = substitute(node, env)
    return value, (OPAQUE if expr is None else expr, frozenset(uses))


def symbol(env: Env, name: str):
    """(expression, parameters) of a name, or None for a literal."""
    while env is not None and name not in env.vars:  # a GlobalEnv's constants are never symbolic
        env = env.parent
    return env.syms.get(name) if env is not None and env.syms else None


def _fold(node, env: Env):
    try:
        return ("const", evaluate(node, env))
    except SpecError:  # a side evaluation never took (`if c then a else 1 // 0`)
        return OPAQUE


def _sub_or_fold(node, env: Env):
    expr = substitute(node, env)
    return _fold(node, env) if expr is None else expr


def substitute(node, env: Env):
    """``node`` with names of symbolic values replaced by their expressions and the rest
    folded to values; None when no symbolic value takes part (as evaluation goes: the
    branch an ``if`` does not take is not looked at)."""
    kind = node.kind
    if kind == "name":
        entry = symbol(env, node.id)
        return entry[0] if entry else None
    if kind in ("const", "dims"):
        return None
    if kind == "binop":
        left = substitute(node.left, env)
        if node.op in ("and", "or") and left is None:
            value = evaluate(node.left, env)
            return None if bool(value) == (node.op == "or") else substitute(node.right, env)
        right = substitute(node.right, env)
        if left is None and right is None:
            return None
        return ("bin", node.op, left or _fold(node.left, env), right or _fold(node.right, env))
    if kind == "unary":
        inner = substitute(node.operand, env)
        return None if inner is None else ("neg" if node.op == "-" else "not", inner)
    if kind == "if_expr":
        test = substitute(node.test, env)
        if test is None:
            return substitute(node.then if evaluate(node.test, env) else node.orelse, env)
        return ("if", test, _sub_or_fold(node.then, env), _sub_or_fold(node.orelse, env))
    if kind == "func_call":
        args = [substitute(a, env) for a in node.args]
        if all(a is None for a in args):
            return None
        return ("call", node.func, tuple(a or _fold(n, env) for a, n in zip(args, node.args)))
    if kind == "index":
        seq, index = substitute(node.value, env), substitute(node.index, env)
        if seq is None and index is None:
            return None
        return ("index", seq or _fold(node.value, env), index or _fold(node.index, env))
    if kind in ("tuple", "list"):
        items = [substitute(i, env) for i in node.items]
        if all(i is None for i in items):
            return None
        return ("tuple", tuple(i or _fold(n, env) for i, n in zip(items, node.items)))
    return OPAQUE
