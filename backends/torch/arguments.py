"""Which network parameters the generated network class takes as arguments, read from the
expressions lowering keeps (:mod:`archlang.graph.symbolic`): no compile beyond the one the
file is emitted from.

A numeric parameter is an argument when everything it reaches is a value the file can
print as an expression of it:

* it chooses no structure (``graph.structural_params``: no ``if`` test, loop,
  name, ``input``, ``unit`` or ``init`` reads it);
* every layer attribute it reaches is a width or a rate (``out_channels``,
  ``out_features``, ``p``) held by a constructor slot: a slot of the network class gets the
  expression itself (``nn.Linear(1024, num_classes)``, ``nn.Conv2d(3, width * 2, 3)``); a
  slot of a block class must be bound to the block parameter that carries it
  (``InceptionAux(512, num_classes)`` with ``nn.Linear(1024, num_classes)`` inside), checked
  by evaluating both sides with the parameter at other values;
* the channel counts it changes reach no value printed as a literal: a ``split`` (its
  exact division holds at one width only) or the output width of a block instance that
  another layer reads.

Boolean parameters: one that only reaches ``batchnorm(zero_init=...)`` is the flag of
``_initialize_weights`` (:func:`zero_init_flag`); one that chooses structure is merged over
its values by :mod:`.source`. No torch import.
"""

from __future__ import annotations

from archlang.graph.symbolic import Unknown, evaluate, params_of, render
from archlang.ops import Op

from .describe import INPUT_WIDTH
from .ops import TORCH_OPS
from .plan import Leaf, ModulePlan, iter_plans
from .symbols import Scaled

# Attributes whose torch argument has the attribute's value unchanged, held in a slot.
NUMERIC_ATTRS = frozenset({"out_channels", "out_features", "p"})


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _others(value) -> list:
    """Other values to check a binding at (two, so no coincidence passes)."""
    if isinstance(value, int):
        return [value + 1, 2 * value + 3]
    return [value / 2 if value else 0.5, value / 3 + 0.125]


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def parameter_uses(graph) -> tuple[dict, dict]:
    """(parameter -> [(node id, attribute, expression)], parameter -> [(block instance
    path, argument, expression)])."""
    nodes: dict[str, list] = {}
    scopes: dict[str, list] = {}
    for nid, data in graph.nodes.items():
        for attr, expr in data.exprs.items():
            for q in params_of(expr):
                nodes.setdefault(q, []).append((nid, attr, expr))
    for info in graph.scopes.values():
        for arg, expr in info.exprs.items():
            for q in params_of(expr):
                scopes.setdefault(q, []).append((info.path, arg, expr))
    return nodes, scopes


def channel_params(graph) -> dict[str, frozenset]:
    """Node id -> the network parameters its channel count depends on."""
    out: dict[str, frozenset] = {}
    for nid, data in graph.nodes.items():  # creation order is topological
        if data.op in (Op.CONV2D, Op.LINEAR):
            exprs = data.exprs
            out[nid] = frozenset(q for a in ("out_channels", "out_features") if a in exprs for q in params_of(exprs[a]))
        else:
            out[nid] = frozenset().union(*(out[i] for i in data.inputs))
    return out


class _Checker:
    def __init__(self, graph, emitter, root_described):
        self.graph = graph
        self.params = graph.params or {}
        self.scopes = graph.scopes
        self.instances = emitter.instances
        self.idents = emitter.idents()
        self.where: dict = {}  # slot origin -> (owner block path, () for the network; slot)
        for owner, d in [((), root_described), *((p, d) for p, (d, _) in emitter.instances.items())]:
            for i, origin in enumerate(d.origins):
                if origin is not None and origin[0] is not None:
                    self.where.setdefault(origin, (owner, i))
        self.nodes, self.scope_uses = parameter_uses(graph)
        self.channels = None
        # what the file holds: a plan rewrite (--optimize) drops the aux heads, whose uses
        # then print nothing
        self.present: set = set()
        for p in iter_plans(emitter.root):
            self.present.add(p.path)
            self.present.update(s.leaf.node for s in p.steps if s.leaf is not None)
            self.present.update(c.node for c in p.children if isinstance(c, Leaf))
            if p.kind == "fused":
                self.present.update(node for _, node, _ in p.args["members"])

    def literal_widths(self, q: str) -> bool:
        """Whether a channel count ``q`` changes is printed as a literal somewhere."""
        if self.channels is None:
            self.channels = channel_params(self.graph)
        g, chan = self.graph, self.channels
        blocks = {info.path for info in self.scopes.values() if info.kind == "block"}
        for nid, data in g.nodes.items():
            if q not in chan[nid]:
                continue
            path = data.path
            owners = [path[:k] for k in range(1, len(path)) if path[:k] in blocks]
            for s in g.successors(nid):
                if g.nodes[s].op is Op.SPLIT:
                    return True
                if any(g.nodes[s].path[: len(b)] != b for b in owners) and self._prints_width(s, blocks, set()):
                    return True  # the output width of a block instance, read outside it
        return False

    def _prints_width(self, nid: str, blocks: set, seen: set) -> bool:
        """Whether the file prints the width of the value ``nid`` reads as a literal: a
        layer that takes it (``in_channels``), a block instance or a merge (which take
        widths in their class), and so on through ops that keep it (a resize, an
        activation); a value only returned prints none (FCN's head read by the resize to
        the input's size)."""
        if nid in seen:
            return False
        seen.add(nid)
        data = self.graph.nodes[nid]
        if any(data.path[:k] in blocks for k in range(1, len(data.path))):
            return True
        row = TORCH_OPS.get(data.op)
        if row is None or row.width != "same" or row.inputs not in ("one", "alias"):
            return True
        in_shape = self.graph.nodes[data.inputs[0]].shape
        try:
            names = {a.name for build in (row.module_args, row.functional_args) for a in build(data.attrs, in_shape)}
        except (KeyError, TypeError, ValueError, IndexError):
            return True
        if names & set(INPUT_WIDTH):
            return True
        return any(self._prints_width(s, blocks, seen) for s in self.graph.successors(nid))

    def argument(self, q: str) -> dict[int, str] | None:
        """Root slot -> source text for parameter ``q``, or None if it cannot be an argument."""
        trials = [{**self.params, q: v} for v in _others(self.params[q])]
        texts: dict[int, str] = {}
        for nid, attr, expr in self.nodes.get(q, ()):
            if nid not in self.present:
                continue
            if attr not in NUMERIC_ATTRS or not self._holds((nid, attr), expr, trials, texts):
                return None
        for path, arg, expr in self.scope_uses.get(q, ()):
            # a block argument no slot holds is not a parameter of the block's class: the
            # layers it reaches inside decide (above)
            if path in self.present and (path, arg) in self.where and not self._holds((path, arg), expr, trials, texts):
                return None
        if self.literal_widths(q):
            return None
        return texts

    def _holds(self, origin, expr, trials, texts) -> bool:
        if origin not in self.where:
            return False
        owner, slot = self.where[origin]
        if owner == ():
            text = render(expr, self.idents)
            if text is None:
                return False
            texts[slot] = text
            return True
        _, binding = self.instances[owner]
        bound = binding.get(slot)
        info = self.scopes["/".join(owner)]
        for trial in trials:
            try:
                want = evaluate(expr, trial)
                got = self._value(bound, info, trial)
            except (Unknown, ArithmeticError, KeyError, TypeError, IndexError, ValueError):
                return False
            if not _same(want, got):
                return False
        return True

    @staticmethod
    def _value(bound, info, trial):
        """What a block class computes for a slot when the network parameters are ``trial``."""
        param, factor = (bound.param, bound.factor) if isinstance(bound, Scaled) else (bound, 1)
        if not isinstance(param, str):
            return bound  # a literal
        value = evaluate(info.exprs[param], trial) if param in info.exprs else info.args[param]
        return value if factor == 1 else value * factor


def numeric_arguments(graph, emitter, root_described) -> dict[str, dict[int, str]]:
    """Numeric network parameter -> {network class slot: source text} for each parameter
    the network class can take (see the module docstring); {} for one that reaches no
    slot of the network class."""
    params = graph.params or {}
    structural = graph.structural_params
    candidates = [q for q, v in params.items() if _is_number(v) and q not in structural]
    if not candidates:
        return {}
    checker = _Checker(graph, emitter, root_described)
    out = {}
    for q in candidates:
        texts = checker.argument(q)
        if texts is not None:
            out[q] = texts
    return out


def flag_kinds(graph) -> tuple[list[str], list[str]]:
    """(boolean parameters that choose structure or reach attributes other than a batch
    norm's ``zero_init``, those that reach only ``zero_init``)."""
    params = graph.params or {}
    structural = graph.structural_params
    nodes, _ = parameter_uses(graph)
    merged, zero = [], []
    for q, v in params.items():
        if not isinstance(v, bool):
            continue
        attrs = {attr for _, attr, _ in nodes.get(q, ())}
        if q in structural or attrs - {"zero_init"}:
            merged.append(q)
        elif attrs:
            zero.append(q)
    return merged, zero


def zero_init_flag(graph, root: ModulePlan, flag: str) -> list[str] | None:
    """The batch norms ``flag`` zeroes: those whose ``zero_init`` is the flag's value (the
    norms of ``_initialize_weights(flag)``); None when they are zeroed otherwise."""
    params = graph.params or {}
    norms = []
    for p in iter_plans(root):
        for c in p.children:
            if not (isinstance(c, Leaf) and c.op is Op.BATCHNORM):
                continue
            expr = graph.nodes[c.node].exprs.get("zero_init")
            if expr is None:
                if c.attrs.get("zero_init") and c.attrs["affine"]:
                    return None  # zeroed whatever the flag
                continue
            try:
                on, off = (evaluate(expr, {**params, flag: v}) for v in (True, False))
            except (Unknown, ArithmeticError, KeyError, TypeError, IndexError, ValueError):
                return None
            if (on, off) != (True, False) and (on, off) != (False, False):
                return None
            if on and c.attrs["affine"]:
                norms.append(".".join((*p.path, c.name)))
    return norms
