"""How a tensor shape is written for people: ``192×35×35`` (per sample, no batch).

A leaf module (it imports nothing) so that every stage and back end, ops included, can use
the one formatter."""

from __future__ import annotations

from collections.abc import Iterable


def format_shape(shape: Iterable[int], sep: str = "×") -> str:
    """``(192, 35, 35)`` -> ``"192×35×35"``; ``sep="x"`` for plain-ASCII outputs (CSV, LaTeX-free)."""
    return sep.join(map(str, shape))
