"""Parameter-free layers at the edge of an inline labelled sequence, placed where a
re-import would place them (the fixed point, no torch).

The torch back end builds a labelled sequence that is not a chain (it holds a ``concat`` /
``add`` / ``mul``, a ``split`` or a ``spatial_mean``) as an ``nn.ModuleDict`` whose layers run
in the owner's ``forward``; a parameter-free layer there is a function call with no module
path, so a re-import cannot tell ``b0: { add {...}; relu }`` from ``b0: { add {...} }; relu``.
It places such layers by :func:`.nesting.merge`'s rule: between two of those sequences they
end the first (in its innermost last one), anywhere else they lie outside. The first import
saw real modules (``b0`` a ``Res`` whose forward ends in ``relu``), so it may have placed
them otherwise; :func:`canonical` moves them to where the re-import will, so that importing
the built model of an import gives the same text. Only layers without parameters move: no
state_dict key changes, and the computation is the same sequence of layers.
"""

from __future__ import annotations

from ..analysis.params import STATEFUL
from ..ops import CALLABLE_OPS
from .chains import canonical_reads
from .nesting import _fills_gap
from .tree import Call, Group, If, Instance, Network, Repeat, Seq, read_names, run_items

_INLINE_OPS = frozenset({"split", "spatial_mean", "narrow", "scale"})  # ops the torch back end has no module for
# Ops without parameters (an unlabelled conv also prints without a label when its key is
# its position: it must never move, or its key would change).
_FREE_OPS = frozenset(name for name, op in CALLABLE_OPS.items() if op not in STATEFUL)


def canonical_network(net: Network) -> Network:
    canonical_reads(net)
    refs = read_names([net.body, *(b for blk in net.blocks for b in blk.body)])
    refs |= {part for _, path in net.returns for part in path.split(".")}  # `outputs dict` reads them too
    anchors = {a.anchor for a in net.aux}
    net.body.items[:] = canonical(net.body.items, anchors | refs)
    for block in net.blocks:
        block.body[:] = canonical(block.body, refs)
    return net


def canonical(items: list, keep: frozenset | set = frozenset()) -> list:
    """``items`` (one scope level) with the edge layers of its inline sequences placed as a
    re-import places them; ``keep``: labels whose last layer an aux head reads (unchanged)."""
    for item in items:
        _inner(item, keep)
    level: list = []
    for item in items:
        if _flat(item) and item.label not in keep and not item.reads:
            lead, trail = _edge(item, True, keep), _edge(item, False, keep)
            level.extend([*lead, *([item] if run_items(item) else []), *trail])
        else:
            level.append(item)
    out: list = []
    i = 0
    while i < len(level):
        item = level[i]
        out.append(item)
        i += 1
        if not (_flat(item) and item.label not in keep and not item.reads):
            continue
        k = i
        while k < len(level) and _wild(level[k]):
            k += 1
        run, nxt = level[i:k], level[k] if k < len(level) else None
        if run and nxt is not None and _flat(nxt) and nxt.label != item.label:
            if not _fills_gap(item.label, nxt.label, len(run)):
                run_items(_innermost_last(item)).extend(run)
                i = k
    return out


def _inner(item, refs: frozenset | set = frozenset()) -> None:
    if isinstance(item, Seq):
        item.items[:] = canonical(item.items, refs)
    elif isinstance(item, Instance):
        item.body.items[:] = canonical(item.body.items, refs)
    elif isinstance(item, Group):
        for k, branch in enumerate(item.branches):
            if isinstance(branch, Seq) and branch.label is None:
                branch.items[:] = canonical(branch.items, refs)
            else:  # a branch that is one inline sequence: its edge layers join the branch
                level = canonical([branch], refs)
                if len(level) > 1:
                    item.branches[k] = Seq(level)
    elif isinstance(item, If):
        item.then[:] = canonical(item.then, refs)
        item.orelse[:] = canonical(item.orelse, refs)
    elif isinstance(item, Repeat):
        item.body[:] = canonical(item.body, refs)


def _wild(item) -> bool:
    """An unlabelled layer (or unlabelled group of them) without parameters; one that
    reads named values stays where its names are seen."""
    if getattr(item, "reads", ()):
        return False
    if isinstance(item, Call):
        return item.label is None and item.op in _FREE_OPS
    if isinstance(item, Group):
        return item.label is None and all(_wild(b) for b in item.branches)
    inner = run_items(item)
    return inner is not None and getattr(item, "label", None) is None and all(_wild(x) for x in inner)


def _not_chain(item) -> bool:
    if isinstance(item, Group):
        return True
    if isinstance(item, Call):
        return item.op in _INLINE_OPS
    inner = run_items(item)
    return inner is not None and any(_not_chain(x) for x in inner)


def _flat(item) -> bool:
    """A labelled sequence the torch back end runs inline (a ``nn.ModuleDict``)."""
    return getattr(item, "label", None) is not None and run_items(item) is not None and _not_chain(item)


def _edge(item, front: bool, keep: frozenset | set = frozenset()) -> list:
    """Take the parameter-free layers off the front (or back) of ``item``, and of the inline
    sequence that starts (ends) it, in order; at least one labelled layer stays, unless
    nothing in ``item`` can be a module (:func:`_moduleless`): then all of it goes, and an
    inner sequence so emptied goes too."""
    items = run_items(item)
    at = 0 if front else -1
    empties = _moduleless(item) and item.label not in keep
    taken: list = []
    while items:
        if _wild(items[at]) and (empties or (len(items) > 1 and any(not _wild(x) for x in items))):
            x = items.pop(at)
            taken = [*taken, x] if front else [x, *taken]
            continue
        if _flat(items[at]):
            inner = _edge(items[at], front, keep)
            taken = taken + inner if front else inner + taken
            if not run_items(items[at]):  # nothing left of it: its label goes with it
                items.pop(at)
                continue
        break
    return taken


def _moduleless(item) -> bool:
    """Only layers the torch back end writes as calls (``spatial_mean``: timm's
    ``FastAdaptiveAvgPool``), in sequences of such: the built model has no module under
    ``item``'s label, so a re-import sees its layers in the owner's ``forward``."""
    inner = run_items(item)
    return bool(inner) and all(
        (isinstance(x, Call) and x.label is None and not x.reads and x.op in _INLINE_OPS)
        or (run_items(x) is not None and not getattr(x, "reads", ()) and _moduleless(x))
        for x in inner
    )


def _innermost_last(item):
    while run_items(item) and _flat(run_items(item)[-1]):
        item = run_items(item)[-1]
    return item
