"""The importer's tree -> spec text, in ``archc fmt``'s canonical layout.

Every node type of :mod:`.tree` prints: a :class:`~.tree.Call` as ``label: op(args,
k=v)``, a :class:`~.tree.Seq` as ``label: { ... }``, a :class:`~.tree.Group` as ``label:
concat { ... }``, an :class:`~.tree.Instance` (for now) as the labelled sequence of its
body, :class:`~.tree.If` / :class:`~.tree.Repeat` / :class:`~.tree.BlockDef` in their
syntax; values as spec literals (``true``, ``none``, ``(1, 7)``, ``"same"``). A label that
is not a plain name (``"0"``, a keyword) is printed quoted.

The printed text is compiled by archlang's compiler before it is formatted
(:func:`archlang.tools.fmt.format_source`). An import keeps module attribute names as
labels, and the compiler's automatic name of an unlabelled layer (``flatten``, ``"6"`` in a
labelled sequence) can be one of them: E302. The printer knows the line of each call, so
the clashing layer, when it is unlabelled and has no weights, is labelled with a free name
after its op (``flatten_2``; no state_dict key changes) and the text compiled again. No
torch.
"""

from __future__ import annotations

import copy
import math
import re

from archlang.frontend.keywords import KEYWORDS

from ..analysis.params import STATEFUL
from ..diagnostics import Diagnostic, SpecError
from ..ops import CALLABLE_OPS, SIGNATURES
from ..ops.base import t_fill
from ..version import __version__
from .tree import (
    Aux,
    BlockDef,
    Call,
    Expr,
    Group,
    If,
    Instance,
    Network,
    Param,
    Repeat,
    Seq,
    children,
    continued,
    read_names,
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Ops with weights or running statistics: their labels are state_dict keys, never given here.
_STATEFUL = frozenset(op.value for op in STATEFUL)


def is_name(text: str) -> bool:
    return bool(_NAME.match(text)) and text not in KEYWORDS


def label_text(label: str) -> str:
    """A label as the spec writes it: bare if a plain name, else a (template) string."""
    if is_name(label):
        return label
    return '"' + label.replace("\\", "\\\\").replace('"', '\\"') + '"'


def value_text(value, infinite: bool = False) -> str:
    """``value`` as a spec literal; ``infinite``: an infinite float is allowed (an argument
    typed as a fill value, :func:`archlang.ops.base.t_fill`), written ``inf`` / ``-inf``."""
    if isinstance(value, (Param,)):
        return value.name
    if isinstance(value, Expr):
        return value.text
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not (math.isfinite(value) or infinite and value == value):
            raise _no_literal(value)
        return repr(value)  # `inf` / `-inf`: the spec's constant `inf`
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (tuple, list)):
        inner = ", ".join(value_text(v, infinite) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise _no_literal(value)


def _no_literal(value, message: str | None = None):
    return SpecError(Diagnostic(code="E722", message=message or f"the value {value!r} has no spec literal"))


def call_text(call: Call, blocks: dict | None = None) -> str:
    """``blocks``: block name -> its fill parameters (:func:`_fill_params`)."""
    fills = _fill_args(call.op) | (blocks or {}).get(call.op, set())
    try:
        parts = [value_text(a, i in fills) for i, a in enumerate(call.args)]
        parts += [f"{k}={value_text(v, k in fills)}" for k, v in call.kwargs]
    except SpecError as err:  # a value with no literal (inf, nan): say which layer has it
        where = call.source or call.op
        if " (" in where and not where.startswith("`"):  # `path` (class), as the other messages
            path, _, cls = where.partition(" (")
            where = f"`{path}` ({cls}"
        raise _no_literal(None, f"{where}: {err.diagnostics[0].message}") from None
    return f"{call.op}({', '.join(parts)})" if parts else call.op


def _fill_args(name: str) -> set:
    """The positions and names of an op's fill-value arguments, the ones that may be infinite."""
    op = CALLABLE_OPS.get(name)
    args = SIGNATURES[op].args if op is not None else ()
    return {k for i, a in enumerate(args) if a.check is t_fill for k in (i, a.name)}


def _fill_params(blocks: list[BlockDef]) -> dict[str, set]:
    """Block name -> the positions and names of its parameters that a fill argument reads
    (directly, or through a further block's): they may be infinite (`MaxPool2dSame(value=-inf)`)."""
    out: dict[str, set] = {}
    changed = True
    while changed:  # a block's fill parameter may be passed on to another block's
        changed = False
        for block in blocks:
            names, found, stack = {p[0] for p in block.params}, set(), list(block.body)
            while stack:
                item = stack.pop()
                stack.extend(children(item))
                if isinstance(item, Call):
                    fills = _fill_args(item.op) | out.get(item.op, set())
                    for key, value in [*enumerate(item.args), *item.kwargs]:
                        if key in fills and isinstance(value, Param) and value.name in names:
                            found.add(value.name)
            keys = {k for i, (name, _, _) in enumerate(block.params) if name in found for k in (i, name)}
            if keys != out.get(block.name, set()):
                out[block.name], changed = keys, True
    return out


class _Printer:
    def __init__(
        self, refs: frozenset | set = frozenset(), fills: dict | None = None, again: frozenset | set = frozenset()
    ):
        self.refs = refs  # names a `from` reads: a positional label among them is printed
        self.fills = fills or {}  # block name -> its fill parameters
        self.again = again  # sequences opened again (tree.continued): no index is a position
        self.lines: list[str] = []
        self.depth = 0
        self.calls: dict[int, Call] = {}  # line number (1-based) -> the call printed there
        self.repeated = 0  # inside a `repeat`: one label would name every repetition

    def line(self, text: str) -> None:
        self.lines.append("  " * self.depth + text)

    def call_line(self, text: str, call: Call) -> None:
        self.line(text)
        if not self.repeated:
            self.calls[len(self.lines)] = call

    def open(self, head: str) -> None:
        self.line(head + "{" if head.endswith(": ") or not head else head + " {")
        self.depth += 1

    def close(self, reads: tuple[str, ...] = ()) -> None:
        self.depth -= 1
        self.line("}" + _from(reads))

    def items(self, items, numbered: bool = False) -> None:
        """``numbered``: the body of a labelled sequence, whose unlabelled items are named
        by position; a call labelled with its position then prints without the label."""
        positional = numbered and all(_one_position(item) for item in items)
        for index, item in enumerate(items):
            if positional and isinstance(item, Call) and item.label == str(index) and item.label not in self.refs:
                self.call_line(call_text(item, self.fills) + _from(item.reads), item)
            else:
                self.item(item)

    def item(self, item, label: str | None = None) -> None:
        prefix = f"{label_text(label)}: " if label is not None else ""
        if isinstance(item, Call):
            prefix = prefix or (f"{label_text(item.label)}: " if item.label is not None else "")
            self.call_line(prefix + call_text(item, self.fills) + _from(item.reads), item)
        elif isinstance(item, Instance):
            own = item.label if label is None else label
            self.open(f"{label_text(own)}: " if own is not None else "")
            self.items(item.body.items, numbered=own is not None)
            self.close(item.reads)
        elif isinstance(item, Seq):
            own = item.label if label is None else label
            self.open(f"{label_text(own)}: " if own is not None else "")
            self.items(item.items, numbered=own is not None and id(item) not in self.again)
            self.close(item.reads)
        elif isinstance(item, Group) and not item.branches:  # a bare merge of named values
            own = item.label if label is None else label
            self.line((f"{label_text(own)}: " if own is not None else "") + item.mode + _from(item.reads))
        elif isinstance(item, Group):
            own = item.label if label is None else label
            self.open((f"{label_text(own)}: " if own is not None else "") + item.mode)
            for branch in item.branches:
                self.item(branch)
            self.close(item.reads)
        elif isinstance(item, If):
            self.open(f"if {value_text(item.cond)}")
            self.items(item.then)
            if item.orelse:
                self.depth -= 1
                self.line("} else {")
                self.depth += 1
                self.items(item.orelse)
            self.close()
        elif isinstance(item, Repeat):
            var = f" as {item.var}" if item.var else ""
            self.open(f"repeat {value_text(item.count)}{var}")
            self.repeated += 1
            self.items(item.body)
            self.repeated -= 1
            self.close()
        else:
            raise TypeError(f"cannot print {type(item).__name__}")

    def block(self, block: BlockDef) -> None:
        params = []
        fills = self.fills.get(block.name, set())
        for name, type_, default in block.params:
            text = f"{name}: {type_}" if type_ else name
            if default is not None:
                text += f" = {value_text(default, name in fills)}"
            params.append(text)
        inputs = f" from {', '.join(block.inputs)}" if block.inputs else ""
        params_text = f"({', '.join(params)})" if params or not inputs else ""
        self.open(f"block {block.name}{params_text}{inputs}")
        self.items(block.body)
        self.close()
        self.line("")

    def aux(self, aux: Aux) -> None:
        head = f"aux {label_text(aux.label)} at {aux.anchor}: "
        body = aux.body
        if isinstance(body, Call):
            self.line(head + call_text(body, self.fills))
            return
        items = body.body.items if isinstance(body, Instance) else body.items
        self.open(head.rstrip())
        self.items(items)
        self.close()


def _from(reads: tuple[str, ...]) -> str:
    """`` from a, b.c`` for the named values a layer reads (each part a label)."""
    if not reads:
        return ""
    return " from " + ", ".join(
        ref if ref == "input" else ".".join(label_text(part) for part in ref.split(".")) for ref in reads
    )


def _path_text(path: str) -> str:
    """A value's dotted path as ``outputs dict`` writes it: names, then names or digits."""
    parts = path.split(".")
    if not all(is_name(p) or (k and p.isdigit()) for k, p in enumerate(parts)):
        raise SpecError(
            Diagnostic(
                code="E725",
                message=f"the module returns the value of `{path}`, which `outputs dict` cannot name",
                help="outputs dict reads plain names (`head.conv`, `fpn.layer_blocks.0`)",
            )
        )
    return path


def _one_position(item) -> bool:
    """Does ``item`` take exactly one position of a numbered sequence? A call or a labelled
    scope does; an unlabelled sequence or group numbers its contents in the same scope."""
    return isinstance(item, Call) or (isinstance(item, (Seq, Instance, Group)) and item.label is not None)


def header_lines(network: Network) -> list[str]:
    lines = list(network.header) or [f"{network.name}, imported from PyTorch"]
    lines.append(f"by `archc import` (archlang {__version__}); state_dict keys follow the module's attribute names")
    return lines


def network_text(network: Network, file: str = "<import>") -> str:
    """The spec text of ``network``, formatted, as archlang's compiler accepts it: an
    unlabelled parameter-free layer whose automatic name the compiler finds taken in its
    scope is labelled (``network`` is left as it is). Raises :class:`SpecError` for what
    does not compile otherwise (its ``sources`` hold the text)."""
    from archlang.compiler import compile_spec
    from archlang.frontend.loader import load_text
    from archlang.tools.fmt import format_source

    network = copy.deepcopy(network)
    taken: set[str] | None = None
    while True:  # each round labels at least one unlabelled call, so this ends
        printer = _printed(network)
        text = "\n".join(printer.lines) + "\n"
        try:
            compile_spec(load_text(text, file))
        except SpecError as err:
            clashing = _clashing_calls(err, printer.calls, file)
            if not clashing:
                raise
            taken = _labels(network) if taken is None else taken
            for call in clashing:
                call.label = _free_name(call.op, taken)
                taken.add(call.label)
            continue
        return format_source(text, file)


def _printed(network: Network) -> _Printer:
    p = _Printer(
        read_names([network.body, *(b for blk in network.blocks for b in blk.body)]),
        _fill_params(network.blocks),
        continued([network.body.items, *(blk.body for blk in network.blocks), *([a.body] for a in network.aux)]),
    )
    for line in header_lines(network):
        p.line(f"# {line}".rstrip())
    p.line("")
    for block in network.blocks:
        p.block(block)
    name = network.name if is_name(network.name) else "Imported"
    params = ", ".join(f"{n}: {t} = {value_text(v)}" for n, t, v in network.params)
    p.open(f"network {name}" + (f"({params})" if params else ""))
    p.line("input " + "x".join(str(d) for d in network.input_shape))
    p.line("")
    p.items(network.body.items)
    for aux in network.aux:
        p.aux(aux)
    if network.outputs is not None:
        typename, fields = network.outputs
        aux_names = {a.label for a in network.aux}
        parts = [f if (src == "logits" and "logits" not in aux_names) else f"{f} = {src}" for f, src in fields]
        p.line(f"outputs {typename}({', '.join(parts)})")
    if network.returns:
        parts = [label_text(k) if k == v else f"{label_text(k)} = {_path_text(v)}" for k, v in network.returns]
        p.line(f"outputs dict({', '.join(parts)})")
    p.close()
    return p


def _clashing_calls(err: SpecError, calls: dict[int, Call], file: str) -> list[Call]:
    """For each "name used twice" (E302) of ``err``, the unlabelled parameter-free call on
    one of its two lines; [] if any other error, or a clash of two labels or of a layer with
    weights (not the importer's to rename: E724)."""
    out: list[Call] = []
    for diag in err.diagnostics:
        if diag.code != "E302":
            return []
        spans = [diag.span, *(note.span for note in diag.notes)]
        lines = [s.line for s in spans if s is not None and s.file == file]
        movable = [calls[n] for n in lines if n in calls and _movable(calls[n])]
        if not movable:
            return []
        if all(c is not movable[0] for c in out):
            out.append(movable[0])
    return out


def _movable(call: Call) -> bool:
    return call.label is None and call.op in CALLABLE_OPS and call.op not in _STATEFUL


def _labels(network: Network) -> set[str]:
    """Every label of ``network``: a name given after an op is none of them."""
    out: set[str] = {a.label for a in network.aux}
    stack: list = [network.body, *(a.body for a in network.aux), *(i for b in network.blocks for i in b.body)]
    while stack:
        item = stack.pop()
        label = getattr(item, "label", None)
        if label is not None:
            out.add(label)
        stack.extend(children(item))
    return out


def _free_name(op: str, taken: set[str]) -> str:
    name, k = op, 1
    while name in taken:
        k += 1
        name = f"{op}_{k}"
    return name
