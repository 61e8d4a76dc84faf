"""From a traced graph's ops to nested sequences and groups (no torch here).

:mod:`.trace` hands over a flat list of :class:`Elem`: each op (a :class:`~.tree.Call`) or
merge (``add`` / ``mul`` / ``concat`` of several values) with the values it reads (ids of
earlier elements; ``INPUT`` is the network's input) and the chain of module scopes it ran
in (``nn_module_stack``). :func:`build` then

1. normalises concatenations (:func:`normalise_concats`): a ``torch.cat`` that starts a
   scope with inputs from outside moves to the parent scope, and ``cat(x0..xk)`` becomes
   ``cat(cat(x0..xk-1), xk)`` where that prefix is concatenated anyway (DenseNet's growing
   feature lists become ``concat { identity; denselayerK: ... }`` items);
2. groups elements by scope (:class:`~.tree.Instance` per module call, one input and one
   output each);
3. inside each scope, decomposes the DAG from its input to its output into series and
   parallel parts with immediate dominators: a merge's branches start at the nearest value
   every path to it passes through.

A DAG that is not series-parallel is written with named values instead (:func:`_wired`:
``from``, bare merges). A scope with several inputs or outputs (:func:`wire_scope`) is an
instance with named inputs (a block ``from x, skip``) whose further outputs the enclosing
scope reads by path (aliases: ``from two.relu``); a module with weights called twice is E724.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archlang.diagnostics import Diagnostic, SpecError
from archlang.importer.tree import Aux, Call, Group, Instance, Seq

from ..analysis.params import STATEFUL
from ..ops import CALLABLE_OPS
from . import nesting

_STATEFUL = frozenset(op.value for op in STATEFUL)

INPUT = 0
CONTAINERS = {"Sequential", "ModuleList", "ModuleDict"}  # exact torch.nn container classes
_MERGE_NAMES = {"add": "sum", "mul": "prod", "concat": "cat"}  # a merge read by name, when it has none


@dataclass(frozen=True)
class Scope:
    """One module call on the stack: ``key`` is unique per call (``layer1.0.relu@1``)."""

    key: str
    path: str
    cls: str
    container: bool = False
    has_state: bool = False  # parameters or buffers (a second call would share them)
    # the tensors the call passed (value ids, in the forward's order) and its parameters'
    # names: the inputs of a module called with several tensors
    args: tuple[tuple[int, str], ...] = ()


@dataclass
class Elem:
    id: int
    inputs: list[int]
    chain: tuple[Scope, ...]
    call: Call | None = None  # an op; its label is the dotted path relative to the scope
    merge: str | None = None  # "add" | "mul" | "concat"
    where: str = ""  # for messages: `layer1.0 (torchvision.models.resnet.BasicBlock)`
    path: str = ""  # a module's qualified name (its label is the last part, relative to the scope)


def problem(code: str, message: str, help: str | None = None) -> SpecError:
    return SpecError(Diagnostic(code=code, message=message, help=help))


def where(chain: tuple[Scope, ...]) -> str:
    if not chain:
        return "the top-level module"
    return f"`{chain[-1].path}` ({chain[-1].cls})"


# ---- 1. concatenations ----------------------------------------------------------------


def normalise_concats(elems: dict[int, Elem]) -> None:
    """Hoist scope-opening cats to the parent scope and factor out concatenated prefixes."""
    producer_chain = {e.id: e.chain for e in elems.values()}
    for e in elems.values():
        if e.merge != "concat":
            continue
        while e.chain and all(not _inside(producer_chain.get(i, ()), e.chain) for i in e.inputs):
            e.chain = e.chain[:-1]
        producer_chain[e.id] = e.chain
    by_inputs: dict[tuple, int] = {}
    for e in sorted(elems.values(), key=lambda e: e.id):
        if e.merge != "concat":
            continue
        key = (tuple(s.key for s in e.chain), tuple(e.inputs))
        for n in range(len(e.inputs) - 1, 1, -1):
            prefix = by_inputs.get((key[0], tuple(e.inputs[:n])))
            if prefix is not None:
                e.inputs = [prefix, *e.inputs[n:]]
                break
        by_inputs.setdefault(key, e.id)


def _inside(chain: tuple[Scope, ...], scope: tuple[Scope, ...]) -> bool:
    return len(chain) >= len(scope) and chain[: len(scope)] == scope


# ---- 2. scopes -------------------------------------------------------------------------


@dataclass
class Local:
    """A scope's elements: ops, merges and child instances (``body`` set) keyed by the
    value they produce."""

    id: int
    inputs: list[int]
    item: object = None  # Call | Instance (a unary element)
    merge: str | None = None
    label_path: tuple[str, ...] = ()  # its labels from the scope: ("blocks", "0") for `blocks.0`
    nest: tuple[str, ...] = ()  # the labelled sequences it sits in (("blocks",)), named or not
    module_path: tuple[str, ...] = ()  # a module call's names, labelled or not (an aux head's)
    # a further output of the instance that computes inputs[0]: its path inside it (`two.b`)
    alias: tuple[str, ...] | None = None


@dataclass
class ScopeGraph:
    chain: tuple[Scope, ...]
    locals: dict[int, Local] = field(default_factory=dict)
    made_by: dict[int, object] = field(default_factory=dict)  # value -> the item (or group) computing it


def _tensors(n: int) -> str:
    return f"{n} tensor" if n == 1 else f"{n} tensors"


def relative(path: str, base: str, what: str) -> tuple[str, ...]:
    if not base:
        return tuple(path.split(".")) if path else ()
    if path == base or not path.startswith(base + "."):
        raise problem(
            "E724",
            f"{what} uses module `{path}` from outside its own scope `{base}`",
            "archlang names weights by where they are used; a module used from another module cannot keep its key",
        )
    return tuple(path[len(base) + 1 :].split("."))


def scope_locals(
    elems: list[Elem],
    depth: int,
    chain: tuple[Scope, ...],
    used_outside,
    same: dict[int, int] | None = None,
    results: dict[str, list[int]] | None = None,
) -> ScopeGraph:
    """The elements of scope ``chain`` (all of ``elems`` lie inside it), child scopes
    collapsed to one :class:`Local` holding an :class:`Instance`. ``used_outside(i, ids)``:
    is value ``i`` read by an element not in ``ids``, or returned? ``same``: the values of
    dropped identities (a call's arguments may be one); ``results``: what each call returned."""
    same, results = same or {}, results or {}
    graph = ScopeGraph(chain)
    base = chain[-1].path if chain else ""
    children: dict[str, list[Elem]] = {}
    for e in elems:
        if len(e.chain) > depth:
            children.setdefault(e.chain[depth].key, []).append(e)
            continue
        full = relative(e.path, base, e.where) if e.call is not None and e.path else ()
        label_path = full if full and e.call.label is not None else ()
        if label_path:
            e.call.label = label_path[-1]
        graph.locals[e.id] = Local(e.id, list(e.inputs), e.call, e.merge, label_path, full[:-1], full)
    for members in children.values():
        scope = members[0].chain[depth]
        ids = {e.id for e in members}
        scope_args = tuple((same.get(v, v), name) for v, name in scope.args)
        sub_inputs = _ordered_inputs(scope_args, members, ids)
        outputs = sorted(i for i in ids if used_outside(i, ids))
        outputs = _with_dropped_results(members, outputs, [same.get(v, v) for v in results.get(scope.key, ())], ids)
        what = f"`{scope.path}` ({scope.cls})"
        if not sub_inputs or not outputs:
            raise problem(
                "E724",
                f"{what} reads {_tensors(len(sub_inputs))} and returns {_tensors(len(outputs))}: archlang layers "
                "read a tensor and produce one",
                "only modules that read and return tensors can be imported",
            )
        sub = scope_locals(members, depth + 1, (*chain, scope), used_outside, same, results)
        label_path = relative(scope.path, base, what)
        if scope.key != scope.path and scope.has_state:
            raise problem("E724", f"{what} is called more than once: archlang layers cannot share weights")
        label = None if scope.key != scope.path else label_path[-1]
        names: tuple[str, ...] = ()
        inner: dict[int, tuple[str, ...]] = {}
        body = None
        if len(sub_inputs) == 1 and len(outputs) == 1:
            try:
                body, main = decompose(sub, sub_inputs[0], outputs[0]), outputs[0]
            except SpecError as err:
                if err.diagnostics[0].code != "E724":
                    raise
        if body is None:
            # named values: a block `from x, skip` whose further outputs are read by name
            # (`from blk.b`); one input too (an inline sequence would be built as an
            # nn.ModuleDict run by its owner, whose re-import reads its layers from outside)
            wanted = [next((name for u, name in scope_args if u == v), "x") for v in sub_inputs]
            body, names, inner, main = wire_scope(sub, sub_inputs, wanted, outputs)
        container = scope.container and not names  # a block, never an inline sequence
        instance = Instance(
            cls=scope.cls, path=scope.path, body=Seq(body), label=label, container=container, inputs=names
        )
        graph.locals[main] = Local(
            main, sub_inputs, item=instance, label_path=label_path if label else (), nest=label_path[:-1]
        )
        for v in outputs:
            if v != main:
                graph.locals[v] = Local(v, [main], alias=inner[v])
    return graph


def _with_dropped_results(members: list[Elem], outputs: list[int], returned: list[int], ids: set[int]) -> list[int]:
    """``outputs`` and the values the call returned that its caller drops and no output
    needs (a block's own value when only ``blk.a`` is read): they are computed all the
    same, so the block returns them rather than refusing them as dead layers."""
    inputs = {e.id: e.inputs for e in members}
    needed: set[int] = set()
    stack = list(outputs)
    while stack:
        v = stack.pop()
        if v in needed or v not in ids:
            continue
        needed.add(v)
        stack.extend(inputs[v])
    extra = [v for v in dict.fromkeys(returned) if v in ids and v not in needed]
    return sorted({*outputs, *extra}) if outputs else outputs


def _ordered_inputs(args: tuple[tuple[int, str], ...], members: list[Elem], ids: set[int]) -> list[int]:
    """The values a scope reads from outside, in the order its forward takes them (the
    call's arguments), then any other in the order it first reads them."""
    read: list[int] = []
    for e in members:
        for i in e.inputs:
            if i not in ids and i not in read:
                read.append(i)
    passed = [v for v, _ in args if v in read]
    return [*dict.fromkeys(passed), *(v for v in read if v not in passed)]


# ---- 3. series-parallel ------------------------------------------------------------------


def decompose(
    graph: ScopeGraph, source: int, sink: int, emitted: set[int] | None = None, wired: bool | None = None
) -> list:
    """The items that compute ``sink`` from ``source`` in ``graph``: series-parallel
    nesting where the dataflow is one, else E724, or with ``wired`` (the network's body,
    ``source`` its input) named values (:func:`_wired`)."""
    idom: dict[int, int] = {source: source}
    depth: dict[int, int] = {source: 0}

    def dominator(v: int) -> int:
        if v in idom:
            return idom[v]
        stack = [v]
        while stack:  # iterative: deep networks chain thousands of values
            top = stack[-1]
            pending = [i for i in _local(graph, top).inputs if i not in idom]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if top in idom:
                continue
            inputs = _local(graph, top).inputs
            d = inputs[0]
            for other in inputs[1:]:
                d = _lca(d, other, idom, depth)
            idom[top], depth[top] = d, depth[d] + 1
        return idom[v]

    emitted = set() if emitted is None else emitted

    def between(src: int, dst: int) -> list:
        out = []
        v = dst
        while v != src:
            if v == source or v not in graph.locals:
                raise _not_series_parallel(graph)
            local = graph.locals[v]
            if v in emitted or local.alias is not None or (local.merge is None and len(local.inputs) > 1):
                raise _not_series_parallel(graph)
            emitted.add(v)
            if local.merge is None:
                graph.made_by[v] = local.item
                out.append(nesting.nest(local.item, local.nest))
                v = local.inputs[0]
            else:
                d = dominator(v)
                group = graph.made_by[v] = Group(local.merge, [_branch(between(d, u)) for u in local.inputs])
                out.append(nesting.hoist(group))
                v = d
        out.reverse()
        return out

    dominator(sink)
    try:
        items = between(source, sink)
    except SpecError as err:
        if err.diagnostics[0].code != "E724" or wired is None:
            raise
        items = _wired(graph, source, sink, emitted, top=wired)[0]
    leftover = _dead(graph, emitted)
    if leftover and graph.chain:
        raise problem(
            "E724",
            f"in {where(graph.chain)}, `{'.'.join(leftover[0].label_path)}` runs but its result is not used",
            "archlang layers all lie on the path from the input to an output",
        )
    items = nesting.merge(items)
    _check_labels(items, graph)
    return items


def wire_scope(
    graph: ScopeGraph, sources: list[int], wanted: list[str], sinks: list[int]
) -> tuple[list, tuple[str, ...], dict[int, tuple[str, ...]], int]:
    """A module called with several tensors, or whose several results are read: its items
    wired from its inputs (named after ``wanted``, its forward's parameters) to every sink
    (each named). Returns the items, the inputs' names, each sink's path inside and the
    value its last item makes (the module's own value)."""
    emitted: set[int] = set()
    items, paths, names, last = _wired(graph, sources, sinks, emitted, top=False, wanted=wanted)
    leftover = _dead(graph, emitted)
    if leftover:
        raise problem(
            "E724",
            f"in {where(graph.chain)}, `{'.'.join(leftover[0].label_path)}` runs but its result is not used",
            "archlang layers all lie on the path from the input to an output",
        )
    _check_labels(items, graph)
    return items, names, {v: paths[v] for v in sinks if v != last}, last


def _wired(
    graph: ScopeGraph,
    sources,
    sinks,
    emitted: set[int],
    top: bool,
    wanted: list[str] | None = None,
    name_sinks: bool = False,
) -> tuple[list, dict[int, tuple[str, ...]], tuple[str, ...], int]:
    """The items that compute ``sinks`` from ``sources`` in trace order, each reading the
    value before it or, with ``from``, the named values it reads (any DAG). A value read by
    name is its layer's label (a parameter-free layer without one gets a free name, after
    its op). Inputs: a module's (``wanted``: a block ``from x, skip``) go by those names, the
    network's (``top``) is ``input``. A module's further outputs (aliases) are read as
    ``label.path``. Returns the items, the sinks' paths, the inputs' names and the value of
    the last item."""
    sources = [sources] if isinstance(sources, int) else list(sources)
    sinks = [sinks] if isinstance(sinks, int) else list(sinks)
    needed: set[int] = set()
    stack = list(sinks)
    while stack:
        v = stack.pop()
        if v in sources or v in needed:
            continue
        if v not in graph.locals:
            raise _not_series_parallel(graph)
        needed.add(v)
        stack.extend(graph.locals[v].inputs)

    def position(v: int) -> tuple[int, int, int]:
        local = graph.locals[v]  # a further output comes right after the module computing it
        return (local.inputs[0], 1, v) if local.alias is not None else (v, 0, 0)

    order = _clustered(sorted(needed, key=position), graph)  # ids follow the trace
    real = [v for v in order if graph.locals[v].alias is None]
    last = real[-1] if real else sources[0]
    by_name: dict[int, tuple[str, ...]] = {}
    named: set[int] = {v for v in sinks if len(sinks) > 1 and v != last}
    prev = sources[0]
    for v in order:
        local = graph.locals[v]
        if local.alias is not None:
            named.add(local.inputs[0])
            continue
        if local.merge is not None or len(local.inputs) > 1:
            named.update(local.inputs)
        elif local.inputs[0] != prev:
            named.add(local.inputs[0])
        prev = v
    if name_sinks:
        named.update(sinks)  # `outputs dict(...)` names every value it returns
    taken = {x.label_path[0] for x in graph.locals.values() if x.label_path}
    taken |= {x.module_path[0] for x in graph.locals.values() if x.module_path}
    taken |= {x.nest[0] for x in graph.locals.values() if x.nest}

    def free(base: str) -> str:
        name, k = base, 2
        while name in taken or not _plain(name):
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return name

    out: list = []
    names: tuple[str, ...] = ()
    if wanted is not None:
        # the torch back end's forward calls its first input `x` (a re-import reads that)
        names = tuple(free("x" if k == 0 else _python_name(w)) for k, w in enumerate(wanted))
        by_name.update({s: (n,) for s, n in zip(sources, names)})
    else:  # the network's own input
        by_name[sources[0]] = ("input",)
    groups: dict[int, Group] = {}
    freed: set[int] = set()  # parameter-free layers named here: they may sit outside their container
    for v in order:
        local = graph.locals[v]
        if local.alias is not None:
            continue
        if local.merge is not None:
            groups[v] = Group(local.merge, [])
            freed.add(v)
        item = groups.get(v, local.item)
        if isinstance(item, Instance) and item.inputs and item.label is None:
            item.label = free(_snake(item.cls))  # a block call read by name (`from x, skip`)
            local.nest = ()
        if isinstance(item, Instance) and v in named and not item.inputs and not item.container:
            # read by name, an inline sequence that is no chain would be built as an
            # nn.ModuleDict run by its owner (a re-import reads its last layer instead)
            item.inputs = ("x",)
        if isinstance(item, Call) and item.label is None:
            freed.add(v)
        if v in named:
            if item.label is None:
                item.label = free(_MERGE_NAMES[item.mode] if isinstance(item, Group) else getattr(item, "op", "value"))
                local.nest = ()
            if isinstance(item, Call):
                item.named = True
    inside = _sandwiched(order, graph, freed)
    for v in order:
        local = graph.locals[v]
        if local.alias is not None:
            continue
        item = groups.get(v, local.item)
        if v in inside:
            local.nest = inside[v]
            if item.label is None:  # unlabelled, it would take a position's name ("1") there
                item.label = free(_MERGE_NAMES[item.mode] if isinstance(item, Group) else item.op)
                if isinstance(item, Call):
                    item.named = True
        if v in named or isinstance(item, Instance):
            by_name[v] = (*local.nest, item.label) if item.label is not None else None
    for v in order:
        local = graph.locals[v]
        if local.alias is not None:
            by_name[v] = (*by_name[local.inputs[0]], *local.alias)

    def ref(u: int, nest: tuple[str, ...]) -> str:
        path = by_name[u]
        k = 0
        while k < min(len(nest), len(path) - 1) and nest[k] == path[k]:
            k += 1
        return ".".join(path[k:])

    prev = sources[0]
    for v in order:
        local = graph.locals[v]
        if local.alias is not None:
            continue
        emitted.add(v)
        if local.merge is not None:
            item = groups[v]
            item.reads = tuple(ref(u, local.nest) for u in local.inputs)
            local.nest = inside.get(v, ())
        else:
            item = local.item
            if len(local.inputs) > 1:
                item.reads = tuple(ref(u, local.nest) for u in local.inputs)
            elif local.inputs[0] != prev:
                item.reads = (ref(local.inputs[0], local.nest),)
        graph.made_by[v] = item
        out.append(nesting.nest(item, local.nest))
        prev = v
    return nesting.merge(out), {v: by_name.get(v) for v in sinks}, names, last


def _clustered(order: list[int], graph: ScopeGraph) -> list[int]:
    """``order`` (every value after the values it reads) with the layers of one container
    pulled together where the dataflow allows: a module's loop over ``self.fuse_layers``
    interleaves their calls with merges (HRNet), and each run of them would be a sequence
    ``fuse_layers: { ... }`` of its own (one name twice). A later layer under the same
    container joins the earlier ones as soon as what it reads is computed."""
    position = {v: k for k, v in enumerate(order)}
    done: set[int] = set()
    out: list[int] = []
    for v in order:
        if v in done:
            continue
        done.add(v)
        out.append(v)
        top = graph.locals[v].nest[:1]
        if not top:
            continue
        for w in order[position[v] + 1 :]:
            local = graph.locals[w]
            if w not in done and local.nest[:1] == top and local.alias is None:
                if all(u in done or u not in position for u in local.inputs):
                    done.add(w)
                    out.append(w)
    return out


def _sandwiched(order: list[int], graph: ScopeGraph, freed: set[int]) -> dict[int, tuple[str, ...]]:
    """Parameter-free layers outside any container (merges, functional ops) between two
    layers of one container: they join it (``downsamp_modules: { "0"; sum: add ...; "1" }``),
    or the container would be two sequences of one name (HRNet's head chains
    ``incre(x) + down(y)`` through ``self.downsamp_modules[i]``)."""
    real = [v for v in order if graph.locals[v].alias is None]

    def free(v: int) -> bool:
        return v in freed and not graph.locals[v].nest

    out: dict[int, tuple[str, ...]] = {}
    for k, v in enumerate(real):
        if not free(v):
            continue
        before = next((graph.locals[u].nest[:1] for u in reversed(real[:k]) if not free(u)), ())
        after = next((graph.locals[u].nest[:1] for u in real[k + 1 :] if not free(u)), ())
        if before and before == after:
            out[v] = before
    return out


def _snake(cls: str) -> str:
    """``DoubleConv`` -> ``double_conv``: a free name for a block call after its class."""
    out = "".join("_" + c.lower() if c.isupper() else c for c in cls).lstrip("_")
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in out) or "block"


def _python_name(name: str) -> str:
    """``name`` as the torch back end keeps it for a forward's parameter (a keyword, a
    builtin or one of its own names gets ``_``)."""
    import builtins
    import keyword

    if not (name.isascii() and name.isidentifier()):
        name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in name).lstrip("_0123456789")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in dir(builtins) or name in _BACKEND_NAMES:
        name += "_"
    return name or "x"


_BACKEND_NAMES = frozenset({"torch", "nn", "F", "namedtuple", "self", "x", "Tensor"})


def _plain(name: str) -> bool:
    from archlang.frontend.keywords import KEYWORDS

    return name.isascii() and name.isidentifier() and name not in KEYWORDS and name != "input"


def _dead(graph: ScopeGraph, emitted: set[int]) -> list[Local]:
    """The named layers nothing reads (E724), leaving out layers without weights: a result
    computed and dropped (timm's DlaTree pools a value a deeper tree ignores) changes no
    output and no key, so the spec leaves it out."""
    return [
        x
        for x in graph.locals.values()
        if x.id not in emitted
        and x.label_path
        and not (isinstance(x.item, Call) and x.item.op not in _STATEFUL and x.item.op in CALLABLE_OPS)
    ]


def _check_labels(items: list, graph: ScopeGraph) -> None:
    """Two layers of one scope with the same name cannot both keep their keys; a labelled
    sequence named again goes on the first (a container's children called apart: in
    different branches, or in turn with another's), so only that repeats."""
    seen: set[str] = set()
    sequences: set[str] = set()
    stack = list(items)
    while stack:
        item = stack.pop()
        label = getattr(item, "label", None)
        if isinstance(item, Seq) and label is not None and label not in seen - sequences:
            seen.add(label)
            sequences.add(label)
        elif label is not None:
            if label in seen:
                raise problem(
                    "E724",
                    f"in {where(graph.chain)}, two layers would both be named `{label}`",
                    "a layer and a sequence of one scope cannot share a name (a sequence named again goes on)",
                )
            seen.add(label)
        elif isinstance(item, Seq):
            stack.extend(item.items)
        elif isinstance(item, Group):
            stack.extend(item.branches)


def _local(graph: ScopeGraph, v: int) -> Local:
    local = graph.locals.get(v)
    if local is None:
        return Local(v, [])  # the source (or a value from outside: caught by `between`)
    return local


def _lca(a: int, b: int, idom: dict[int, int], depth: dict[int, int]) -> int:
    while a != b:
        if depth[a] >= depth[b]:
            a = idom[a]
        else:
            b = idom[b]
    return a


def _not_series_parallel(graph: ScopeGraph) -> SpecError:
    return problem(
        "E724",
        f"the dataflow inside {where(graph.chain)} is not a nesting of sequences and `concat`/`add`/`mul` groups",
        "a tensor used by layers in two different branches has no archlang spelling",
    )


def _branch(items: list):
    items = nesting.merge(items)
    if not items:
        return Call("identity")
    if len(items) == 1:
        return items[0]
    return Seq(items)


# ---- the whole network -----------------------------------------------------------------------


def build(
    elems: list[Elem],
    main: int,
    aux_outputs: list[int],
    returns: list[int] | None = None,
    results: dict[str, list[int]] | None = None,
) -> tuple[Seq, list[Aux], dict]:
    """The network body and aux heads; ``aux_outputs`` are the values of the other outputs.
    Returns also each aux output's head label. With ``returns`` (the values of an
    OrderedDict, in order) the body is wired to each and the third result is each one's
    path (``outputs dict(out = head.conv, ...)``). ``results``: the values each module call
    returned (by ``nn_module_stack`` key), read or not."""
    elems, same = _without_identities(elems)
    main, aux_outputs = same.get(main, main), [same.get(v, v) for v in aux_outputs]
    returns = None if returns is None else [same.get(v, v) for v in returns]
    by_id = {e.id: e for e in elems}
    normalise_concats(by_id)
    returned = {main, *aux_outputs, *(returns or ())}
    readers: dict[int, set[int]] = {}
    for e in elems:
        for i in e.inputs:
            readers.setdefault(i, set()).add(e.id)

    def used_outside(i: int, ids: set[int]) -> bool:
        return i in returned or any(r not in ids for r in readers.get(i, ()))

    root = scope_locals(elems, 0, (), used_outside, same, results)
    emitted: set[int] = set()
    if returns:
        sinks = list(dict.fromkeys(returns))
        body, paths, _, _ = _wired(root, INPUT, sinks, emitted, top=True, name_sinks=True)
        _check_labels(body, root)
        heads, labels = [], paths
    else:
        body = decompose(root, INPUT, main, emitted, wired=True)
        heads, labels = [], {}
        for value in aux_outputs:
            anchor, head = _aux_head(root, value, emitted, body)
            heads.append((anchor, head))
            labels[value] = head.label
    unused = _dead(root, emitted)
    if unused:
        raise problem(
            "E724",
            f"`{'.'.join(unused[0].label_path)}` runs but its result is not used",
            "archlang layers all lie on the path from the input to an output",
        )
    heads = [head for _, head in sorted(heads, key=lambda pair: pair[0])]
    _check_complete(root, emitted, [*body, *(h.body for h in heads)])
    return Seq(body), heads, labels


def _without_identities(elems: list[Elem]) -> tuple[list[Elem], dict[int, int]]:
    """``elems`` without the ``identity`` layers (timm's ``nn.Identity`` placeholders): the
    value passes through, as the torch back end builds them (no module, so a re-import sees
    none); a group's identity branch is the importer's own. Returns also each dropped
    value's source."""
    same: dict[int, int] = {}
    kept = []
    for e in elems:
        e.inputs = [same.get(i, i) for i in e.inputs]
        if e.call is not None and e.call.op == "identity" and not e.call.args and len(e.inputs) == 1:
            same[e.id] = e.inputs[0]
        else:
            kept.append(e)
    return kept, same


def _check_complete(root: ScopeGraph, emitted: set[int], items: list) -> None:
    """Every layer the decomposition emitted is in the tree exactly once (the nesting
    rewrites move layers, never drop or copy them)."""
    found: list[int] = []
    stack = list(items)
    while stack:
        item = stack.pop()
        if isinstance(item, (Call, Instance)):
            found.append(id(item))
        if isinstance(item, Seq):
            stack.extend(item.items)
        elif isinstance(item, Group):
            stack.extend(item.branches)
    made = [id(root.locals[v].item) for v in emitted if v in root.locals and root.locals[v].merge is None]
    if sorted(made) != sorted(i for i in found if i in set(made)) or len(found) != len(set(found)):
        raise problem(
            "E900", "internal error: the importer lost or duplicated a layer", "please report this with the model"
        )


def _aux_head(root: ScopeGraph, value: int, emitted: set[int], body: list) -> tuple[int, Aux]:
    """The head computing ``value``: back from it to the first value the main path made."""
    v = value
    while v not in emitted and v != INPUT:
        local = root.locals.get(v)
        if local is None or local.merge is not None:
            raise problem("E724", "an auxiliary output is not a chain of layers off the main path")
        v = local.inputs[0]
    _name_for_aux(root, v)
    anchor = _anchor(body, root.made_by.get(v))
    if anchor is None:
        raise problem(
            "E724",
            "an auxiliary output reads a layer that is not a labelled layer of the top level (archlang hangs "
            "aux heads on those)",
        )
    items = decompose(root, v, value, emitted)
    if len(items) == 1:
        _name_for_aux(root, value)
    if len(items) == 1 and getattr(items[0], "label", None):
        body = items[0]
        label, body.label = body.label, None
    else:
        raise problem("E724", "an auxiliary output is not one labelled module (its name would be the head's)")
    return v, Aux(label=label, anchor=anchor, body=body)


def _name_for_aux(root: ScopeGraph, v: int) -> None:
    """A parameter-free module of the top level that an aux head hangs from, or that is the
    head, is unnamed (see :mod:`.trace`); the aux line needs its name."""
    local = root.locals.get(v)
    if local is None or not isinstance(local.item, Call) or local.item.label is not None:
        return
    if len(local.module_path) == 1:
        local.item.label = local.module_path[0]
        local.label_path = local.module_path
    elif not local.module_path and not local.nest:
        # a functional op (the torch back end writes `l2: hardswish` as `F.hardswish(x)`, its
        # label lost): named after its op, a name no other top-level layer or module has
        taken = {x.module_path[0] for x in root.locals.values() if x.module_path}
        taken |= {x.label_path[0] for x in root.locals.values() if x.label_path}
        name, k = local.item.op, 2
        while name in taken:
            name, k = f"{local.item.op}_{k}", k + 1
        local.item.label = name
        local.label_path = (name,)


def _anchor(body: list, made: object) -> str | None:
    """The label of the top-level item whose output ``made`` computes (it ends that item,
    perhaps inside nest sequences)."""
    for item in body:
        if item.label is None if hasattr(item, "label") else True:
            continue
        last = item
        while isinstance(last, Seq) and getattr(last, "nest", False) and last.items and last is not made:
            last = last.items[-1]
        if last is made:
            return item.label
    return None
