"""The PyTorch module tree a graph becomes: what the code generator prints.

``plan(graph)`` -> :class:`ModulePlan` (plain dataclasses); :mod:`.rewrite` turns it into
the inference plan of ``--optimize``; :mod:`.emit` prints either. Planning does not import
torch.

How scopes become modules:

* the network -> the root module; block instances -> one module each (a class per template
  in generated code); conv units -> a ``BasicConv2d``-style module with ``.conv`` / ``.bn``;
* a named ``{ }`` branch whose layers form a chain -> ``nn.Sequential`` (keys ``branch2.0.conv``);
  a named branch or group that is not a chain -> a ``nn.ModuleDict`` container whose layers
  run inline in the owning module's ``forward`` (keys stay the spec's paths);
* layers with parameters are always submodules; parameter-free layers (pools, dropout, LRN)
  are submodules at network level and inside ``nn.Sequential`` (like torchvision's
  ``maxpool1``) and functional calls inside blocks (like torchvision's Inception3 blocks);
  ReLU, flatten, concat and add are functional except inside ``nn.Sequential``.

Aux heads run right after the layer they hang from (torchvision's order, which matters for
dropout's random stream), only in training mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archlang.diagnostics import Diagnostic, SpecError
from archlang.graph.model import Graph
from archlang.ops import Op

from .conditions import joins
from .naming import MODULE_ATTRIBUTES
from .ops import FRESH_OUTPUT, TORCH_OPS, Arg

MODULE_AT_ROOT = frozenset(op for op, row in TORCH_OPS.items() if row.at_root)
# Always submodules: dropout's (stochastic depth's) behaviour follows train() / eval(), which a
# module makes plain (and a block class can then take its rate as a constructor argument).
MODULE_ALWAYS = frozenset(op for op, row in TORCH_OPS.items() if row.always_module)
# Class names of conv units, by unit style (torchvision's name for conv + BN + ReLU).
UNIT_CLASSES = {"conv_bn_relu": "BasicConv2d", "conv_bn": "ConvBN", "conv_relu": "ConvReLU"}


@dataclass
class Leaf:
    """One primitive op: a submodule (``module=True``) or a functional call in a forward."""

    name: str
    node: str
    op: Op
    attrs: dict
    in_shape: tuple
    shape: tuple
    module: bool
    init: dict | None = None
    inplace: bool = False
    in_last: bool = False  # the input is channels-last (H×W×C): its channels are in_shape[-1]
    when: tuple = ()  # the conditions on network flags it exists under (Node.when)

    @property
    def args(self) -> list[Arg]:
        row = TORCH_OPS[self.op]
        build = row.module_args if self.module else row.functional_args
        args = list(build(self.attrs, self.in_shape))
        if self.op is Op.RELU and self.inplace:
            args.append(Arg("inplace", True))
        return args


@dataclass
class Step:
    """One line of a forward: ``target = module(inputs)`` or a functional call."""

    target: str  # node id whose value the step produces
    inputs: tuple[str, ...]  # node ids it reads
    module: tuple[str, ...] | None = None  # submodule path relative to the owner
    leaf: Leaf | None = None  # the op, for functional steps (and module leaves)
    aux: str | None = None
    shape: tuple = ()
    targets: tuple[str, ...] = ()  # several outputs (a fused conv): their node ids, in order
    when: tuple = ()  # the conditions on network flags it runs under (Node.when)


@dataclass
class ModulePlan:
    name: str
    path: tuple[str, ...]
    kind: str  # "root" | "block" | "unit" | "sequential" | "container" | "fused"
    input: str
    output: str
    template: str | None = None
    args: dict = field(default_factory=dict)
    children: list = field(default_factory=list)  # ModulePlan | Leaf with module=True
    steps: list[Step] = field(default_factory=list)  # root, block, unit (containers: none)
    aux: str | None = None
    outputs: tuple[tuple[str, str], ...] = ()  # root only: (field, node id), main output first
    outputs_type: str | None = None
    # root only: `outputs` is an OrderedDict returned in training and eval (`outputs dict(...)`)
    outputs_dict: bool = False
    # root only: (conditions, outputs) returned instead where the network flags say so
    other_outputs: tuple = ()
    # a block read with `from a, b` (its further inputs, after `input`), or whose inner
    # values are read outside it (`from block.mid`: its further outputs, after `output`)
    extra_inputs: tuple[str, ...] = ()
    extra_outputs: tuple[str, ...] = ()
    extras: object = None  # root only: what a plan rewrite adds to the file (see .inference)
    when: tuple = ()  # the conditions on network flags it exists under (ScopeInfo.when)

    @property
    def qualname(self) -> str:
        return ".".join(self.path)


def _fail(message: str, span=None, help=None):
    raise SpecError(Diagnostic(code="E701", message=message, span=span, help=help))


def _inplace_ok(graph: Graph, nid: str, elsewhere: frozenset = frozenset()) -> bool:
    """A ReLU may overwrite its input if nothing else reads it and it is a fresh tensor.
    ``elsewhere``: (value, reader) pairs where the reader starts a structure the network
    flags choose instead of the one the ReLU reads the value in (VGG's batch norm)."""
    (src,) = graph.nodes[nid].inputs
    data = graph.nodes[src]
    outputs = {graph.output, *graph.aux_outputs.values(), *(n for _, n in graph.returns)}
    readers = [r for r in graph.successors(src) if (src, r) not in elsewhere]
    return data.op in FRESH_OUTPUT and len(readers) == 1 and src not in outputs


class _Planner:
    def __init__(self, graph: Graph):
        self.g = graph
        self.scopes = graph.scopes
        self.order = {nid: i for i, nid in enumerate(graph.nodes)}
        # a branch of an `if` on network flags ends with a value that stands for the one
        # before it (.conditions.joins): a sequence goes on from either
        # conditions are planned only with the structures they choose between (else a
        # compile's nodes under a flag plan as they always did)
        self.conditional = conditional = graph.holds_alternatives
        self.joins = joins(graph) if conditional else {}
        # conditions of a ReLU -> (value, reader) pairs of readers that do not run where it
        # does: after an `if`, the first nodes of the branch not taken; in that branch, what
        # follows the `if` (which then reads the branch's value instead)
        self.elsewhere: dict[tuple, frozenset] = {}
        for alt in graph.alternatives if conditional else ():
            outer, entry = alt.when[:-1], alt.entry
            first = {(entry, n.id) for n in alt.nodes if entry in n.inputs}
            self.elsewhere[outer] = self.elsewhere.get(outer, frozenset()) | first
            if alt.nodes and alt.taken == entry and alt.other in self.joins:
                start = self.order[alt.nodes[0].id]
                after = {
                    (entry, r)
                    for r in graph.successors(entry)
                    if graph.nodes[r].when == outer and self.order[r] > start
                }
                self.elsewhere[alt.when] = self.elsewhere.get(alt.when, frozenset()) | after
        # Direct children (scope ids and node ids) of every scope, in creation order.
        self.members: dict[tuple, list] = {(): []}
        self.scope_nodes: dict[tuple, list[str]] = {(): []}
        for info in self.scopes.values():
            self.members.setdefault(info.path, [])
            self.scope_nodes.setdefault(info.path, [])
        for nid, data in graph.nodes.items():
            owner = self._owner(data.path)
            self.members[owner].append(("node", nid))
            for k in range(len(owner) + 1):
                self.scope_nodes.setdefault(owner[:k], []).append(nid)
        for path in sorted(self.members, key=len, reverse=True):
            if path and self.scope_nodes.get(path):
                parent = self._owner(path)
                self.members[parent].append(("scope", path))
        for items in self.members.values():
            items.sort(key=lambda item: self._first(item))

    def _owner(self, path: tuple) -> tuple:
        for k in range(len(path) - 1, 0, -1):
            if "/".join(path[:k]) in self.scopes:
                return path[:k]
        return ()

    def _first(self, item) -> int:
        kind, ref = item
        return self.order[ref] if kind == "node" else self.order[self.scope_nodes[ref][0]]

    # ---- scope boundaries ----------------------------------------------------------------
    def _block_boundary(self, path: tuple) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(inputs, outputs) of a block instance: its declared inputs (or the one value it
        reads), its value first and then the inner values read outside it, in creation order."""
        inside = set(self.scope_nodes[path])
        info = self.scopes["/".join(path)]
        reads = {src for nid in inside for src in self.g.nodes[nid].inputs if src not in inside}
        exits = {self.g.output, *self.g.aux_outputs.values(), *(n for _, n in self.g.returns)}
        outs = [
            nid
            for nid in self.scope_nodes[path]
            if nid in exits or any(s not in inside for s in self.g.successors(nid))
        ]
        inputs = info.inputs or tuple(reads)
        main = info.output if info.output in inside else (outs or self.scope_nodes[path])[-1]
        if (len(inputs) != 1 and not info.inputs) or not reads <= set(inputs):
            _fail(
                f"`{info.id}` reads {len(reads)} values from outside, which the PyTorch back end "
                "cannot pass to a module",
                info.span,
            )
        return tuple(inputs), (main, *(n for n in outs if n != main))

    def _boundary(self, path: tuple, strict: bool = True) -> tuple[str | None, str | None]:
        """(the one value the scope reads from outside, the one it gives out). A named
        branch or group that reads several outside values (``from``) or gives out several
        runs inline in its owner (a container): ``strict=False`` gives (None, None) then."""
        inside = set(self.scope_nodes[path])
        reads = {src for nid in inside for src in self.g.nodes[nid].inputs if src not in inside}
        exits = {self.g.output, *self.g.aux_outputs.values(), *(n for _, n in self.g.returns)}
        outs = [
            nid
            for nid in self.scope_nodes[path]
            if nid in exits or any(s not in inside for s in self.g.successors(nid))
        ]
        if not outs:  # nothing reads its value (a W201 warning): its last node still is its output
            outs = self.scope_nodes[path][-1:]
        info = self.scopes["/".join(path)]
        if (len(reads) != 1 or len(outs) != 1) and not strict:
            return None, None
        if len(reads) != 1 or len(outs) != 1:
            _fail(
                f"`{info.id}` does not have exactly one input and one output, which the PyTorch "
                "back end needs to make it a module",
                info.span,
            )
        return reads.pop(), outs[0]

    # ---- building the tree ---------------------------------------------------------------
    def _check_name(self, name: str, span) -> None:
        dunder = len(name) > 4 and name.startswith("__") and name.endswith("__")
        if "." in name or name in MODULE_ATTRIBUTES or dunder:
            why = (
                "contains a dot"
                if "." in name
                else "is an attribute every torch.nn.Module has"
                if name in MODULE_ATTRIBUTES
                else "is a Python special (dunder) name, reserved for Python's own attributes"
            )
            _fail(
                f"the name `{name}` cannot be a PyTorch submodule name: it {why}",
                span,
                help="rename this layer (the name becomes a state_dict key)",
            )

    def leaf(self, nid: str, where: str) -> Leaf:
        data = self.g.nodes[nid]
        op = data.op
        row = TORCH_OPS[op]
        if row.inputs == "alias" and where != "sequential":
            module = False  # identity: no code, the value is an alias
        elif row.functional is None:
            module = row.module is not None
        elif where == "sequential":
            module = True
        else:
            module = (where == "root" and op in MODULE_AT_ROOT) or op in MODULE_ALWAYS
        in_shape = self.g.nodes[data.inputs[0]].shape if data.inputs else data.shape
        return Leaf(
            name=data.path[-1],
            node=nid,
            op=op,
            attrs=data.attrs,
            in_shape=tuple(in_shape),
            shape=tuple(data.shape),
            module=module,
            init=data.init if row.init else None,
            inplace=op is Op.RELU and _inplace_ok(self.g, nid, self.elsewhere.get(data.when, frozenset())),
            in_last=bool(data.inputs) and self.g.nodes[data.inputs[0]].channels_last,
            when=data.when if self.conditional else (),
        )

    def scope(self, path: tuple, where: str) -> ModulePlan:
        info = self.scopes["/".join(path)]
        kind = {"block": "block", "unit": "unit"}.get(info.kind)
        extra_in = extra_out = ()
        if kind == "block":
            (first, *extra_in), (out, *extra_out) = self._block_boundary(path)
        else:
            first, out = self._boundary(path, strict=kind is not None)
        if kind is None:
            chain = first is not None and self._is_chain(path, first, out)
            kind = "sequential" if chain else "container"
        plan = ModulePlan(
            name=path[-1],
            path=path,
            kind=kind,
            input=first,
            output=out,
            template=info.template,
            args=dict(info.args),
            aux=info.aux,
            extra_inputs=tuple(extra_in),
            extra_outputs=tuple(extra_out),
            when=info.when if self.conditional else (),
        )
        inner = {"block": "block", "unit": "block", "sequential": "sequential", "container": where}[kind]
        self._fill(plan, path, inner)
        return plan

    def _is_chain(self, path: tuple, first: str, out: str) -> bool:
        current = first
        for kind, ref in self.members[path]:
            if kind == "node":
                data = self.g.nodes[ref]
                row = TORCH_OPS[data.op]
                follows = data.inputs == (current,) or data.inputs == (self.joins.get(current),)
                if row.module is None or row.inputs not in ("one", "alias") or not follows:
                    return False
                current = ref
            else:
                if self.scopes["/".join(ref)].kind == "block":
                    inputs, outputs = self._block_boundary(ref)
                    single = len(inputs) == len(outputs) == 1
                    sub_first, sub_out = (inputs[0], outputs[0]) if single else (None, None)
                else:
                    sub_first, sub_out = self._boundary(ref, strict=False)
                if (
                    sub_first is None
                    or sub_first not in (current, self.joins.get(current))
                    or self.scopes["/".join(ref)].kind not in ("block", "unit", "branch")
                ):
                    return False
                if self.scopes["/".join(ref)].kind == "branch" and not self._is_chain(ref, sub_first, sub_out):
                    return False
                current = sub_out
        return out in (current, self.joins.get(current))

    def _fill(self, plan: ModulePlan, path: tuple, where: str) -> None:
        lifted = False
        for kind, ref in self.members[path]:
            if kind == "node":
                if self.g.nodes[ref].op is Op.INPUT:
                    continue
                leaf = self.leaf(ref, where)
                if leaf.op is Op.LAYER_SCALE and plan.kind in ("sequential", "container"):
                    _fail(
                        f"layer_scale `{ref}` would be a bare parameter of the {plan.kind} `{plan.qualname}`, "
                        "which PyTorch cannot hold (nn.Sequential / nn.ModuleDict take modules only)",
                        self.g.nodes[ref].span,
                        help="move it out of the labelled branch, into the block or network body "
                        "(as torchvision's CNBlock holds `layer_scale` beside its `block` Sequential)",
                    )
                if leaf.module:
                    self._check_name(leaf.name, self.g.nodes[ref].span)
                    plan.children.append(leaf)
                plan.steps.append(
                    Step(
                        target=ref,
                        inputs=self.g.nodes[ref].inputs,
                        module=(leaf.name,) if leaf.module else None,
                        leaf=leaf,
                        aux=self.g.nodes[ref].aux if not plan.path else None,
                        shape=leaf.shape,
                        when=leaf.when,
                    )
                )
            else:
                child = self.scope(ref, where)
                self._check_name(child.name, self.scopes["/".join(ref)].span)
                if child.kind != "container" or child.children:  # no empty nn.ModuleDict
                    plan.children.append(child)
                if child.kind == "container":
                    for step in child.steps:
                        module = (child.name, *step.module) if step.module else None
                        plan.steps.append(
                            Step(
                                step.target,
                                step.inputs,
                                module,
                                step.leaf,
                                child.aux if not plan.path else None,
                                step.shape,
                                when=step.when,
                            )
                        )
                    child.steps = []
                    lifted = True
                else:
                    plan.steps.append(
                        Step(
                            target=child.output,
                            inputs=(child.input, *child.extra_inputs),
                            module=(child.name,),
                            aux=child.aux if not plan.path else None,
                            shape=tuple(self.g.nodes[child.output].shape),
                            targets=(child.output, *child.extra_outputs) if child.extra_outputs else (),
                            when=child.when,
                        )
                    )
        if lifted:
            # a sequence continued later in its owner (`convs: { "1": ... }` again, Res2Net's
            # ModuleLists called in turn): its layers run where each was created, between
            # the owner's others; contiguous containers keep their order (a stable sort)
            plan.steps.sort(key=lambda step: self._step_order(path, step))

    def _step_order(self, path: tuple, step: Step) -> int:
        if step.leaf is not None:
            return self.order[step.target]
        return self.order[self.scope_nodes[(*path, *step.module)][0]]

    def root(self) -> ModulePlan:
        g = self.g
        plan = ModulePlan(
            name="",
            path=(),
            kind="root",
            input=g.input,
            output=g.output,
            template=g.network,
            args=dict(g.params),
        )
        self._fill(plan, (), "root")
        self._check_aux(plan)
        plan.steps = _schedule_aux(plan.steps, plan.input)
        aux = g.aux_outputs or {}
        otype = g.outputs_type
        if g.returns:
            plan.outputs, plan.outputs_dict = g.returns, True
            plan.other_outputs = g.other_returns
        elif aux:
            if otype is None:
                plan.outputs_type = f"{g.network}Outputs"
                plan.outputs = (("logits", plan.output), *((name, nid) for name, nid in aux.items()))
            else:
                plan.outputs_type = otype.name
                plan.outputs = tuple((fname, aux[src] if src else plan.output) for fname, src in otype.fields)
        return plan

    def _check_aux(self, plan: ModulePlan) -> None:
        for _, data in self.g.nodes.items():
            if data.aux is not None and data.path[0] != data.aux:
                _fail(
                    f"aux head `{data.aux}` is declared inside a block; the PyTorch back end "
                    "supports aux heads at the network's top level",
                    data.span,
                    help="declare `aux NAME at LAYER: ...` in the network body",
                )


def _schedule_aux(steps: list[Step], start: str) -> list[Step]:
    """Main-path steps in creation order; each aux step right after its inputs exist."""
    main = [s for s in steps if s.aux is None]
    pending = [s for s in steps if s.aux is not None]
    done = {start}
    out: list[Step] = []

    def flush():
        progress = True
        while progress:
            progress = False
            for s in list(pending):
                if all(i in done for i in s.inputs):
                    out.append(s)
                    done.add(s.target)
                    pending.remove(s)
                    progress = True

    flush()
    for s in main:
        out.append(s)
        done.add(s.target)
        flush()
    out.extend(pending)
    return out


def plan(graph: Graph) -> ModulePlan:
    """The module tree for a compiled graph (raises :class:`SpecError` E701 if it has none)."""
    return _Planner(graph).root()


def iter_plans(plan: ModulePlan):
    """Every module plan, parents before children, in registration order."""
    yield plan
    for child in plan.children:
        if isinstance(child, ModulePlan):
            yield from iter_plans(child)


def module_outputs(root: ModulePlan) -> dict[str, str]:
    """Dotted submodule name -> the node whose value it returns (for forward hooks in tests)."""
    out = {}

    def walk(p: ModulePlan, prefix: tuple):
        for child in p.children:
            path = prefix + (child.name,)
            if isinstance(child, Leaf):
                if child.op is not Op.LAYER_SCALE:  # a parameter, not a module
                    out[".".join(path)] = child.node
            else:
                if child.kind != "container":
                    out[".".join(path)] = child.output
                walk(child, path)

    walk(root, ())
    return out


def lookup(owner: ModulePlan, path: tuple[str, ...], index: dict | None = None):
    """The submodule at ``path``; ``index`` (``id(plan)`` -> children by name, filled as it
    goes) keeps many lookups in one plan linear instead of a scan of the children each."""
    index = {} if index is None else index
    node = owner
    for name in path:
        if id(node) not in index:
            index[id(node)] = {}
            for c in node.children:
                index[id(node)].setdefault(c.name, c)
        node = index[id(node)][name]
    return node
