"""Lowering: IR program -> :class:`~archlang.graph.model.Graph` of primitive ops.

Blocks are instantiated, ``if``/``for``/``repeat`` expanded, conv units expanded into
conv2d (+ batchnorm) (+ relu), and every node gets its hierarchy path and source span.
Shapes are not computed here (see :mod:`archlang.graph.shape_pass`), so a different input size does
not need lowering again.

Modules: :mod:`.state` (the graph under construction, scopes, limits), :mod:`.program`
(blocks, constants, parameters), :mod:`.walk` (the one walker; control statements),
:mod:`.layers` (the statement table; layers, blocks, groups), :mod:`.settings` (input,
unit, init, outputs), :mod:`.names` (name templates).
"""

from __future__ import annotations

import sys

from archlang.frontend import ir
from archlang.frontend.expressions import budget
from archlang.frontend.loader import Program
from archlang.graph.model import Graph

from ..diagnostics import Diagnostic, Severity, Span, SpecError
from ..ops import Op
from .estimate import Estimator
from .layers import BODY
from .program import GlobalEnv, bind_network_params, collect_blocks, collect_consts, the_network
from .settings import check_outputs, dict_returns
from .state import (
    DEFAULT_MAX_NODES,
    MAX_BLOCK_DEPTH,
    MAX_LOWER_DEPTH,
    MAX_REPORTED_ERRORS,
    MIN_STEPS,
    STEPS_PER_NODE,
    Ctx,
    Frame,
    Lowering,
    Scope,
    lowering_error,
)
from .symbolic import network_env, structural
from .walk import walk

__all__ = ["DEFAULT_MAX_NODES", "MAX_BLOCK_DEPTH", "MAX_LOWER_DEPTH", "MIN_STEPS", "STEPS_PER_NODE", "lower"]


def lower(
    program: Program,
    params: dict | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    input_shape: tuple[int, ...] | None = None,
) -> Graph:
    """Lower a loaded program to a graph; raise :class:`SpecError` with every independent
    error found (or the first one that stops lowering)."""
    steps = max(MIN_STEPS, STEPS_PER_NODE * max_nodes)
    with budget(
        steps,
        help=f"loops build too much; the budget is {STEPS_PER_NODE} steps per node of "
        f"--max-nodes ({max_nodes:,}): raise --max-nodes if this is intended",
    ):
        try:
            return _lower(program, dict(params or {}), max_nodes, input_shape)
        except RecursionError:
            # The limits above keep lowering within ~700 frames: this is reached only when
            # called with little of Python's recursion limit left. Not raised here: that
            # would change the limit for every thread of the process.
            raise lowering_error(
                "E601",
                f"the spec nests too deeply for Python's recursion limit ({sys.getrecursionlimit()}) here",
                _network_span(program),
                help="call from a shallower stack, or raise the limit with sys.setrecursionlimit",
            ) from None


def _network_span(program: Program):
    """Where a failure outside any statement is shown: the network's name, else line 1."""
    nets = [i for i in program.main.items if isinstance(i, ir.NetworkDef)]
    return nets[0].name_span if nets else Span.point(program.main.file, 1, 1)


def _lower(program: Program, overrides: dict, max_nodes: int, input_shape) -> Graph:
    lw = Lowering(collect_blocks(program), GlobalEnv(collect_consts(program)), max_nodes, input_shape)
    items = [item for module in program.modules for item in module.items]
    lw.estimate = Estimator(lw.blocks, lw.globals, items, cap=max_nodes + 1)
    net = the_network(program)
    values = bind_network_params(net, overrides, lw.globals)
    lw.params = values
    top = Frame(Scope(()), network_env(lw.globals, values), Ctx(), top=True)
    with structural(set()) as fixed:
        out = walk(lw, net.body, None, top, BODY)
    if lw.errors:
        raise SpecError(lw.errors)
    if lw.g.input is None:
        raise lowering_error(
            "E503", "the network declares no input", net.name_span, help="start the network with e.g. `input 3x224x224`"
        )
    if out is None or out == lw.g.input:
        raise lowering_error("E504", "the network has no layers", net.name_span)
    check_outputs(lw)
    g = lw.g
    g.returns = dict_returns(lw, top.scope, out) if lw.returns else ()
    g.network = net.name
    g.params = values
    # the main output (the report's total, lint's main path): the first value returned
    g.output = g.returns[0][1] if g.returns else out
    g.aux_outputs = lw.aux_outputs
    g.outputs_type = lw.outputs_type
    g.scopes = lw.scopes
    g.file = program.main.file
    g.structural_params = frozenset(fixed | lw.flag_tests)
    g.symbolic_flags = frozenset(lw.flag_tests - fixed - lw.flag_failed)
    g.alternatives = tuple(lw.alternatives)
    g.outputs_when = lw.outputs_when
    g.warnings = (*lw.warnings, *_unused_values(g))
    return lw.g


def _unused_values(g):
    """A warning per value that nothing reads and the network does not return: work the
    generated forward would do for nothing (usually a `from` that names the wrong value)."""
    returned = {g.output, *g.aux_outputs.values(), *(nid for _, nid in g.returns)}
    unused = [
        nid
        for nid, node in g.nodes.items()
        if nid not in returned and node.op is not Op.INPUT and not g.successors(nid)
    ]
    for nid in unused[:MAX_REPORTED_ERRORS]:
        node = g.nodes[nid]
        yield Diagnostic(
            code="W201",
            message=f"the value of `{nid.replace('/', '.')}` is never used",
            span=node.span,
            severity=Severity.WARNING,
            help="read it with `from`, return it with `outputs`, or remove it",
        )
    if len(unused) > MAX_REPORTED_ERRORS:
        yield Diagnostic(
            code="W201",
            message=f"and {len(unused) - MAX_REPORTED_ERRORS:,} more values never used",
            severity=Severity.WARNING,
        )
