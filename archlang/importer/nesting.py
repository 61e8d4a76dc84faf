"""Containers called from outside: labelled sequences rebuilt from module paths (no torch).

A module's children may be called by its owner (``for b in self.blocks: x = b(x)``,
``self.features["3"]["squeeze"](x)``, as archlang's own torch back end does for a named
branch that is not a chain). Such a layer sits in its caller's scope with a path of several
names; :func:`nest` wraps it in labelled sequences (``blocks: { "0": ... }``), *nest
sequences*, so its key is kept. Then:

* :func:`hoist`: a group all of whose labelled layers lie under one nest path (a concat of
  ``features.3.expand1x1`` and ``features.3.expand3x3``) moves inside that path;
* :func:`merge`: adjacent nest sequences with the same label become one, and unlabelled
  parameter-free layers between two of them join them (a functional ``relu`` between
  ``features.0`` and ``features.2``).

Both keep every key: only layers without parameters change scope.
"""

from __future__ import annotations

from .tree import Call, Group, Seq

WILD = None  # the prefix of an unlabelled, parameter-free layer: it may go anywhere


def nest(item, names: tuple[str, ...]):
    """``item`` inside nest sequences ``names[0]: { names[1]: { ... item } }``."""
    for name in reversed(names):
        item = Seq([item], label=name)
        item.nest = True
    return item


def _is_nest(item) -> bool:
    return isinstance(item, Seq) and getattr(item, "nest", False)


def prefix(item):
    """The nest labels every labelled layer of ``item`` lies under (``WILD`` if none has one)."""
    if _is_nest(item):
        inner = _common([prefix(i) for i in item.items])
        return (item.label,) + (inner if inner is not WILD else ())
    if getattr(item, "label", None) is not None:
        return ()
    if isinstance(item, Seq):
        return _common([prefix(i) for i in item.items])
    if isinstance(item, Group):
        return _common([prefix(b) for b in item.branches])
    return WILD  # an unlabelled call or (parameter-free) instance


def _common(prefixes: list):
    fixed = [p for p in prefixes if p is not WILD]
    if not fixed:
        return WILD
    out = fixed[0]
    for p in fixed[1:]:
        n = 0
        while n < min(len(out), len(p)) and out[n] == p[n]:
            n += 1
        out = out[:n]
    return out


def hoist(group: Group):
    """``group``, moved inside the nest path its labelled layers share (if any)."""
    path = prefix(group)
    if path is WILD or not path:
        return group
    group.branches[:] = [_branch(_strip(b, path)) for b in group.branches]
    return nest(group, path)


def _strip(item, path: tuple[str, ...]) -> list:
    """The items of ``item`` with the nest labels ``path`` taken off (``prefix(item)`` starts
    with ``path``, or is WILD)."""
    if not path or prefix(item) is WILD:
        return [item]
    if _is_nest(item):
        out = []
        for child in item.items:
            out.extend(_strip(child, path[1:]))
        return merge(out)
    if isinstance(item, Seq):
        out = []
        for child in item.items:
            out.extend(_strip(child, path))
        return [Seq(merge(out))] if len(out) > 1 else out
    if isinstance(item, Group):
        return [Group(item.mode, [_branch(_strip(b, path)) for b in item.branches], label=item.label)]
    return [item]


def _branch(items: list):
    if not items:
        return Call("identity")
    if len(items) == 1:
        return items[0]
    return Seq(items)


def merge(items: list) -> list:
    """Adjacent nest sequences of one label joined, with the unlabelled parameter-free layers
    between them; such layers between nests of different labels (``layer1.0`` then
    ``layer1.1``, or ``layer1`` then ``layer2``) end the first, in its innermost last nest
    (ResNet's last ``relu`` is its block's), unless they fill a gap in the numbering
    (SqueezeNet's ``features.6`` pool between ``features.5`` and ``features.7``)."""
    out: list = []
    for item in items:
        if _is_nest(item):
            k = len(out)
            while k > 0 and prefix(out[k - 1]) is WILD and not _is_nest(out[k - 1]):
                k -= 1
            prev = out[k - 1] if k > 0 else None
            if _is_nest(prev):
                moved = out[k:]
                del out[k:]
                if prev.label == item.label:
                    prev.items[:] = merge([*prev.items, *moved, *item.items])
                    continue
                if moved and not _fills_gap(prev.label, item.label, len(moved)):
                    last = _innermost_last(prev)
                    last.items[:] = merge([*last.items, *moved])
                else:
                    out.extend(moved)
        out.append(item)
    return out


def _fills_gap(before: str, after: str, count: int) -> bool:
    """``features.5``, two unnamed layers, ``features.8``: they are ``6`` and ``7``."""
    return before.isdigit() and after.isdigit() and int(after) - int(before) == count + 1


def _innermost_last(seq: Seq) -> Seq:
    while seq.items and _is_nest(seq.items[-1]):
        seq = seq.items[-1]
    return seq
