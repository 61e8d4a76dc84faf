"""The archlang IR: frozen dataclasses, one per syntactic construct.

Expressions and statements are tagged unions told apart by ``kind`` (a field every such
node has, fixed per class). Every node carries the :class:`Span` it came from. Nodes are
built by the parser (archlang/frontend/parser.py) and never from user data, so nothing
validates them: docs/architecture.md says why. :func:`as_data` gives the JSON of
``archc --emit ir``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Literal

from archlang.diagnostics import Span

IR_VERSION = 3  # 2: name templates carry their parsed holes (Label.pieces, Label.holes)
# 3: layers read named values (LayerStmt.sources, Merge); var / assignment statements; extern

_node = dataclass(frozen=True, slots=True, kw_only=True)


def _kind(tag: str):
    """The ``kind`` field of a tagged node: set by the class, not passed in."""
    return field(default=tag, init=False)


@_node
class Node:
    span: Span


# ---- expressions ----------------------------------------------------------------------


@_node
class Const(Node):
    kind: Literal["const"] = _kind("const")
    value: int | float | bool | str | None


@_node
class Dims(Node):
    """``3x224x224`` or ``1x7``: a tuple of positive ints."""

    kind: Literal["dims"] = _kind("dims")
    values: tuple[int, ...]


@_node
class Name(Node):
    kind: Literal["name"] = _kind("name")
    id: str


@_node
class BinOp(Node):
    kind: Literal["binop"] = _kind("binop")
    op: Literal["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or"]
    left: Expr
    right: Expr


@_node
class UnaryOp(Node):
    kind: Literal["unary"] = _kind("unary")
    op: Literal["-", "not"]
    operand: Expr


@_node
class IfExpr(Node):
    kind: Literal["if_expr"] = _kind("if_expr")
    test: Expr
    then: Expr
    orelse: Expr


@_node
class FuncCall(Node):
    kind: Literal["func_call"] = _kind("func_call")
    func: str
    args: tuple[Expr, ...] = ()


@_node
class Index(Node):
    kind: Literal["index"] = _kind("index")
    value: Expr
    index: Expr


@_node
class TupleExpr(Node):
    kind: Literal["tuple"] = _kind("tuple")
    items: tuple[Expr, ...] = ()


@_node
class ListExpr(Node):
    kind: Literal["list"] = _kind("list")
    items: tuple[Expr, ...] = ()


Expr = Const | Dims | Name | BinOp | UnaryOp | IfExpr | FuncCall | Index | TupleExpr | ListExpr


# ---- layers and statements ------------------------------------------------------------


@_node
class Label(Node):
    """A name given to a layer. A name template (a string with ``{expr}`` holes) keeps its
    literal ``pieces`` around the parsed ``holes``: ``"b{i}_{j}"`` -> ("b", "_", ""), (i, j)."""

    text: str
    pieces: tuple[str, ...] = ()
    holes: tuple[Expr, ...] = ()

    @property
    def template(self) -> bool:
        return bool(self.holes)


@_node
class KwArg(Node):
    name: str
    value: Expr


@_node
class Call(Node):
    """``name(args)``: a primitive op, a unit such as ``conv``, or a block instance."""

    kind: Literal["call"] = _kind("call")
    name: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[KwArg, ...] = ()


@_node
class Seq(Node):
    """``{ a; b; c }``: layers applied one after another."""

    kind: Literal["seq"] = _kind("seq")
    body: tuple[Stmt, ...] = ()


@_node
class Group(Node):
    """``concat { ... }`` / ``add { ... }`` / ``mul { ... }``: every statement is a parallel branch."""

    kind: Literal["group"] = _kind("group")
    mode: Literal["concat", "add", "mul"]
    branches: tuple[Stmt, ...] = ()


@_node
class Merge(Node):
    """``add from a, b``: a merge of named values (a group without branches)."""

    kind: Literal["merge"] = _kind("merge")
    mode: Literal["concat", "add", "mul"]


@_node
class InputRef(Node):
    """``input`` in a ``from`` clause: the network's input."""

    kind: Literal["input_ref"] = _kind("input_ref")


@_node
class PathRef(Node):
    """``layer4.conv2`` in a ``from`` clause: a value named inside the scope ``layer4``."""

    kind: Literal["path_ref"] = _kind("path_ref")
    parts: tuple[Label, ...]


Layer = Call | Seq | Group | Merge


@_node
class LayerStmt(Node):
    kind: Literal["layer"] = _kind("layer")
    labels: tuple[Label, ...] = ()
    layer: Layer
    # `from a, b`: the values the layer reads; empty: the value before it
    sources: tuple[Label | InputRef | PathRef, ...] = ()


@_node
class InputStmt(Node):
    kind: Literal["input"] = _kind("input")
    shape: Expr


@_node
class VarStmt(Node):
    """``var c = 64``: a variable of a body, which ``c = ...`` may change (loop-carried)."""

    kind: Literal["var_stmt"] = _kind("var_stmt")
    name: str
    value: Expr


@_node
class AssignStmt(Node):
    """``c = c * 2``: a new value for a ``var`` of this body or an enclosing one."""

    kind: Literal["assign"] = _kind("assign")
    name: str
    value: Expr


@_node
class ConstStmt(Node):
    kind: Literal["const_stmt"] = _kind("const_stmt")
    name: str
    value: Expr


@_node
class UnitStmt(Node):
    """``unit conv = conv_bn_relu(eps=0.001)``: what the ``conv`` unit expands to."""

    kind: Literal["unit"] = _kind("unit")
    name: str
    style: Call


@_node
class InitStmt(Node):
    kind: Literal["init"] = _kind("init")
    scheme: Call


@_node
class OutputField(Node):
    name: str
    source: str | None = None  # None: the main output


@_node
class OutputsStmt(Node):
    kind: Literal["outputs"] = _kind("outputs")
    type_name: str
    fields: tuple[OutputField, ...] = ()


@_node
class AuxStmt(Node):
    kind: Literal["aux"] = _kind("aux")
    label: Label
    at: str
    at_span: Span
    layer: Layer


@_node
class Branch(Node):
    test: Expr
    body: tuple[Stmt, ...] = ()


@_node
class IfStmt(Node):
    kind: Literal["if"] = _kind("if")
    branches: tuple[Branch, ...]
    orelse: tuple[Stmt, ...] | None = None


@_node
class ForStmt(Node):
    kind: Literal["for"] = _kind("for")
    targets: tuple[str, ...]
    iterable: Expr
    body: tuple[Stmt, ...] = ()


@_node
class RepeatStmt(Node):
    kind: Literal["repeat"] = _kind("repeat")
    count: Expr
    var: str | None = None
    body: tuple[Stmt, ...] = ()


Stmt = (
    LayerStmt
    | InputStmt
    | ConstStmt
    | VarStmt
    | AssignStmt
    | UnitStmt
    | InitStmt
    | OutputsStmt
    | AuxStmt
    | IfStmt
    | ForStmt
    | RepeatStmt
)


# ---- top level ------------------------------------------------------------------------


@_node
class Param(Node):
    name: str
    type: str | None = None  # checked by the loader: int, float, bool, str
    type_span: Span | None = None
    default: Expr | None = None


@_node
class Import(Node):
    kind: Literal["import"] = _kind("import")
    path: str


@_node
class BlockDef(Node):
    kind: Literal["block"] = _kind("block")
    name: str
    name_span: Span
    params: tuple[Param, ...] = ()
    body: tuple[Stmt, ...] = ()
    # `from x, skip`: the names of its inputs (an instance reads as many values); empty: one
    inputs: tuple[Label, ...] = ()


@_node
class NetworkDef(Node):
    kind: Literal["network"] = _kind("network")
    name: str
    name_span: Span
    params: tuple[Param, ...] = ()
    body: tuple[Stmt, ...] = ()


@_node
class ExternDef(Node):
    """``extern Name(params) = "pkg.mod:Class" { shape = ...; params = ...; flops = ... }``:
    a module archlang has no op for, called like a block; ``rules`` give its output shape
    and costs as expressions of its parameters and ``in_shape``."""

    kind: Literal["extern"] = _kind("extern")
    name: str
    name_span: Span
    target: str
    target_span: Span
    params: tuple[Param, ...] = ()
    rules: tuple[KwArg, ...] = ()
    body: tuple = ()  # what a block has (none): lowering reads blocks and externs alike
    inputs: tuple = ()


TopItem = Import | ConstStmt | BlockDef | ExternDef | NetworkDef


@_node
class Module:
    """One parsed ``.arch`` file."""

    ir_version: int = IR_VERSION
    file: str
    items: tuple[TopItem, ...] = ()


def as_data(value):
    """``value`` (a node, or a tuple of them) as JSON-ready data: a node as a dict of its
    fields in order, ``kind`` included; a span as a dict; tuples as lists; NaN and the
    infinities as None (JSON has no literal for them)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: as_data(getattr(value, name)) for name in field_names(type(value))}
    if isinstance(value, (tuple, list)):
        return [as_data(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


@functools.cache
def field_names(cls: type) -> tuple[str, ...]:
    """The fields of a node class (or of :class:`Span`), in order."""
    return tuple(f.name for f in dataclasses.fields(cls))
