"""``repeat n { call }`` for runs of identical calls in a labelled sequence.

An unlabelled layer of a labelled sequence is named by its position (``nn.Sequential``'s
numbering, docs/language.md), also inside a ``repeat``: so a run of identical calls whose
labels are their positions (``"1"``, ``"2"``, ``"3"``) can drop the labels and become one
``repeat`` without changing a single name (``layer1.1..3`` stay).
"""

from __future__ import annotations

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
        and same(a.args, b.args)
        and len(a.kwargs) == len(b.kwargs)
        and all(x[0] == y[0] and same(x[1], y[1]) for x, y in zip(a.kwargs, b.kwargs))
    )


def _positional(item, index: int) -> bool:
    return isinstance(item, tree.Call) and item.label == str(index)


def fold_items(items: list) -> list:
    """``items`` (a labelled sequence's) with runs of identical positional calls folded."""
    out, i = [], 0
    while i < len(items):
        j = i + 1
        if _positional(items[i], i):
            while j < len(items) and _positional(items[j], j) and _identical(items[i], items[j]):
                j += 1
        if j - i >= MIN_RUN:
            call = items[i]
            out.append(tree.Repeat(j - i, [tree.Call(call.op, call.args, call.kwargs, None, call.source)]))
        else:
            out.extend(items[i:j])
        i = j
    return out


def fold(item) -> None:
    """Fold every labelled sequence in ``item``, in place."""
    for child in walk(item):
        fold(child)
    if isinstance(item, tree.Seq) and item.label is not None:
        item.items = fold_items(item.items)
    elif isinstance(item, tree.Instance) and item.label is not None:
        item.body.items = fold_items(item.body.items)
