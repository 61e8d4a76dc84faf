"""Block parameters from the columns of an alignment (:mod:`.align`).

Columns that agree wherever both are defined share one parameter (columns of different
arguments only when they take 3 or more distinct values); an integer column that is a
fixed multiple (>= 2) of an earlier parameter becomes ``p * k``, half an odd one ``p // 2``
(a kernel's "same" padding), a flag that is the negation of one of the same name ``not p``.
A parameter is typed by its values (``int``, ``float``, ``bool``, ``str``; untyped for
tuples and mixtures), named after its argument (``channels``, ``stride``, ``kernel``) when
that is unambiguous in the block, else after the nearest labels too (``conv1_channels``,
``branch2_channels``), and gets a default when most calls agree on a value (a flag always:
its most common value, ``false`` on a tie; others from 4 calls with 2/3 agreeing, or from
10 with more than half); calls then omit it.
"""

from __future__ import annotations

import keyword
import re
from collections import Counter
from dataclasses import dataclass, field

from archlang.importer.align import ABSENT, Column, same

from . import tree

# Names a parameter must not take: the language's keywords, its functions, the ops.
RESERVED = {
    *"network block import const input unit init aux at outputs if elif else then for in repeat as".split(),
    *"concat add mul and or not true false none range len min max int float str abs conv".split(),
}
ARG_NAMES = {"out_channels": "channels", "out_features": "features", "kernel_size": "kernel"}
_MIN_DISTINCT_FOR_EXPR = 3  # a relation seen on fewer distinct values is likely chance


@dataclass(eq=False)
class _Param:
    values: list
    first: Column
    type: str | None = None
    default: object = ABSENT
    name: str = ""
    columns: list = field(default_factory=list)


def _compatible(a: list, b: list) -> bool:
    return all(x is ABSENT or y is ABSENT or same(x, y) for x, y in zip(a, b))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _multiple(p: list, c: list) -> int | None:
    """``k`` with ``c[i] == k * p[i]`` wherever ``c`` is defined, if there is one."""
    k = None
    for x, y in zip(p, c):
        if y is ABSENT:
            continue
        if not (_is_int(x) and _is_int(y)) or x <= 0 or y % x:
            return None
        if k is None:
            k = y // x
        elif k != y // x:
            return None
    return k if k is not None and k >= 2 else None


def _half(p: list, c: list) -> bool:
    """``c[i] == p[i] // 2`` with every ``p[i]`` odd: "same" padding for a kernel size."""
    pairs = [(x, y) for x, y in zip(p, c) if y is not ABSENT]
    return len({y for _, y in pairs}) >= 2 and all(
        _is_int(x) and _is_int(y) and x % 2 == 1 and y == x // 2 for x, y in pairs
    )


def _negation(p: list, c: list) -> bool:
    return all(y is ABSENT or (isinstance(x, bool) and isinstance(y, bool) and x is not y) for x, y in zip(p, c))


def _word(col: Column) -> str:
    """What a column is about: its argument (``out_channels`` and a block's ``channels``
    alike), or the optional layer of a flag."""
    return "flag:" + col.op if col.arg == "" else ARG_NAMES.get(col.arg, col.arg)


def _distinct(values: list) -> list:
    out: list = []
    for v in values:
        if v is not ABSENT and not any(same(v, w) for w in out):
            out.append(v)
    return out


def _type(values: list) -> str | None:
    present = [v for v in values if v is not ABSENT]
    if all(isinstance(v, bool) for v in present):
        return "bool"
    if all(_is_int(v) for v in present):
        return "int"
    if all(isinstance(v, float) for v in present):
        return "float"
    if all(isinstance(v, str) for v in present):
        return "str"
    return None


def _mode(values: list):
    present = [v for v in values if v is not ABSENT]
    counts: list[list] = []  # [value, count] in first-seen order
    for v in present:
        for entry in counts:
            if same(entry[0], v):
                entry[1] += 1
                break
        else:
            counts.append([v, 1])
    best = max(counts, key=lambda e: e[1])
    if best[0] is not False and any(e[0] is False and e[1] == best[1] for e in counts):
        best = next(e for e in counts if e[0] is False)
    return best[0], best[1], len(present)


def _snake(text: str) -> str:
    """``Conv2dNormActivation`` -> ``conv2d_norm_activation`` (a label stays as it is)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", text).lower() if text[:1].isupper() else text


def _identifier(text: str) -> str:
    text = re.sub(r"\W", "_", text).strip("_") or "p"
    return "p_" + text if text[0].isdigit() else text


class Parameters:
    """The parameters of one block: :meth:`value` maps a column to what the template says."""

    def __init__(self, columns: list[Column], reserved: set[str]):
        self.params: list[_Param] = []
        self.of: dict[int, object] = {}  # id(column) -> _Param | (op, _Param, k)
        for col in columns:
            if col.constant is ABSENT:
                self._add(col)
        for col in columns:
            if col.constant is not ABSENT:
                self._soft(col)
        for p in self.params:
            self._finish(p)
        self._name(reserved)
        self.params.sort(key=lambda p: p.default is not ABSENT)  # required ones first (stable)

    def _soft(self, col: Column) -> None:
        for p in self.params:
            if p.first.arg == col.arg and _compatible(p.values, col.values):
                p.values = [y if x is ABSENT else x for x, y in zip(p.values, col.values)]
                self.of[id(col)] = p
                return
        self.of[id(col)] = ("const", None, col.constant)

    def _add(self, col: Column) -> None:
        # Two columns of different arguments (or flags of different layers) share a parameter
        # only on strong evidence (3+ distinct values: depthwise `groups=channels`); on 2
        # values it is likely chance (a kernel 1/3 column beside a stride 1/3 one).
        strong = len(_distinct(col.values)) >= _MIN_DISTINCT_FOR_EXPR
        for p in self.params:
            if (strong or _word(p.first) == _word(col)) and _compatible(p.values, col.values):
                p.values = [y if x is ABSENT else x for x, y in zip(p.values, col.values)]
                p.columns.append(col)
                self.of[id(col)] = p
                return
        for p in self.params:
            if _word(p.first) == _word(col) and _negation(p.values, col.values):
                self.of[id(col)] = ("not", p, None)
                return
            if _half(p.values, col.values):
                self.of[id(col)] = ("half", p, 2)
                return
            k = _multiple(p.values, col.values)
            if k is not None and strong:
                self.of[id(col)] = ("mul", p, k)
                return
        p = _Param(list(col.values), col, columns=[col])
        self.params.append(p)
        self.of[id(col)] = p

    def _finish(self, p: _Param) -> None:
        p.type = _type(p.values)
        mode, count, n = _mode(p.values)
        if p.type == "bool" or (mode is not None and ((n >= 4 and 3 * count >= 2 * n) or (n >= 10 and 2 * count > n))):
            p.default = mode
        fill = mode if p.default is ABSENT else p.default
        p.values = [fill if v is ABSENT else v for v in p.values]

    def _name(self, reserved: set[str]) -> None:
        """The argument's name (``stride``); where two parameters would share one, the
        nearest label (``conv1_channels``), then more of the path, until they differ."""
        bad = RESERVED | reserved
        words, paths = [], []
        for p in self.params:
            col = p.first
            if col.arg == "":  # a flag: named after the optional layer
                words.append(_identifier(col.op))
                paths.append(())
            else:
                words.append(_identifier(ARG_NAMES.get(col.arg, col.arg)))
                paths.append(tuple(_snake(x) for x in col.path))
        depth = [0] * len(words)

        def name(k: int) -> str:
            parts = paths[k][len(paths[k]) - depth[k] :] if depth[k] else ()
            return _identifier("_".join((*parts, words[k])))

        while True:
            names = [name(k) for k in range(len(words))]
            count = Counter(names)
            grow = [k for k, n in enumerate(names) if (count[n] > 1 or n in bad) and depth[k] < len(paths[k])]
            if not grow:
                break
            for k in grow:
                depth[k] += 1
        taken: set[str] = set()
        for p, base in zip(self.params, names):
            if base in bad or keyword.iskeyword(base):
                base = "with_" + base if p.first.arg == "" else base + "_"
            candidate, k = base, 2
            while candidate in taken or candidate in bad:
                candidate, k = f"{base}_{k}", k + 1
            taken.add(candidate)
            p.name = candidate

    def value(self, col: Column):
        ref = self.of[id(col)]
        if isinstance(ref, _Param):
            return tree.Param(ref.name)
        op, p, k = ref
        if op == "const":
            return k
        if op == "not":
            return tree.Expr(f"not {p.name}")
        return tree.Expr(f"{p.name} // {k}" if op == "half" else f"{p.name} * {k}")

    def signature(self) -> list[tuple[str, str | None, object]]:
        """``BlockDef.params``: (name, type, default or ``None`` for none)."""
        return [(p.name, p.type, None if p.default is ABSENT else p.default) for p in self.params]

    def defaults(self) -> list[tuple[str, object]]:
        """(name, default or ABSENT) in signature order (what a caller may omit)."""
        return [(p.name, p.default) for p in self.params]

    def call_args(self, i: int) -> tuple[tuple, tuple]:
        """Instance ``i``'s arguments: required ones positional, the others by keyword when
        they differ from the default."""
        args = tuple(p.values[i] for p in self.params if p.default is ABSENT)
        kwargs = tuple(
            (p.name, p.values[i]) for p in self.params if p.default is not ABSENT and not same(p.values[i], p.default)
        )
        return args, kwargs
