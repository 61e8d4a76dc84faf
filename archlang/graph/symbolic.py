"""Values that keep the network parameters they came from.

Lowering evaluates every expression to a value, and for the values a node holds it also
keeps the expression in terms of the *network parameters* (``num_classes``,
``width * 2``; see :mod:`archlang.lower.symbolic`): in node data ``exprs`` (attribute ->
expression) and in :attr:`ScopeInfo.exprs <archlang.graph.model.ScopeInfo>` (block
argument -> expression). A name bound to a constant, a loop variable or a literal is folded
to its value, so the only names left are network parameters. Back ends read these to print
``nn.Linear(1024, num_classes)`` instead of the number a compile happened to give.

An expression is a tree of plain tuples (plain data, picklable without the IR):

=========================  ===================================
``("param", name)``        a network parameter
``("const", value)``       a folded value (any type)
``("bin", op, a, b)``      ``+ - * / // % **``, comparisons, ``and`` / ``or``
``("neg", a)``             ``-a``; ``("not", a)``: ``not a``
``("call", f, args)``      ``int float min max abs`` ... (``args`` a tuple)
``("if", test, a, b)``     ``a if test else b``
``("index", seq, i)``      ``seq[i]``; ``("tuple", items)``
=========================  ===================================
"""

from __future__ import annotations

import operator

from archlang.frontend.expressions import ARITHMETIC, COMPARISONS, INT_LIMIT, MAX_RANGE

_BIN = {**ARITHMETIC, "**": operator.pow, **COMPARISONS}
_CALLS = {"int": int, "float": float, "min": min, "max": max, "abs": abs}
# Python precedence of the operators a rendered expression may hold (higher binds tighter).
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2}


def _bounded(op: str, a, b):
    """``a op b``, raising OverflowError instead of building a value beyond the front end's
    bounds: a back end evaluates kept expressions again at other parameter values, where
    ``2 ** (k ** k)`` or ``(0,) * k`` could ask for any amount of time and memory."""
    if op == "**" and isinstance(a, int) and isinstance(b, int) and abs(a) > 1 and b * (abs(a).bit_length() - 1) > 63:
        raise OverflowError("integer power too large")
    if op == "*" and isinstance(b, int) and isinstance(a, (str, tuple, list)) and len(a) * b > MAX_RANGE:
        raise OverflowError("sequence too long")
    if op == "*" and isinstance(a, int) and isinstance(b, (str, tuple, list)) and len(b) * a > MAX_RANGE:
        raise OverflowError("sequence too long")
    result = _BIN[op](a, b)
    if isinstance(result, int) and not isinstance(result, bool) and abs(result) > INT_LIMIT:
        raise OverflowError("integer too large")
    if isinstance(result, (str, tuple, list)) and len(result) > MAX_RANGE:
        raise OverflowError("sequence too long")
    return result


class Unknown(Exception):
    """An expression this module cannot evaluate (a function or value it does not know)."""


def params_of(expr) -> set[str]:
    """The network parameters an expression names."""
    out: set[str] = set()
    stack = [expr]
    while stack:
        e = stack.pop()
        if e[0] == "param":
            out.add(e[1])
        elif e[0] in ("bin", "if"):
            stack.extend(e[2:] if e[0] == "bin" else e[1:])
        elif e[0] in ("neg", "not"):
            stack.append(e[1])
        elif e[0] == "index":
            stack.extend(e[1:])
        elif e[0] in ("call", "tuple"):
            stack.extend(e[-1])
    return out


def evaluate(expr, params: dict):
    """The value of ``expr`` with the network parameters set to ``params``; raises
    :class:`Unknown` (or an arithmetic error) where it cannot tell."""
    kind = expr[0]
    if kind == "param":
        return params[expr[1]]
    if kind == "const":
        return expr[1]
    if kind == "bin":
        op, a = expr[1], evaluate(expr[2], params)
        if op == "and":
            return evaluate(expr[3], params) if a else a
        if op == "or":
            return a if a else evaluate(expr[3], params)
        if op not in _BIN:
            raise Unknown(op)
        return _bounded(op, a, evaluate(expr[3], params))
    if kind == "neg":
        return -evaluate(expr[1], params)
    if kind == "not":
        return not evaluate(expr[1], params)
    if kind == "if":
        return evaluate(expr[2] if evaluate(expr[1], params) else expr[3], params)
    if kind == "index":
        return evaluate(expr[1], params)[evaluate(expr[2], params)]
    if kind == "tuple":
        return tuple(evaluate(e, params) for e in expr[1])
    if kind == "call" and expr[1] in _CALLS:
        args = [evaluate(e, params) for e in expr[2]]
        return _CALLS[expr[1]](*args)
    raise Unknown(kind)


def render(expr, names: dict[str, str]) -> str | None:
    """Python source for a numeric expression (parameters as ``names`` spells them), or
    None where it is not plain arithmetic on numbers (a comparison, a conditional, a
    string): such an expression is not printed, its parameters stay fixed."""
    text, _ = _render(expr, names)
    return text


def _render(expr, names) -> tuple[str | None, int]:
    kind = expr[0]
    if kind == "param":
        return names.get(expr[1]), 9
    if kind == "const":
        v = expr[1]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
            return None, 0
        return (repr(v), 9) if v >= 0 else (f"({v!r})", 9)
    if kind == "neg":
        inner, level = _render(expr[1], names)
        return (None, 0) if inner is None else (f"-{inner if level >= 3 else f'({inner})'}", 3)
    if kind == "call" and expr[1] in _CALLS:
        args = [_render(e, names)[0] for e in expr[2]]
        return (None, 0) if None in args else (f"{expr[1]}({', '.join(args)})", 9)
    if kind == "bin" and expr[1] in _PRECEDENCE:
        level = _PRECEDENCE[expr[1]]
        (left, ll), (right, rl) = _render(expr[2], names), _render(expr[3], names)
        if left is None or right is None:
            return None, 0
        left = left if ll >= level else f"({left})"
        right = right if rl > level else f"({right})"  # a - (b - c), a // (b * c)
        return f"{left} {expr[1]} {right}", level
    return None, 0
