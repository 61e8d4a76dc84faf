"""What one lowering builds and carries: the graph, scopes, settings, limits and errors."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from archlang.frontend import ir
from archlang.frontend.expressions import Env
from archlang.graph.model import Graph, Node, OutputsType, ScopeInfo
from archlang.graph.shape_pass import shape_node

from ..diagnostics import Diagnostic, Note, SpecError
from ..limits import DEFAULT_MAX_NODES  # noqa: F401  (re-exported by archlang.lower)
from ..ops import Op

MAX_BLOCK_DEPTH = 64
# Statement lists (bodies, branches) open inside each other, counted across block
# instances: lowering recurses along them, so this bounds its Python stack.
MAX_LOWER_DEPTH = 100
# Evaluation steps (statements, loop iterations, items of built sequences) allowed per
# graph node of --max-nodes, plus a floor for small limits (see evaluate.Budget).
STEPS_PER_NODE = 2
MIN_STEPS = 100_000
MAX_REPORTED_ERRORS = 20
# Errors found, repetitions included, before lowering stops.
MAX_RAW_ERRORS = 100


# Ends the id of a node of a structure the network flags do not choose (Alternative).
OTHER_MARK = "~"


def lowering_error(code, message, span, help=None, notes=()) -> SpecError:
    return SpecError(Diagnostic(code=code, message=message, span=span, help=help, notes=tuple(notes)))


@dataclass
class Scope:
    """The names given so far in one block instance, named branch or group."""

    path: tuple[str, ...]
    sequential: bool = False  # unnamed items are numbered like nn.Sequential's children
    labels: dict = field(default_factory=dict)  # name -> (output node id, span)
    counts: dict = field(default_factory=dict)
    position: int = 0
    # Where `from` looks next for a name not given here: the enclosing scope, None at a
    # block instance or the network (a block sees only its own names, like a function).
    parent: Scope | None = None
    entry: str | None = None  # a block instance's input: `from input` inside it
    sequences: dict = field(default_factory=dict)  # name -> its labelled sequence's Scope (to go on)

    def auto_name(self, callee: str) -> str:
        if self.sequential:
            return str(self.position - 1)
        return self.counted_name(callee)

    def counted_name(self, callee: str) -> str:
        """``callee``, then ``callee_2``, ... (a name no label has taken)."""
        k = self.counts.get(callee, 0)
        while True:
            k += 1
            name = callee if k == 1 else f"{callee}_{k}"
            if name not in self.labels:
                self.counts[callee] = k
                return name


@dataclass
class Ctx:
    """Settings inherited down the instantiation tree (dynamically scoped)."""

    unit: dict = field(default_factory=lambda: {"conv": {"style": "conv2d", "bn": {}, "bias": True}})
    init: dict | None = None
    aux: str | None = None
    blocks: tuple[str, ...] = ()

    def inner(self, **changes) -> Ctx:
        """The settings for a nested body: `unit` statements there do not leak out."""
        return replace(self, unit=dict(self.unit), **changes)


@dataclass(frozen=True)
class Frame:
    """Where the statements of one statement list are lowered."""

    scope: Scope
    env: Env
    ctx: Ctx
    top: bool = False  # the network's own body: `input` and `outputs` belong here
    inline: list | None = None  # names still to give out, for `a, b: Block()` (see layers)
    source: str | None = None  # the node that every branch of a group starts from

    def child(self, values: dict | None = None) -> Frame:
        # Once per loop iteration: direct construction is ~4x faster than dataclasses.replace.
        return Frame(self.scope, Env(self.env, values), self.ctx, self.top, self.inline, self.source)


class Lowering:
    """The graph under construction and the bookkeeping around it."""

    def __init__(self, blocks: dict, globals_: Env, max_nodes: int, input_shape: tuple[int, ...] | None):
        self.blocks = blocks
        self.globals = globals_  # top-level constants: the parent of every block's scope
        self.max_nodes = max_nodes
        self.input_override = input_shape
        self.g = Graph()
        self.scopes: dict[str, ScopeInfo] = {}
        self.aux_outputs: dict[str, str] = {}
        self.outputs_type: OutputsType | None = None
        self.outputs_field_spans: list = []
        self.returns: list = []  # `outputs dict(...)`: (key, value name or None, span)
        self.errors: list[Diagnostic] = []
        self._seen_errors: set = set()
        self.depth = 0
        self.estimate = None  # an estimate.Estimator, set by lower()
        self.raw_errors = 0
        self.warnings: list[Diagnostic] = []  # W2xx: the compile goes on
        self.created: list[str] = []  # node ids in creation (topological) order
        self.values: dict[tuple, str] = {}  # path of every named value -> its node (`from a.b`)
        self.shaped = 0  # how many of them have their shapes (see shape_of)
        # `if` on boolean network parameters in the network body (see walk._flag_if): the
        # conditions the nodes made now exist under, the other structures, the flags read
        # by such tests, and whether an other structure is being lowered
        self.when: tuple = ()
        self.alternatives: list = []
        self.flag_tests: set[str] = set()
        self.flag_failed: set[str] = set()  # flags whose other structure has an error
        self.params: dict = {}  # the network parameters' values
        self.outputs_when: tuple = ()
        self.in_other = False
        self.other_ids: set[str] = set()

    def warn(self, diagnostic: Diagnostic) -> None:
        """Keep a warning, once per place (a loop repeats its statements)."""
        if len(self.warnings) < MAX_REPORTED_ERRORS and diagnostic not in self.warnings:
            self.warnings.append(diagnostic)

    def shape_of(self, nid: str) -> tuple | None:
        """The shape of a node made so far (a block reading ``in_channels``): the shape pass
        run on the nodes not shaped yet, in creation order, so all the calls of one lowering
        shape each node once. A shape error on the way is raised where it is; None when an
        earlier error left the node without one."""
        nodes = self.g.nodes
        while self.shaped < len(self.created) and nodes[nid].shape is None:
            problem = shape_node(nodes, self.created[self.shaped], self.scopes)
            self.shaped += 1
            if problem is not None:
                raise SpecError(problem)
        return nodes[nid].shape

    def check_expansion(self, ops: int, span, what: str) -> None:
        """Refuse an expansion that must add ``ops`` (a lower bound) before running it."""
        if len(self.g) + ops > self.max_nodes:
            amount = "" if ops > self.max_nodes else f" (it adds at least {ops:,})"
            raise lowering_error(
                "E603",
                f"{what} makes the network more than {self.max_nodes} ops{amount}",
                span,
                help="raise the limit with --max-nodes if this is intended",
            )

    def enter(self, stmts, ctx: Ctx) -> None:
        """Open a statement list: count the depth (E601) before recursing further."""
        self.depth += 1
        if self.depth > MAX_LOWER_DEPTH and stmts:
            chain = " -> ".join(ctx.blocks)
            raise lowering_error(
                "E601",
                f"layers nest more than {MAX_LOWER_DEPTH} levels deep (counting inside blocks)",
                stmts[0].span,
                notes=[Note(f"inside blocks: {chain}")] if chain else (),
                help="flatten the spec: use `repeat` or a sequence instead of nesting",
            )

    def record(self, err: SpecError) -> None:
        """Keep a local mistake and go on, so independent errors are reported together.
        The same mistake repeated by a loop is shown once, but every repetition counts
        toward stopping (``repeat 1000000 { convv(8, 3) }`` stops after a few)."""
        self.raw_errors += len(err.diagnostics)
        if self.raw_errors > MAX_RAW_ERRORS:
            raise SpecError(self.errors or err.diagnostics)
        for d in err.diagnostics:
            key = (d.code, d.message, d.span)
            if key not in self._seen_errors:
                self._seen_errors.add(key)
                self.errors.append(d)
        if len(self.errors) >= MAX_REPORTED_ERRORS:
            raise SpecError(self.errors)

    def open_scope(
        self,
        scope: Scope,
        name,
        kind,
        span,
        ctx: Ctx,
        sequential=False,
        template=None,
        args=None,
        exprs=None,
        entry=None,
    ):
        path = scope.path + (name,)
        info = ScopeInfo(
            path=path,
            kind=kind,
            span=span,
            template=template,
            args=args or {},
            aux=ctx.aux,
            exprs=exprs or {},
            when=self.when,
        )
        self.scopes[info.id] = info
        scope.labels.setdefault(name, (None, span))
        if kind == "block":
            return Scope(path, sequential=sequential, entry=entry)
        return Scope(path, sequential=sequential, parent=scope)

    def add_node(self, scope: Scope, name, op, attrs, inputs, span, ctx: Ctx, exprs=None) -> str:
        path = scope.path + (name,)
        nid = "/".join(path)
        if nid in self.g:
            prev = self.g.nodes[nid].span
            raise lowering_error(
                "E302", f"the name `{name}` is used twice in this scope", span, notes=[Note("first used here", prev)]
            )
        if len(self.g) >= self.max_nodes:
            raise lowering_error(
                "E603",
                f"the network expands to more than {self.max_nodes} ops",
                span,
                help="raise the limit with --max-nodes if this is intended",
            )
        self.g.add_node(
            Node(
                id=nid,
                op=op,
                attrs=attrs,
                inputs=tuple(inputs),
                path=path,
                span=span,
                aux=ctx.aux,
                init=_init(op, attrs, ctx),
                exprs=exprs or {},
                when=self.when,
            )
        )
        if scope.labels.get(name, (None,))[0] is None:
            scope.labels[name] = (nid, span)
        self.values.setdefault(path, nid)
        self.created.append(nid)
        return nid

    def lower_other(self, scope: Scope, run, resolve):
        """Lower what ``run()`` makes, then take it out again: (its value, its nodes, its
        scopes, its aux heads, its ``outputs`` type, its ``outputs dict(...)`` as
        ``resolve(value)`` gives it), or None when it has an error. Nothing it did stays:
        the graph, names, errors and warnings are as before."""
        g = self.g
        mark = len(self.created)
        scopes, values = dict(self.scopes), dict(self.values)
        aux, outputs_type, outputs_when = dict(self.aux_outputs), self.outputs_type, self.outputs_when
        returns, spans = list(self.returns), list(self.outputs_field_spans)
        errors, seen, raw, warnings = list(self.errors), set(self._seen_errors), self.raw_errors, list(self.warnings)
        labels, counts, position = dict(scope.labels), dict(scope.counts), scope.position
        self.in_other = True
        out = None
        try:
            value = run()
            made = self.created[mark:]
            if made:
                self.shape_of(made[-1])
            own_returns = resolve(value) if self.returns != returns else ()
            if len(self.errors) == len(errors) and all(g.nodes[n].shape is not None for n in made):
                # ids of their own: a sequence numbers its items, so the other structure's
                # `features/1` (a batch norm) is not this one's `features/1` (a ReLU)
                ids = {n: f"{n}{OTHER_MARK}{len(self.other_ids) + k}" for k, n in enumerate(made)}
                self.other_ids.update(ids.values())
                own = lambda n: ids.get(n, n)  # noqa: E731
                nodes = tuple(replace(g.nodes[n], id=own(n), inputs=tuple(map(own, g.nodes[n].inputs))) for n in made)
                new_scopes = tuple(
                    replace(info, inputs=tuple(map(own, info.inputs)), output=info.output and own(info.output))
                    for key, info in self.scopes.items()
                    if key not in scopes
                )
                new_aux = tuple((k, own(v)) for k, v in self.aux_outputs.items() if k not in aux)
                otype = self.outputs_type if self.outputs_type is not outputs_type else None
                out = own(value), nodes, new_scopes, new_aux, otype, tuple((k, own(v)) for k, v in own_returns)
        except SpecError:
            out = None
        finally:
            self.in_other = False
            made = self.created[mark:]
            for nid in made:
                node = g.nodes.pop(nid)
                g._users.pop(nid, None)
                for src in dict.fromkeys(node.inputs):
                    users = g._users.get(src)
                    if users and users[-1] == nid:
                        users.pop()
                    elif users and nid in users:
                        users.remove(nid)
            del self.created[mark:]
            self.shaped = min(self.shaped, mark)
            self.scopes, self.values = scopes, values
            self.aux_outputs, self.outputs_type, self.outputs_when = aux, outputs_type, outputs_when
            self.returns, self.outputs_field_spans = returns, spans
            self.errors, self._seen_errors, self.raw_errors, self.warnings = errors, seen, raw, warnings
            scope.labels, scope.counts, scope.position = labels, counts, position
        return out


def _init(op, attrs, ctx: Ctx) -> dict | None:
    """The weight initialisation of a conv or linear layer: the `init` in force, with the
    layer's own ``init_std`` taking precedence."""
    if op not in (Op.CONV2D, Op.LINEAR):
        return None
    std = attrs.get("init_std")
    if ctx.init is not None:
        init = dict(ctx.init)
        if std is not None:
            # Under a scheme without a std (Kaiming, Xavier, default) the layer's weights
            # become trunc_normal(std); the scheme's bias constant still holds, as in
            # torchvision's SqueezeNet (every conv's bias 0, the last conv's weights N(0, 0.01)).
            if "std" in init:
                init = init | {"std": std}
            else:
                init = _trunc_normal(std) | {"bias": init.get("bias"), "overrides": init["scheme"]}
        return init
    if std is not None:
        return _trunc_normal(std)
    return None


def _trunc_normal(std: float) -> dict:
    """A per-layer ``init_std``: truncated normal, as torchvision's GoogLeNet / Inception."""
    return {"scheme": "trunc_normal", "std": std, "a": -2.0, "b": 2.0, "bias": None}


def arg_span(call: ir.Call, arg):
    """The span of a call's argument named (or numbered) ``arg``; the call's if there is none."""
    for kw in call.kwargs:
        if kw.name == arg:
            return kw.span
    if isinstance(arg, int) and arg < len(call.args):
        return call.args[arg].span
    return call.span
