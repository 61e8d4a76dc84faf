"""Containers whose children are called one by one, across a group: one labelled sequence.

A module's forward may call the children of an ``nn.ModuleDict`` / ``nn.ModuleList`` it
owns directly (``self.heads["a"](x)``), and archlang's torch back end does exactly that
for a named ``{ }`` whose layers are not a chain (Inception v3's ``Mixed_7a: { concat {
... } }`` becomes a ``ModuleDict`` run inline by the network's forward). The trace sees
no call of the container, only of its children; :func:`~.structure.decompose` wraps each
child in a sequence labelled by the container (``Mixed_7a: { branch3x3_1: ... }``), and
children in different branches of a group would give the container's label twice.

:func:`hoist` makes them one: the shortest run of items that holds every use of the
container becomes ``label: { run }`` with the inner wrappers removed, so the keys stay
(``Mixed_7a.branch3x3_1.conv.weight``). A run that holds a labelled layer of something
else, or an unlabelled layer that would take a child's name (a pool after ``blocks.1``
would be named ``2``, as ``blocks.2`` is), is left alone (the caller reports the clash).
No torch here.
"""

from __future__ import annotations

from .tree import Group, Seq


def _labels(item, out: dict[str, int]) -> dict[str, int]:
    """Container labels (labelled sequences) in ``item``, with how often each occurs."""
    if isinstance(item, Seq):
        if item.label is not None:
            out[item.label] = out.get(item.label, 0) + 1
            return out
        for x in item.items:
            _labels(x, out)
    elif isinstance(item, Group):
        for b in item.branches:
            _labels(b, out)
    return out


def _foreign(item, label: str) -> bool:
    """Does ``item`` hold a labelled layer outside the wrappers of ``label``?"""
    if isinstance(item, Seq) and item.label == label:
        return False
    if getattr(item, "label", None) is not None:
        return True
    if isinstance(item, Seq):
        return any(_foreign(x, label) for x in item.items)
    if isinstance(item, Group):
        return any(_foreign(b, label) for b in item.branches)
    return False


def _strip(items: list, label: str) -> list:
    """``items`` with the wrappers labelled ``label`` replaced by their contents."""
    out = []
    for item in items:
        if isinstance(item, Seq) and item.label == label:
            out += item.items
        elif isinstance(item, Seq) and item.label is None:
            out.append(Seq(_strip(item.items, label)))
        elif isinstance(item, Group):
            branches = [_strip([b], label) for b in item.branches]
            out.append(Group(item.mode, [b[0] if len(b) == 1 else Seq(b) for b in branches], item.label))
        else:
            out.append(item)
    return out


def _spans(items: list, label: str) -> bool:
    """Is ``label`` used in several items, or across branches of one group?"""
    holders = [x for x in items if label in _labels(x, {})]
    if len(holders) != 1:
        return len(holders) > 1
    only = holders[0]  # an unlabelled sequence or a group's branch: see there (`_inside`)
    return isinstance(only, Group) and sum(label in _labels(b, {}) for b in only.branches) > 1


def _position_clash(items: list) -> bool:
    """Would an unlabelled item take its position's name (`"2"`) from a labelled sibling?"""
    labels = {x.label for x in items if getattr(x, "label", None) is not None}
    return any(getattr(x, "label", None) is None and str(i) in labels for i, x in enumerate(items))


def hoist(items: list) -> list:
    """``items`` with every container used across items wrapped once (see the module doc)."""
    changed = True
    while changed:
        changed = False
        counts: dict[str, int] = {}
        for x in items:
            _labels(x, counts)
        for label in sorted(counts, key=lambda k: (-counts[k], k)):
            if counts[label] < 2 or not _spans(items, label):
                continue
            at = [i for i, x in enumerate(items) if label in _labels(x, {})]
            lo, hi = at[0], at[-1] + 1
            if any(_foreign(x, label) for x in items[lo:hi]):
                continue
            inner = hoist(_strip(items[lo:hi], label))
            if _position_clash(inner):
                continue
            items = [*items[:lo], Seq(inner, label=label), *items[hi:]]
            changed = True
            break
    return [_inside(x) for x in items]


def _inside(item):
    """Hoist within groups' branches and labelled sequences too."""
    if isinstance(item, Seq):
        return Seq(hoist(item.items), item.label)
    if isinstance(item, Group):
        branches = [_inside(b) if isinstance(b, Seq) else hoist([b])[0] for b in item.branches]
        return Group(item.mode, branches, item.label)
    return item
