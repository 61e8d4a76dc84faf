"""Rules about the network's overall shape and its receptive fields.

IN106  width and depth grow out of balance from one grid level to the next (principle 4)
IN107  the branches of a concat see the input with different strides or centres
IN108  the main path's receptive field already covers the whole input (informational)
"""

from __future__ import annotations

from archlang.diagnostics import Note, Severity
from archlang.graph.shape_text import format_shape
from archlang.lint.model import Finding, Rule
from archlang.lint.view import LintView, Role

# IN106: a stage that multiplies the width by more than 2 ** (depth + 1) widens faster than
# one doubling per conv layer (plus one); a stage at least DEEP_STAGE convs deep that widens
# by less than FLAT_GROWTH only adds depth. Inception v3 widens 1.5× to 3× per stage over
# 2 to 23 conv layers; GoogLeNet 1.2× to 3× over 2 to 10.
DEEP_STAGE = 12
FLAT_GROWTH = 1.25


def check_balance(view: LintView):
    stages = view.stages
    for prev, stage in zip(stages, stages[1:]):
        if view.input_id in prev.nodes:
            continue  # widening from RGB says nothing about balance
        c_prev, c_now = view.shape(prev.nodes[-1])[0], view.shape(stage.nodes[-1])[0]
        depth = view.conv_depth[stage.nodes[-1]] - view.conv_depth[prev.nodes[-1]]
        growth = c_now / c_prev
        grid = format_shape(view.shape(stage.nodes[0])[1:])
        if growth > 2 ** (depth + 1):
            chain = [prev.nodes[-1], *stage.nodes]
            jump = max(zip(chain, chain[1:]), key=lambda p: view.shape(p[1])[0] / view.shape(p[0])[0])[1]
            yield Finding(
                code="IN106",
                node=jump,
                span=view.site(jump),
                message=(
                    f"width/depth imbalance: the {grid} stage widens {c_prev} → {c_now} channels "
                    f"({growth:.1f}×) over only {depth} conv layer{'s' if depth != 1 else ''}"
                ),
                help="spread the widening over more layers (deepen this stage) or widen less here; "
                "the paper's stages grow width and depth together",
            )
        elif depth >= DEEP_STAGE and growth < FLAT_GROWTH:
            yield Finding(
                code="IN106",
                node=stage.nodes[0],
                span=view.site(stage.nodes[0]),
                message=(
                    f"width/depth imbalance: the {grid} stage is {depth} conv layers deep but keeps "
                    f"{c_prev} → {c_now} channels ({growth:.2f}×)"
                ),
                help="trade some of this stage's depth for width (wider layers or blocks); the paper "
                "finds width and depth increased in parallel give the best quality per MAC",
            )


def _centre(c2: int) -> str:
    return str(c2 // 2) if c2 % 2 == 0 else f"{c2 / 2:g}"


def _relative(view: LintView, nid: str, base: tuple[str, ...]) -> str:
    name = view.display(nid).split("/")
    return "/".join(name[len(base) :]) if name[: len(base)] == list(base) else "/".join(name)


def check_alignment(view: LintView):
    for nid in view.nodes_with(Role.MERGE):
        inputs = view.node(nid).inputs
        base = view.node(nid).path[:-1]
        rfs = [view.rf(s) for s in inputs]
        problems = []
        for axis in ("h", "w"):
            ref = getattr(rfs[0], axis)
            if ref.whole:
                continue
            for src, rf in zip(inputs[1:], rfs[1:]):
                a = getattr(rf, axis)
                if a.whole or (a.stride == ref.stride and a.centre2 == ref.centre2):
                    continue
                what = (
                    f"effective stride {ref.stride} vs {a.stride}"
                    if a.stride != ref.stride
                    else f"centres {_centre(ref.centre2)} vs {_centre(a.centre2)} "
                    f"({abs(a.centre2 - ref.centre2) / 2:g} input pixels apart)"
                )
                problems.append(
                    f"{axis.upper()}: `{_relative(view, inputs[0], base)}` and `{_relative(view, src, base)}`: {what}"
                )
        if problems:
            yield Finding(
                code="IN107",
                node=nid,
                span=view.node(nid).span,
                message=f"the branches of `{view.display(nid)}` are misaligned: unit (i, j) of each branch "
                "looks at a different place in the input",
                notes=tuple(Note(p) for p in problems),
                help="give every branch the same effective stride and the same centre offset "
                "(k - 1) / 2 - padding on its strided layers (e.g. 3×3/2 with no padding everywhere, "
                "as InceptionB and InceptionD do)",
            )


def check_rf_covers_input(view: LintView):
    _, h, w = view.input_shape if len(view.input_shape) == 3 else (None, 0, 0)
    if not h:
        return
    for nid in view.spatial_path:
        rf = view.rf(nid)
        if rf.h.whole or rf.w.whole or rf.h.size < h or rf.w.size < w:
            continue
        start = view.index[nid]
        later = [
            n
            for n in view.order[start + 1 :]
            if view.node(n).aux is None
            and view.role(n) in (Role.CONV, Role.POOL)
            and view.node(n).attrs["kernel_size"] != (1, 1)
        ]
        if not later:
            return  # the last spatial layer: nothing after it aggregates padding, nothing to say
        total = view.analysis.totals.macs or 1
        share = sum(view.macs(n) for n in later) / total
        yield Finding(
            code="IN108",
            node=nid,
            span=view.site(nid),
            message=(
                f"receptive field of `{view.display(nid)}` is {rf.h.size}×{rf.w.size}, already larger "
                f"than the {h}×{w} input"
            ),
            notes=(
                Note(
                    f"{len(later)} spatial layers after it ({share:.0%} of the network's MACs) aggregate "
                    "context that lies partly outside the image (zero padding), the more so near the border"
                ),
            ),
            help="nothing to fix; a larger input resolution would let these layers see real context "
            "(Section 9), or the later stages can use cheaper 1×1-heavy blocks",
        )
        return


RULES = [
    Rule(
        "IN106",
        "width-depth-imbalance",
        Severity.INFO,
        "from one grid level (stage) to the next, the width grows far faster than the depth, or a deep "
        "stage does not widen at all",
        "Principle 4: balance the width and the depth of the network; for a fixed budget the best "
        "improvement comes from increasing both in parallel.",
        "spread a big widening over more layers, or trade depth of a flat, deep stage for width",
        "Section 2, principle 4",
        f"width growth > 2^(depth + 1) (depth = conv layers on the longest path through the stage), or "
        f"depth ≥ {DEEP_STAGE} with growth < {FLAT_GROWTH:g}×; the first stage (from RGB) is exempt",
        check_balance,
    ),
    Rule(
        "IN107",
        "misaligned-concat",
        Severity.WARNING,
        "the inputs of a concat (or add) whose receptive fields differ in effective stride or in the "
        "input pixel their unit 0 is centred on",
        "An Inception module concatenates filter banks computed over the same positions; grid-reduction "
        "modules (Figure 10) run a strided conv beside a strided pool, which only line up when their "
        "kernels and paddings agree. Misaligned branches concatenate features of different places.",
        "make (k - 1) / 2 - padding agree across the branches' strided layers",
        "Sections 5 and 6, Figures 5 to 7 and 10",
        "any difference in effective stride or centre",
        check_alignment,
    ),
    Rule(
        "IN108",
        "rf-exceeds-input",
        Severity.INFO,
        "the first main-path representation whose receptive field is larger than the input image",
        "Section 9 relates receptive field and input resolution: beyond the input size, later spatial "
        "layers mostly aggregate padding for units near the border. Not an error: just where extra "
        "resolution or cheaper late layers would pay off.",
        "nothing required; consider the input resolution or the cost of the late spatial layers",
        "Section 9",
        "receptive field ≥ input size on both axes, with spatial layers after it; reported once",
        check_rf_covers_input,
    ),
]
