"""Aligning the bodies of several instances of one module class into one template body.

The bodies are walked side by side. In a sequence (and among a group's branches) the
layers are matched by a longest common subsequence of their keys (kind, label, op or
class); a layer present in only some instances becomes ``if flag { ... }``, and two
adjacent runs present in complementary instances become ``if flag { a } else { b }``
(ResNet's ``downsample`` beside ``identity``). A call's arguments are compared column by
column (positional and keyword arguments bound to names through the op's signature, the
defaults filled in): equal values stay literals, differing ones become :class:`Column`
placeholders, which :mod:`.params` turns into block parameters. Among alignments of the
same length, the one pairing layers with more equal arguments wins.

Each instance's view is ``None`` where an enclosing layer is absent from it: its values
there are :data:`ABSENT` ("don't care").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import tree


class Incompatible(Exception):
    """The instances differ in a way one template cannot express."""


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()  # the instance does not have the layer: any value will do
MISSING = object()  # an argument without a default that a call did not give


@dataclass(eq=False)
class Column:
    """A value that differs between instances (one per instance, :data:`ABSENT` allowed).

    ``path`` is the labels (or op names) leading to the layer, ``arg`` the argument name
    (``""`` for a flag: then ``values`` are booleans, "this instance has the layer")."""

    values: list
    path: tuple[str, ...]
    arg: str
    op: str = ""
    # A "soft" column: every instance that has the layer agrees on this value, but some lack
    # the layer. It stays this literal unless a parameter of the same argument name has the
    # same values there (ResNet's `downsample: { conv2d(..., stride=stride) }`).
    constant: object = ABSENT


def same(a, b) -> bool:
    """Equality that tells ``1``, ``1.0`` and ``True`` apart (and looks into tuples)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def key(item) -> tuple:
    # what a layer reads by name is part of what it is: instances wired differently differ
    if isinstance(item, tree.Call):
        return ("call", item.label, item.op, item.reads)
    if isinstance(item, tree.Seq):
        return ("seq", item.label, item.reads)
    if isinstance(item, tree.Group):
        return ("group", item.label, item.mode, item.reads)
    if isinstance(item, tree.Instance):
        return ("inst", item.label, item.cls, item.container, item.reads)
    if isinstance(item, tree.Repeat):
        return ("repeat", item.var, tuple(key(i) for i in item.body))
    raise Incompatible(f"cannot align a {type(item).__name__}")


def _similarity(a, b, signature) -> float:
    """How alike two layers of the same key are, in [0, 0.5): the share of equal argument
    values (defaults filled in) and of keyword arguments both spell out (a tie-break, so
    that a layer pairs with its counterpart rather than a neighbour of the same op)."""
    if not isinstance(a, tree.Call) or not isinstance(b, tree.Call):
        return 0.0
    sig = signature(a.op)
    try:
        ba, bb = (_bind(a, sig), _bind(b, sig)) if sig is not None else (None, None)
    except Incompatible:
        ba = bb = None
    if ba is None:
        ba, bb = dict(enumerate(a.args)) | dict(a.kwargs), dict(enumerate(b.args)) | dict(b.kwargs)
    names = sorted(ba.keys() | bb.keys(), key=str)
    equal = sum(1 for k in names if k in ba and k in bb and same(ba[k], bb[k]))
    ka, kb = {k for k, _ in a.kwargs}, {k for k, _ in b.kwargs}
    total = len(names) + len(ka | kb)
    return 0.49 * (equal + len(ka & kb)) / total if total else 0.0


def _align_pairs(slots: list, items: list, keys: list, signature) -> list[tuple[int, int]]:
    """Index pairs matching ``slots`` (key, members) with ``items``: a longest common
    subsequence of keys, ties broken by similarity (deterministic)."""
    n, m = len(slots), len(items)

    def weight(i, j):
        if slots[i][0] != keys[j]:
            return None
        rep = next(x for x in slots[i][1] if x is not None)
        return 1.0 + _similarity(rep, items[j], signature)

    table = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            w = weight(i, j)
            best = max(table[i + 1][j], table[i][j + 1])
            table[i][j] = max(best, w + table[i + 1][j + 1]) if w is not None else best
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        w = weight(i, j)
        if w is not None and table[i][j] == w + table[i + 1][j + 1]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _is_identity(items: list) -> bool:
    return all(isinstance(it, tree.Call) and it.op == "identity" and it.label is None for it in items)


class Aligner:
    """Unifies ``n`` instance bodies; ``signature(op)`` gives ``[(name, default)]`` for an
    op or block (``MISSING`` for a required argument) or ``None`` when unknown."""

    def __init__(self, n: int, signature):
        self.n = n
        self.signature = signature
        self.columns: list[Column] = []

    def column(self, values: list, path: tuple[str, ...], arg: str, op: str = ""):
        """A literal if every instance that has the layer agrees, else a new :class:`Column`."""
        present = [v for v in values if v is not ABSENT]
        if all(same(v, present[0]) for v in present[1:]):
            if len(present) == len(values) or not arg or arg.startswith("#"):
                return present[0]
            col = Column(list(values), path, arg, op, constant=present[0])
            self.columns.append(col)
            return col
        col = Column(list(values), path, arg, op)
        self.columns.append(col)
        return col

    # ---- sequences ------------------------------------------------------------------------
    def items(self, lists: list, path: tuple[str, ...]) -> list:
        """The template of a sequence (or a group's branches): ``lists[i]`` is instance
        ``i``'s items, ``None`` where the enclosing layer is absent from it."""
        slots: list[tuple[tuple, list]] = []
        for i, items in enumerate(lists):
            if items is None:
                continue
            keys = [key(it) for it in items]
            pairs = _align_pairs(slots, items, keys, self.signature) + [(len(slots), len(items))]
            merged, si, ii = [], 0, 0
            for a, b in pairs:
                merged.extend(slots[si:a])
                for j in range(ii, b):
                    merged.append((keys[j], [None] * i + [items[j]] + [None] * (self.n - i - 1)))
                if a < len(slots):
                    slots[a][1][i] = items[b]
                    merged.append(slots[a])
                si, ii = a + 1, b + 1
            slots = merged
        runs: list[tuple[tuple, list]] = []  # (presence, template items)
        for _, members in slots:
            presence = tuple(ABSENT if lists[i] is None else members[i] is not None for i in range(self.n))
            item = self.item(members, path)
            if runs and runs[-1][0] == presence:
                runs[-1][1].append(item)
            else:
                runs.append((presence, [item]))
        # Two instances with layers here but none in common: different structures, not variants.
        have = [frozenset(k for k, (_, m) in enumerate(slots) if m[i] is not None) for i in range(self.n)]
        if any(a and b and not a & b for a in set(have) for b in set(have)):
            raise Incompatible("no layer in common")
        return self._conditionals(runs, path)

    def _conditionals(self, runs: list, path: tuple[str, ...]) -> list:
        out, k = [], 0
        while k < len(runs):
            presence, items = runs[k]
            if all(p is not False for p in presence):
                out.extend(items)
                k += 1
                continue
            orelse: list = []
            if k + 1 < len(runs) and _complementary(presence, runs[k + 1][0]):
                orelse = runs[k + 1][1]
                k += 1
                if _is_identity(items) and not _is_identity(orelse):
                    items, orelse = orelse, items
                    presence = tuple(p if p is ABSENT else not p for p in presence)
            k += 1
            cond = self.column(list(presence), path, "", _flag_name(items[0]))
            out.append(tree.If(cond, items, orelse))
        return out

    # ---- one layer ------------------------------------------------------------------------
    def item(self, members: list, path: tuple[str, ...]):
        present = [m for m in members if m is not None]
        first = present[0]
        if isinstance(first, tree.Call):
            return self.call(members, path + ((first.label,) if first.label else ()))
        if isinstance(first, tree.Seq):
            inner = path + (first.label,) if first.label else path
            return tree.Seq(
                self.items([None if m is None else m.items for m in members], inner), first.label, first.reads
            )
        if isinstance(first, tree.Group):
            inner = path + (first.label,) if first.label else path
            branches = self.items([None if m is None else m.branches for m in members], inner)
            return tree.Group(first.mode, branches, first.label, first.reads)
        if isinstance(first, tree.Repeat):
            label = next((getattr(i, "label", None) for i in first.body if getattr(i, "label", None)), None)
            name = label.split("{")[0].rstrip("_") if label else ""
            count = self.column(
                [ABSENT if m is None else m.count for m in members], path + ((name,) if name else ()), "count"
            )
            body = self.items([None if m is None else m.body for m in members], path)
            return tree.Repeat(count, body, first.var)
        inner = path + (first.label,) if first.label else path
        body = self.items([None if m is None else m.body.items for m in members], inner)
        return tree.Instance(
            first.cls, first.path, tree.Seq(body, first.body.label), first.label, first.container, first.reads
        )

    def call(self, members: list, path: tuple[str, ...]) -> tree.Call:
        present = [m for m in members if m is not None]
        first = present[0]
        sig = self.signature(first.op)
        npos = min(len(m.args) for m in present)
        if sig is None:
            if any(len(m.args) != npos or {k for k, _ in m.kwargs} != {k for k, _ in first.kwargs} for m in present):
                raise Incompatible(f"`{first.op}` calls with different argument lists")
            names = [f"#arg{k}" for k in range(npos)] + [k for k, _ in first.kwargs]
            sig = [(name, MISSING) for name in names]
        bound = [None if m is None else _bind(m, sig) for m in members]
        args, kwargs = [], []
        for idx, (name, default) in enumerate(sig):
            values = [ABSENT if b is None else b[name] for b in bound]
            present = [v for v in values if v is not ABSENT]
            if idx >= npos and default is not MISSING and all(same(v, default) for v in present):
                continue  # the default everywhere: omitted
            value = self.column(values, path, name.lstrip("#"), first.op)
            if idx < npos:
                args.append(value)
            else:
                kwargs.append((name, value))
        return tree.Call(first.op, tuple(args), tuple(kwargs), first.label, first.source, first.reads, first.named)


def _flag_name(item) -> str:
    """What a flag for an optional layer is called: its label, else ``with_<op>``."""
    label = getattr(item, "label", None)
    if label and not label.isdigit():
        return label
    what = getattr(item, "op", None) or getattr(item, "cls", None) or getattr(item, "mode", None) or "part"
    return "with_" + re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", what).lower()


def _complementary(a: tuple, b: tuple) -> bool:
    return all(x is ABSENT or y is ABSENT or x is not y for x, y in zip(a, b)) and any(x is True for x in a)


def _bind(call: tree.Call, sig: list) -> dict:
    names = [name for name, _ in sig]
    if len(call.args) > len(names):
        raise Incompatible(f"too many arguments to `{call.op}`")
    out = dict(zip(names, call.args))
    for name, value in call.kwargs:
        if name not in names or name in out:
            raise Incompatible(f"argument `{name}` of `{call.op}`")
        out[name] = value
    for name, default in sig:
        if name not in out:
            if default is MISSING:
                raise Incompatible(f"`{call.op}` without `{name}`")
            out[name] = default
    return out
