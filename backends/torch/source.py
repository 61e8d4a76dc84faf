"""The generated source of a compiled spec: plan, optional plan rewrite, emitter, and the
network parameters the network class takes as arguments.

Numeric parameters and the flag of ``zero_init_residual`` are read from the expressions
lowering keeps (:mod:`.arguments`). A boolean parameter that chooses structure
(``aux_logits``, ``transform_input``, VGG's ``batch_norm``, FCN's ``aux_loss``) is read
from the structures lowering keeps for it: an ``if`` on flags outside block instances is
lowered on both sides, the side not taken beside the graph
(:class:`archlang.graph.model.Alternative`), and the class writes the choice as ``if``
(:mod:`.conditions`), in block classes too (U-Net's ``batch_norm`` and ``padding``: the
blocks take them as arguments; ``bias=not batch_norm``). No compile beyond the one
emitted, whatever the number of flags.

What one compile cannot express falls back to compiling the flags' other values and
merging the class texts (:func:`_flags_merged`): a flag read only by attributes, or by an
``input`` for its channels, a side that changes the shape after the ``if`` or cannot be
lowered at the compiled setting, an attribute over flags whose torch argument is not its
value. When the flags are independent every combination follows from one compile with
each flipped (:func:`_combinations`); flags that interact are compiled in every
combination, three of them at most. No torch import.
"""

from __future__ import annotations

import itertools
import re
from difflib import SequenceMatcher

from archlang.compiler import Compiled, compile_spec
from archlang.diagnostics import Diagnostic, SpecError
from archlang.graph.symbolic import params_of
from archlang.ops import Op

from .arguments import flag_kinds, numeric_arguments, zero_init_flag
from .codegen_init import initialize_weights, zero_init_norms
from .conditions import flags_of, joins, with_alternatives
from .emit import Emitter
from .plan import Leaf, ModulePlan, iter_plans, plan
from .variants import merge_variants


def _prepared(compiled: Compiled, rewrite=None, graph=None, flags=frozenset()):
    """(emitter, the network's description); ``graph``: the graph with the structures the
    flags do not choose (:func:`.conditions.with_alternatives`), written as ``if``."""
    conditional = graph is not None
    graph = compiled.graph if graph is None else graph
    root = plan(graph)
    emitter = Emitter(rewrite(root) if rewrite else root, graph, compiled.templates)
    if conditional:
        emitter.conditional = True
        emitter.describer.joins = joins(graph)
        emitter.describer.flag_args = frozenset(flags)
    return emitter, emitter.prepare()


def _without_shapes(texts: list[str]) -> list[str]:
    """Class texts without their shape comments (which show one instance's sizes)."""
    return [re.sub(r" *# \(N[^)]*\)", "", t) for t in texts]


def _flags_merged(compiled: Compiled, rewrite, emitter: Emitter, root, arguments: dict, flags: list[str]):
    """The network class over the boolean parameters ``flags``, or None.

    Boolean network parameters (``aux_logits``, ``transform_input``) change structure. The
    spec is compiled once more per flag, with that flag flipped; where the flags are
    independent (:func:`_combinations`) the statements of every combination follow from
    those. Otherwise it is compiled for every combination (at most three flags: seven more
    compilations). :func:`.variants.merge_variants` merges the combinations' statements
    pairwise, flag by flag, into one class that takes the flags (``if aux_logits:``).
    Every combination must give the same numeric constructor arguments, the same init and
    classes contained in one combination's (whose classes the file then holds). Returns
    (emitter whose classes to print, init, forward, flags used) or None."""
    params = compiled.graph.params or {}
    if not flags:
        return None
    shape = tuple(compiled.graph.input_shape)
    base = tuple(params[f] for f in flags)
    graphs = {base: compiled.graph}
    found = {base: (emitter, root, arguments)}

    def variant(values: tuple) -> bool:
        try:
            other = compile_spec(compiled.program, {**params, **dict(zip(flags, values, strict=True))}, shape)
        except SpecError:
            return False
        e, r = _prepared(other, rewrite)
        if _clashes(e, [f[0] for f in found.values()]):
            return False
        found[values] = (e, r, numeric_arguments(other.graph, e, r))
        graphs[values] = other.graph
        return True

    flips = [tuple(not v if i == k else v for i, v in enumerate(base)) for k in range(len(flags))]
    if not all(variant(values) for values in flips):
        return None
    statements = {k: e.root_statements(r, a) for k, (e, r, a) in found.items()}
    combined = _combinations(base, flips, statements, graphs) if len(flags) <= MAX_FLAGS else None
    if combined is None:
        if len(flags) > MAX_COMPILED_FLAGS:
            return None
        for values in itertools.product((True, False), repeat=len(flags)):
            if values not in found and not variant(values):
                return None
        statements = {k: e.root_statements(r, a) for k, (e, r, a) in found.items()}
    else:
        statements = combined
    # in the order of the combinations, as they were all compiled before
    variants = {k: found[k] for k in itertools.product((True, False), repeat=len(flags)) if k in found}
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


# Flags merged from one compile each; beyond this, 2**n combinations are too many to write.
MAX_FLAGS = 8
# Flags that interact are compiled in every combination: at most this many (seven compiles more).
MAX_COMPILED_FLAGS = 3


def _clashes(emitter: Emitter, others: list[Emitter]) -> bool:
    """Whether ``emitter`` writes a class of the same name as one of ``others`` with another
    text. The merged file holds the classes of one combination, which must contain every
    other combination's; one name cannot have two texts there, so the merge fails whatever
    the remaining combinations give (U-Net's ``DoubleConv`` with and without its batch
    norms): the fallback stops before compiling them."""
    mine = {_class_name(t): t for t in _without_shapes(emitter.texts)}
    for other in others:
        for text in _without_shapes(other.texts):
            name = _class_name(text)
            if name in mine and mine[name] != text:
                return True
    return False


def _class_name(text: str) -> str | None:
    match = re.search(r"^class (\w+)\b", text, re.MULTILINE)
    return match.group(1) if match else None


def _rendered(stmt) -> str:
    return "\n".join(stmt.render(""))


def _combinations(base: tuple, flips: list[tuple], statements: dict, graphs: dict) -> dict | None:
    """The network's (init, forward) statements for every combination of the flags, from
    the compiled one (``base``) and one compile per flag flipped (``flips``); None unless
    the flags are independent:

    * flipping a flag changes no shape of a layer both graphs have, and the layers it adds,
      removes or changes are not another flag's, nor read by another flag's layers;
    * the statements it changes (by their text, shape comments included) are apart from
      another flag's, with a statement both keep between them.

    A combination's statements are then the compiled ones with each flipped flag's changed
    statements replaced by its compile's.
    """
    g0 = graphs[base]
    touched = []
    for values in flips:
        g = graphs[values]
        only = set(g0.nodes) ^ set(g.nodes)
        common = set(g0.nodes) & set(g.nodes)
        if any(g0.nodes[n].shape != g.nodes[n].shape for n in common):
            return None
        keys = ("op", "attrs", "inputs", "init", "aux")
        changed = {n for n in common if any(getattr(g0.nodes[n], k) != getattr(g.nodes[n], k) for k in keys)}
        reads = {i for graph in (g0, g) for n in (only | changed) & set(graph.nodes) for i in graph.nodes[n].inputs}
        touched.append((only, only | changed, reads))
    for a, (_, delta_a, reads_a) in enumerate(touched):
        for b, (only_b, delta_b, _) in enumerate(touched):
            if a != b and (delta_a & delta_b or reads_a & only_b):
                return None
    regions = []  # per flag, per part (init, forward): [(start, end, replacement)]
    for values in flips:
        parts = []
        for s0, s1 in zip(statements[base], statements[values], strict=True):
            matcher = SequenceMatcher(a=[_rendered(s) for s in s0], b=[_rendered(s) for s in s1], autojunk=False)
            parts.append([(i1, i2, s1[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"])
        regions.append(parts)
    for part in (0, 1):
        spans = sorted((i1, i2, f) for f, r in enumerate(regions) for i1, i2, _ in r[part])
        if any(fa != fb and not a2 < b1 for (_, a2, fa), (b1, _, fb) in zip(spans, spans[1:])):
            return None
    out = {}
    for values in itertools.product((True, False), repeat=len(base)):
        flipped = [f for f, v in enumerate(values) if v != base[f]]
        parts = []
        for part, s0 in enumerate(statements[base]):
            result = list(s0)
            for i1, i2, replacement in sorted((e for f in flipped for e in regions[f][part]), key=lambda e: -e[0]):
                result[i1:i2] = replacement
            parts.append(result)
        out[values] = tuple(parts)
    return out


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
    return _without_shapes([_rendered(s) for s in statements])


def _attributes(init) -> set[str]:
    return {m for s in init for line in s.render("") for m in re.findall(r"self\.(\w+) = ", line)}


def _conditional(compiled: Compiled, structural: list[str]):
    """The graph with the structures the flags do not choose (:mod:`.conditions`), when
    every flag that chooses structure is read only by ``if`` tests of the network body
    that lowering kept both sides of; else None."""
    g = compiled.graph
    if not g.alternatives or not structural or not set(structural) <= g.symbolic_flags:
        return None
    full = with_alternatives(g)
    if full is None or not (full.returns and full.outputs_when or full.other_returns):
        return full
    # `outputs dict(...)` under a flag: one `if` / `else` that both return (FCN's aux_loss)
    ((when, _),) = full.other_returns if len(full.other_returns) == 1 else ((None, None),)
    if when is None or not full.returns or not _complement(when, full.outputs_when):
        return None
    return full


def _complement(a: tuple, b: tuple) -> bool:
    """Whether conditions ``a`` and ``b`` are those of the two branches of one ``if``."""
    return len(a) == len(b) > 0 and a[:-1] == b[:-1] and (a[-1] == ("not", b[-1]) or b[-1] == ("not", a[-1]))


def _numbered_by_path(emitter: Emitter) -> bool:
    """Whether the weight init names a module that an item under a flag renumbers: the
    items of an ``nn.Sequential`` after one that exists only under a flag have other
    numbers where it is absent, and an init written per module path would miss them."""
    shifted = []
    for p in iter_plans(emitter.root):
        if p.kind == "sequential":
            conditional = [i for i, c in enumerate(p.children) if c.when != p.when]
            if conditional:
                shifted += [".".join((*p.path, c.name)) for c in p.children[conditional[0] :]]
    if not shifted:
        return False
    text = "\n".join(emitter.init_lines())
    return any(f'"{path}' in text for path in shifted)


def _unprinted(emitter: Emitter, flags: set[str]) -> bool:
    """Whether a layer attribute over the flags the class takes is printed as its value
    at this compile's setting instead of the expression (a ``padding`` the torch argument
    writes otherwise): the file would be exact for this setting only."""
    printed = emitter.describer.flag_printed
    for nid, data in emitter.graph.nodes.items():
        for attr, expr in data.exprs.items():
            if attr != "zero_init" and params_of(expr) & flags and (nid, attr) not in printed:
                return True
    return False


def _tested(emitter: Emitter) -> set[str]:
    """The flags the file tests: those over what the plan keeps (``--optimize`` drops the
    aux heads, and with them ``aux_logits``)."""
    root = emitter.root
    whens = [c.when for p in iter_plans(root) for c in p.children]
    whens += [s.when for p in iter_plans(root) for s in p.steps]
    whens += [w for w, _ in root.other_outputs]
    if root.outputs:
        whens.append(emitter.graph.outputs_when)
    return flags_of(whens)


def _folds_under_flag(emitter: Emitter) -> bool:
    """Whether the inference rewrite meets a batch norm under a flag: left unfolded (VGG's
    ``batch_norm``; it folds only where the conv is under the same conditions) or folded
    in a module that exists under a flag (FCN's aux head), which the converter's table of
    folded pairs cannot leave out. The combinations are then written from their own
    compiles."""
    for p in iter_plans(emitter.root):
        for c in p.children:
            if not c.when:
                continue
            plans = list(iter_plans(c)) if isinstance(c, ModulePlan) else []
            leaves = [c] if isinstance(c, Leaf) else [x for q in plans for x in q.children if isinstance(x, Leaf)]
            if any(x.op is Op.BATCHNORM or x.attrs.get("folded_bn") for x in leaves):
                return True
            if any(q.kind == "fused" or "folded_from" in q.args for q in plans):
                return True
    return False


def generate(compiled: Compiled, rewrite=None) -> tuple[str, str]:
    """(source, network class name) for a compiled spec; ``rewrite``: a plan -> plan pass
    applied first (``--optimize``'s :func:`.rewrite.inference_plan`)."""
    structural, zeroing = flag_kinds(compiled.graph)
    full = _conditional(compiled, structural)
    flag_args = set(structural) & compiled.graph.symbolic_flags
    prepared = _prepared(compiled, rewrite, full, flag_args) if full is not None else None
    if prepared is not None and (_numbered_by_path(prepared[0]) or rewrite and _folds_under_flag(prepared[0])):
        prepared = None
    if prepared is not None and _unprinted(prepared[0], flag_args):
        prepared = None
    if prepared is not None:
        emitter, root = prepared
        arguments = numeric_arguments(full, emitter, root)
        tested = _tested(emitter) | emitter.describer.flag_uses
        flags = [q for q in compiled.graph.params if q in structural and q in tested]
        flags += _zero_init(full, emitter, zeroing)
        taken = {q: slots for q, slots in arguments.items() if slots}
        source, name = emitter.generate(root, taken, flags=flags)
        _check_syntax(source, compiled)
        return source, name
    emitter, root = _prepared(compiled, rewrite)
    arguments = numeric_arguments(compiled.graph, emitter, root)
    merged = _flags_merged(compiled, rewrite, emitter, root, arguments, structural)
    if merged is None:
        flags = _zero_init(compiled.graph, emitter, zeroing)
        taken = {q: slots for q, slots in arguments.items() if slots}
        source, name = emitter.generate(root, taken, flags=flags)
    else:
        full, statements, flags, taken = merged  # full: the combination that has every class
        if full.zero_init is None:
            flags = [*flags, *_zero_init(compiled.graph, full, zeroing)]
        params = compiled.graph.params or {}
        source, name = full.generate(root, dict.fromkeys(taken), statements, flags, params)
    _check_syntax(source, compiled)
    return source, name


def _zero_init(graph, emitter: Emitter, flags: list[str]) -> list[str]:
    """Make the first of ``flags`` that zeroes batch norms the argument of
    ``_initialize_weights`` (``zero_init_residual``); [that flag] or []."""
    for flag in flags:
        norms = zero_init_flag(graph, emitter.root, flag)
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
        spans = [(str(d.path[-1]) if d.path else nid, d.span) for nid, d in compiled.graph.nodes.items()]
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
