"""Program-level checks and bindings: the blocks and constants of all modules, the one
network, its parameters (defaults and ``--set`` values), and block arguments."""

from __future__ import annotations

import difflib

from archlang.frontend import ir
from archlang.frontend.expressions import CONSTANTS, Env, evaluate, source_text, type_name
from archlang.frontend.loader import Program
from archlang.frontend.parser import parse_expression

from ..diagnostics import Note, Span, SpecError
from ..ops import ALIASES, CALLABLE_OPS
from .state import lowering_error
from .symbolic import evaluate_recorded

# Top-level constants are evaluated on first use, one nested evaluation (~4 Python frames)
# per constant named along the way: `const c2 = c1`, `const c1 = c0`, ...
MAX_CONST_CHAIN = 64

PARAM_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def collect_blocks(program: Program) -> dict[str, ir.BlockDef | ir.ExternDef]:
    """Blocks and ``extern`` modules by name (both are called like blocks)."""
    blocks: dict[str, ir.BlockDef | ir.ExternDef] = {}
    for module in program.modules:
        for item in module.items:
            if not isinstance(item, (ir.BlockDef, ir.ExternDef)):
                continue
            if item.name in blocks and module.file != "<prelude>":
                prev = blocks[item.name]
                raise lowering_error(
                    "E302",
                    f"block `{item.name}` is defined twice",
                    item.name_span,
                    notes=[Note("first defined here", prev.name_span)],
                )
            if item.name in CALLABLE_OPS or item.name in ALIASES:
                raise lowering_error(
                    "E302",
                    f"block `{item.name}` has the name of a built-in op",
                    item.name_span,
                    help="choose another name",
                )
            blocks.setdefault(item.name, item)
    return blocks


def collect_consts(program: Program) -> dict[str, ir.ConstStmt]:
    consts: dict[str, ir.ConstStmt] = {}
    for module in program.modules:
        for item in module.items:
            if isinstance(item, ir.ConstStmt):
                if item.name in consts:
                    raise lowering_error(
                        "E302",
                        f"constant `{item.name}` is defined twice",
                        item.span,
                        notes=[Note("first defined here", consts[item.name].span)],
                    )
                consts[item.name] = item
    return consts


class GlobalEnv(Env):
    """Top-level constants, evaluated on first use (so order across imports is free)."""

    def __init__(self, defs: dict[str, ir.ConstStmt]):
        super().__init__()
        self.defs = defs
        self.evaluating: list[str] = []

    def lookup(self, name):
        if name in self.vars:
            return self.vars[name]
        stmt = self.defs.get(name)
        if stmt is None:
            if name in CONSTANTS:  # `inf`: a spec's own definition comes first
                return CONSTANTS[name]
            raise KeyError(name)
        if name in self.evaluating:
            raise lowering_error("E309", f"constant `{name}` is defined in terms of itself", stmt.span)
        if len(self.evaluating) >= MAX_CONST_CHAIN:
            raise lowering_error(
                "E601",
                f"constants defined through more than {MAX_CONST_CHAIN} other constants",
                stmt.span,
                notes=[Note(f"the chain starts at `{self.evaluating[0]}`")],
                help="each constant is evaluated through the ones it names; shorten the chain",
            )
        self.evaluating.append(name)
        try:
            self.vars[name] = evaluate(stmt.value, self)
        finally:
            self.evaluating.pop()
        return self.vars[name]

    def names(self):
        return set(self.vars) | set(self.defs) | CONSTANTS.keys()


def the_network(program: Program) -> ir.NetworkDef:
    nets = [i for i in program.main.items if isinstance(i, ir.NetworkDef)]
    if not nets:
        raise lowering_error(
            "E501",
            "no `network` in this file",
            Span.point(program.main.file, 1, 1),
            help="a spec needs `network Name { input 3x224x224 ... }`; block libraries are imported",
        )
    if len(nets) > 1:
        raise lowering_error(
            "E502",
            "more than one `network` in this file",
            nets[1].name_span,
            notes=[Note("the first is here", nets[0].name_span)],
        )
    return nets[0]


def bind_network_params(net: ir.NetworkDef, overrides: dict, globals_: GlobalEnv) -> dict:
    declared = {p.name: p for p in net.params}
    for name in overrides:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            raise lowering_error(
                "E505",
                f"network `{net.name}` has no parameter `{name}`",
                net.name_span,
                help=(f"did you mean `{close[0]}`? " if close else "") + f"parameters: {', '.join(declared) or 'none'}",
            )
    env = globals_.child()
    values = env.vars
    for p in net.params:
        if p.name in overrides:
            value = _coerce_override(p, overrides[p.name])
        elif p.default is not None:
            value = evaluate(p.default, env)
        else:
            raise lowering_error(
                "E204",
                f"network parameter `{p.name}` has no default and was not set",
                p.span,
                help=f"give a default, or pass --set {p.name}=VALUE",
            )
        check_param_type(p, value, p.span)
        values[p.name] = value
    return values


def _coerce_override(p: ir.Param, value):
    """A ``--set`` value given as text is read as an expression, unless the parameter is a str
    (parse_expression is memoised: each distinct text goes through the grammar once)."""
    if isinstance(value, str) and p.type != "str":
        try:
            value = evaluate(parse_expression(value, "<--set>"), Env())
        except SpecError:
            raise lowering_error(
                "E506",
                f"cannot read `{value}` as a value for `{p.name}`",
                p.span,
                help=f"`{p.name}` is {p.type or 'untyped'}; e.g. --set {p.name}=10",
            ) from None
    return value


def check_param_type(p: ir.Param, value, span) -> None:
    if p.type is None:
        return
    allowed = PARAM_TYPES.get(p.type)
    if allowed is None:
        raise lowering_error(
            "E205", f"unknown type `{p.type}`", p.type_span or p.span, help="types are int, float, bool and str"
        )
    if not isinstance(value, allowed) or (p.type in ("int", "float") and isinstance(value, bool)):
        raise lowering_error("E205", f"parameter `{p.name}` is {p.type}, got {type_name(value)} {value!r}", span)


def block_usage(block: ir.BlockDef) -> str:
    parts = [
        p.name + (": " + p.type if p.type else "") + (f" = {source_text(p.default)}" if p.default is not None else "")
        for p in block.params
    ]
    return f"usage: {block.name}({', '.join(parts)})"


def bind_block_args(block: ir.BlockDef, call: ir.Call, env: Env, globals_: GlobalEnv, syms: dict | None = None) -> dict:
    """The block's parameter values for this call; ``syms`` gets (expression, parameters)
    of each argument a network parameter reaches (see :mod:`.symbolic`)."""
    syms = {} if syms is None else syms
    params = block.params
    if len(call.args) > len(params):
        raise lowering_error(
            "E203",
            f"block `{block.name}` takes {len(params)} argument{'s' if len(params) != 1 else ''}, got {len(call.args)}",
            call.args[len(params)].span,
            help=block_usage(block),
        )
    given = {}
    for p, arg in zip(params, call.args):
        value, sym = evaluate_recorded(arg, env)
        given[p.name] = (value, arg.span)
        if sym is not None:
            syms[p.name] = sym
    names = {p.name for p in params}
    for kw in call.kwargs:
        if kw.name not in names:
            close = difflib.get_close_matches(kw.name, names, n=1)
            raise lowering_error(
                "E202",
                f"block `{block.name}` has no parameter `{kw.name}`",
                kw.span,
                help=(f"did you mean `{close[0]}`? " if close else "") + block_usage(block),
            )
        if kw.name in given:
            raise lowering_error("E206", f"argument `{kw.name}` given twice", kw.span)
        value, sym = evaluate_recorded(kw.value, env)
        given[kw.name] = (value, kw.span)
        if sym is not None:
            syms[kw.name] = sym
    penv = globals_.child()
    values = penv.vars
    for p in params:
        if p.name in given:
            value, span = given[p.name]
        elif p.default is not None:
            value, span = evaluate(p.default, penv), p.span
        else:
            raise lowering_error(
                "E204", f"block `{block.name}` needs its argument `{p.name}`", call.span, help=block_usage(block)
            )
        check_param_type(p, value, span)
        values[p.name] = value
    return values
