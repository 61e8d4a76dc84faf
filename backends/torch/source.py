"""The generated source of a compiled spec: plan, optional plan rewrite, emitter, and the
network parameters the network class takes as arguments.

Numeric parameters and the flag of ``zero_init_residual`` are read from the expressions
lowering keeps (:mod:`.arguments`): no compile beyond the one emitted. A boolean parameter
that chooses structure (``aux_logits``, ``transform_input``, VGG's ``batch_norm``) is still
merged from one compile per combination of such flags (:func:`_flags_merged`, at most
three flags: seven more compiles); the structure a flag does not choose is not lowered by
the one compile. No torch import.
"""

from __future__ import annotations

import itertools
import re

from archlang.compiler import Compiled, compile_spec
from archlang.diagnostics import Diagnostic, SpecError

from .arguments import flag_kinds, numeric_arguments, zero_init_flag
from .codegen_init import initialize_weights, zero_init_norms
from .emit import Emitter
from .plan import plan
from .variants import merge_variants


def _prepared(compiled: Compiled, rewrite=None):
    root = plan(compiled.graph)
    emitter = Emitter(rewrite(root) if rewrite else root, compiled.graph)
    return emitter, emitter.prepare()


def _without_shapes(texts: list[str]) -> list[str]:
    """Class texts without their shape comments (which show one instance's sizes)."""
    return [re.sub(r" *# \(N[^)]*\)", "", t) for t in texts]


def _flags_merged(compiled: Compiled, rewrite, emitter: Emitter, root, arguments: dict, flags: list[str]):
    """The network class over the boolean parameters ``flags``, or None.

    Boolean network parameters (``aux_logits``, ``transform_input``) change structure. The
    spec is compiled for every combination of them (at most three: eight compilations);
    each gives the network's statements, and :func:`.variants.merge_variants` merges them
    pairwise, flag by flag, into one class that takes the flags (``if aux_logits:``).
    Every combination must give the same numeric constructor arguments, the same init and
    classes contained in one combination's (whose classes the file then holds). Returns
    (emitter whose classes to print, init, forward, flags used) or None."""
    params = compiled.graph.graph.get("params") or {}
    if not flags or len(flags) > 3:
        return None
    shape = tuple(compiled.graph.graph["input_shape"])
    variants = {}
    for values in itertools.product((True, False), repeat=len(flags)):
        assignment = dict(zip(flags, values, strict=True))
        if all(params[f] == v for f, v in assignment.items()):
            variants[values] = (emitter, root, arguments)
            continue
        try:
            other = compile_spec(compiled.program, {**params, **assignment}, shape)
        except SpecError:
            return None
        e, r = _prepared(other, rewrite)
        variants[values] = (e, r, numeric_arguments(other.graph, e, r))
    taken = {q for _, _, a in variants.values() for q, slots in a.items() if slots}
    if any(not taken <= set(a) for _, _, a in variants.values()):
        return None  # a parameter fills values in one combination but changes structure in another
    classes = {k: _without_shapes(e.texts) for k, (e, _, _) in variants.items()}
    full = max(variants, key=lambda k: len(classes[k]))
    names = {e.outputs_name for e, _, _ in variants.values()} - {None}
    if any(not set(c) <= set(classes[full]) for c in classes.values()) or len(names) > 1:
        return None
    if names and variants[full][0].outputs_name is None:
        return None
    # the weight init of the full combination: the same code in every combination, or
    # covering the others' modules with the same inits
    weights = {tuple(initialize_weights(e.root, [])) for e, _, _ in variants.values()}
    inits = variants[full][0].weight_inits().items()
    if len(weights) > 1 and any(not e.weight_inits().items() <= inits for e, _, _ in variants.values()):
        return None
    # a plan rewrite's converter (BatchNorm folded per module path) must suit every combination
    converters = {
        (tuple(sorted(e.extras.eps.items())), tuple(sorted(e.extras.pairs.items())))
        for e, _, _ in variants.values()
        if e.extras is not None
    }
    if len(converters) > 1:
        return None
    zero_init = _zero_init_flag(flags, {k: zero_init_norms(e.root) for k, (e, _, _) in variants.items()})
    if zero_init is False:
        return None
    idents = emitter.idents()
    statements = {k: e.root_statements(r, a) for k, (e, r, a) in variants.items()}
    used: list[str] = []

    def merge(prefix: tuple):
        if len(prefix) == len(flags):
            return statements[prefix]
        true, false = merge((*prefix, True)), merge((*prefix, False))
        if true is None or false is None:
            return None
        if [_keys(s) for s in true] == [_keys(s) for s in false]:
            return true  # this flag changes nothing here
        flag = flags[len(prefix)]
        used.append(flag)
        return merge_variants(flag, idents[flag], true, false, _attributes(true[0]), _attributes(false[0]))

    merged = merge(())
    if merged is None:
        return None
    full_emitter = variants[full][0]
    for e, _, _ in variants.values():
        full_emitter.describer.uses |= e.describer.uses
    full_emitter.zero_init = zero_init
    if zero_init and zero_init[1] not in used:
        used.append(zero_init[1])
    return full_emitter, merged, [f for f in flags if f in used], taken


def _zero_init_flag(flags: list[str], norms: dict[tuple, list[str]]):
    """The batch norms a flag zeroes (``zero_init_residual``): (norms, flag) when the
    ``batchnorm(zero_init=true)`` layers are the same in every combination where one flag is
    true and absent where it is false; None when they do not depend on the flags; False
    when they depend on them otherwise."""
    if len({tuple(n) for n in norms.values()}) == 1:
        return None
    for i, flag in enumerate(flags):
        on = {tuple(n) for k, n in norms.items() if k[i]}
        off = {tuple(n) for k, n in norms.items() if not k[i]}
        if len(on) == 1 and off == {()}:
            return list(next(iter(on))), flag
    return False


def _keys(statements) -> list[str]:
    return [_without_shapes(["\n".join(s.render(""))])[0] for s in statements]


def _attributes(init) -> set[str]:
    return {m for s in init for line in s.render("") for m in re.findall(r"self\.(\w+) = ", line)}


def generate(compiled: Compiled, rewrite=None) -> tuple[str, str]:
    """(source, network class name) for a compiled spec; ``rewrite``: a plan -> plan pass
    applied first (``--optimize``'s :func:`.rewrite.inference_plan`)."""
    emitter, root = _prepared(compiled, rewrite)
    arguments = numeric_arguments(compiled.graph, emitter, root)
    structural, zeroing = flag_kinds(compiled.graph)
    merged = _flags_merged(compiled, rewrite, emitter, root, arguments, structural)
    if merged is None:
        flags = _zero_init(compiled, emitter, zeroing)
        taken = {q: slots for q, slots in arguments.items() if slots}
        source, name = emitter.generate(root, taken, flags=flags)
    else:
        full, statements, flags, taken = merged  # full: the combination that has every class
        if full.zero_init is None:
            flags = [*flags, *_zero_init(compiled, full, zeroing)]
        params = compiled.graph.graph.get("params") or {}
        source, name = full.generate(root, dict.fromkeys(taken), statements, flags, params)
    _check_syntax(source, compiled)
    return source, name


def _zero_init(compiled: Compiled, emitter: Emitter, flags: list[str]) -> list[str]:
    """Make the first of ``flags`` that zeroes batch norms the argument of
    ``_initialize_weights`` (``zero_init_residual``); [that flag] or []."""
    for flag in flags:
        norms = zero_init_flag(compiled.graph, emitter.root, flag)
        if norms:
            emitter.zero_init = (norms, flag)
            return [flag]
    return []


def _check_syntax(source: str, compiled: Compiled) -> None:
    """Never hand back a file Python cannot read: a generator bug becomes a located E900
    (at the layer whose name is on the failing line, else the first layer) instead."""
    try:
        # compile(), not ast.parse(): CPython 3.11's AST-to-object conversion is not thread-safe
        # ("AST constructor recursion depth mismatch" when several threads build at once).
        compile(source, "<archlang: generated>", "exec", dont_inherit=True)
    except SyntaxError as error:
        lines = source.splitlines()
        bad = lines[error.lineno - 1] if error.lineno and error.lineno <= len(lines) else ""
        spans = [
            (str(d["path"][-1]) if d.get("path") else nid, d.get("span")) for nid, d in compiled.graph.nodes(data=True)
        ]
        located = [pair for pair in spans if pair[1] is not None]
        longest_first = sorted(located, key=lambda pair: -len(pair[0]))
        span = next((sp for n, sp in longest_first if n in bad), located[0][1] if located else None)
        raise SpecError(
            Diagnostic(
                code="E900",
                message=f"internal: the generated PyTorch code is not valid Python ({error.msg})",
                span=span,
                help="this is a bug in archlang; please report it with the spec",
            )
        ) from None
