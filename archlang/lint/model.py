"""The two data types of the linter: a :class:`Rule` (metadata plus a check) and the
:class:`Finding` a check yields for one node. Findings become
:class:`~archlang.diagnostics.Diagnostic` objects only after suppression and merging."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..diagnostics import Note, Severity, Span


@dataclass(frozen=True)
class Finding:
    code: str
    node: str  # the node the finding is about (for ordering, suppression and instance notes)
    message: str
    span: Span
    help: str | None = None
    notes: tuple[Note, ...] = ()
    macs_saved: int | None = None  # for merging: the total over every instance is reported


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str  # what it checks, one line
    rationale: str  # why, from the paper
    fix: str
    cite: str  # section / figure of arXiv 1512.00567
    thresholds: str
    check: Callable[..., Iterable[Finding]]

    def explain(self) -> str:
        return "\n".join(
            [
                f"{self.code} ({self.name}) — {self.severity.value}",
                "",
                f"What it checks: {self.summary}",
                "",
                f"Why: {self.rationale}",
                "",
                f"Thresholds: {self.thresholds}",
                "",
                f"Fix: {self.fix}",
                "",
                f'Source: Szegedy et al., "Rethinking the Inception Architecture for Computer Vision" '
                f"(arXiv 1512.00567), {self.cite}.",
                "",
                f"Silence one statement with a comment on its line: `# archlang: ignore[{self.code}]`.",
            ]
        )
