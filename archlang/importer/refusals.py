"""Refusals of the trace that need a look at the module itself (E720-E724): lazy modules,
weights shared by two calls, reading sizes, ``nn.Softmax`` on a map's last dim, and state
the forward never touches (whose keys the spec could not hold). :mod:`.trace` calls these
where it meets the case; each returns (or raises) a located :class:`SpecError`."""

from __future__ import annotations

import contextlib
import dataclasses
import linecache
from collections import Counter

import torch.fx as fx

from archlang.diagnostics import SourceMap, Span, SpecError
from archlang.importer.series_parallel import problem

from . import inplace, opmap


@contextlib.contextmanager
def at_source(converter):
    """A refusal of one traced op points at the line of Python that made it (the file and
    line :mod:`.concrete` recorded), quoted with a caret like a spec's errors."""
    try:
        yield
    except SpecError as err:
        node = converter.current
        where = node.meta.get("source") if node is not None else None
        text = "".join(linecache.getlines(where[0])) if where else ""
        if not text or len(err.diagnostics) != 1 or err.diagnostics[0].span is not None:
            raise
        file, line = where
        code = text.split("\n")[line - 1]
        start = len(code) - len(code.lstrip()) + 1
        span = Span(file, line, start, line, len(code.rstrip()) + 1)
        sources = err.sources or SourceMap()
        sources.add(file, text)
        raise SpecError(dataclasses.replace(err.diagnostics[0], span=span), sources) from None


def in_forward(err: SpecError, exc: BaseException) -> SpecError:
    """``err`` pointed at the line of the model's own Python where ``exc`` was raised (the
    innermost frame outside torch and archlang), when there is one."""
    import os

    import torch

    skip = (os.path.dirname(torch.__file__) + os.sep, os.path.dirname(os.path.dirname(__file__)) + os.sep)
    tb, where = exc.__traceback__, None
    while tb is not None:
        file = tb.tb_frame.f_code.co_filename
        if not file.startswith(skip) and not file.startswith("<"):
            where = (file, tb.tb_lineno)
        tb = tb.tb_next
    text = "".join(linecache.getlines(where[0])) if where else ""
    if not text or len(err.diagnostics) != 1:
        return err
    file, line = where
    code = text.split("\n")[line - 1]
    start = len(code) - len(code.lstrip()) + 1
    sources = err.sources or SourceMap()
    sources.add(file, text)
    span = Span(file, line, start, line, len(code.rstrip()) + 1)
    return SpecError(dataclasses.replace(err.diagnostics[0], span=span), sources)


def lazy(sub, target: str):
    """E720 for an uninitialised ``nn.Lazy*`` module (its sizes are not known yet)."""
    uninitialised = getattr(sub, "has_uninitialized_params", None)
    if uninitialised is not None and uninitialised():
        raise problem(
            "E720",
            f"{target} ({opmap.public_name(type(sub))}): an uninitialised lazy module (its sizes are unknown)",
            "run the model once on an input before importing it: lazy modules then become ordinary ones",
        )


def hooks(sub, target: str) -> None:
    """E724 for a layer with forward hooks: torch.fx records the layer's call without them,
    so a hook that changes the output (pruning masks, weight norm, a rescale) would be lost."""
    from torch.nn.modules import module as nn_module

    found = [
        name
        for name in ("_forward_hooks", "_forward_pre_hooks")
        if getattr(sub, name, None) or getattr(nn_module, "_global" + name, None)
    ]
    if "forward" in vars(sub):
        raise problem(
            "E724",
            f"{target} ({opmap.public_name(type(sub))}) has its own `forward` set on the instance: the spec would "
            "compute the class's",
            "import the model without the patched forward",
        )
    if found:
        raise problem(
            "E724",
            f"{target} ({opmap.public_name(type(sub))}) has {found[0].strip('_').replace('_', ' ')} "
            "(pruning, weight norm, ...): the spec would compute the layer without them",
            "remove the hooks before importing (torch.nn.utils.prune.remove, ...): they may change the output",
        )


def shared(target: str, cls: str, uses: list[str]):
    """E724: the module ``target`` with weights is called from each of ``uses``."""
    return problem(
        "E724",
        f"{target} ({cls}) is called {len(uses)} times (from {' and from '.join(dict.fromkeys(uses))}): "
        "archlang layers cannot share weights",
        "give each use its own module (a copy of the weights); a module without weights may be reused",
    )


def reads_size(where: str, what: str):
    """E723: ``x.size()`` / ``x.shape`` / ``x.dim()`` of a value whose shape the trace could
    not compute (its op failed on a fake tensor)."""
    return problem(
        "E723",
        f"{where}: the forward reads the size of a value whose shape is unknown (`{what}`)",
        "archc import computes shapes by running each op on the given input's shapes; an op before this "
        "read could not run there (see docs/import.md)",
    )


def softmax_dim(sub, target: str, ndim: int | None) -> None:
    """``nn.Softmax(dim=-1)`` is archlang's ``softmax`` on a vector only."""
    if ndim is not None and ndim != 2 and sub.dim % ndim != 1:
        raise problem(
            "E722",
            f"`{target}` ({opmap.public_name(type(sub))}): softmax over dim={sub.dim} of a {ndim}-d tensor "
            "(archlang's softmax runs over the channels)",
        )


def unused_state(module, graph: fx.Graph) -> None:
    """E724 for a parameter or persistent buffer no op of the forward owns: the spec has no
    layer for it, so its state_dict would lack the key."""
    leaves = {n.target for n in graph.nodes if n.op == "call_module"}
    attrs = {n.target for n in graph.nodes if n.op == "get_attr"}
    state = module.state_dict(keep_vars=True)
    parts = {k: k.split(".") for k in state}
    # a leaf's own state, at any depth (timm's EcaModule keeps its weight in `conv`)
    used = {
        id(v)
        for k, v in state.items()
        if k in attrs or any(".".join(parts[k][:i]) in leaves for i in range(1, len(parts[k])))
    }
    for key, value in state.items():
        if id(value) in used:
            continue
        raise problem(
            "E724",
            f"the state_dict key `{key}` is not used by the forward: the spec would have no layer for it",
            "the spec's layers are what the forward runs: remove the unused module, parameter or buffer "
            "(or register a buffer with persistent=False)",
        )


# Ops that are the identity in eval mode: a forward may skip them there (`if self.training`).
_TRAIN_ONLY = ("dropout", "stochastic_depth", "StochasticDepth", "Dropout")


def same_in_eval(train: fx.Graph, tracer: fx.Tracer, module, functions: dict | None = None) -> None:
    """E723 unless the ops computing the main output are the same traced in eval mode
    (``module`` is put in eval mode; the caller restores the flags). The spec is read off the training-mode trace (aux
    heads run there); a forward that computes something else in eval mode (`if not
    self.training: x = x.softmax(1)`) would give a spec with another eval function."""
    module.eval()
    try:
        graph = tracer.trace(module)
    except Exception as err:  # fx raises TraceError, TypeError, ...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _mode_problem(f"torch.fx cannot trace the module in eval mode: {reason}") from None
    inplace.rewire(graph, module, functions or {})  # as the training-mode graph was
    out = next(n for n in graph.nodes if n.op == "output").args[0]
    if isinstance(out, fx.Node) and isinstance(out.target, type) and hasattr(out.target, "_fields"):
        raise problem(
            "E725",
            f"the module returns a `{out.target.__name__}` in eval mode too: archlang networks return one tensor "
            "in eval mode (a namedtuple with aux heads only in training mode)",
            "return the logits tensor in eval mode, as torchvision's GoogLeNet and Inception v3 do",
        )
    ops_train, ops_eval = _main_ops(train, module), _main_ops(graph, module)
    if ops_train != ops_eval:
        diff = (ops_eval - ops_train) or (ops_train - ops_eval)
        which = "in eval mode only" if ops_eval - ops_train else "in training mode only"
        raise _mode_problem(
            f"the forward runs `{next(iter(diff))[1]}` {which}: its eval function is not the traced one"
        )


def _mode_problem(message: str):
    return problem(
        "E723",
        message,
        "archc import reads the forward in training mode; branch on self.training only around dropout, "
        "stochastic depth and aux heads",
    )


def _main_ops(graph: fx.Graph, module) -> Counter:
    """The ops the main output depends on (the `logits` of a namedtuple), as a multiset."""
    out = next(n for n in graph.nodes if n.op == "output").args[0]
    if isinstance(out, fx.Node) and isinstance(out.target, type) and hasattr(out.target, "_fields"):
        fields = {**dict(zip(out.target._fields, out.args)), **out.kwargs}
        out = fields.get("logits", next(iter(fields.values()), None))
    found: Counter = Counter()
    seen, stack = set(), [out] if isinstance(out, fx.Node) else []
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack.extend(node.all_input_nodes)
        if node.op == "call_module":
            key = f"{node.target} ({type(module.get_submodule(node.target)).__name__})"
        elif node.op == "call_function":
            key = opmap.qualname(node.target)
        elif node.op in ("call_method", "get_attr"):
            key = f"{'Tensor.' if node.op == 'call_method' else ''}{node.target}"
        else:
            continue
        if not any(word in key for word in _TRAIN_ONLY):
            found[(node.op, key)] += 1
    return found
