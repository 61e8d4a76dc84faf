"""``archc lint``: design rules from Szegedy et al., "Rethinking the Inception
Architecture for Computer Vision" (arXiv 1512.00567), checked on a compiled network.

    >>> from archlang.compiler import compile_spec
    >>> from archlang.lint import run_lint
    >>> [d.code for d in run_lint(compile_spec("googlenet", {"variant": "paper"}))]  # doctest: +SKIP

Rules live in :mod:`.bottleneck`, :mod:`.factorize` and :mod:`.structure`, each with its
metadata (:class:`~.model.Rule`); ``docs/lint.md`` has the table. Findings that point at the
same statement (a block template's line, used by several instances) are merged into one
diagnostic that lists the instances. No torch here.
"""

from __future__ import annotations

import json
import sys

from ..diagnostics import Diagnostic, Note, Severity, render
from . import bottleneck, factorize, network_shape
from .model import Finding, Rule
from .suppress import is_suppressed, normalise, selected, unknown_patterns
from .view import LintView

RULES: dict[str, Rule] = {r.code: r for r in [*bottleneck.RULES, *factorize.RULES, *network_shape.RULES]}


def explain(code: str) -> str:
    """The rationale, check, thresholds and fix of one rule. ``KeyError`` if unknown."""
    return RULES[code.strip().upper()].explain()


def run_lint(compiled, select=(), ignore=(), analysis=None) -> list[Diagnostic]:
    """Every finding of the chosen rules, suppression comments applied, ordered along the network.

    Raises ``ValueError`` for a ``select`` / ``ignore`` entry that names no rule. ``analysis``:
    the network's analysis, if the caller has already run it.
    """
    bad = unknown_patterns(normalise(select) + normalise(ignore), RULES)
    if bad:
        raise ValueError(f"no lint rule or prefix {', '.join(map(repr, bad))} (known: {', '.join(RULES)})")
    view = LintView(compiled, analysis)
    sources = compiled.sources
    findings: list[Finding] = []
    for code in selected(RULES, select, ignore):
        for f in RULES[code].check(view):
            spans = [f.span, view.node(f.node).span, *(s.span for s in view.enclosing_scopes(f.node))]
            if not is_suppressed(sources, f.code, spans):
                findings.append(f)
    return _merge(view, findings)


def _merge(view: LintView, findings: list[Finding]) -> list[Diagnostic]:
    """One diagnostic per (code, statement); the first instance in network order speaks for all."""
    groups: dict[tuple, list[Finding]] = {}
    for f in sorted(findings, key=lambda f: view.index[f.node]):
        groups.setdefault((f.code, f.span), []).append(f)
    out = []
    for (code, span), group in groups.items():
        first = group[0]
        notes = list(first.notes)
        inst = view.instance(first.node)
        if inst is not None and inst.span != span:
            notes.insert(0, Note(f"in `{inst.id}` ({inst.template}), instantiated here", inst.span))
        if len(group) > 1:
            names = [(view.instance(f.node).id if view.instance(f.node) else view.display(f.node)) for f in group[1:]]
            notes.append(
                Note(
                    f"the same statement also fires in {len(names)} more instance"
                    f"{'s' if len(names) != 1 else ''}: {', '.join(names)}"
                )
            )
            if all(f.macs_saved is not None for f in group):
                total = sum(f.macs_saved for f in group)
                notes.append(Note(f"saving over all {len(group)} instances: {total:,} MACs"))
        out.append(
            Diagnostic(
                code=code,
                message=first.message,
                span=span,
                severity=RULES[code].severity,
                help=first.help,
                notes=tuple(notes),
            )
        )
    return out


def exit_code(diags: list[Diagnostic]) -> int:
    """1 when any finding is a warning (or error), 0 when there are none or only infos."""
    return int(any(d.severity is not Severity.INFO for d in diags))


def _summary(diags: list[Diagnostic]) -> str:
    if not diags:
        return "no findings"
    counts = {s: sum(d.severity is s for d in diags) for s in (Severity.WARNING, Severity.INFO)}
    parts = [f"{n} {s.value}{'s' if n != 1 and s is Severity.WARNING else ''}" for s, n in counts.items() if n]
    return f"{len(diags)} finding{'s' if len(diags) != 1 else ''}: " + ", ".join(parts)


def lint_cli(compiled, select=(), ignore=(), fmt: str = "text", color: bool = False) -> int:
    """Print the findings (text, rustc style, or JSON) and return the exit code: 0 clean or
    only infos, 1 warnings, 2 a bad --select / --ignore."""
    try:
        diags = run_lint(compiled, select, ignore)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if fmt == "json":
        payload = {
            "network": compiled.graph.network,
            "findings": [{**d.to_dict(), "name": RULES[d.code].name} for d in diags],
            "summary": {s.value: sum(d.severity is s for d in diags) for s in (Severity.WARNING, Severity.INFO)},
        }
        print(json.dumps(payload, indent=2))
    else:
        body = "\n\n".join(render(d, compiled.sources, color) for d in diags)
        print((body + "\n\n" if body else "") + _summary(diags))
    return exit_code(diags)


__all__ = ["RULES", "Rule", "explain", "lint_cli", "run_lint"]
