"""Symbolic constructor values for generated classes.

A generated block class is shared by several instances. While an instance is described,
every width, rate or stride in a constructor call becomes a :class:`Slot` holding that
instance's value; channel counts that follow from others (``in_channels``, sums through
concat, products through flatten, exact divisions through split) are :class:`Lin`
expressions over slots. A class then
*binds* each slot to source text, from the values seen in all its instances
(:func:`bind_group`): a template parameter (``planes``), a multiple of one
(``planes * 4``), or a literal. This module does not import torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from .pyfmt import Call, Kw, Seq, py_value

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Slot:
    """A value in a constructor call; ``default``: PyTorch's default for that keyword (a
    keyword bound to a literal equal to it is left out, as a person would write it)."""

    index: int
    default: object = _NO_DEFAULT


@dataclass(frozen=True)
class Lin:
    """A channel count: sum of coeff × symbol plus a constant (symbols: slot indices or "in")."""

    terms: tuple[tuple[object, int], ...] = ()
    const: int = 0

    def scale(self, k: int) -> Lin:
        return Lin(tuple((s, c * k) for s, c in self.terms), self.const * k)

    def divide(self, k: int) -> Lin:
        """``self // k`` where the division is exact (``split`` of a width ``k`` divides)."""
        return Lin(tuple((s, Fraction(c, k)) for s, c in self.terms), Fraction(self.const, k))

    def __add__(self, other: Lin) -> Lin:
        terms = dict(self.terms)
        for s, c in other.terms:
            terms[s] = terms.get(s, 0) + c
        return Lin(tuple(terms.items()), self.const + other.const)


IN = Lin((("in", 1),))


@dataclass(frozen=True)
class Scaled:
    """A slot bound to ``param * factor`` (``planes * 4``)."""

    param: str
    factor: int

    def __str__(self) -> str:
        return self.param if self.factor == 1 else f"{self.param} * {self.factor}"


def _text(bound) -> str:
    return str(bound) if isinstance(bound, (str, Scaled)) else py_value(bound)


def _render_lin(lin: Lin, binding: dict) -> str:
    # Fractional coefficients (from an exact `split`) share one floor division, taken last:
    # (a + b) / 2 is `(a + b) // 2`, never `a // 2 + b // 2`.
    q = math.lcm(*(Fraction(c).denominator for _, c in lin.terms), Fraction(lin.const).denominator)
    const, parts = lin.const * q, []
    for sym, coeff in lin.terms:
        expr, coeff = binding[sym], coeff * q
        if isinstance(expr, (int, float)) and not isinstance(expr, bool):
            const += coeff * expr
        else:
            text = _text(expr)
            if coeff != 1 and (" + " in text or " - " in text):  # a network argument's `a + b`
                text = f"({text})"
            parts.append(text if coeff == 1 else f"{text} * {int(coeff)}")
    if const or not parts:
        parts.append(str(int(const) if Fraction(const).denominator == 1 else const))
    if q == 1:
        return " + ".join(parts)
    if not parts[1:] and parts[0].isdigit():
        return str(int(parts[0]) // q)
    return f"{parts[0]} // {q}" if len(parts) == 1 and " " not in parts[0] else f"({' + '.join(parts)}) // {q}"


def _is_default(value, binding: dict) -> bool:
    if not isinstance(value, Slot) or value.default is _NO_DEFAULT:
        return False
    bound = binding[value.index]
    return not isinstance(bound, (str, Scaled)) and bound == value.default


def bind_slots(value, binding: dict):
    """Replace slots and channel expressions in a value tree by source text."""
    if isinstance(value, Slot):
        return _text(binding[value.index])
    if isinstance(value, Lin):
        return _render_lin(value, binding)
    if isinstance(value, Call):
        kwargs = [(k, bind_slots(v, binding)) for k, v in value.kwargs if not _is_default(v, binding)]
        return Call(value.func, [bind_slots(a, binding) for a in value.args], kwargs, value.explode, value.subscript)
    if isinstance(value, Kw):
        return Kw(value.name, bind_slots(value.value, binding))
    if isinstance(value, Seq):
        return Seq(value.open, value.close, [bind_slots(i, binding) for i in value.items], value.explode)
    if isinstance(value, tuple):
        return tuple(bind_slots(v, binding) for v in value)
    return value


class Placeholders(dict):
    """Binding used for structure keys: every symbol renders as a marker."""

    def __missing__(self, key):
        return f"<{key}>"


def _same(a, b) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return False
    return type(a) is type(b) and a == b


def _param_match(members: list, params: list[str], values: list, role: str, defaults: dict, attr=None):
    """The parameter (or ``parameter * k``) that gives this slot's value in every instance.
    A stride equal in every instance is that parameter only if the parameter is not at its
    default there: a conv's stride of 1 beside a parameter left at 1 is more likely a fixed
    1 than the parameter. Nor is it another parameter that happens to be 1 too when the
    block has one named like the argument (``stride``): ``stride=k`` would read as a bug."""
    fixed = role == "size" and all(v == values[0] for v in values)
    if fixed and attr in params:
        params = [attr]
    for q in params:
        if fixed and _same(defaults.get(q), values[0]):
            continue
        if all(_same(d.plan.args.get(q), v) for d, v in zip(members, values)):
            return q
    # A multiple needs two instances with different parameter values as evidence.
    for q in params:
        qs = [d.plan.args.get(q) for d in members]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in [*qs, *values]):
            continue
        if len(set(qs)) < 2 or values[0] % qs[0]:
            continue
        k = values[0] // qs[0]
        if k > 1 and all(v == k * p for p, v in zip(qs, values)):
            return Scaled(q, k)
    return None


def bind_group(members: list, params: list[str], defaults: dict | None = None):
    """Bind each slot to a parameter (or a multiple of one) that equals it in every instance,
    else a literal equal in every instance; split the group by the values of slots that fit
    neither. ``defaults``: the template parameters' literal defaults. Returns
    ``[(members, binding)]``."""
    binding: dict = {"in": "in_channels"}
    loose = []
    for i in range(len(members[0].slots)):
        values = [d.slots[i] for d in members]
        origin = members[0].origins[i] if i < len(members[0].origins) else None
        attr = origin[1] if isinstance(origin, tuple) and len(origin) == 2 else None
        match = _param_match(members, params, values, members[0].roles[i], defaults or {}, attr)
        if match is not None:
            binding[i] = match
        elif all(_same(v, values[0]) or v == values[0] for v in values):
            binding[i] = values[0]
        else:
            loose.append(i)
    if not loose:
        return [(members, binding)]
    split: dict[tuple, list] = {}
    for d in members:
        split.setdefault(tuple(repr(d.slots[i]) for i in loose), []).append(d)
    out = []
    for sub in split.values():
        out += bind_group(sub, params, defaults)
    return out


def used_params(binding: dict) -> set[str]:
    """The template parameters a binding refers to."""
    out = set()
    for key, bound in binding.items():
        if key == "in" or isinstance(key, str) and key.startswith("in:"):
            continue
        if isinstance(bound, Scaled):
            out.add(bound.param)
        elif isinstance(bound, str):
            out.add(bound)
    return out
