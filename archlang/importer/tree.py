"""The importer's tree: a spec as the importer builds it, before it is text.

Plain dataclasses, no torch. :mod:`.trace` produces a :class:`Network` whose body holds
:class:`Call` (one op), :class:`Seq`, :class:`Group` and :class:`Instance` (one instance of a
non-leaf ``nn.Module``: a candidate block). :mod:`.blocks` replaces instances of a class that
occurs more than once by :class:`Call`\\ s of a :class:`BlockDef` (whose body may contain
:class:`If` and :class:`Repeat` over its parameters); :mod:`.text` prints the result.

Labels are the module attribute names (``"conv1"``, ``"0"``): the state_dict key of a
parameter is the labels on its path joined by ``.``. ``None`` is an unlabelled layer
(parameter-free ops; an unlabelled item of a labelled :class:`Seq` is named by its index).
Argument values are Python values: ``int``, ``float``, ``bool``, ``str``, ``None``, tuples
of those, or :class:`Param` (a reference to a block parameter) / :class:`Expr` (an
expression's source text) inside block bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Param:
    """A block parameter used as a value: printed as its name."""

    name: str


@dataclass(frozen=True)
class Expr:
    """An expression over block parameters, printed verbatim (``"planes * 4"``)."""

    text: str


@dataclass
class Call:
    """One op (``conv2d``, ``relu``, ...) or block call, with its arguments."""

    op: str
    args: tuple = ()
    kwargs: tuple[tuple[str, object], ...] = ()
    label: str | None = None
    source: str = ""  # where it came from: the module path and class (for comments, errors)
    reads: tuple[str, ...] = ()  # `from a, b`: the named values it reads (none: the value before it)
    named: bool = False  # another layer reads it by its label: the label stays


@dataclass
class Seq:
    """Layers run one after another (``{ ... }``; the network body is one too)."""

    items: list = field(default_factory=list)
    label: str | None = None
    reads: tuple[str, ...] = ()


@dataclass
class Group:
    """Parallel branches on the same input, merged: ``concat`` | ``add`` | ``mul``."""

    mode: str
    branches: list = field(default_factory=list)  # none: a bare merge of ``reads`` (`add from a, b`)
    label: str | None = None
    reads: tuple[str, ...] = ()


@dataclass
class Instance:
    """One call of a non-leaf module: ``cls`` is its Python class name (``"Bottleneck"``),
    ``path`` its qualified name (``"layer1.0"``); ``body`` what its forward did.
    ``container`` marks ``nn.Sequential`` / ``ModuleList`` / ``ModuleDict`` (never a block)."""

    cls: str
    path: str
    body: Seq
    label: str | None = None
    container: bool = False
    reads: tuple[str, ...] = ()
    # a module called with several tensors or read for several: its inputs' names (a block
    # `from x, skip`; its further outputs are its inner values read by name). Never inline.
    inputs: tuple[str, ...] = ()


@dataclass
class If:
    """``if cond { then } else { orelse }`` inside a block body (cond: Param or Expr)."""

    cond: object
    then: list = field(default_factory=list)
    orelse: list = field(default_factory=list)


@dataclass
class Repeat:
    """``repeat count { body }`` (``as var`` when the body uses the index)."""

    count: object
    body: list = field(default_factory=list)
    var: str | None = None


@dataclass
class BlockDef:
    """``block name(params) { body }``: params are (name, type, default-or-None)."""

    name: str
    params: list[tuple[str, str, object]] = field(default_factory=list)
    body: list = field(default_factory=list)
    inputs: tuple[str, ...] = ()  # `from x, skip`: the values it is called with


@dataclass
class Aux:
    """``aux label at anchor: body`` (a training-only head reading the anchor's output)."""

    label: str
    anchor: str  # the label path of the layer it hangs from, as the spec names it
    body: object  # Call | Seq | Instance


@dataclass
class Network:
    """The whole import. ``outputs`` is (namedtuple type, ((field, aux label or "logits"), ...))."""

    name: str
    input_shape: tuple[int, ...]
    body: Seq
    aux: list[Aux] = field(default_factory=list)
    outputs: tuple[str, tuple[tuple[str, str], ...]] | None = None
    blocks: list[BlockDef] = field(default_factory=list)
    header: list[str] = field(default_factory=list)  # comment lines for the top of the file
    params: list[tuple[str, str, object]] = field(default_factory=list)  # `network N(num_classes: int = 1000)`
    returns: tuple[tuple[str, str], ...] = ()  # `outputs dict(key = value path, ...)`


def run_items(item) -> list | None:
    """The run of items a sequence or a block instance holds in order (what a chain of layers
    is made of); None for anything else."""
    if isinstance(item, Seq):
        return item.items
    if isinstance(item, Instance):
        return item.body.items
    return None


def children(item) -> list:
    """The items directly inside ``item`` (a sequence's, an instance's body's, a group's
    branches, both sides of an ``if``, a repeat's body); none for a call."""
    if isinstance(item, Seq):
        return item.items
    if isinstance(item, Instance):
        return item.body.items
    if isinstance(item, Group):
        return item.branches
    if isinstance(item, If):
        return [*item.then, *item.orelse]
    if isinstance(item, Repeat):
        return item.body
    return []


def read_names(items: list) -> set[str]:
    """Every name part that a ``from`` in ``items`` (and inside them) reads: a layer so
    named keeps its name and place (no repeat folds it, no edge layer leaves it)."""
    out: set[str] = set()
    stack = list(items)
    while stack:
        item = stack.pop()
        for ref in getattr(item, "reads", ()):
            out.update(ref.split("."))
        stack.extend(children(item))
    return out


def continued(scopes: list[list]) -> set[int]:
    """The ids of the labelled sequences that go on one of the same label opened before them
    in the same scope (``convs: { ... }`` again, docs/language.md): their layers' positions
    go on from where it stopped, so an index there is no position. ``scopes``: the items of
    each scope root (a network body, a block body); unlabelled sequences, groups, ``if`` and
    ``repeat`` stay in their scope, and a sequence inside a ``repeat`` is opened again by
    each repetition after the first."""
    out: set[int] = set()

    def scope(items: list) -> None:
        seen: set[str] = set()

        def visit(item, looped: bool) -> None:
            label = getattr(item, "label", None)
            if isinstance(item, Seq) and label is not None:
                if label in seen or looped:
                    out.add(id(item))
                seen.add(label)
            if label is not None:
                scope(children(item))
                return
            for child in children(item):
                visit(child, looped or isinstance(item, Repeat))

        for item in items:
            visit(item, False)

    for items in scopes:
        scope(items)
    return out
