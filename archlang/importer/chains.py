"""Named reads in the form a re-import gives them (the fixed point, no torch).

The torch back end builds a labelled sequence whose layers form a chain (each reads the one
before, all modules) as one ``nn.Sequential``, called as a whole; a re-import sees one
module call, so

* the value it starts from is read by the sequence (``"1": { "0": {...} } from b.0``), not
  by its first layer (``"1": { "0": {...} from b.0 }``), and
* its last layer's value is the sequence's (``from transition2``, not ``transition2."2"``).

The first import saw the original's modules (an ``nn.ModuleList`` whose children the owner
calls one by one: HRNet's ``fuse_layers``, ``transition2``) and wrote the longer forms;
:func:`canonical_reads` rewrites them as a re-import will. Same values, same keys.
"""

from __future__ import annotations

from .tree import Call, Group, If, Network, Repeat, Seq, children, run_items

_NO_MODULE = frozenset({"add", "mul", "concat", "split", "spatial_mean", "layer_scale", "narrow", "scale"})


def canonical_reads(net: Network) -> None:
    roots = [net.body.items, *(block.body for block in net.blocks)]
    for items in roots:
        for item in items:
            _hoist(item)
    for items in roots:
        _shorten(items, [items])
    if net.returns:
        net.returns = tuple((key, _shortest(path, [net.body.items])) for key, path in net.returns)


def _flat(items: list) -> list:
    """``items`` with unlabelled sequences opened (their layers live in this scope)."""
    out = []
    for x in items:
        if isinstance(x, Seq) and x.label is None and not x.reads:
            out.extend(_flat(x.items))
        else:
            out.append(x)
    return out


def _chain(item) -> bool:
    """A labelled sequence the torch back end builds as one ``nn.Sequential``."""
    items = run_items(item)
    if getattr(item, "label", None) is None or not items:
        return False
    for k, x in enumerate(_flat(items)):
        reads = getattr(x, "reads", ())
        if len(reads) > 1 or (reads and k > 0) or isinstance(x, (Group, If, Repeat)):
            return False
        if isinstance(x, Call) and x.op in _NO_MODULE:
            return False
        if run_items(x) is not None and not _chain(x):
            return False
    return True


def _hoist(item) -> None:
    """Innermost first: a chain's first layer's one read becomes the chain's."""
    for child in children(item):
        _hoist(child)
    items = run_items(item)
    if items is None or item.reads or not _chain(item):
        return
    first = _flat(items)[0]
    if len(getattr(first, "reads", ())) == 1:
        item.reads, first.reads = first.reads, ()


def _labelled(items: list) -> dict:
    """The layers a name inside ``items`` can mean (opening unlabelled sequences / groups)."""
    out: dict = {}
    for x in items:
        label = getattr(x, "label", None)
        if label is not None:
            out.setdefault(label, x)
        elif isinstance(x, (Seq, Group, If, Repeat)):
            out.update({k: v for k, v in _labelled(children(x)).items() if k not in out})
    return out


def _shortest(ref: str, scopes: list[list]) -> str:
    """``ref`` read from the innermost of ``scopes``, without the trailing names that only
    pick a chain's last layer."""
    if ref == "input":
        return ref
    parts = ref.split(".")
    node = None
    for items in reversed(scopes):
        node = _labelled(items).get(parts[0])
        if node is not None:
            break
    if node is None:
        return ref
    path = [node]
    for part in parts[1:]:
        inner = run_items(path[-1]) if not isinstance(path[-1], Group) else path[-1].branches
        node = _labelled(inner).get(part) if inner is not None else None
        if node is None:
            return ref
        path.append(node)
    k = len(parts)
    while k > 1 and _chain(path[k - 2]) and _flat(run_items(path[k - 2]))[-1] is path[k - 1]:
        k -= 1
    return ".".join(parts[:k])


def _shorten(items: list, scopes: list[list]) -> None:
    for x in items:
        if getattr(x, "reads", ()):
            x.reads = tuple(_shortest(r, scopes) for r in x.reads)
        inner = x.branches if isinstance(x, Group) else run_items(x)
        if inner is not None and x.label is not None:  # a scope of its own
            _shorten(inner, [*scopes, inner])
        else:
            _shorten(children(x), scopes)
