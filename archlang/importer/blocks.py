"""The readable form of an import: repeated module classes become blocks.

:func:`abstract` turns every :class:`~.tree.Instance` whose class occurs more than once
(containers aside) into a call of a :class:`~.tree.BlockDef` named after the class. The
instances' bodies are aligned (:mod:`.align`): what differs becomes block parameters
(:mod:`.params`), optional layers ``if`` on a flag. Classes are done innermost first, so a
block body calls the blocks of its submodules (``Inception`` -> ``BasicConv2d``).

Instances that one template cannot cover (a different structure, e.g. another merge mode)
are split greedily: each instance joins the first group of its class it unifies with; the
group of the class's first instance is named after the class, the others ``Cls_2``,
``Cls_3``... A group of one instance stays inline (a labelled ``{ ... }``), like an
instance of a class that occurs once. A class that contains itself stays inline too (a
block may not call itself).

Last, runs of identical calls at their positional names in a labelled sequence become
``repeat n { call }`` (:func:`.repeats.fold`), which keeps the names (``layer1.0..2``).

The transformation never changes the network: the same layers, names, shapes and
parameters (``tests/test_import_blocks.py`` checks the compiled graphs against the flat
tree's).
"""

from __future__ import annotations

import copy

from archlang.importer.block_params import RESERVED, Parameters

from ..backends.torch.plan import MODULE_ALWAYS, MODULE_AT_ROOT
from ..ops import ALIASES, CALLABLE_OPS, RECORDS, SIGNATURES
from . import tree
from .align import ABSENT, MISSING, Aligner, Column, Incompatible
from .repeats import fold, fold_indexed, implicit, walk

_PRELUDE_BLOCKS = {"factorized", "stacked3x3"}


def abstract(network: tree.Network) -> tree.Network:
    """``network`` with repeated module classes abstracted into blocks (a new tree; the
    input is not modified). Deterministic: the same tree gives the same result."""
    net = copy.deepcopy(network)
    by_class: dict[str, list[tree.Instance]] = {}
    inside: dict[str, set[str]] = {}  # class -> classes of the instances in its instances
    _collect(net.body, by_class, inside, [])
    for a in net.aux:  # an aux head's body is the head's scope, labelled by the `aux` line
        _collect(a.body, by_class, inside, [], head=True)
    # a block even alone: several inputs have no inline spelling, and a bare parameter
    # (layer_scale) needs a module of its own class to hold it, not a container
    wired = {c for c, insts in by_class.items() if any(i.inputs or _holds_parameter(i) for i in insts)}
    order = _innermost_first([c for c, insts in by_class.items() if len(insts) > 1 or c in wired], inside, wired)
    state = _State(net)
    for cls in order:
        for instances in _by_height(by_class[cls]) if cls in inside.get(cls, ()) else [by_class[cls]]:
            state.abstract_class(cls, instances)
    net.body = state.substitute(net.body)
    for a in net.aux:
        a.body = state.substitute(a.body)
    net.blocks = _called_first(list(net.blocks) + state.blocks, [net.body, *(a.body for a in net.aux)])
    roots = [net.body] + [a.body for a in net.aux] + [b for blk in net.blocks for b in blk.body]
    refs = tree.read_names(roots)
    again = tree.continued([net.body.items, *([a.body] for a in net.aux), *(blk.body for blk in net.blocks)])
    for root in roots:
        implicit(root, refs, again)
        fold(root, refs, again)
        fold_indexed(root, refs)
    return net


# Pools the torch back end calls functionally in a block's forward (F.max_pool2d): their
# names would not come back from a built spec, so block bodies leave them out.
_FUNCTIONAL_IN_BLOCKS = frozenset(op.value for op in MODULE_AT_ROOT - MODULE_ALWAYS)


def _unnamed_pools(item, renames: dict[str, str] | None = None):
    """``item`` (a new tree) with the pools of :data:`_FUNCTIONAL_IN_BLOCKS` unlabelled; a
    pool read by name takes the name a re-import gives it (``renames``: old -> new, see
    :func:`_pool_names`), and the reads follow."""
    renames = _pool_names(item) if renames is None else renames
    reads = _renamed(getattr(item, "reads", ()), renames)
    if isinstance(item, tree.Call):
        if item.op in _FUNCTIONAL_IN_BLOCKS and item.label is not None and not item.named:
            return tree.Call(item.op, item.args, item.kwargs, None, item.source, reads)
        if item.label in renames and item.named and item.op in _FUNCTIONAL_IN_BLOCKS or reads != item.reads:
            call = tree.Call(item.op, item.args, item.kwargs, item.label, item.source, reads, item.named)
            call.label = renames.get(item.label, item.label) if item.named else item.label
            return call
        return item
    if isinstance(item, tree.Seq):
        seq = tree.Seq([_unnamed_pools(x, renames) for x in item.items], item.label, reads)
        if getattr(item, "nest", False):
            seq.nest = True
        return seq
    if isinstance(item, tree.Group):
        return tree.Group(item.mode, [_unnamed_pools(b, renames) for b in item.branches], item.label, reads)
    if isinstance(item, tree.Instance) and renames:
        body = tree.Seq([_unnamed_pools(x, renames) for x in item.body.items], item.body.label)
        return tree.Instance(item.cls, item.path, body, item.label, item.container, reads, item.inputs)
    return item


def _pool_names(body) -> dict[str, str]:
    """A pool of a block body that another layer reads by name is a function call in the
    built block (no module, no name): a re-import names it after its op (``maxpool``,
    ``maxpool_2``), so the first import does too."""
    items = body.items if isinstance(body, tree.Seq) else []
    pools = [x for x in items if isinstance(x, tree.Call) and x.op in _FUNCTIONAL_IN_BLOCKS and x.named and x.label]
    if not pools:
        return {}
    taken = {x.label for x in items if getattr(x, "label", None) and x not in pools}
    renames = {}
    for pool in pools:
        name, k = pool.op, 2
        while name in taken:
            name, k = f"{pool.op}_{k}", k + 1
        taken.add(name)
        if name != pool.label:
            renames[pool.label] = name
    return renames


def _renamed(reads: tuple[str, ...], renames: dict[str, str]) -> tuple[str, ...]:
    if not renames:
        return reads
    out = []
    for ref in reads:
        head, dot, rest = ref.partition(".")
        out.append(renames.get(head, head) + dot + rest)
    return tuple(out)


# Ops whose parameter is an attribute of the module they run in (``x * self.gamma``).
_BARE_PARAMETER_OPS = frozenset(op.value for op, r in RECORDS.items() if r.torch.inputs == "scale")


def _holds_parameter(inst: tree.Instance) -> bool:
    """Whether ``inst``'s own scope (not a labelled part of it) holds a bare parameter."""
    stack = list(inst.body.items)
    while stack:
        item = stack.pop()
        if isinstance(item, tree.Call) and item.op in _BARE_PARAMETER_OPS:
            return True
        if isinstance(item, (tree.If, tree.Repeat)) or (
            isinstance(item, (tree.Seq, tree.Group)) and item.label is None
        ):
            stack.extend(tree.children(item))
    return False


def _collect(item, by_class: dict, inside: dict, stack: list[str], head: bool = False) -> None:
    # An unlabelled instance stays inline: its layers live in the enclosing scope, where a
    # block call would make a scope named after the block (other state_dict keys).
    if isinstance(item, tree.Instance) and not item.container and (item.label is not None or head):
        by_class.setdefault(item.cls, []).append(item)
        for cls in stack:
            inside.setdefault(cls, set()).add(item.cls)
        stack = stack + [item.cls]
    for child in walk(item):
        _collect(child, by_class, inside, stack)


def _innermost_first(classes: list[str], inside: dict[str, set[str]], wired: set[str] = frozenset()) -> list[str]:
    """The classes to abstract, each after every class nested in it; one that contains
    itself (directly or through others) is left out, unless its calls read several tensors
    (``wired``: no inline spelling; :func:`_by_height` makes a block per depth)."""
    chosen = set(classes)
    recursive = {c for c in classes if c in inside.get(c, set()) and c not in wired}
    out: list[str] = []
    done: set[str] = set()

    def visit(c: str) -> None:
        if c in done:
            return
        done.add(c)
        for d in sorted(inside.get(c, set()) & chosen):
            visit(d)
        if c not in recursive:
            out.append(c)

    for c in classes:
        visit(c)
    return out


def _arity(inst: tree.Instance) -> tuple[str, ...]:
    """What a block's instances must share: the names of several inputs (one input is
    ``x``, declared or not)."""
    return inst.inputs if len(inst.inputs) > 1 else ()


def _called_first(blocks: list[tree.BlockDef], roots: list) -> list[tree.BlockDef]:
    """``blocks`` in the order the network first calls them, each after the blocks its body
    calls: an order that does not depend on how the classes were grouped (a class split
    into ``Cls``, ``Cls_2`` comes back from a built spec as two classes)."""
    by_name = {b.name: b for b in blocks}
    out: list[tree.BlockDef] = []
    seen: set[str] = set()

    def visit(items: list) -> None:
        stack = [iter(items)]
        pending: list[str | None] = [None]
        while stack:
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
                name = pending.pop()
                if name is not None:
                    out.append(by_name[name])
                continue
            if isinstance(item, tree.Call) and item.op in by_name and item.op not in seen:
                seen.add(item.op)
                stack.append(iter(by_name[item.op].body))
                pending.append(item.op)
            else:
                stack.append(iter(walk(item)))
                pending.append(None)

    visit(roots)
    return out + [b for b in blocks if b.name not in seen]


def _by_height(instances: list[tree.Instance]) -> list[list[tree.Instance]]:
    """The instances of a class that contains itself (timm's ``DlaTree``), innermost
    first: those holding no instance of the class, then those holding only those, ...;
    each height gets its own blocks, so no block calls itself."""
    cls = instances[0].cls

    def height(item) -> int:
        below = max((height(c) for c in walk(item)), default=-1)
        return below + 1 if isinstance(item, tree.Instance) and item.cls == cls else below

    levels: dict[int, list[tree.Instance]] = {}
    for inst in instances:
        levels.setdefault(max((height(c) for c in walk(inst)), default=-1) + 1, []).append(inst)
    return [levels[h] for h in sorted(levels)]


class _State:
    def __init__(self, net: tree.Network):
        self.blocks: list[tree.BlockDef] = []
        self.sigs: dict[str, list] = {
            blk.name: [(n, MISSING if d is None else d) for n, _, d in blk.params] for blk in net.blocks
        }
        self.replaced: dict[int, tree.Call] = {}
        self.names = {blk.name for blk in net.blocks} | {net.name}

    def signature(self, op: str):
        if op in self.sigs:
            return self.sigs[op]
        target = CALLABLE_OPS.get(op) or (ALIASES[op][0] if op in ALIASES else None)
        if target is None:
            return None
        return [(a.name, MISSING if a.required else a.default) for a in SIGNATURES[target].args]

    def substitute(self, item):
        """``item`` with the abstracted instances replaced by their block calls (a copy)."""
        if isinstance(item, tree.Instance):
            if id(item) in self.replaced:
                return self.replaced[id(item)]
            return tree.Instance(
                item.cls, item.path, self.substitute(item.body), item.label, item.container, item.reads, item.inputs
            )
        if isinstance(item, tree.Seq):
            return tree.Seq([self.substitute(i) for i in item.items], item.label, item.reads)
        if isinstance(item, tree.Group):
            return tree.Group(item.mode, [self.substitute(b) for b in item.branches], item.label, item.reads)
        return item

    def _name(self, cls: str) -> str:
        base = (
            cls
            if cls.isascii() and cls.isidentifier()
            else "".join(c if c.isascii() and c.isalnum() else "_" for c in cls)
        )
        base = base or "Block"
        if base[0].isdigit():
            base = "B" + base
        if base in CALLABLE_OPS or base in ALIASES or base in RESERVED or base in _PRELUDE_BLOCKS:
            base += "_block"
        name, k = base, 2
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def abstract_class(self, cls: str, instances: list[tree.Instance]) -> None:
        bodies = [_unnamed_pools(self.substitute(inst.body)) for inst in instances]
        for body in bodies:
            refs = tree.read_names([body])  # a sequence read into by `from` keeps its labels
            implicit(body, refs)
            fold_indexed(body, refs)
        groups: list[list[int]] = []
        for i in range(len(instances)):
            for group in groups:
                if _arity(instances[group[0]]) != _arity(instances[i]):
                    continue  # a block's body reads its inputs by name
                if self._unify([bodies[j] for j in group + [i]]) is not None:
                    group.append(i)
                    break
            else:
                groups.append([i])
        for group in groups:
            inputs = next((instances[j].inputs for j in group if instances[j].inputs), ())
            if len(group) < 2 and not inputs and not _holds_parameter(instances[group[0]]):
                continue
            template, params = self._unify([bodies[j] for j in group])
            name = self._name(cls)
            self.blocks.append(tree.BlockDef(name, params.signature(), template, inputs))
            self.sigs[name] = [(n, MISSING if d is ABSENT else d) for n, d in params.defaults()]
            for k, j in enumerate(group):
                inst = instances[j]
                args, kwargs = params.call_args(k)
                self.replaced[id(inst)] = tree.Call(
                    name, args, kwargs, inst.label, f"{inst.path} ({inst.cls})", inst.reads
                )

    def _unify(self, bodies: list[tree.Seq]):
        aligner = Aligner(len(bodies), self.signature)
        try:
            items = aligner.items([b.items for b in bodies], ())
        except Incompatible:
            return None
        reserved = set(self.names) | set(CALLABLE_OPS) | set(ALIASES) | _PRELUDE_BLOCKS
        params = Parameters(aligner.columns, reserved)
        return [_resolve(it, params) for it in items], params


def _value(v, params: Parameters):
    if isinstance(v, Column):
        return params.value(v)
    if isinstance(v, tuple):
        return tuple(_value(x, params) for x in v)
    return v


def _resolve(item, params: Parameters):
    """A template item with its columns replaced by parameters and expressions."""
    if isinstance(item, tree.Call):
        item.args = tuple(_value(v, params) for v in item.args)
        item.kwargs = tuple((k, _value(v, params)) for k, v in item.kwargs)
    elif isinstance(item, tree.If):
        item.cond = _value(item.cond, params)
        item.then = [_resolve(i, params) for i in item.then]
        item.orelse = [_resolve(i, params) for i in item.orelse]
    elif isinstance(item, tree.Seq):
        item.items = [_resolve(i, params) for i in item.items]
    elif isinstance(item, tree.Group):
        item.branches = [_resolve(i, params) for i in item.branches]
    elif isinstance(item, tree.Instance):
        item.body.items = [_resolve(i, params) for i in item.body.items]
    elif isinstance(item, tree.Repeat):
        item.count = _value(item.count, params)
        item.body = [_resolve(i, params) for i in item.body]
    return item
