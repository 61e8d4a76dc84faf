"""Receptive-field rules the op records name (``OpRecord.rf``), composed along the graph by
:mod:`archlang.analysis.receptive`, whose docstring gives the formulas (Araujo et al.,
Distill 2019): windows, pointwise ops, merges, global operations, resampling.

Every rule takes ``(attrs, input fields, input ids, input shapes)`` and returns a
:class:`ReceptiveField`.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from .fields import WHOLE_AXIS, AxisRF, ReceptiveField

Rule = Callable[[dict, list, tuple, list], ReceptiveField]
PIXEL = AxisRF(1, 1, 0)
WHOLE = ReceptiveField(WHOLE_AXIS, WHOLE_AXIS)


def exact(x):
    """A :class:`~fractions.Fraction` that is whole as an ``int`` (fields stay integers until
    an upsampling op makes the jump a fraction of an input pixel)."""
    return x.numerator if isinstance(x, Fraction) and x.denominator == 1 else x


def window_axis(a: AxisRF, k: int, s: int, pad: int, d: int) -> AxisRF:
    if a.size is None or (k == 1 and s == 1 and pad == 0):  # whole input, or a 1×1/1 window
        return a
    return AxisRF(exact(a.size + d * (k - 1) * a.stride), exact(a.stride * s), exact(a.padding + pad * a.stride))


def resampled(a: AxisRF, factor, shift, grow=0) -> AxisRF:
    """An axis resampled by ``factor`` (> 1 upsamples: a stride of 1 / factor).

    Output units are ``1 / factor`` input jumps apart; unit 0 is centred ``shift`` input
    jumps from input unit 0's centre; each sees its input units' field plus ``grow`` more
    input jumps (bilinear: 1, its second neighbour)."""
    if a.size is None:
        return a
    size = a.size + grow * a.stride
    centre = Fraction(a.size - 1, 2) - a.padding + shift * a.stride
    return AxisRF(exact(size), exact(Fraction(a.stride) / factor), exact(Fraction(size - 1, 2) - centre))


def half_pixel_shift(factor) -> Fraction:
    """Where output unit 0 sits, in input units, under PyTorch's half-pixel mapping
    (nearest, bilinear without align_corners, pixel shuffle): ``(0 + 0.5) / factor - 0.5``."""
    return (1 / Fraction(factor) - 1) / 2


def upscaled(factors: Callable[[dict, tuple], tuple]) -> Rule:
    """Resampling (nearest upsampling, pixel_shuffle) by ``factors(attrs, input shape)``, a
    pair of (H, W) factors: each output unit copies one input unit."""

    def rule(attrs, rfs, ids, shapes) -> ReceptiveField:
        (rf,) = rfs
        fh, fw = (Fraction(f) for f in factors(attrs, shapes[0]))
        return ReceptiveField(resampled(rf.h, fh, half_pixel_shift(fh)), resampled(rf.w, fw, half_pixel_shift(fw)))

    return rule


def transposed(attrs, rfs, ids, shapes) -> ReceptiveField:
    """A transposed conv with stride ``s``: output ``o`` gathers the input units ``i`` with
    ``i * s = o + padding - d * kk`` for the kernel taps ``kk``, so neighbouring outputs are
    1 / s input jumps apart, the field grows by the widest span of the units one output
    gathers (:func:`transposed_span`), and unit 0 is centred at
    ``(padding - d * (k - 1) / 2) / s``."""
    (rf,) = rfs
    axes = []
    for a, k, s, p, d in zip(rf[:2], attrs["kernel_size"], attrs["stride"], attrs["padding"], attrs["dilation"]):
        axes.append(resampled(a, Fraction(s), (p - Fraction(d * (k - 1), 2)) / s, transposed_span(k, s, d)))
    return ReceptiveField(*axes)


def transposed_span(k: int, s: int, d: int) -> int:
    """The most input units apart (last - first) that one output of a transposed conv
    gathers: over the residues ``x`` of ``o + padding`` mod ``s``, the taps ``kk`` with
    ``x - d * kk`` divisible by ``s`` (a dilation sharing a factor with the stride skips
    some residues)."""
    widest = 0
    for x in range(s):
        units = [(x - d * kk) // s for kk in range(k) if (x - d * kk) % s == 0]
        if units:
            widest = max(widest, max(units) - min(units))
    return widest


def windowed(attrs, rfs, ids, shapes) -> ReceptiveField:
    (rf,) = rfs
    k = attrs["kernel_size"]
    s = attrs["stride"] or k  # pools: stride None means the kernel size
    pad = attrs["padding"]  # conv: resolved to a pair by lowering
    d = attrs.get("dilation", (1, 1))  # avgpool has no dilation
    h, w = window_axis(rf.h, k[0], s[0], pad[0], d[0]), window_axis(rf.w, k[1], s[1], pad[1], d[1])
    return rf if h is rf.h and w is rf.w and not rf.misaligned else ReceptiveField(h, w)


def pad(attrs, rfs, ids, shapes) -> ReceptiveField:
    # Zero padding moves the grid: unit 0 now starts `top` (`left`) input positions earlier;
    # the field's size and jump do not change.
    (rf,) = rfs
    top, _, left, _ = attrs["padding"]
    h = rf.h if rf.h.size is None else AxisRF(rf.h.size, rf.h.stride, rf.h.padding + top * rf.h.stride)
    w = rf.w if rf.w.size is None else AxisRF(rf.w.size, rf.w.stride, rf.w.padding + left * rf.w.stride)
    return ReceptiveField(h, w)


def source(attrs, rfs, ids, shapes) -> ReceptiveField:
    return ReceptiveField(PIXEL, PIXEL) if len(attrs["shape"]) == 3 else WHOLE


def keep(attrs, rfs, ids, shapes) -> ReceptiveField:
    rf = rfs[0]
    return ReceptiveField(rf.h, rf.w) if rf.misaligned else rf  # the note stays on the merge node


def whole(attrs, rfs, ids, shapes) -> ReceptiveField:
    return WHOLE


def adaptive(attrs, rfs, ids, shapes) -> ReceptiveField:
    (rf,) = rfs
    _, h, w = shapes[0]
    axes = []
    for a, size, n_out in ((rf.h, h, attrs["output_size"][0]), (rf.w, w, attrs["output_size"][1])):
        if n_out == 1 or size % n_out:
            axes.append(WHOLE_AXIS)  # global, or overlapping uneven bins
        else:
            k = size // n_out
            axes.append(window_axis(a, k, k, 0, 1))
    return ReceptiveField(*axes)


def centre(a: AxisRF) -> str:
    c2 = a.centre2
    # a Fraction after an upsample by an uneven factor: Fraction has no format spec on 3.11
    return str(c2 // 2) if c2 % 2 == 0 else f"{float(c2) / 2:g}"


def merge_axis(axis: str, fields: list[AxisRF], ids: tuple) -> tuple[AxisRF, list[str]]:
    if any(a.whole for a in fields):
        return WHOLE_AXIS, []
    largest = max(fields, key=lambda a: a.size)
    ref = fields[0]
    notes = []
    for a, nid in zip(fields[1:], ids[1:]):
        if a.stride != ref.stride or a.centre2 != ref.centre2:
            notes.append(
                f"{axis}: `{ids[0]}` (stride {ref.stride}, centre {centre(ref)}) vs `{nid}` "
                f"(stride {a.stride}, centre {centre(a)})"
            )
    return largest, notes


def merge(attrs, rfs, ids, shapes) -> ReceptiveField:
    h, notes_h = merge_axis("H", [rf.h for rf in rfs], ids)
    w, notes_w = merge_axis("W", [rf.w for rf in rfs], ids)
    return ReceptiveField(h, w, tuple(notes_h + notes_w))


def linear(attrs, rfs, ids, shapes) -> ReceptiveField:
    # on a channels-last map, a 1×1 (per position); on a vector, the whole input
    return keep(attrs, rfs, ids, shapes) if len(shapes[0]) == 3 else WHOLE
