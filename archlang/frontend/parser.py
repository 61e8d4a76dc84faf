"""Text -> parse tree (Lark, LALR) -> IR (a separate Transformer step).

The Transformer only builds IR nodes; the one thing it checks is the syntax of name-template
holes (``"conv{i}"``), which it parses here, once, and reports after the walk. Lark's syntax
errors become diagnostics in :mod:`archlang.frontend.syntax_errors`; everything semantic is checked
later.
"""

from __future__ import annotations

import ast
import functools
import re

from archlang.diagnostics import Diagnostic, Span, SpecError
from archlang.frontend import ir
from archlang.frontend.lalr_parser import Lark_StandAlone, Token, Transformer_NonRecursive, Tree, UnexpectedInput
from archlang.frontend.syntax_errors import check_depth, check_size, syntax_diagnostic

# Deeper syntax trees than this are refused with a diagnostic rather than risking
# Python's recursion limit in later (recursive) stages.
MAX_NESTING = 200
# Lark's LALR parser with positions costs tens of microseconds and a few KiB per token, so
# a cap on tokens (~8 s and ~600 MiB at worst) bounds the front end; real specs have a few
# thousand. Counted with one regex before parsing, stopping at the cap.
MAX_TOKENS = 200_000


@functools.lru_cache(maxsize=1)
def parser():
    """The LALR parser of grammar.lark, built once per process from the tables generated
    ahead of time (:mod:`archlang.frontend.lalr_parser`, scripts/generate_parser.py)."""
    return Lark_StandAlone()


def _span(file: str, meta) -> Span:
    return Span(
        file=file,
        line=meta.line,
        col=meta.column,
        end_line=meta.end_line,
        end_col=meta.end_column,
    )


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file=file, line=tok.line, col=tok.column, end_line=tok.end_line, end_col=tok.end_column)


_LONG_STRING = 10_000
_ESCAPE = re.compile(r"\\(N\{[^}]*\}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[0-7]{1,3}|.)")


def _one_escape(match) -> str:
    try:
        value = ast.literal_eval('"' + match.group() + '"')
    except (ValueError, SyntaxError):
        return match.group()
    return value if isinstance(value, str) else match.group()


_SURROGATE = re.compile("[\ud800-\udfff]")


def _unquote(tok: Token, problems: list[Diagnostic] | None = None, file: str = "") -> str:
    # The STRING terminal only admits Python-compatible escapes' shapes; unknown escapes
    # are kept literally, as Python does, and bad ones degrade to the raw text.
    if "\\" not in tok:  # nothing to decode
        return str(tok)[1:-1]
    if len(tok) > _LONG_STRING:  # compile() needs ~450 bytes a character: escape by escape
        value = _ESCAPE.sub(_one_escape, str(tok)[1:-1])
    else:
        try:
            value = ast.literal_eval(str(tok))
        except (ValueError, SyntaxError):
            return str(tok)[1:-1]
        if not isinstance(value, str):
            return str(tok)[1:-1]
    bad = _SURROGATE.search(value)
    if bad is not None:
        # "\ud800" is half of a UTF-16 pair, not a character: no output (UTF-8 text, DOT,
        # JSON, a terminal) can encode it. Refused here, where the string is, once for all.
        if problems is not None:
            problems.append(
                Diagnostic(
                    code="E102",
                    message=f"string contains a lone surrogate \\u{ord(bad.group()):04x}, which is not a character",
                    span=_tok_span(file, tok),
                    help="write the character itself, or a \\U00XXXXXX escape of a real code point",
                )
            )
        value = _SURROGATE.sub("\ufffd", value)
    return value


class _ToIR(Transformer_NonRecursive):
    """One short method per grammar rule; each gets the rule's ``meta`` and children."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file
        self.problems: list[Diagnostic] = []  # bad name templates, raised after the walk

    def _call_userfunc(self, tree, new_children=None):
        # Lark's v_args(meta=True) wraps every call; calling directly is several times faster.
        children = new_children if new_children is not None else tree.children
        method = getattr(self, tree.data, None)
        if method is None:
            return Tree(tree.data, children, tree.meta)
        return method(tree.meta, children)

    def sp(self, meta) -> Span:
        return _span(self.file, meta)

    # top level
    def start(self, meta, items):
        return [i for i in items if i is not None]

    def import_stmt(self, meta, c):
        return ir.Import(span=self.sp(meta), path=_unquote(c[0], self.problems, self.file))

    def const_stmt(self, meta, c):
        return ir.ConstStmt(span=self.sp(meta), name=str(c[0]), value=c[1])

    def var_stmt(self, meta, c):
        return ir.VarStmt(span=self.sp(meta), name=str(c[0]), value=c[1])

    def assign_stmt(self, meta, c):
        return ir.AssignStmt(span=self.sp(meta), name=str(c[0]), value=c[1])

    def param_list(self, meta, c):
        return tuple(p for p in c if p is not None)

    def param(self, meta, c):
        name, typ, default = c
        return ir.Param(
            span=self.sp(meta),
            name=str(name),
            type=str(typ) if typ else None,
            type_span=_tok_span(self.file, typ) if typ else None,
            default=default,
        )

    def body(self, meta, stmts):
        stmts = tuple(s for s in stmts if s is not None)
        for first, second in zip(stmts, stmts[1:]):
            self._check_dims(first, second)
        return stmts

    def _check_dims(self, first, second) -> None:
        """``input 3x32x32x`` lexes as ``input 3`` then a layer ``x32x32x`` (a DIMS token may
        not run into a letter); say that the dimensions are malformed, not that no layer
        ``x32x32x`` exists."""
        if not (isinstance(first, ir.InputStmt) and isinstance(first.shape, ir.Const | ir.Dims)):
            return
        if not (isinstance(second, ir.LayerStmt) and not second.labels and isinstance(second.layer, ir.Call)):
            return
        shape, call = first.shape.span, second.layer.span
        if (call.line, call.col) != (shape.end_line, shape.end_col) or not second.layer.name.startswith("x"):
            return
        text = str(first.shape.value if isinstance(first.shape, ir.Const) else "x".join(map(str, first.shape.values)))
        self.problems.append(
            Diagnostic(
                code="E101",
                message=f"malformed input dimensions `{text}{second.layer.name}`",
                span=Span(self.file, shape.line, shape.col, call.end_line, call.end_col),
                help="dimensions are integers joined by `x`, e.g. `input 3x32x32` (channels x height x width)",
            )
        )

    seq_body = body

    def block_def(self, meta, c):
        name, params, inputs, body = c
        return ir.BlockDef(
            span=self.sp(meta),
            name=str(name),
            name_span=_tok_span(self.file, name),
            params=params or (),
            body=body,
            inputs=inputs or (),
        )

    def extern_def(self, meta, c):
        name, params, target, *rules = c
        return ir.ExternDef(
            span=self.sp(meta),
            name=str(name),
            name_span=_tok_span(self.file, name),
            target=_unquote(target, self.problems, self.file),
            target_span=_tok_span(self.file, target),
            params=params or (),
            rules=tuple(r for r in rules if r is not None),
        )

    def extern_rule(self, meta, c):
        return ir.KwArg(span=self.sp(meta), name=str(c[0]), value=c[1])

    def block_inputs(self, meta, c):
        return tuple(ir.Label(span=_tok_span(self.file, t), text=str(t)) for t in c)

    def network_def(self, meta, c):
        name, params, body = c
        return ir.NetworkDef(
            span=self.sp(meta),
            name=str(name),
            name_span=_tok_span(self.file, name),
            params=params or (),
            body=body,
        )

    # statements
    def input_stmt(self, meta, c):
        return ir.InputStmt(span=self.sp(meta), shape=c[0])

    def unit_stmt(self, meta, c):
        return ir.UnitStmt(span=self.sp(meta), name=str(c[0]), style=c[1])

    def init_stmt(self, meta, c):
        return ir.InitStmt(span=self.sp(meta), scheme=c[0])

    def output_field(self, meta, c):
        name, source = c
        key = _unquote(name, self.problems, self.file) if name.type == "STRING" else str(name)
        return ir.OutputField(span=self.sp(meta), name=key, source=str(source) if source else None)

    def output_path(self, meta, c):
        return ".".join(str(x) for x in c)

    def outputs_stmt(self, meta, c):
        return ir.OutputsStmt(span=self.sp(meta), type_name=str(c[0]), fields=tuple(f for f in c[1:] if f is not None))

    def aux_stmt(self, meta, c):
        label, at, layer = c
        return ir.AuxStmt(span=self.sp(meta), label=label, at=str(at), at_span=_tok_span(self.file, at), layer=layer)

    def layer_stmt(self, meta, c):
        labels, layer, sources = c
        return ir.LayerStmt(span=self.sp(meta), labels=labels or (), layer=layer, sources=sources or ())

    def from_clause(self, meta, c):
        return tuple(c)

    def path_ref(self, meta, c):
        parts = tuple(ir.Label(span=_tok_span(self.file, x), text=str(x)) if isinstance(x, Token) else x for x in c)
        return ir.PathRef(span=self.sp(meta), parts=parts)

    def input_ref(self, meta, c):
        return ir.InputRef(span=self.sp(meta))

    def merge(self, meta, c):
        return ir.Merge(span=self.sp(meta), mode=str(c[0]))

    def labels(self, meta, c):
        return tuple(c)

    def label(self, meta, c):
        tok = c[0]
        if tok.type != "STRING":
            return ir.Label(span=self.sp(meta), text=str(tok))
        text, span = _unquote(tok, self.problems, self.file), self.sp(meta)
        if "{" not in text:
            return ir.Label(span=span, text=text)
        try:
            pieces, holes = _template(text, span)
        except SpecError as err:
            self.problems += err.diagnostics
            pieces, holes = (text,), ()
        return ir.Label(span=span, text=text, pieces=pieces, holes=holes)

    def call(self, meta, c):
        name, arguments = c
        args, kwargs = arguments if arguments else ((), ())
        return ir.Call(span=self.sp(meta), name=str(name), args=args, kwargs=kwargs)

    def args(self, meta, c):
        items = [a for a in c if a is not None]
        return (
            tuple(a for a in items if not isinstance(a, ir.KwArg)),
            tuple(a for a in items if isinstance(a, ir.KwArg)),
        )

    def kwarg(self, meta, c):
        return ir.KwArg(span=self.sp(meta), name=str(c[0]), value=c[1])

    def seq(self, meta, c):
        return ir.Seq(span=self.sp(meta), body=tuple(s for s in c if s is not None))

    def group(self, meta, c):
        return ir.Group(span=self.sp(meta), mode=str(c[0]), branches=tuple(s for s in c[1:] if s is not None))

    def if_stmt(self, meta, c):
        test, body, *rest = c
        orelse = None
        branches = [ir.Branch(span=self.sp(meta), test=test, body=body)]
        for item in rest:
            if isinstance(item, ir.Branch):
                branches.append(item)
            elif item is not None:
                orelse = item
        return ir.IfStmt(span=self.sp(meta), branches=tuple(branches), orelse=orelse)

    def elif_clause(self, meta, c):
        return ir.Branch(span=self.sp(meta), test=c[0], body=c[1])

    def else_clause(self, meta, c):
        return c[0]

    def for_stmt(self, meta, c):
        targets, iterable, body = c
        return ir.ForStmt(span=self.sp(meta), targets=targets, iterable=iterable, body=body)

    def for_targets(self, meta, c):
        return tuple(str(t) for t in c)

    def repeat_stmt(self, meta, c):
        count, var, body = c
        return ir.RepeatStmt(span=self.sp(meta), count=count, var=str(var) if var else None, body=body)

    # expressions
    def if_expr(self, meta, c):
        return ir.IfExpr(span=self.sp(meta), test=c[0], then=c[1], orelse=c[2])

    def _bin(self, meta, op, left, right):
        return ir.BinOp(span=self.sp(meta), op=op, left=left, right=right)

    def or_op(self, meta, c):
        return self._bin(meta, "or", c[0], c[1])

    def and_op(self, meta, c):
        return self._bin(meta, "and", c[0], c[1])

    def not_op(self, meta, c):
        return ir.UnaryOp(span=self.sp(meta), op="not", operand=c[0])

    def compare(self, meta, c):
        return self._bin(meta, str(c[1]), c[0], c[2])

    def binop(self, meta, c):
        return self._bin(meta, str(c[1]), c[0], c[2])

    def pow_op(self, meta, c):
        return self._bin(meta, "**", c[0], c[2])

    def neg(self, meta, c):
        return ir.UnaryOp(span=self.sp(meta), op="-", operand=c[0])

    def index(self, meta, c):
        return ir.Index(span=self.sp(meta), value=c[0], index=c[1])

    def func_call(self, meta, c):
        return ir.FuncCall(span=self.sp(meta), func=str(c[0]), args=tuple(a for a in c[1:] if a is not None))

    def int_lit(self, meta, c):
        return ir.Const(span=self.sp(meta), value=int(c[0]))

    def float_lit(self, meta, c):
        return ir.Const(span=self.sp(meta), value=float(c[0]))

    def dims_lit(self, meta, c):
        return ir.Dims(span=self.sp(meta), values=tuple(int(v) for v in str(c[0]).split("x")))

    def str_lit(self, meta, c):
        return ir.Const(span=self.sp(meta), value=_unquote(c[0], self.problems, self.file))

    def true_lit(self, meta, c):
        return ir.Const(span=self.sp(meta), value=True)

    def false_lit(self, meta, c):
        return ir.Const(span=self.sp(meta), value=False)

    def none_lit(self, meta, c):
        return ir.Const(span=self.sp(meta), value=None)

    def name(self, meta, c):
        return ir.Name(span=self.sp(meta), id=str(c[0]))

    def tuple_lit(self, meta, c):
        return ir.TupleExpr(span=self.sp(meta), items=tuple(x for x in c if x is not None))

    def list_lit(self, meta, c):
        return ir.ListExpr(span=self.sp(meta), items=tuple(x for x in c if x is not None))


def _template(text: str, span: Span) -> tuple[tuple[str, ...], tuple]:
    """Split a name template into its literal pieces and parsed ``{expr}`` holes:
    ``"b{i}_{j}"`` -> (("b", "_", ""), (i, j)). Parsed here, once, not at each instance."""
    pieces, holes, start = [], [], 0
    while (i := text.find("{", start)) >= 0:
        end = text.find("}", i)
        if end < 0:
            raise SpecError(Diagnostic(code="E102", message="unclosed `{` in a name template", span=span))
        source = text[i + 1 : end]
        try:
            holes.append(parse_expression(source, "<template>"))
        except SpecError:
            message = f"bad expression `{source}` in a name template"
            raise SpecError(Diagnostic(code="E101", message=message, span=span)) from None
        pieces.append(text[start:i])
        start = end + 1
    pieces.append(text[start:])
    return tuple(pieces), tuple(holes)


def parse(text: str, file: str = "<string>") -> ir.Module:
    """Parse ``.arch`` source into an IR module, or raise :class:`SpecError`.

    Results are memoised on (text, file): IR modules are immutable, so a library imported
    by many specs in one process (a notebook, a test session) is parsed once.
    """
    return _parse_cached(text, file)


def _tree(text: str, file: str, start: str) -> Tree:
    check_size(text, file, MAX_TOKENS, MAX_NESTING)
    try:
        tree = parser().parse(text, start=start)
    except UnexpectedInput as err:
        raise SpecError(syntax_diagnostic(err, file, text)) from None
    check_depth(tree, file, MAX_NESTING)
    return tree


@functools.lru_cache(maxsize=64)
def _parse_cached(text: str, file: str) -> ir.Module:
    builder = _ToIR(file)
    items = builder.transform(_tree(text, file, "start"))
    if builder.problems:
        raise SpecError(builder.problems)
    return ir.Module(file=file, items=tuple(items))


@functools.lru_cache(maxsize=256)
def parse_expression(text: str, file: str = "<expression>"):
    """Parse one expression (a name-template hole, a ``--set`` value) into IR."""
    return _ToIR(file).transform(_tree(text, file, "expr"))
