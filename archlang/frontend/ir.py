"""The archlang IR: frozen Pydantic models, one per syntactic construct.

Expressions and statements are tagged unions discriminated by ``kind``, so a JSON document
that is wrong in one node fails validation with one precise error. Every node carries the
:class:`Span` it came from. ``Module.model_validate_json(m.model_dump_json()) == m``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from archlang.diagnostics import Span

IR_VERSION = 2  # 2: name templates carry their parsed holes (Label.pieces, Label.holes)


# Schemas are built on first validation (loading JSON), not at import: the compile path
# builds nodes with ``model_construct`` and never pays for them.
_CONFIG = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Node(BaseModel):
    model_config = _CONFIG
    span: Span


# ---- expressions ----------------------------------------------------------------------


class Const(Node):
    kind: Literal["const"] = "const"
    value: int | float | bool | str | None


class Dims(Node):
    """``3x224x224`` or ``1x7``: a tuple of positive ints."""

    kind: Literal["dims"] = "dims"
    values: tuple[int, ...]


class Name(Node):
    kind: Literal["name"] = "name"
    id: str


class BinOp(Node):
    kind: Literal["binop"] = "binop"
    op: Literal["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or"]
    left: Expr
    right: Expr


class UnaryOp(Node):
    kind: Literal["unary"] = "unary"
    op: Literal["-", "not"]
    operand: Expr


class IfExpr(Node):
    kind: Literal["if_expr"] = "if_expr"
    test: Expr
    then: Expr
    orelse: Expr


class FuncCall(Node):
    kind: Literal["func_call"] = "func_call"
    func: str
    args: tuple[Expr, ...] = ()


class Index(Node):
    kind: Literal["index"] = "index"
    value: Expr
    index: Expr


class TupleExpr(Node):
    kind: Literal["tuple"] = "tuple"
    items: tuple[Expr, ...] = ()


class ListExpr(Node):
    kind: Literal["list"] = "list"
    items: tuple[Expr, ...] = ()


Expr = Annotated[
    Const | Dims | Name | BinOp | UnaryOp | IfExpr | FuncCall | Index | TupleExpr | ListExpr,
    Field(discriminator="kind"),
]


# ---- layers and statements ------------------------------------------------------------


class Label(Node):
    """A name given to a layer. A name template (a string with ``{expr}`` holes) keeps its
    literal ``pieces`` around the parsed ``holes``: ``"b{i}_{j}"`` -> ("b", "_", ""), (i, j)."""

    text: str
    pieces: tuple[str, ...] = ()
    holes: tuple[Expr, ...] = ()

    @property
    def template(self) -> bool:
        return bool(self.holes)


class KwArg(Node):
    name: str
    value: Expr


class Call(Node):
    """``name(args)``: a primitive op, a unit such as ``conv``, or a block instance."""

    kind: Literal["call"] = "call"
    name: str
    args: tuple[Expr, ...] = ()
    kwargs: tuple[KwArg, ...] = ()


class Seq(Node):
    """``{ a; b; c }``: layers applied one after another."""

    kind: Literal["seq"] = "seq"
    body: tuple[Stmt, ...] = ()


class Group(Node):
    """``concat { ... }`` / ``add { ... }`` / ``mul { ... }``: every statement is a parallel branch."""

    kind: Literal["group"] = "group"
    mode: Literal["concat", "add", "mul"]
    branches: tuple[Stmt, ...] = ()


Layer = Annotated[Call | Seq | Group, Field(discriminator="kind")]


class LayerStmt(Node):
    kind: Literal["layer"] = "layer"
    labels: tuple[Label, ...] = ()
    layer: Layer


class InputStmt(Node):
    kind: Literal["input"] = "input"
    shape: Expr


class ConstStmt(Node):
    kind: Literal["const_stmt"] = "const_stmt"
    name: str
    value: Expr


class UnitStmt(Node):
    """``unit conv = conv_bn_relu(eps=0.001)``: what the ``conv`` unit expands to."""

    kind: Literal["unit"] = "unit"
    name: str
    style: Call


class InitStmt(Node):
    kind: Literal["init"] = "init"
    scheme: Call


class OutputField(Node):
    name: str
    source: str | None = None  # None: the main output


class OutputsStmt(Node):
    kind: Literal["outputs"] = "outputs"
    type_name: str
    fields: tuple[OutputField, ...] = ()


class AuxStmt(Node):
    kind: Literal["aux"] = "aux"
    label: Label
    at: str
    at_span: Span
    layer: Layer


class Branch(Node):
    test: Expr
    body: tuple[Stmt, ...] = ()


class IfStmt(Node):
    kind: Literal["if"] = "if"
    branches: tuple[Branch, ...]
    orelse: tuple[Stmt, ...] | None = None


class ForStmt(Node):
    kind: Literal["for"] = "for"
    targets: tuple[str, ...]
    iterable: Expr
    body: tuple[Stmt, ...] = ()


class RepeatStmt(Node):
    kind: Literal["repeat"] = "repeat"
    count: Expr
    var: str | None = None
    body: tuple[Stmt, ...] = ()


Stmt = Annotated[
    LayerStmt | InputStmt | ConstStmt | UnitStmt | InitStmt | OutputsStmt | AuxStmt | IfStmt | ForStmt | RepeatStmt,
    Field(discriminator="kind"),
]


# ---- top level ------------------------------------------------------------------------


class Param(Node):
    name: str
    type: str | None = None  # checked by the loader: int, float, bool, str
    type_span: Span | None = None
    default: Expr | None = None


class Import(Node):
    kind: Literal["import"] = "import"
    path: str


class BlockDef(Node):
    kind: Literal["block"] = "block"
    name: str
    name_span: Span
    params: tuple[Param, ...] = ()
    body: tuple[Stmt, ...] = ()


class NetworkDef(Node):
    kind: Literal["network"] = "network"
    name: str
    name_span: Span
    params: tuple[Param, ...] = ()
    body: tuple[Stmt, ...] = ()


TopItem = Annotated[Import | ConstStmt | BlockDef | NetworkDef, Field(discriminator="kind")]


class Module(BaseModel):
    """One parsed ``.arch`` file."""

    model_config = _CONFIG
    ir_version: int = IR_VERSION
    file: str
    items: tuple[TopItem, ...] = ()
