"""``repeat n { call }`` for runs of identical calls in a labelled sequence.

An unlabelled layer of a labelled sequence is named by its position (``nn.Sequential``'s
numbering, docs/language.md), also inside a ``repeat``: so a run of identical calls whose
labels are their positions (``"1"``, ``"2"``, ``"3"``) can drop the labels and become one
``repeat`` without changing a single name (``layer1.1..3`` stay).

Runs of at least three layers that differ only in labels counting up by one (DenseNet's
``denselayer1``, ``denselayer2``, ...) become ``repeat n as i { "denselayer{i + 1}": ... }``
(name templates: the same names again).
"""

from __future__ import annotations

import copy
import re

from . import tree
from .align import same

MIN_RUN = 2


def walk(item) -> list:
    """The layers directly inside ``item``."""
    if isinstance(item, tree.Seq):
        return item.items
    if isinstance(item, tree.Group):
        return item.branches
    if isinstance(item, tree.Instance):
        return item.body.items
    if isinstance(item, tree.If):
        return item.then + item.orelse
    if isinstance(item, tree.Repeat):
        return item.body
    return []


def _identical(a, b) -> bool:
    return (
        isinstance(a, tree.Call)
        and isinstance(b, tree.Call)
        and a.op == b.op
        and not a.reads
        and not b.reads
        and not a.named
        and not b.named
        and same(a.args, b.args)
        and len(a.kwargs) == len(b.kwargs)
        and all(x[0] == y[0] and same(x[1], y[1]) for x, y in zip(a.kwargs, b.kwargs))
    )


def positions(items: list) -> list:
    """The position name (nn.Sequential's number) each item's first layer gets in a labelled
    sequence; ``None`` from where it is not known without evaluating (an ``if``, an
    unlabelled sequence or group, whose layers count too)."""
    out: list = []
    pos = 0
    for it in items:
        out.append(pos)
        if pos is None:
            continue
        if isinstance(it, tree.Call) or (isinstance(it, (tree.Seq, tree.Group, tree.Instance)) and it.label):
            pos += 1
        elif isinstance(it, tree.Repeat) and _is_int(it.count) and all(isinstance(b, tree.Call) for b in it.body):
            pos += it.count * len(it.body)
        else:
            pos = None
    return out


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positional(item, pos) -> bool:
    return isinstance(item, tree.Call) and (item.label is None or (pos is not None and item.label == str(pos)))


def fold_items(items: list) -> list:
    """``items`` (a labelled sequence's) with runs of identical positional calls folded."""
    pos = positions(items)
    out, i = [], 0
    while i < len(items):
        j = i + 1
        if _positional(items[i], pos[i]):
            while j < len(items) and _positional(items[j], pos[j]) and _identical(items[i], items[j]):
                j += 1
        if j - i >= MIN_RUN:
            call = items[i]
            out.append(tree.Repeat(j - i, [tree.Call(call.op, call.args, call.kwargs, None, call.source)]))
        else:
            out.extend(items[i:j])
        i = j
    return out


def implicit(item, refs: frozenset | set = frozenset(), again: frozenset | set = frozenset()) -> None:
    """Drop the labels that name a call by its position in a labelled sequence (``"0"``,
    ``"1"``: the language names it so anyway), in place: ``downsample: { conv2d(...);
    batchnorm }`` as a person writes it, and calls align by what they are, not where.
    ``again``: sequences that go on an earlier one (:func:`~.tree.continued`), whose
    positions do not start at 0."""
    for child in walk(item):
        implicit(child, refs, again)
    scope = isinstance(item, (tree.Seq, tree.Instance)) and item.label is not None and id(item) not in again
    if scope:
        items = item.items if isinstance(item, tree.Seq) else item.body.items
        for k, (it, pos) in enumerate(zip(items, positions(items))):
            if isinstance(it, tree.Call) and pos is not None and it.label == str(pos) and it.label not in refs:
                items[k] = tree.Call(it.op, it.args, it.kwargs, None, it.source, it.reads)


def fold(item, refs: frozenset | set = frozenset(), again: frozenset | set = frozenset()) -> None:
    """Fold every labelled sequence in ``item``, in place; a sequence a ``from`` reads into
    (``refs``: :func:`~.tree.read_names`) keeps its layers by position, as does one that
    goes on an earlier one (``again``)."""
    for child in walk(item):
        fold(child, refs, again)
    if getattr(item, "label", None) in refs or id(item) in again:
        return
    if isinstance(item, tree.Seq) and item.label is not None:
        item.items = fold_items(item.items)
    elif isinstance(item, tree.Instance) and item.label is not None:
        item.body.items = fold_items(item.body.items)


# ---- runs of layers whose labels count up: `repeat n as i { "denselayer{i + 1}": ... }` ----

MIN_INDEXED_RUN = 3
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _skeleton(item, numbers: list) -> tuple:
    """``item`` with numbered labels as (prefix, "#") and values typed, hashable; the
    numbers go to ``numbers`` in order."""

    def lab(label):
        m = _NUMBERED.match(label) if label is not None else None
        if m is None or len(m.group(2)) > 1 and m.group(2).startswith("0"):
            return label
        numbers.append(int(m.group(2)))
        return (m.group(1), "#")

    def val(v):
        return tuple(val(x) for x in v) if isinstance(v, tuple) else (type(v).__name__, v)

    if isinstance(item, tree.Call):
        return ("call", item.op, val(item.args), tuple((k, val(v)) for k, v in item.kwargs), lab(item.label))
    if isinstance(item, tree.Seq):
        return ("seq", lab(item.label), tuple(_skeleton(i, numbers) for i in item.items))
    if isinstance(item, tree.Group):
        return ("group", item.mode, lab(item.label), tuple(_skeleton(i, numbers) for i in item.branches))
    if isinstance(item, tree.Instance):
        inner = tuple(_skeleton(i, numbers) for i in item.body.items)
        return ("inst", item.cls, item.container, lab(item.label), inner)
    if isinstance(item, tree.Repeat):
        return ("repeat", val(item.count), item.var, tuple(_skeleton(i, numbers) for i in item.body))
    if isinstance(item, tree.If):
        then = tuple(_skeleton(i, numbers) for i in item.then)
        return ("if", val(item.cond), then, tuple(_skeleton(i, numbers) for i in item.orelse))
    return ("other", id(item))


def _vars(item) -> set[str]:
    out = {item.var} if isinstance(item, tree.Repeat) and item.var else set()
    for child in walk(item):
        out |= _vars(child)
    return out


def _template(item, var: str):
    """A copy of ``item`` whose numbered labels count with ``var``."""
    item = copy.deepcopy(item)

    def relabel(it):
        label = getattr(it, "label", None)
        m = _NUMBERED.match(label) if label is not None else None
        if m is not None and not (len(m.group(2)) > 1 and m.group(2).startswith("0")):
            n = int(m.group(2))
            it.label = m.group(1) + "{" + (var if n == 0 else f"{var} + {n}") + "}"
        for child in walk(it):
            relabel(child)

    relabel(item)
    return item


def fold_indexed_items(items: list, refs: frozenset | set = frozenset()) -> list:
    """``items`` with runs (of at least :data:`MIN_INDEXED_RUN`) of layers that differ only
    in labels counting up by one folded into ``repeat n as i``."""
    shapes = []
    for it in items:
        numbers: list[int] = []
        skeleton = _skeleton(it, numbers)
        shapes.append((skeleton, [] if _wired(it) or getattr(it, "label", None) in refs else numbers))
    out, i = [], 0
    while i < len(items):
        j = i + 1
        skeleton, numbers = shapes[i]
        while (
            numbers and j < len(items) and shapes[j][0] == skeleton and shapes[j][1] == [n + (j - i) for n in numbers]
        ):
            j += 1
        if j - i >= MIN_INDEXED_RUN:
            taken = _vars(items[i])
            var = next(v for v in ("i", "j", "k", "i2", "j2", "k2", "i3") if v not in taken)
            out.append(tree.Repeat(j - i, [_template(items[i], var)], var))
        else:
            out.extend(items[i:j])
        i = j
    return out


def _wired(item) -> bool:
    """Does ``item`` read or give a named value (`from`)? A repeat would rename them."""
    if getattr(item, "reads", ()) or getattr(item, "named", False):
        return True
    return any(_wired(child) for child in walk(item))


def fold_indexed(item, refs: frozenset | set = frozenset()) -> None:
    """Fold counted runs everywhere inside ``item``, in place (innermost first)."""
    for child in walk(item):
        fold_indexed(child, refs)
    if isinstance(item, tree.Seq):
        item.items = fold_indexed_items(item.items, refs)
    elif isinstance(item, tree.Group):
        item.branches = fold_indexed_items(item.branches, refs)
    elif isinstance(item, tree.Instance):
        item.body.items = fold_indexed_items(item.body.items, refs)
    elif isinstance(item, tree.If):
        item.then = fold_indexed_items(item.then, refs)
        item.orelse = fold_indexed_items(item.orelse, refs)
    elif isinstance(item, tree.Repeat):
        item.body = fold_indexed_items(item.body, refs)
