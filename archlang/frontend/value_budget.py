"""What one lowering may spend on evaluation, charged before the work is done.

The step budget (E605) and the size of every value built (E604/E601): a value's logical
size is known as it is built — the sum of its parts' recorded sizes — so the "billion
laughs" of shared references is refused at the line that crosses the cap, for free.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

from archlang.diagnostics import Diagnostic, SpecError

MAX_STRING = 100_000
# One value's logical size: its items, counting the items of nested sequences and the
# characters of strings every time they are referenced (``[f, f, f]`` is three times
# ``f``). Shared references make a few lines build 10**9 items otherwise ("billion
# laughs"); the size is known as each sequence is built, so the check costs nothing.
MAX_VALUE = 1 << 20
# Sequences nested inside each other in one value (``[[[...]]]`` built through constants):
# printing, comparing or hashing such a value recurses once per level.
MAX_VALUE_DEPTH = 100
# Copying items of a sequence runs at C speed: that many cost one evaluation step (a
# statement or a loop iteration costs ~1.5 µs; 8 items copied cost less).
ITEMS_PER_STEP = 8


def _err(node, code, message, help=None):
    return SpecError(Diagnostic(code=code, message=message, span=node.span, help=help))


class Budget:
    """Evaluation steps left to one lowering. Loops multiply work without adding graph
    nodes (``for i in range(10**6) { for j in range(10**6) { const k = i } }``), so
    statements, loop iterations and every item of a sequence or string that an expression
    builds are charged here; running out is E605."""

    __slots__ = ("limit", "left", "help", "sizes")

    def __init__(self, limit: int, help: str | None = None):
        self.limit, self.left, self.help = limit, limit, help
        # id(sequence) -> (sequence, logical size, depth) of every sequence built in this
        # lowering; the sequence is kept so that its id stays its own.
        self.sizes: dict[int, tuple] = {}

    def charge(self, node, steps: int = 1) -> None:
        self.left -= steps
        if self.left < 0:
            raise _err(node, "E605", f"the spec needs more than {self.limit:,} evaluation steps", help=self.help)


# The budget of the lowering running in this thread (a ContextVar, so threads compiling at
# once each see their own).
_BUDGET: ContextVar[Budget | None] = ContextVar("archlang_budget", default=None)


@contextmanager
def budget(limit: int, help: str | None = None):
    token = _BUDGET.set(Budget(limit, help))
    try:
        yield _BUDGET.get()
    finally:
        _BUDGET.reset(token)


def charge(node, steps: int = 1) -> None:
    b = _BUDGET.get()
    if b is not None:
        b.charge(node, steps)


def measure(v) -> tuple[int, int]:
    """(logical size, nesting depth) of a value, from the sizes recorded as it was built."""
    if isinstance(v, str):
        return len(v), 0
    if not isinstance(v, (tuple, list)):
        return 0, 0
    b = _BUDGET.get()
    known = b.sizes.get(id(v)) if b is not None else None
    if known is not None and known[0] is v:
        return known[1], known[2]
    # A small flat sequence (not recorded), or a value from Python (compile_spec's params):
    # count its items without recursing, stopping past the cap.
    size, depth, stack = 0, 1, [(v, 1)]
    while stack and size <= MAX_VALUE:
        x, level = stack.pop()
        size += len(x)
        depth = max(depth, level)
        for item in x:
            if isinstance(item, str):
                size += len(item)
            elif isinstance(item, (tuple, list)):
                stack.append((item, level + 1))
    return size, depth


def built(node, v):
    """Record the size of a sequence just built, refusing it past MAX_VALUE items or
    MAX_VALUE_DEPTH levels (E604 / E601 at ``node``), and charge its size to the budget."""
    size, depth = len(v), 0
    for item in v:
        if isinstance(item, (tuple, list, str)):
            s, d = measure(item)
            size += s
            depth = max(depth, d)
    depth += 1
    if size > MAX_VALUE:
        raise _err(
            node,
            "E604",
            f"value too large: {size:,} items counting nested ones (the limit is {MAX_VALUE:,})",
            help="each reference to a list or tuple counts its items again",
        )
    if depth > MAX_VALUE_DEPTH:
        raise _err(node, "E601", f"value nested more than {MAX_VALUE_DEPTH} levels deep")
    b = _BUDGET.get()
    if b is not None:
        b.charge(node, 1 + len(v) // ITEMS_PER_STEP)
        if depth > 1 or len(v) > 16:  # small flat tuples are measured again instead
            b.sizes[id(v)] = (v, size, depth)
    return v
