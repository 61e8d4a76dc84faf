"""Evaluation of archlang expressions (ints, floats, bools, strings, tuples, lists).

Integers are bounded so that a spec cannot make the compiler spend unbounded time or
memory on arithmetic (``2 ** 10 ** 10``).
"""

from __future__ import annotations

import difflib
import math
import operator
from contextvars import ContextVar

from archlang.diagnostics import Diagnostic, SpecError
from archlang.frontend import ir
from archlang.frontend.value_budget import _BUDGET, ITEMS_PER_STEP, MAX_STRING, Budget, budget, built, charge, measure  # noqa: F401

__all__ = ["Budget", "Env", "budget", "charge", "evaluate", "measure", "type_name"]

INT_LIMIT = 1 << 62
MAX_RANGE = 1 << 20


# Where the lowering running in this thread notes the network parameters that the
# expressions it evaluates read (see archlang.lower.symbolic); None outside lowering.
USES: ContextVar[set | None] = ContextVar("archlang_uses", default=None)


# Names every spec reads without defining them (a definition of its own comes first):
# `inf`, so a fill value can be `-inf` (max pooling's padding). Arithmetic that makes a NaN
# of it (`inf - inf`) is refused as any NaN is, and integer arguments refuse it.
CONSTANTS = {"inf": math.inf}


class Env:
    """A chain of name -> value mappings (consts, block parameters, loop variables).

    ``syms``: for names whose value came from network parameters, name -> (expression over
    them, the parameters it names) (:mod:`archlang.graph.symbolic`); reading such a name
    notes those parameters in :data:`USES`."""

    __slots__ = ("vars", "parent", "syms", "mutable")

    def __init__(self, parent: Env | None = None, values: dict | None = None, syms: dict | None = None):
        self.vars: dict = dict(values or {})
        self.parent = parent
        self.syms = syms
        self.mutable: set[str] | None = None  # names declared here with `var`

    def lookup(self, name: str):
        env = self
        while type(env) is Env:
            if name in env.vars:
                if env.syms is not None and name in env.syms:
                    uses = USES.get()
                    if uses is not None:
                        uses |= env.syms[name][1]
                return env.vars[name]
            env = env.parent
        if env is None:
            if name in CONSTANTS:
                return CONSTANTS[name]
            raise KeyError(name)
        return env.lookup(name)  # a subclass (lazy top-level constants) resolves its own names

    def names(self) -> set[str]:
        out, env = set(), self
        while type(env) is Env:
            out |= env.vars.keys()
            env = env.parent
        return out | CONSTANTS.keys() if env is None else out | env.names()

    def child(self, values: dict | None = None) -> Env:
        return Env(self, values)


def type_name(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if v is None:
        return "none"
    return {int: "int", float: "float", str: "str", tuple: "tuple", list: "list"}.get(type(v), type(v).__name__)


def _err(node, code, message, help=None):
    return SpecError(Diagnostic(code=code, message=message, span=node.span, help=help))


def _check_int(node, v):
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > INT_LIMIT:
        raise _err(node, "E604", "integer too large", help=f"values are limited to ±2**62 ({INT_LIMIT})")
    return v


def _short(v) -> str:
    import reprlib

    return f"{type_name(v)} {reprlib.repr(v)}"


def _num(node, v, side: str):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _err(node, "E305", f"expected a number on the {side} of this operator, got {type_name(v)}")
    return v


# The binary operators and their Python meaning (archlang.graph.symbolic evaluates kept
# expressions with the same tables and bounds).
ARITHMETIC = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "%": operator.mod,
    "//": operator.floordiv,
    "/": operator.truediv,
}
COMPARISONS = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _binop(node: ir.BinOp, env: Env):
    op = node.op
    if op == "and":
        left = _EVAL[node.left.kind](node.left, env)
        return _EVAL[node.right.kind](node.right, env) if _truth(node.left, left) else left
    if op == "or":
        left = _EVAL[node.left.kind](node.left, env)
        return left if _truth(node.left, left) else _EVAL[node.right.kind](node.right, env)
    left, right = _EVAL[node.left.kind](node.left, env), _EVAL[node.right.kind](node.right, env)
    if op in COMPARISONS:
        if (
            op not in ("==", "!=")
            and type_name(left) != type_name(right)
            and not (type_name(left) in ("int", "float") and type_name(right) in ("int", "float"))
        ):
            raise _err(node, "E305", f"cannot compare {type_name(left)} with {type_name(right)}")
        if isinstance(left, (tuple, list, str)):
            charge(node, 1 + min(measure(left)[0], measure(right)[0]) // ITEMS_PER_STEP)
        try:
            return COMPARISONS[op](left, right)
        except TypeError:  # tuples compare item by item: ("a", 1) < (true, 2)
            raise _err(node, "E305", f"cannot compare {_short(left)} with {_short(right)}") from None
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_STRING:
            raise _err(node, "E604", f"string too long (the limit is {MAX_STRING:,} characters)")
        charge(node, len(left) + len(right))
        return left + right
    if op == "+" and isinstance(left, (tuple, list)) and type(left) is type(right):
        if len(left) + len(right) > MAX_RANGE:
            raise _err(node, "E604", f"sequence too long (the limit is {MAX_RANGE:,} items)")
        return built(node, left + right)
    _num(node.left, left, "left")
    _num(node.right, right, "right")
    if op == "**":
        if isinstance(left, int) and isinstance(right, int) and right >= 0:
            # |left| >= 2**(bits-1), so the result has at least right*(bits-1) bits: refuse
            # before computing anything that large (2 ** 10 ** 10), allow up to 2**62.
            if abs(left) > 1 and right * (abs(left).bit_length() - 1) > 63:
                raise _err(node, "E604", "integer power too large", help=f"values are limited to ±2**62 ({INT_LIMIT})")
        try:
            result = left**right
        except (OverflowError, ZeroDivisionError):
            raise _err(node, "E604", "power out of range") from None
        if isinstance(result, complex) or result != result:  # (-8) ** 0.5 is complex in Python
            raise _err(node, "E305", "result is not a real number")
        return _check_int(node, result)
    if op in ("/", "//", "%") and right == 0:
        raise _err(node, "E305", "division by zero")
    try:
        result = ARITHMETIC[op](left, right)
    except OverflowError:
        raise _err(node, "E604", "number out of range") from None
    if isinstance(result, float) and result != result:  # NaN
        raise _err(node, "E305", "result is not a number")
    return _check_int(node, result)


def _truth(node, v) -> bool:
    if not isinstance(v, bool):
        raise _err(
            node,
            "E305",
            f"expected true or false, got {type_name(v)}",
            help="conditions must be booleans; compare explicitly, e.g. `n > 0`",
        )
    return v


def _fn_range(node, args):
    if not 1 <= len(args) <= 3 or not all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        raise _err(node, "E305", "range takes 1 to 3 integers")
    try:
        r = range(*args)
        n = len(r)
    except (ValueError, OverflowError):  # a zero step; a length beyond sys.maxsize
        raise _err(
            node,
            "E305" if 0 in args[2:] else "E603",
            "range step must not be zero" if 0 in args[2:] else "range is too long",
        ) from None
    if n > MAX_RANGE:
        raise _err(node, "E603", f"range of {n} items is beyond the limit of {MAX_RANGE}")
    return built(node, tuple(r))


def _fn_len(node, args):  # O(1): nothing to charge
    if len(args) != 1 or not isinstance(args[0], (tuple, list, str)):
        raise _err(node, "E305", "len takes one tuple, list or string")
    return len(args[0])


def _fn_minmax(fn):
    def call(node, args):
        items = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
        if not items or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in items):
            raise _err(node, "E305", f"{fn.__name__} takes numbers")
        charge(node, len(items))
        return fn(items)

    return call


def _fn_int(node, args):
    if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], (int, float)):
        raise _err(node, "E305", "int takes one number")
    try:
        return _check_int(node, int(args[0]))
    except (OverflowError, ValueError):
        raise _err(node, "E604", "number out of range") from None


def _fn_float(node, args):
    if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], (int, float)):
        raise _err(node, "E305", "float takes one number")
    return float(args[0])


def _fn_str(node, args):
    if len(args) != 1:
        raise _err(node, "E305", "str takes one value")
    v = args[0]
    if isinstance(v, (tuple, list)):
        size = measure(v)[0]
        if size > MAX_STRING:
            raise _err(node, "E604", f"string too long (the limit is {MAX_STRING:,} characters)")
        charge(node, size)
    text = str(v).lower() if isinstance(v, bool) else str(v)
    if len(text) > MAX_STRING:
        raise _err(node, "E604", f"string too long (the limit is {MAX_STRING:,} characters)")
    return text


def _fn_abs(node, args):
    if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], (int, float)):
        raise _err(node, "E305", "abs takes one number")
    return abs(args[0])


FUNCTIONS = {
    "range": _fn_range,
    "len": _fn_len,
    "min": _fn_minmax(min),
    "max": _fn_minmax(max),
    "int": _fn_int,
    "float": _fn_float,
    "str": _fn_str,
    "abs": _fn_abs,
}


def _name(node: ir.Name, env: Env):
    try:
        return env.lookup(node.id)
    except KeyError:
        close = difflib.get_close_matches(node.id, env.names(), n=1)
        raise _err(
            node,
            "E301",
            f"undefined name `{node.id}`",
            help=f"did you mean `{close[0]}`?"
            if close
            else "names must be parameters, constants or loop variables defined before use",
        ) from None


def _index(node: ir.Index, env: Env):
    seq = _EVAL[node.value.kind](node.value, env)
    idx = _EVAL[node.index.kind](node.index, env)
    if not isinstance(seq, (tuple, list, str)):
        raise _err(node.value, "E305", f"cannot index a {type_name(seq)}")
    if not isinstance(idx, int) or isinstance(idx, bool):
        raise _err(node.index, "E305", f"index must be an integer, got {type_name(idx)}")
    if not -len(seq) <= idx < len(seq):
        raise _err(node.index, "E305", f"index {idx} out of range for length {len(seq)}")
    return seq[idx]


def _unary(node: ir.UnaryOp, env: Env):
    v = _EVAL[node.operand.kind](node.operand, env)
    if node.op == "not":
        return not _truth(node.operand, v)
    return -_num(node.operand, v, "right")


def _func(node: ir.FuncCall, env: Env):
    fn = FUNCTIONS.get(node.func)
    if fn is None:
        close = difflib.get_close_matches(node.func, FUNCTIONS, n=1)
        raise _err(
            node,
            "E301",
            f"unknown function `{node.func}`",
            help=f"did you mean `{close[0]}`?" if close else f"functions: {', '.join(sorted(FUNCTIONS))}",
        )
    args = []
    for a in node.args:  # a loop, not a comprehension: one frame less per nesting level
        args.append(_EVAL[a.kind](a, env))
    return fn(node, args)


def _if_expr(node: ir.IfExpr, env: Env):
    branch = node.then if _truth(node.test, _EVAL[node.test.kind](node.test, env)) else node.orelse
    return _EVAL[branch.kind](branch, env)


def _items(node, env: Env) -> tuple:
    out = []
    for item in node.items:
        out.append(_EVAL[item.kind](item, env))
    return built(node, tuple(out))


def _literal(node, env: Env):
    value = node.value
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise _err(node, "E604", f"string too long (the limit is {MAX_STRING:,} characters)")
    return value


# Evaluators call each other through this table directly, not through `evaluate`: one
# Python frame per level of expression nesting (see syntax.MAX_NESTING, lower.MAX_LOWER_DEPTH).
_EVAL = {
    "const": _literal,
    "dims": lambda node, env: node.values,
    "name": _name,
    "binop": _binop,
    "unary": _unary,
    "if_expr": _if_expr,
    "func_call": _func,
    "index": _index,
    "tuple": _items,
    "list": _items,
}


def evaluate(node, env: Env):
    """Evaluate an IR expression; raise :class:`SpecError` with the node's span on error."""
    return _EVAL[node.kind](node, env)


def source_text(node) -> str:
    """``node`` written back as archlang source, for usage lines (``stride: int = 1``);
    operands that are themselves operations are parenthesised, so the text parses back
    to the same tree whatever the precedence."""

    def inner(n) -> str:
        text = source_text(n)
        return f"({text})" if isinstance(n, ir.BinOp | ir.IfExpr) else text

    match node:
        case ir.Const(value=bool() as v):
            return str(v).lower()
        case ir.Const(value=None):
            return "none"
        case ir.Const(value=str() as v):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        case ir.Const(value=v):
            return repr(v)
        case ir.Dims(values=values):
            return "x".join(map(str, values))
        case ir.Name(id=name):
            return name
        case ir.BinOp(op=op, left=left, right=right):
            return f"{inner(left)} {op} {inner(right)}"
        case ir.UnaryOp(op=op, operand=operand):
            return f"{op}{' ' if op == 'not' else ''}{inner(operand)}"
        case ir.IfExpr(test=test, then=then, orelse=orelse):
            return f"if {inner(test)} then {inner(then)} else {inner(orelse)}"
        case ir.FuncCall(func=func, args=args):
            return f"{func}({', '.join(map(source_text, args))})"
        case ir.Index(value=value, index=index):
            return f"{inner(value)}[{source_text(index)}]"
        case ir.TupleExpr(items=(item,)):
            return f"({source_text(item)},)"
        case ir.TupleExpr(items=items):
            return f"({', '.join(map(source_text, items))})"
        case ir.ListExpr(items=items):
            return f"[{', '.join(map(source_text, items))}]"
    return "..."
