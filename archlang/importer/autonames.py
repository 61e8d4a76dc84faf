"""Unlabelled layers whose automatic name would be a label taken in their scope.

The language names an unlabelled layer by its position in a labelled sequence (``"6"``,
counting every layer of the scope, those of unlabelled groups and sequences inside it too)
and by its op elsewhere (``relu``, ``relu_2``; docs/language.md). An import keeps the
module's attribute names as labels, and its structure need not give the same positions
as the module's: a one-branch ``concat`` is no layer of the import, for one. Then a
parameter-free layer can be numbered ``"6"`` beside a conv labelled ``"6"`` (E302 when the
spec compiles). :func:`settle` labels such a layer with a free name after its op
(``relu``, ``relu_2``, ...): no state_dict key changes, since it has no weights.

The compiler's naming is simulated here (``archlang/lower``: ``Scope.auto_name``,
``lower_layer``, ``_group``); a scope with an ``if`` or a ``repeat`` of unknown count is
left as it is. No torch.
"""

from __future__ import annotations

import copy

from ..analysis.params import STATEFUL
from ..ops import CALLABLE_OPS
from . import tree

# Ops with weights or running statistics: their names are state_dict keys, never changed.
_STATEFUL = frozenset(op.value for op in STATEFUL)


class _Unknown(Exception):
    """The scope's names depend on values (an ``if``, a ``repeat`` over a parameter)."""


def settle(network: tree.Network) -> tree.Network:
    """``network`` (a copy) with every unlabelled parameter-free layer whose automatic name
    collides with a label of its scope labelled with a free name."""
    net = copy.deepcopy(network)
    _scope(net.body.items, sequential=False)
    for a in net.aux:
        if isinstance(a.body, (tree.Seq, tree.Instance)):
            _scope(a.body.items if isinstance(a.body, tree.Seq) else a.body.body.items, sequential=True)
    return net


def _movable(call: tree.Call) -> bool:
    return call.label is None and call.op in CALLABLE_OPS and call.op not in _STATEFUL


def _scope(items: list, sequential: bool, reserved: tuple = ()) -> None:
    for _ in range(len(items) + 1):  # each round labels one layer; a round without a collision ends
        try:
            entries = _entries(items)
        except _Unknown:
            return
        clash = _first_clash(entries, sequential, reserved)
        if clash is None:
            return
        taken = {name for _, name in _names(entries, sequential, reserved)}
        op = clash.op
        k, name = 1, op
        while name in taken:
            k += 1
            name = f"{op}_{k}"
        clash.label = name


def _entries(items: list) -> list:
    """The scope's layers in lowering order: ``(kind, item)`` with kind ``"call"``, ``"pos"``
    (an unlabelled sequence or group: a position, its layers here too), ``"scope"`` (a
    labelled one: a name here, its own scope), ``"merge"`` (an unlabelled group's node)."""
    out: list = []
    for it in items:
        if isinstance(it, tree.Call):
            out.append(("call", it))
        elif isinstance(it, (tree.Seq, tree.Instance)):
            body = it.items if isinstance(it, tree.Seq) else it.body.items
            if it.label is not None:
                out.append(("scope", it))
                _scope(body, sequential=True)
            else:
                out.append(("pos", it))
                out += _entries(body)
        elif isinstance(it, tree.Group):
            if it.label is not None:
                out.append(("scope", it))
                _scope(it.branches, sequential=False, reserved=(it.mode,))
            else:
                out.append(("pos", it))
                out += _entries(it.branches)
                out.append(("merge", it))
        elif isinstance(it, tree.Repeat) and isinstance(it.count, int) and it.var is None:
            body = _entries(it.body)
            if any(kind != "call" or call.label is not None for kind, call in body):
                raise _Unknown
            out += [("fixed", call) for _ in range(it.count) for _, call in body]
        else:
            raise _Unknown
    return out


def _names(entries: list, sequential: bool, reserved: tuple) -> list:
    """``(entry, name)`` for every named entry, as the compiler names them."""
    position, counts, used, out = 0, {}, set(reserved), []

    def counted(callee: str) -> str:
        k = counts.get(callee, 0)
        while True:
            k += 1
            name = callee if k == 1 else f"{callee}_{k}"
            if name not in used:
                counts[callee] = k
                return name

    for kind, it in entries:
        if kind != "merge":
            position += 1
        if kind == "pos":
            continue
        if kind == "merge":
            name = counted(it.mode)
        elif it.label is not None:
            name = it.label
        else:
            name = str(position - 1) if sequential else counted(it.op)
        used.add(name)
        out.append(((kind, it), name))
    return out


def _first_clash(entries: list, sequential: bool, reserved: tuple):
    """The unlabelled parameter-free call to relabel for the first name given twice."""
    holders: dict = {name: ("reserved", None) for name in reserved}
    for entry, name in _names(entries, sequential, reserved):
        if name in holders:
            for kind, other in (entry, holders[name]):
                if kind == "call" and _movable(other):
                    return other
            return None  # two labels alike, or a layer with weights: not ours to rename
        holders[name] = entry
    return None
