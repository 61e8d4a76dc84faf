"""The importer's tree -> spec text, in ``archc fmt``'s canonical layout.

Every node type of :mod:`.tree` prints: a :class:`~.tree.Call` as ``label: op(args,
k=v)``, a :class:`~.tree.Seq` as ``label: { ... }``, a :class:`~.tree.Group` as ``label:
concat { ... }``, an :class:`~.tree.Instance` (for now) as the labelled sequence of its
body, :class:`~.tree.If` / :class:`~.tree.Repeat` / :class:`~.tree.BlockDef` in their
syntax; values as spec literals (``true``, ``none``, ``(1, 7)``, ``"same"``). A label that
is not a plain name (``"0"``, a keyword) is printed quoted. The text is then passed
through :func:`archlang.tools.fmt.format_source`. No torch.
"""

from __future__ import annotations

import math
import re

from archlang.frontend.keywords import KEYWORDS

from ..diagnostics import Diagnostic, SpecError
from ..version import __version__
from .tree import Aux, BlockDef, Call, Expr, Group, If, Instance, Network, Param, Repeat, Seq

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_name(text: str) -> bool:
    return bool(_NAME.match(text)) and text not in KEYWORDS


def label_text(label: str) -> str:
    """A label as the spec writes it: bare if a plain name, else a (template) string."""
    if is_name(label):
        return label
    return '"' + label.replace("\\", "\\\\").replace('"', '\\"') + '"'


def value_text(value) -> str:
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
        if not math.isfinite(value):
            raise _no_literal(value)
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (tuple, list)):
        inner = ", ".join(value_text(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    raise _no_literal(value)


def _no_literal(value, message: str | None = None):
    return SpecError(Diagnostic(code="E722", message=message or f"the value {value!r} has no spec literal"))


def call_text(call: Call) -> str:
    try:
        parts = [value_text(a) for a in call.args] + [f"{k}={value_text(v)}" for k, v in call.kwargs]
    except SpecError as err:  # a value with no literal (inf, nan): say which layer has it
        raise _no_literal(None, f"{call.source or call.op}: {err.diagnostics[0].message}") from None
    return f"{call.op}({', '.join(parts)})" if parts else call.op


class _Printer:
    def __init__(self):
        self.lines: list[str] = []
        self.depth = 0

    def line(self, text: str) -> None:
        self.lines.append("  " * self.depth + text)

    def open(self, head: str) -> None:
        self.line(head + "{" if head.endswith(": ") or not head else head + " {")
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.line("}")

    def items(self, items, numbered: bool = False) -> None:
        """``numbered``: the body of a labelled sequence, whose unlabelled items are named
        by position; a call labelled with its position then prints without the label."""
        positional = numbered and all(_one_position(item) for item in items)
        for index, item in enumerate(items):
            if positional and isinstance(item, Call) and item.label == str(index):
                self.line(call_text(item))
            else:
                self.item(item)

    def item(self, item, label: str | None = None) -> None:
        prefix = f"{label_text(label)}: " if label is not None else ""
        if isinstance(item, Call):
            prefix = prefix or (f"{label_text(item.label)}: " if item.label is not None else "")
            self.line(prefix + call_text(item))
        elif isinstance(item, Instance):
            own = item.label if label is None else label
            self.open(f"{label_text(own)}: " if own is not None else "")
            self.items(item.body.items, numbered=own is not None)
            self.close()
        elif isinstance(item, Seq):
            own = item.label if label is None else label
            self.open(f"{label_text(own)}: " if own is not None else "")
            self.items(item.items, numbered=own is not None)
            self.close()
        elif isinstance(item, Group):
            own = item.label if label is None else label
            self.open((f"{label_text(own)}: " if own is not None else "") + item.mode)
            for branch in item.branches:
                self.item(branch)
            self.close()
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
            self.items(item.body)
            self.close()
        else:
            raise TypeError(f"cannot print {type(item).__name__}")

    def block(self, block: BlockDef) -> None:
        params = []
        for name, type_, default in block.params:
            text = f"{name}: {type_}" if type_ else name
            if default is not None:
                text += f" = {value_text(default)}"
            params.append(text)
        self.open(f"block {block.name}({', '.join(params)})")
        self.items(block.body)
        self.close()
        self.line("")

    def aux(self, aux: Aux) -> None:
        head = f"aux {label_text(aux.label)} at {aux.anchor}: "
        body = aux.body
        if isinstance(body, Call):
            self.line(head + call_text(body))
            return
        items = body.body.items if isinstance(body, Instance) else body.items
        self.open(head.rstrip())
        self.items(items)
        self.close()


def _one_position(item) -> bool:
    """Does ``item`` take exactly one position of a numbered sequence? A call or a labelled
    scope does; an unlabelled sequence or group numbers its contents in the same scope."""
    return isinstance(item, Call) or (isinstance(item, (Seq, Instance, Group)) and item.label is not None)


def header_lines(network: Network) -> list[str]:
    lines = list(network.header) or [f"{network.name}, imported from PyTorch"]
    lines.append(f"by `archc import` (archlang {__version__}); state_dict keys follow the module's attribute names")
    return lines


def network_text(network: Network, file: str = "<import>") -> str:
    """The spec text of ``network`` (formatted; raises SpecError if it does not parse)."""
    from archlang.tools.fmt import format_source

    from .autonames import settle

    network = settle(network)  # no automatic name equal to a label (E302)
    p = _Printer()
    for line in header_lines(network):
        p.line(f"# {line}".rstrip())
    p.line("")
    for block in network.blocks:
        p.block(block)
    name = network.name if is_name(network.name) else "Imported"
    p.open(f"network {name}")
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
    p.close()
    return format_source("\n".join(p.lines) + "\n", file)
