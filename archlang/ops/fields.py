"""Receptive fields: the values the op records' RF rules compute (a leaf module, so the
records can name them without importing the analysis package, which reads the records).
"""

from __future__ import annotations

from typing import NamedTuple


class AxisRF(NamedTuple):
    """Receptive field along one axis, in input pixels (a NamedTuple: immutable, and built
    several times per node, where a frozen dataclass costs twice as much).

    ``size``: how many input pixels one output unit sees; ``stride``: the distance in input
    pixels between neighbouring output units (the "jump"); ``padding``: the effective
    padding, so that unit ``i`` is centred on input pixel ``i * stride - padding + (size - 1) / 2``.
    All three are ``None`` when the unit sees the whole input (after global pooling,
    flatten or linear layers, see ``docs/analysis.md``).
    """

    size: int | None
    stride: int | None
    padding: int | None

    @property
    def whole(self) -> bool:
        return self.size is None

    @property
    def centre2(self) -> int | None:
        """Twice the centre of unit 0 in input coordinates (an integer, to compare exactly)."""
        return None if self.size is None else self.size - 1 - 2 * self.padding


WHOLE_AXIS = AxisRF(None, None, None)


class ReceptiveField(NamedTuple):
    h: AxisRF
    w: AxisRF
    # Why the inputs of a concat / add disagree (different effective stride or centre);
    # empty when aligned or when the node is not a merge.
    misaligned: tuple[str, ...] = ()

    @property
    def whole(self) -> bool:
        return self.h.whole and self.w.whole

    def text(self) -> str:
        """``"1311×1311"``, ``"global"``, or ``"1311×global"`` for a mixed case."""
        if self.whole:
            return "global"
        # after upsampling a size can be a fraction of an input pixel: 4.5, not 9/2
        return "×".join(
            "global" if a.whole else f"{float(a.size):g}" if not isinstance(a.size, int) else str(a.size)
            for a in (self.h, self.w)
        )
