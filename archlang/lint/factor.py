"""Exact cost of the paper's factorizations of one convolution (Section 3), as pure
functions of its shape so tests can check them by hand.

Widths between the factors follow Section 3.1: to go from ``cin`` to ``cout`` channels
(an expansion ``alpha = cout / cin``) in ``m`` steps, grow by ``alpha ** (1 / m)`` each
step; for two steps the middle width is ``sqrt(cin * cout)``. With ``cin == cout`` a 5×5
becomes two 3×3 at (9 + 9) / 25 of the cost: the paper's 28% saving.
"""

from __future__ import annotations

from dataclasses import dataclass

from .view import conv_macs


@dataclass(frozen=True)
class Factorization:
    layers: tuple[tuple[int, int, tuple[int, int], tuple[int, int], tuple[int, int]], ...]
    # each layer: (cin, cout, kernel, stride, padding)
    original_macs: int
    macs: int

    @property
    def saved(self) -> int:
        return self.original_macs - self.macs

    @property
    def widths(self) -> list[int]:
        return [layer[1] for layer in self.layers[:-1]]


def geometric_widths(cin: int, cout: int, steps: int) -> list[int]:
    """The ``steps - 1`` intermediate widths growing by a constant factor from cin to cout."""
    return [max(1, round(cin * (cout / cin) ** (i / steps))) for i in range(1, steps)]


def _out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _cost(cin: int, hw: tuple[int, int], layers: list) -> tuple[int, tuple]:
    """MACs of a chain of convs [(cout, kernel, stride, padding)] applied to a cin×H×W map."""
    total, h, w, c, out = 0, hw[0], hw[1], cin, []
    for cout, k, s, p in layers:
        h, w = _out(h, k[0], s[0], p[0]), _out(w, k[1], s[1], p[1])
        total += conv_macs(c, cout, k, (h, w))
        out.append((c, cout, k, s, p))
        c = cout
    return total, tuple(out)


def stacked_3x3(
    cin: int, cout: int, k: int, in_hw: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> Factorization:
    """A k×k conv (odd k ≥ 5) as (k - 1) / 2 stacked 3×3 convs, same receptive field and
    output size: padding 1 on the first layers while the original padding lasts (the rest
    on the last one), the stride on the last layer (keeps the field exactly k×k)."""
    m = (k - 1) // 2
    widths = geometric_widths(cin, cout, m) + [cout]
    pads = []
    for axis in (0, 1):
        p = [1 if i < padding[axis] else 0 for i in range(m)]
        p[-1] += max(0, padding[axis] - m)
        pads.append(p)
    layers = [(widths[i], (3, 3), (1, 1) if i < m - 1 else stride, (pads[0][i], pads[1][i])) for i in range(m)]
    macs, shaped = _cost(cin, in_hw, layers)
    original, _ = _cost(cin, in_hw, [(cout, (k, k), stride, padding)])
    return Factorization(shaped, original, macs)


def asymmetric(
    cin: int, cout: int, n: int, in_hw: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> Factorization:
    """An n×n conv as a 1×n conv followed by an n×1 conv (Section 3.2, Figure 3), middle
    width sqrt(cin * cout); each factor takes its own axis' stride and padding."""
    (mid,) = geometric_widths(cin, cout, 2)
    layers = [(mid, (1, n), (1, stride[1]), (0, padding[1])), (cout, (n, 1), (stride[0], 1), (padding[0], 0))]
    macs, shaped = _cost(cin, in_hw, layers)
    original, _ = _cost(cin, in_hw, [(cout, (n, n), stride, padding)])
    return Factorization(shaped, original, macs)
