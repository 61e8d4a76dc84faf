"""Rules from Section 3: large convolutions that factorize into cheaper ones.

IN104  an odd k×k conv (k ≥ 5) -> (k - 1) / 2 stacked 3×3 convs (Figure 1; 5×5 -> two 3×3)
IN105  an n×n conv (n ≥ 5) on a medium grid (12 to 20) -> 1×n then n×1 (Figure 3, Figure 6)

Both report the exact MAC saving for the layer's own shapes (see :mod:`.factor`) and stay
silent when it is below MIN_SAVING (for instance a 5×5 on a 5×5 map, where the first 3×3
would run on a larger grid than the original's 1×1 output).
"""

from __future__ import annotations

from ..diagnostics import Note, Severity
from .factor import Factorization, asymmetric, stacked_3x3
from .model import Finding, Rule
from .view import LintView, Role

MIN_SAVING = 0.10  # fraction of the layer's MACs
MEDIUM_GRID = (12, 20)  # "m×m feature maps, where m ranges between 12 and 20" (Section 3.2)
MIN_ASYMMETRIC = 5  # the paper reports 1×7 + 7×1 at 17×17; 3×3 -> 1×3 + 3×1 is left alone


def _plain_square_convs(view: LintView, min_k: int):
    for nid in view.nodes_with(Role.CONV):
        a = view.node(nid).attrs
        kh, kw = a["kernel_size"]
        if kh != kw or kh < min_k or a["groups"] != 1 or a["dilation"] != (1, 1) or len(view.shape(nid)) != 3:
            continue
        yield nid, a, kh


def _worth_it(f: Factorization) -> bool:
    return f.saved > 0 and f.saved >= MIN_SAVING * f.original_macs


def _pair(v) -> str:
    return str(v[0]) if v[0] == v[1] else f"({v[0]}, {v[1]})"


def _layers_text(f: Factorization) -> str:
    parts = []
    for _, cout, k, s, p in f.layers:
        extra = ("" if s == (1, 1) else f", stride={_pair(s)}") + ("" if p == (0, 0) else f", padding={_pair(p)}")
        kernel = str(k[0]) if k[0] == k[1] else f"{k[0]}x{k[1]}"
        parts.append(f"conv({cout}, {kernel}{extra})")
    return "; ".join(parts)


def _saving_text(f: Factorization) -> str:
    return f"saves {f.saved:,} of {f.original_macs:,} MACs ({100 * f.saved / f.original_macs:.1f}%) in this layer"


def check_stacked(view: LintView):
    for nid, a, k in _plain_square_convs(view, 5):
        if k % 2 == 0:
            continue
        cin, (cout, _, _) = view.in_shape(nid)[0], view.shape(nid)
        f = stacked_3x3(cin, cout, k, view.in_shape(nid)[1:], a["stride"], a["padding"])
        if not _worth_it(f):
            continue
        code = _layers_text(f)
        mid = f.widths[0]
        if k == 5 and a["stride"] == (1, 1) and a["padding"] == (2, 2):
            code = f"stacked3x3({cout}, mid={mid})"
        elif k == 5 and a["stride"][0] == a["stride"][1] > 1 and a["padding"] == (1, 1):
            code = f"stacked3x3({cout}, mid={mid}, stride={a['stride'][0]})"
        yield Finding(
            code="IN104",
            node=nid,
            span=view.node(nid).span,
            macs_saved=f.saved,
            message=f"{k}×{k} conv `{view.display(nid)}` ({cin} → {cout} channels) factorizes into "
            f"{(k - 1) // 2} stacked 3×3 convs",
            help=f"use `{code}` (same {k}×{k} receptive field and output size): {_saving_text(f)}",
            notes=(
                Note(
                    f"middle width{'s' if len(f.widths) > 1 else ''} {', '.join(map(str, f.widths))}: "
                    f"geometric growth from {cin} to {cout} channels (Section 3.1)"
                ),
            ),
        )


def check_asymmetric(view: LintView):
    lo, hi = MEDIUM_GRID
    for nid, a, n in _plain_square_convs(view, MIN_ASYMMETRIC):
        cin, h, w = view.in_shape(nid)
        if not (lo <= min(h, w) and max(h, w) <= hi):
            continue
        cout = view.shape(nid)[0]
        f = asymmetric(cin, cout, n, (h, w), a["stride"], a["padding"])
        if not _worth_it(f):
            continue
        mid = f.widths[0]
        code = _layers_text(f)
        if a["stride"] == (1, 1) and a["padding"] == (n // 2, n // 2):
            code = f"factorized({cout}, {n}, mid={mid})"
        yield Finding(
            code="IN105",
            node=nid,
            span=view.node(nid).span,
            macs_saved=f.saved,
            message=f"{n}×{n} conv `{view.display(nid)}` on a {h}×{w} grid factorizes into 1×{n} then {n}×1",
            help=f"use `{code}` (same receptive field and output size): {_saving_text(f)}",
            notes=(
                Note(
                    f"middle width {mid} = √({cin}·{cout}) (Section 3.1); the paper finds this "
                    f"factorization works well on {lo}–{hi} grids but not early in the network"
                ),
            ),
        )


RULES = [
    Rule(
        "IN104",
        "factorize-into-3x3",
        Severity.WARNING,
        "a k×k convolution with odd k ≥ 5 (groups 1, no dilation) that is cheaper as (k - 1) / 2 "
        "stacked 3×3 convolutions with the same receptive field and output size",
        "Section 3.1: a 5×5 conv is a small fully connected network sliding over 5×5 tiles; two 3×3 "
        "layers compute it with shared weights at (9 + 9) / 25 of the cost when widths are equal (28% "
        "saved), with a ReLU in between working better than a linear first layer. Middle widths grow "
        "geometrically (√α per step for an expansion α).",
        "replace the conv with `stacked3x3(out, mid=M)` (prelude) or explicit 3×3 convs; the help line "
        "gives the exact widths and the MAC saving for this layer",
        "Section 3.1, Figure 1 and Figure 5",
        f"fires when the exact saving is at least {MIN_SAVING:.0%} of the layer's MACs",
        check_stacked,
    ),
    Rule(
        "IN105",
        "factorize-asymmetric",
        Severity.WARNING,
        f"an n×n convolution (n ≥ {MIN_ASYMMETRIC}) on a {MEDIUM_GRID[0]}–{MEDIUM_GRID[1]} grid that is "
        "cheaper as a 1×n followed by an n×1 convolution",
        "Section 3.2: any n×n conv can be replaced by 1×n then n×1, saving more as n grows; the paper "
        "finds it does not work well early in the network but gives very good results on medium grids "
        "(m×m, 12 ≤ m ≤ 20), e.g. 1×7 then 7×1 at 17×17 (Figure 6).",
        "replace the conv with `factorized(out, n, mid=M)` (prelude); the help line gives M and the exact MAC saving",
        "Section 3.2, Figures 3 and 6",
        f"input grid between {MEDIUM_GRID[0]} and {MEDIUM_GRID[1]} on both axes; saving at least "
        f"{MIN_SAVING:.0%} of the layer's MACs",
        check_asymmetric,
    ),
]
