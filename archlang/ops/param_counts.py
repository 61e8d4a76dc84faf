"""The conv weight count, as torch counts it: one formula for the analysis tables, the
summary ``archc check`` prints and the lint rules' what-if costs.

A leaf module (it imports nothing), so the light ``archc check`` path can use it without
loading the analysis package."""

from __future__ import annotations

from collections.abc import Sequence


def conv_weight_count(cin: int, cout: int, kernel: Sequence[int], groups: int = 1) -> int:
    """Elements of a conv2d weight: ``cout × cin/groups × kh × kw`` (bias not included)."""
    return cout * (cin // groups) * kernel[0] * kernel[1]
