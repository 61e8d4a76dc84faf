"""Rules from principles 1 and 3 of Section 2 and from Section 5 (Figure 9): where the
representation is squeezed harder than the paper considers safe.

IN101  a main-path step shrinks H×W×C sharply (stricter on large grids)
IN102  a strided pool whose output the following layers expand (Figure 9, left)
IN103  a 1×1 reduction far narrower than its input, right before a spatial conv
"""

from __future__ import annotations

import math

from archlang.graph.shape_text import format_shape
from archlang.ops.param_counts import conv_weight_count

from ..diagnostics import Severity
from .model import Finding, Rule
from .view import LintView, Role, conv_macs

# IN101: largest tolerated shrink of H×W×C in one main-path step. Both sit above the 4× of
# a plain stride-2 reduction, which every classic network uses; IN102 judges those pools on
# the paper's own terms (are they followed by an expansion?).
EARLY_GRID = 32  # a step whose input grid is at least this large (both axes) is "early"
EARLY_SHRINK = 4.5
LATE_SHRINK = 8.0
# IN102: the stage after a strided pool widens to at least this multiple of its channels
# (Figure 9 doubles 320 -> 640).
POOL_EXPANSION = 2.0
# IN103: a 1×1 conv may reduce channels by at most this factor before a spatial conv
# (Inception v3's strongest reduction is 6×: 288 -> 48 in Mixed_5d).
MAX_REDUCTION = 8.0


def _strided(attrs) -> bool:
    stride = attrs.get("stride") or attrs.get("kernel_size")
    return any(s > 1 for s in stride)


def pool_expansion(view: LintView, nid: str) -> tuple[int, str] | None:
    """For a strided pool on the main path: (widest channels, where) among the layers after it
    at the same grid level, when that is at least POOL_EXPANSION × the pool's channels."""
    if view.role(nid) is not Role.POOL or not _strided(view.node(nid).attrs):
        return None
    channels = view.shape(nid)[0]
    for stage in view.stages:
        if nid in stage.nodes:
            after = stage.nodes[stage.nodes.index(nid) + 1 :]
            if not after:
                return None
            widest = max(after, key=lambda n: view.shape(n)[0])
            if view.shape(widest)[0] >= POOL_EXPANSION * channels:
                return view.shape(widest)[0], widest
    return None


def _grid_reduction_help(view: LintView, pool: str, target: int) -> str:
    """The parallel conv‖pool grid reduction of Figure 10, with the cost of its conv."""
    attrs = view.node(pool).attrs
    c, ho, wo = view.shape(pool)
    k = attrs["kernel_size"]
    s = attrs.get("stride") or k
    extra = max(1, min(c, target - c))
    pad = attrs["padding"]
    kernel = k[0] if k[0] == k[1] else f"{k[0]}x{k[1]}"
    stride = s[0] if s[0] == s[1] else f"({s[0]}, {s[1]})"
    padding = "" if pad == (0, 0) else f", padding={pad[0] if pad[0] == pad[1] else pad}"
    macs = conv_macs(c, extra, k, (ho, wo))
    weights = conv_weight_count(c, extra, k)
    ceil = "; match the pool's ceil_mode with the conv's padding" if attrs.get("ceil_mode") else ""
    return (
        f"reduce the grid with a strided conv beside the pool and concatenate them (Figure 10; "
        f"InceptionB/InceptionD in specs/lib/inception.arch): "
        f"`concat {{ conv({extra}, {kernel}, stride={stride}{padding}); {view.op(pool).value}({kernel}, "
        f"stride={stride}{padding}) }}` gives {c + extra} channels at {ho}×{wo} for +{macs:,} MACs and "
        f"+{weights:,} weights{ceil}"
    )


def check_bottleneck(view: LintView):
    path = view.spatial_path
    for before, after in zip(path, path[1:]):
        n_in, n_out = view.numel(before), view.numel(after)
        _, h, w = view.shape(before)
        limit = EARLY_SHRINK if min(h, w) >= EARLY_GRID else LATE_SHRINK
        if n_in <= limit * n_out or pool_expansion(view, after) is not None:
            continue
        c, ho, wo = view.shape(after)
        need = math.ceil(n_in / (limit * ho * wo))
        block = view.block_output_scope(after)
        if block is not None:
            fix = f"widen the branches of `{block.id}` so it outputs at least {need} channels"
        elif view.role(after) is Role.CONV:
            a = view.node(after).attrs
            cin = view.in_shape(after)[0] // a["groups"]
            k = a["kernel_size"]
            fix = (
                f"give `{view.display(after)}` at least {need} output channels: "
                f"+{conv_macs(cin, need - c, k, (ho, wo)):,} MACs, +{conv_weight_count(cin, need - c, k):,} weights "
                f"in this layer (the next layer's input widens too)"
            )
        elif view.role(after) is Role.POOL:
            fix = _grid_reduction_help(view, after, 2 * c)
        else:
            fix = f"keep at least {need} channels at {ho}×{wo} here"
        yield Finding(
            code="IN101",
            node=after,
            span=view.site(after),
            message=(
                f"representational bottleneck: `{view.display(after)}` shrinks the representation "
                f"{n_in / n_out:.1f}× ({format_shape(view.shape(before))} → {format_shape(view.shape(after))})"
            ),
            help=fix + f" (at most {limit:g}× per step on {'grids ≥ ' if limit == EARLY_SHRINK else 'grids < '}"
            f"{EARLY_GRID})",
        )


def check_pool_before_expansion(view: LintView):
    for nid in view.spatial_path:
        hit = pool_expansion(view, nid)
        if hit is None:
            continue
        widest, where = hit
        yield Finding(
            code="IN102",
            node=nid,
            span=view.site(nid),
            message=(
                f"`{view.display(nid)}` pools {format_shape(view.in_shape(nid))} down to "
                f"{format_shape(view.shape(nid))}, then the layers after it expand to {widest} channels "
                f"(`{view.display(where)}`): pooling before expanding is a representational bottleneck"
            ),
            help=_grid_reduction_help(view, nid, widest),
        )


def check_aggressive_reduction(view: LintView):
    for nid in view.nodes_with(Role.CONV):
        a = view.node(nid).attrs
        if a["kernel_size"] != (1, 1) or a["groups"] != 1 or len(view.shape(nid)) != 3:
            continue
        cin, cout = view.in_shape(nid)[0], view.shape(nid)[0]
        if cin <= MAX_REDUCTION * cout:
            continue
        spatial = [
            n for n in view.consumers(nid) if view.role(n) is Role.CONV and view.node(n).attrs["kernel_size"] != (1, 1)
        ]
        if not spatial:
            continue
        need = math.ceil(cin / MAX_REDUCTION)
        extra = need - cout
        _, h, w = view.shape(nid)
        macs = conv_macs(cin, extra, (1, 1), (h, w))
        weights = conv_weight_count(cin, extra, (1, 1))
        for n in spatial:
            k = view.node(n).attrs["kernel_size"]
            c2, h2, w2 = view.shape(n)
            macs += conv_macs(extra, c2, k, (h2, w2), view.node(n).attrs["groups"])
            weights += conv_weight_count(extra, c2, k, view.node(n).attrs["groups"])
        k = view.node(spatial[0]).attrs["kernel_size"]
        yield Finding(
            code="IN103",
            node=nid,
            span=view.node(nid).span,
            message=(
                f"1×1 conv `{view.display(nid)}` reduces {cin} → {cout} channels ({cin / cout:.1f}×) "
                f"right before a {k[0]}×{k[1]} conv"
            ),
            help=(
                f"keep at least {need} channels (at most {MAX_REDUCTION:g}× reduction): +{macs:,} MACs, "
                f"+{weights:,} weights in this conv and the spatial conv after it"
            ),
        )


RULES = [
    Rule(
        "IN101",
        "representational-bottleneck",
        Severity.WARNING,
        "a step along the main path (a layer, or a block's output) whose H×W×C representation is much "
        "smaller than its input; the classifier stage (global pooling onwards) and aux heads are exempt",
        "Principle 1: avoid representational bottlenecks, especially early in the network; the "
        "representation size should decrease gently from input to output. Information squeezed out "
        "cannot be recovered by later layers.",
        "widen the layer (or the block's branches) so the step shrinks less; for a pool, reduce the "
        "grid with a parallel strided conv and pool (Figure 10)",
        "Section 2, principle 1",
        f"shrink > {EARLY_SHRINK:g}× when the input grid is ≥ {EARLY_GRID}×{EARLY_GRID}, "
        f"> {LATE_SHRINK:g}× on smaller grids (a plain stride-2 pool is 4×)",
        check_bottleneck,
    ),
    Rule(
        "IN102",
        "pool-before-expansion",
        Severity.WARNING,
        "a strided pool on the main path whose grid level then widens the filter bank",
        "Figure 9 (left): pooling first and expanding afterwards makes the pooled map a representational "
        "bottleneck; expanding first (Figure 9, right) costs 3× more compute. The paper's answer is a "
        "strided conv in parallel with the pool, concatenated (Figure 10).",
        "replace the pool with `concat { conv(K, 3, stride=2); maxpool(3, stride=2) }` (as InceptionB / "
        "InceptionD do); the help line gives K and the added MACs",
        "Section 5, Figures 9 and 10",
        f"the widest representation at the pool's grid level has ≥ {POOL_EXPANSION:g}× the pool's channels",
        check_pool_before_expansion,
    ),
    Rule(
        "IN103",
        "aggressive-1x1-reduction",
        Severity.WARNING,
        "a 1×1 conv that cuts the channels by more than a factor before a spatial (k×k, k > 1) conv",
        "Principle 3: spatial aggregation can be done over a lower-dimensional embedding without much "
        "loss, because adjacent units are strongly correlated; the reduction must not be so aggressive "
        "that it becomes a bottleneck itself (principle 1).",
        "widen the 1×1 reduction; the help line gives the width and the MAC/weight cost",
        "Section 2, principle 3",
        f"input channels > {MAX_REDUCTION:g} × output channels",
        check_aggressive_reduction,
    ),
]
