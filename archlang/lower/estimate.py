"""A lower bound of the ops a statement list adds, known before it is expanded.

Loops and block calls multiply: 30 nested ``repeat 2``, or blocks that each call the next
one twice 40 deep, describe 10⁹ ops in a few lines. Expanding them until ``--max-nodes``
is reached costs seconds and a GiB; multiplying first refuses them at once (E603), the
defence XML parsers use against "billion laughs". The bound counts only what every
expansion must add: a primitive layer is one op, a group adds its merge, a block call
what its body adds, and a nested loop its count times its body where the count is known
without running anything (literals and top-level constants no local name shadows).
``if`` adds its smallest branch; anything else adds nothing.
"""

from __future__ import annotations

from archlang.frontend import ir
from archlang.frontend.expressions import Env, evaluate

from ..diagnostics import SpecError
from ..ops import ALIASES, CALLABLE_OPS
from .state import Ctx

# How many statement lists (and block bodies) the estimate looks into below the loop it
# is asked about; deeper ones count as 0, which keeps the bound a lower bound, and keeps
# the walk within ~150 Python frames on top of lowering's own.
MAX_DEPTH = 60


class Estimator:
    def __init__(self, blocks: dict, globals_, program_items, cap: int):
        self.blocks, self.globals, self.cap = blocks, globals_, cap
        self.memo: dict[int, int] = {}
        self.local_names, self.unit_names, calls = _scan(program_items)
        self.unit_names |= set(Ctx().unit)  # `conv` is a unit before any `unit` statement
        self.depth = 0
        self.open_blocks: set[str] = set()
        # Blocks first, callees before callers (so a chain of blocks is never walked
        # recursively), from the bottom of the stack.
        for name in _callees_first(calls):
            if name in blocks:
                self._layer(ir.Call(span=blocks[name].span, name=name))

    def body(self, stmts) -> int:
        """Ops every expansion of ``stmts`` adds (at least), capped just past the limit."""
        key = id(stmts)
        if key in self.memo:
            return self.memo[key]
        if self.depth >= MAX_DEPTH:
            return 0
        self.depth += 1
        try:
            total = 0
            for stmt in stmts:
                total = min(self.cap, total + self._stmt(stmt))
        except RecursionError:  # called deep in lowering's stack: give up, it is only a bound
            total = 0
        finally:
            self.depth -= 1
        self.memo[key] = total
        return total

    def times(self, count: int, stmts) -> int:
        return min(self.cap, count * self.body(stmts)) if count > 0 else 0

    def _stmt(self, stmt) -> int:
        kind = stmt.kind
        if kind in ("layer", "aux"):
            return self._layer(stmt.layer)
        if kind == "if":
            bodies = [b.body for b in stmt.branches] + [stmt.orelse or ()]
            return min(self.body(b) for b in bodies)
        if kind == "repeat":
            count = self._static(stmt.count)
            return self.times(count, stmt.body) if isinstance(count, int) and not isinstance(count, bool) else 0
        if kind == "for":
            items = self._static(stmt.iterable)
            return self.times(len(items), stmt.body) if isinstance(items, tuple) else 0
        return 0

    def _layer(self, layer) -> int:
        if layer.kind == "seq":
            return self.body(layer.body)
        if layer.kind == "group":
            return min(self.cap, 1 + self.body(layer.branches))
        if layer.kind == "merge":
            return 1
        name = layer.name
        if name in self.blocks:
            if name in self.open_blocks:  # recursion is E602 when lowered
                return 0
            self.open_blocks.add(name)
            try:
                n = self.body(self.blocks[name].body) or int(self.blocks[name].kind == "extern")
            finally:
                self.open_blocks.discard(name)
            return min(n, 1) if name in self.unit_names else n
        return 1 if name in CALLABLE_OPS or name in ALIASES or name in self.unit_names else 0

    def _static(self, expr):
        """The value of ``expr`` if it depends on nothing local, else None."""
        names = _free_names(expr)
        if names & self.local_names or not names <= self.globals.names():
            return None
        try:
            return evaluate(expr, self.globals if names else Env())
        except SpecError:
            return None


def _free_names(expr) -> set[str]:
    out, stack = set(), [expr]
    while stack:
        node = stack.pop()
        kind = getattr(node, "kind", None)
        if kind == "name":
            out.add(node.id)
        elif kind == "binop":
            stack += (node.left, node.right)
        elif kind == "unary":
            stack.append(node.operand)
        elif kind == "if_expr":
            stack += (node.test, node.then, node.orelse)
        elif kind == "func_call":
            stack += node.args
        elif kind == "index":
            stack += (node.value, node.index)
        elif kind in ("tuple", "list"):
            stack += node.items
    return out


def _callees_first(calls: dict[str, set[str]]) -> list[str]:
    """Blocks in post-order of the call graph (iterative; cycles are cut anywhere)."""
    order, done = [], set()
    for root in calls:
        stack = [(root, iter(sorted(calls[root])))]
        done.add(root)
        while stack:
            name, it = stack[-1]
            nxt = next((c for c in it if c in calls and c not in done), None)
            if nxt is None:
                order.append(name)
                stack.pop()
            else:
                done.add(nxt)
                stack.append((nxt, iter(sorted(calls[nxt]))))
    return order


def _scan(items) -> tuple[set[str], set[str], dict[str, set[str]]]:
    """Every name bound below the top level (parameters, local constants, loop variables),
    every unit name, and the blocks each block calls, found by one pass over all statements."""
    local, units, calls, stack = set(), set(), {}, []
    for item in items:
        if isinstance(item, (ir.BlockDef, ir.NetworkDef)):
            local.update(p.name for p in item.params)
            called = calls.setdefault(item.name, set()) if isinstance(item, ir.BlockDef) else set()
            stack += ((stmt, called) for stmt in item.body)
    while stack:
        stmt, called = stack.pop()
        kind = getattr(stmt, "kind", None)
        if kind in ("const_stmt", "var_stmt"):
            local.add(stmt.name)
        elif kind == "unit":
            units.add(stmt.name)
        elif kind == "for":
            local.update(stmt.targets)
        elif kind == "repeat" and stmt.var:
            local.add(stmt.var)
        elif kind == "if":
            for b in stmt.branches:
                stack += ((s, called) for s in b.body)
            stack += ((s, called) for s in stmt.orelse or ())
            continue
        children = []
        for attr in ("body", "branches"):
            children += getattr(stmt, attr, None) or ()
        layer = getattr(stmt, "layer", None)
        if layer is not None:
            if layer.kind == "call":
                called.add(layer.name)
            children += getattr(layer, "body", None) or ()
            children += getattr(layer, "branches", None) or ()
        stack += ((s, called) for s in children)
    return local, units, calls
