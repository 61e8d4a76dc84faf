"""Text -> parse tree (Lark, LALR) -> IR (a separate Transformer step).

User errors never come from inside the Transformer: it only builds IR nodes. Syntax errors
from Lark are turned into diagnostics here; everything semantic is checked later.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from pathlib import Path

from ._fastimport import without_module

# Lark imports the optional `regex` package (~0.1 s) only to support `regex=True`, which
# archlang does not use; hide it while lark loads so `archc check` starts faster.
with without_module("regex"):
    from lark import Lark, Token, Transformer_NonRecursive, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ir
from .diagnostics import Diagnostic, Span, SpecError

# Deeper syntax trees than this are refused with a diagnostic rather than risking
# Python's recursion limit in later (recursive) stages.
MAX_NESTING = 200
# Lark's LALR parser with positions costs tens of microseconds and a few KiB per token, so
# a cap on tokens (~8 s and ~600 MiB at worst) bounds the front end; real specs have a few
# thousand. Counted with one regex before parsing, stopping at the cap.
MAX_TOKENS = 200_000
_ROUGH_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|[A-Za-z0-9_.]+|\*\*|//|[=!<>]=|\S')

_TOKEN_NAMES = {
    "LPAR": "'('",
    "RPAR": "')'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
    "COLON": "':'",
    "SEMICOLON": "';'",
    "EQUAL": "'='",
    "NAME": "a name",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": "a string",
    "DIMS": "dimensions like 3x224x224",
    "MINUS": "'-'",
    "ADD_OP": "'+' or '-'",
    "MUL_OP": "'*', '/', '//' or '%'",
    "COMP_OP": "a comparison",
    "POW": "'**'",
    "$END": "end of file",
}


@functools.lru_cache(maxsize=1)
def parser() -> Lark:
    """The Lark parser, built once per process (and cached on disk between processes)."""
    return Lark.open(
        "grammar.lark",
        rel_to=__file__,
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=_cache_path(),
    )


def _cache_path() -> str | bool:
    import tempfile

    from . import __version__

    try:
        base = Path(tempfile.gettempdir()) / f"archlang-cache-{os.getuid()}"
        base.mkdir(mode=0o700, exist_ok=True)
        st = base.lstat()
        # The cache is a pickle: load it only from a folder that no one else can write
        # (another user could plant one in a shared /tmp).
        if st.st_uid != os.getuid() or st.st_mode & 0o022 or not base.is_dir() or base.is_symlink():
            return False
        return str(base / f"grammar-{__version__}.lark-cache")
    except (OSError, AttributeError):  # AttributeError: no os.getuid (Windows)
        return False


def _make(cls, **fields):
    """Build an IR node without validation (the parser's output is well-formed by
    construction); equivalent to ``cls.model_construct`` at a fraction of the cost."""
    obj = object.__new__(cls)
    values = _defaults(cls).copy()
    values.update(fields)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(fields))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


@functools.cache
def _defaults(cls) -> dict:
    return {name: f.default for name, f in cls.model_fields.items() if not f.is_required()}


def _span(file: str, meta) -> Span:
    return _make(
        Span,
        file=file,
        line=meta.line,
        col=meta.column,
        end_line=meta.end_line,
        end_col=meta.end_column,
    )


def _tok_span(file: str, tok: Token) -> Span:
    return _make(Span, file=file, line=tok.line, col=tok.column, end_line=tok.end_line, end_col=tok.end_column)


def _unquote(tok: Token) -> str:
    # The STRING terminal only admits Python-compatible escapes' shapes; unknown escapes
    # are kept literally, as Python does, and bad ones degrade to the raw text.
    try:
        value = ast.literal_eval(str(tok))
    except (ValueError, SyntaxError):
        return str(tok)[1:-1]
    return value if isinstance(value, str) else str(tok)[1:-1]


class _ToIR(Transformer_NonRecursive):
    """One short method per grammar rule; each gets the rule's ``meta`` and children."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

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
        return _make(ir.Import, span=self.sp(meta), path=_unquote(c[0]))

    def const_stmt(self, meta, c):
        return _make(ir.ConstStmt, span=self.sp(meta), name=str(c[0]), value=c[1])

    def param_list(self, meta, c):
        return tuple(p for p in c if p is not None)

    def param(self, meta, c):
        name, typ, default = c
        return _make(
            ir.Param,
            span=self.sp(meta),
            name=str(name),
            type=str(typ) if typ else None,
            type_span=_tok_span(self.file, typ) if typ else None,
            default=default,
        )

    def body(self, meta, stmts):
        return tuple(s for s in stmts if s is not None)

    seq_body = body

    def block_def(self, meta, c):
        name, params, body = c
        return _make(
            ir.BlockDef,
            span=self.sp(meta),
            name=str(name),
            name_span=_tok_span(self.file, name),
            params=params or (),
            body=body,
        )

    def network_def(self, meta, c):
        name, params, body = c
        return _make(
            ir.NetworkDef,
            span=self.sp(meta),
            name=str(name),
            name_span=_tok_span(self.file, name),
            params=params or (),
            body=body,
        )

    # statements
    def input_stmt(self, meta, c):
        return _make(ir.InputStmt, span=self.sp(meta), shape=c[0])

    def unit_stmt(self, meta, c):
        return _make(ir.UnitStmt, span=self.sp(meta), name=str(c[0]), style=c[1])

    def init_stmt(self, meta, c):
        return _make(ir.InitStmt, span=self.sp(meta), scheme=c[0])

    def output_field(self, meta, c):
        name, source = c
        return _make(ir.OutputField, span=self.sp(meta), name=str(name), source=str(source) if source else None)

    def outputs_stmt(self, meta, c):
        return _make(
            ir.OutputsStmt, span=self.sp(meta), type_name=str(c[0]), fields=tuple(f for f in c[1:] if f is not None)
        )

    def aux_stmt(self, meta, c):
        label, at, layer = c
        return _make(
            ir.AuxStmt, span=self.sp(meta), label=label, at=str(at), at_span=_tok_span(self.file, at), layer=layer
        )

    def layer_stmt(self, meta, c):
        labels, layer = c
        return _make(ir.LayerStmt, span=self.sp(meta), labels=labels or (), layer=layer)

    def labels(self, meta, c):
        return tuple(c)

    def label(self, meta, c):
        tok = c[0]
        if tok.type == "STRING":
            text = _unquote(tok)
            return _make(ir.Label, span=self.sp(meta), text=text, template="{" in text)
        return _make(ir.Label, span=self.sp(meta), text=str(tok))

    def call(self, meta, c):
        name, arguments = c
        args, kwargs = arguments if arguments else ((), ())
        return _make(ir.Call, span=self.sp(meta), name=str(name), args=args, kwargs=kwargs)

    def args(self, meta, c):
        items = [a for a in c if a is not None]
        return (
            tuple(a for a in items if not isinstance(a, ir.KwArg)),
            tuple(a for a in items if isinstance(a, ir.KwArg)),
        )

    def kwarg(self, meta, c):
        return _make(ir.KwArg, span=self.sp(meta), name=str(c[0]), value=c[1])

    def seq(self, meta, c):
        return _make(ir.Seq, span=self.sp(meta), body=tuple(s for s in c if s is not None))

    def group(self, meta, c):
        return _make(ir.Group, span=self.sp(meta), mode=str(c[0]), branches=tuple(s for s in c[1:] if s is not None))

    def if_stmt(self, meta, c):
        test, body, *rest = c
        orelse = None
        branches = [_make(ir.Branch, span=self.sp(meta), test=test, body=body)]
        for item in rest:
            if isinstance(item, ir.Branch):
                branches.append(item)
            elif item is not None:
                orelse = item
        return _make(ir.IfStmt, span=self.sp(meta), branches=tuple(branches), orelse=orelse)

    def elif_clause(self, meta, c):
        return _make(ir.Branch, span=self.sp(meta), test=c[0], body=c[1])

    def else_clause(self, meta, c):
        return c[0]

    def for_stmt(self, meta, c):
        targets, iterable, body = c
        return _make(ir.ForStmt, span=self.sp(meta), targets=targets, iterable=iterable, body=body)

    def for_targets(self, meta, c):
        return tuple(str(t) for t in c)

    def repeat_stmt(self, meta, c):
        count, var, body = c
        return _make(ir.RepeatStmt, span=self.sp(meta), count=count, var=str(var) if var else None, body=body)

    # expressions
    def if_expr(self, meta, c):
        return _make(ir.IfExpr, span=self.sp(meta), test=c[0], then=c[1], orelse=c[2])

    def _bin(self, meta, op, left, right):
        return _make(ir.BinOp, span=self.sp(meta), op=op, left=left, right=right)

    def or_op(self, meta, c):
        return self._bin(meta, "or", c[0], c[1])

    def and_op(self, meta, c):
        return self._bin(meta, "and", c[0], c[1])

    def not_op(self, meta, c):
        return _make(ir.UnaryOp, span=self.sp(meta), op="not", operand=c[0])

    def compare(self, meta, c):
        return self._bin(meta, str(c[1]), c[0], c[2])

    def binop(self, meta, c):
        return self._bin(meta, str(c[1]), c[0], c[2])

    def pow_op(self, meta, c):
        return self._bin(meta, "**", c[0], c[2])

    def neg(self, meta, c):
        return _make(ir.UnaryOp, span=self.sp(meta), op="-", operand=c[0])

    def index(self, meta, c):
        return _make(ir.Index, span=self.sp(meta), value=c[0], index=c[1])

    def func_call(self, meta, c):
        return _make(ir.FuncCall, span=self.sp(meta), func=str(c[0]), args=tuple(a for a in c[1:] if a is not None))

    def int_lit(self, meta, c):
        return _make(ir.Const, span=self.sp(meta), value=int(c[0]))

    def float_lit(self, meta, c):
        return _make(ir.Const, span=self.sp(meta), value=float(c[0]))

    def dims_lit(self, meta, c):
        return _make(ir.Dims, span=self.sp(meta), values=tuple(int(v) for v in str(c[0]).split("x")))

    def str_lit(self, meta, c):
        return _make(ir.Const, span=self.sp(meta), value=_unquote(c[0]))

    def true_lit(self, meta, c):
        return _make(ir.Const, span=self.sp(meta), value=True)

    def false_lit(self, meta, c):
        return _make(ir.Const, span=self.sp(meta), value=False)

    def none_lit(self, meta, c):
        return _make(ir.Const, span=self.sp(meta), value=None)

    def name(self, meta, c):
        return _make(ir.Name, span=self.sp(meta), id=str(c[0]))

    def tuple_lit(self, meta, c):
        return _make(ir.TupleExpr, span=self.sp(meta), items=tuple(x for x in c if x is not None))

    def list_lit(self, meta, c):
        return _make(ir.ListExpr, span=self.sp(meta), items=tuple(x for x in c if x is not None))


def _expected(tokens) -> str:
    names = sorted({_TOKEN_NAMES.get(t, f"'{t.lower()}'" if t.isalpha() else t) for t in tokens})
    names = [n for n in names if not n.startswith("'__")]
    if len(names) > 8:
        names = names[:8] + ["..."]
    return ", ".join(names)


def _syntax_diagnostic(err: UnexpectedInput, file: str, text: str) -> Diagnostic:
    line = getattr(err, "line", 1) or 1
    col = getattr(err, "column", 1) or 1
    if isinstance(err, UnexpectedToken) and err.token.type == "$END" or isinstance(err, UnexpectedEOF):
        lines = text.split("\n")
        line = len(lines)
        col = len(lines[-1]) + 1
        expected = _expected(getattr(err, "expected", ()) or getattr(err, "accepts", ()))
        return Diagnostic(
            code="E101",
            message="unexpected end of file",
            span=Span(file=file, line=line, col=col, end_line=line, end_col=col + 1),
            help=f"expected {expected}" if expected else "is a '}' or ')' missing?",
        )
    if isinstance(err, UnexpectedCharacters):
        char = text[err.pos_in_stream] if err.pos_in_stream < len(text) else "?"
        hint = None
        if char == "'":
            hint = 'strings use double quotes: "..."'
        elif char == '"':
            hint = "this string is not closed on its line"
        elif ord(char) > 127:  # a look-alike (Cyrillic о in `cоnv`), a BOM or a smart quote
            import unicodedata

            hint = (
                f"{unicodedata.name(char, 'this character')} (U+{ord(char):04X}) is not ASCII; "
                "names use only A-Z, a-z, 0-9 and _"
            )
        elif err.allowed:
            hint = f"expected {_expected(err.allowed)}"
        return Diagnostic(
            code="E102",
            message=f"unexpected character {char!r}",
            span=Span(file=file, line=line, col=col, end_line=line, end_col=col + 1),
            help=hint,
        )
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    width = max(1, len(str(tok)))
    shown = str(tok) if len(str(tok)) <= 30 else str(tok)[:27] + "..."
    expected = _expected(err.accepts or err.expected)
    return Diagnostic(
        code="E101",
        message=f"unexpected {shown!r}",
        span=Span(file=file, line=line, col=col, end_line=line, end_col=col + width),
        help=f"expected {expected}" if expected else None,
    )


_OPENERS = {"{": 2, "[": 1}  # tree levels each bracket adds at least (a `{` body sits in a statement)
_CLOSERS = {"}": 2, "]": 1}


def _check_size(text: str, file: str) -> None:
    """Refuse too many tokens, and brackets nested far past MAX_NESTING, before Lark spends
    time on them (10,000 nested `concat {` would take Lark half a second to parse first)."""
    depth = 0
    for count, match in enumerate(_ROUGH_TOKEN.finditer(text), 1):
        tok = match.group()
        if tok in _OPENERS:
            depth += _OPENERS[tok]
            # Twice the limit: near it, the exact check on the tree (after parsing) says where
            # the limit is crossed; this only spares Lark absurd inputs.
            if depth > 2 * MAX_NESTING:
                line = text.count("\n", 0, match.start()) + 1
                col = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
                raise SpecError(_too_deep(Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)))
        elif tok in _CLOSERS:
            depth = max(0, depth - _CLOSERS[tok])
        if count > MAX_TOKENS:
            line = text.count("\n", 0, match.start()) + 1
            col = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            raise SpecError(
                Diagnostic(
                    code="E603",
                    message=f"the file has more than {MAX_TOKENS:,} tokens",
                    span=Span(file=file, line=line, col=col, end_line=line, end_col=col + 1),
                    help="split it into block libraries, or use `repeat`/`for`; from Python, raise "
                    "archlang.syntax.MAX_TOKENS",
                )
            )


def _too_deep(span: Span | None) -> Diagnostic:
    return Diagnostic(
        code="E601",
        message=f"nesting deeper than {MAX_NESTING} levels",
        span=span,
        help="flatten the spec: use a block or `repeat` instead of deep nesting",
    )


def _check_depth(tree: Tree, file: str) -> None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            meta = node.meta
            span = _span(file, meta) if not meta.empty else None
            if span is not None:
                span = Span(file=file, line=span.line, col=span.col, end_line=span.line, end_col=span.col + 1)
            raise SpecError(_too_deep(span))
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def parse(text: str, file: str = "<string>") -> ir.Module:
    """Parse ``.arch`` source into an IR module, or raise :class:`SpecError`.

    Results are memoised on (text, file): IR modules are immutable, so a library imported
    by many specs in one process (a notebook, a test session) is parsed once.
    """
    return _parse_cached(text, file)


@functools.lru_cache(maxsize=64)
def _parse_cached(text: str, file: str) -> ir.Module:
    _check_size(text, file)
    try:
        tree = parser().parse(text)
    except UnexpectedInput as err:
        raise SpecError(_syntax_diagnostic(err, file, text)) from None
    _check_depth(tree, file)
    items = _ToIR(file).transform(tree)
    return _make(ir.Module, file=file, items=tuple(items))


@functools.lru_cache(maxsize=256)
def parse_expr_source(text: str):
    """Parse a stand-alone expression (used for ``{...}`` holes in label templates)."""
    module = parse(f"const __hole__ = {text}", "<template>")
    return module.items[0].value
