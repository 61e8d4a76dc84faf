"""Network flags written as code: ``if aux_logits:`` in ``__init__``, ``if
self.transform_input:`` in ``forward``, from one compile.

Lowering keeps the choice an ``if`` on boolean network parameters makes in the network body
(:class:`archlang.graph.model.Alternative`): the nodes it made carry the condition they
exist under, and the structure it did not make is lowered beside the graph. The emitter
plans the graph with those structures put back where they would stand
(:func:`with_alternatives`) and writes each statement under its condition
(:func:`grouped`). No torch import.
"""

from __future__ import annotations

from dataclasses import replace

from archlang.graph.model import Graph
from archlang.graph.symbolic import params_of

from .texts import Stmt


def with_alternatives(graph: Graph) -> Graph | None:
    """``graph`` with the nodes and scopes of every alternative structure added, each
    where its ``if`` stands in creation order; None when a name is in both (the two
    structures give one layer different contents, which one attribute cannot hold)."""
    live = list(graph.nodes.values())
    nodes, start = [], 0
    scopes = dict(graph.scopes)
    aux = dict(graph.aux_outputs)
    otype, otype_when = graph.outputs_type, graph.outputs_when
    returns = []
    for alt in sorted(graph.alternatives, key=lambda a: a.anchor):
        nodes += live[start : alt.anchor]
        start = alt.anchor
        nodes += alt.nodes
        for info in alt.scopes:
            if info.id in scopes:
                return None
            scopes[info.id] = info
        for name, nid in alt.aux_outputs:
            if name in aux:
                return None
            aux[name] = nid
        if alt.returns:
            returns.append((alt.when, alt.returns))
        if alt.outputs_type is not None:
            if otype is not None:
                return None
            otype, otype_when = alt.outputs_type, alt.when
    nodes += live[start:]
    if len({n.id for n in nodes}) != len(nodes):
        return None
    return replace(
        graph,
        nodes={n.id: n for n in nodes},
        scopes=scopes,
        aux_outputs=aux,
        outputs_type=otype,
        outputs_when=otype_when,
        other_returns=tuple(returns),
        holds_alternatives=True,
    )


def joins(graph: Graph) -> dict[str, str]:
    """Node -> the value before its ``if`` whose variable it assigns: where what follows
    the ``if`` reads the value it ends with, the last value of either branch replaces it
    (``x = transform_input(x, ...)`` under the condition)."""
    out = {}
    for alt in graph.alternatives:
        outer = alt.when[:-1]
        after = any(graph.nodes[r].when == outer for r in graph.successors(alt.taken) if r in graph.nodes)
        if not after and not (alt.taken == graph.output and not graph.returns):
            continue  # nothing after it reads the value (FCN's aux head, read by `outputs`)
        for value in (alt.taken, alt.other):
            if value is not None and value != alt.entry:
                out[value] = alt.entry
    return out


def simplified(when: tuple) -> tuple:
    """Conditions without repeats, ``not not a`` as ``a``."""
    out = []
    for c in when:
        while c[0] == "not" and c[1][0] == "not":
            c = c[1][1]
        if c not in out:
            out.append(c)
    return tuple(out)


def render(expr, names: dict[str, str]) -> str:
    """Python source of a condition over flags (``names``: each flag's spelling)."""
    kind = expr[0]
    if kind == "param":
        return names[expr[1]]
    if kind == "not":
        inner = render(expr[1], names)
        return f"not {inner}" if expr[1][0] in ("param", "not") else f"not ({inner})"
    left, right = (render(e, names) if e[0] != "bin" or e[1] == expr[1] else f"({render(e, names)})" for e in expr[2:])
    return f"{left} {expr[1]} {right}"


def value_source(expr, names: dict[str, str]) -> str | None:
    """Python source of a layer attribute's value over flags (``bias=not batch_norm``,
    ``padding=1 if padding else 0``); None for anything else (it is not printed)."""
    kind = expr[0]
    if kind == "const":
        v = expr[1]
        return repr(v) if isinstance(v, (bool, int)) or isinstance(v, float) and v == v else None
    if kind == "if":
        test, then, other = (value_source(e, names) for e in expr[1:])
        if None in (test, then, other):
            return None
        test, then = (f"({t})" if " if " in t else t for t in (test, then))
        return f"{then} if {test} else {other}"
    if kind in ("param", "not") or kind == "bin" and expr[1] in ("and", "or"):
        if not all(q in names for q in params_of(expr)) or not _boolean(expr):
            return None
        return render(expr, names)
    return None


def _boolean(expr) -> bool:
    kind = expr[0]
    if kind == "param":
        return True
    if kind == "not":
        return _boolean(expr[1])
    return kind == "bin" and expr[1] in ("and", "or") and _boolean(expr[2]) and _boolean(expr[3])


def flags_of(whens) -> set[str]:
    return {q for when in whens for c in when for q in params_of(c)}


def _test(when: tuple, names: dict[str, str]) -> str:
    return " and ".join(
        render(c, names) if c[0] != "bin" or c[1] == "and" or len(when) == 1 else f"({render(c, names)})" for c in when
    )


def _negates(a: tuple, b: tuple) -> bool:
    """Whether conditions ``b`` are ``a`` with its last one negated (the two sides of one
    ``if``)."""
    return len(a) == len(b) > 0 and a[:-1] == b[:-1] and b[-1] == ("not", a[-1])


def grouped(items: list[tuple[tuple, Stmt]], names: dict[str, str]) -> list[Stmt]:
    """Statements, each under its conditions: consecutive ones under the same conditions
    share one ``if``; the two sides of one ``if`` next to each other read ``if`` /
    ``else`` (the side without ``not`` first: only one of them runs)."""
    runs: list[tuple[tuple, list]] = []
    for when, stmt in items:
        when = simplified(when)
        if runs and runs[-1][0] == when:
            runs[-1][1].append(stmt)
        else:
            runs.append((when, [stmt]))
    out: list[Stmt] = []
    k = 0
    while k < len(runs):
        when, body = runs[k]
        if not when:
            out += body
        elif k + 1 < len(runs) and (_negates(when, runs[k + 1][0]) or _negates(runs[k + 1][0], when)):
            (yes, then), (_, other) = sorted([runs[k], runs[k + 1]], key=lambda r: r[0][-1][0] == "not")
            if yes[:-1]:
                out.append(Stmt.block(f"if {_test(yes[:-1], names)}:", _if_else(yes[-1:], then, other, names)))
            else:
                out += _if_else(yes, then, other, names)
            k += 1
        else:
            out.append(Stmt.block(f"if {_test(when, names)}:", body))
        k += 1
    return out


def _if_else(when: tuple, then: list, other: list, names: dict[str, str]) -> list[Stmt]:
    return [Stmt.block(f"if {_test(when, names)}:", then), Stmt.block("else:", other)]
