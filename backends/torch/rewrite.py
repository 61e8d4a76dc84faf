"""``--optimize`` as a plan rewrite: the unoptimized module plan in, an inference plan out,
printed by the same emitter as every other plan. Exact in eval mode:

* **Eval only.** Aux heads (training only), dropout and stochastic depth (the identity in
  eval) are removed; weight init (``batchnorm(zero_init=true)`` included) is dropped
  (weights come from the unoptimized model). The other activations (``tanh``, ``sigmoid``, ``hardswish`` ...),
  ``pad``, ``channel_shuffle``, ``split`` and ``spatial_mean`` are kept as they are.
* **BatchNorm folding.** In eval a BatchNorm uses its running statistics, so it is an
  affine map per channel and merges into the conv before it: ``w' = w · s``,
  ``b' = β + (b − μ) · s``, ``s = γ / sqrt(σ² + eps)``. A conv unit keeps its name and
  becomes Conv2d (with bias) [+ ReLU]; a bare ``batchnorm`` right after a bare conv that
  nothing else reads is folded into it (an ``nn.Identity`` inside a sequential); others stay.
* **Sibling 1×1 fusion** (the GoogLeNet paper's "dense submatrices"). 1×1 convs (units or
  bare convs) that read the same tensor with the same stride, padding, dilation,
  ``groups=1`` and activation become one wider conv, a ``"fused"`` plan node whose step has
  one target per member (the output is split along channels). A sequential branch that
  loses a member becomes a container (``nn.ModuleDict``, same keys).

Every other submodule keeps its path, so the weight converter (:mod:`.inference`) only
folds, concatenates and copies by name. This module does not import torch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from archlang.ops import Op

from .naming import Namespace
from .ops import TORCH_OPS
from .plan import Leaf, ModulePlan, Step, iter_plans, lookup

# Ops that are the identity in eval mode.
EVAL_IDENTITY = frozenset(op for op, row in TORCH_OPS.items() if row.eval_identity)


@dataclass
class Member:
    """A fusion candidate: a step of a module's forward, with its submodule path."""

    step: Step
    path: tuple[str, ...]
    item: Leaf | ModulePlan


def unit_parts(unit: ModulePlan) -> tuple[Leaf, Leaf | None, bool]:
    """(conv, batchnorm or None, has ReLU) of a conv unit (lowering makes them conv [bn] [relu])."""
    conv = next(c for c in unit.children if isinstance(c, Leaf) and c.op is Op.CONV2D)
    bn = next((c for c in unit.children if isinstance(c, Leaf) and c.op is Op.BATCHNORM), None)
    relu = any(s.leaf is not None and s.leaf.op is Op.RELU for s in unit.steps)
    return conv, bn, relu


# ---- eval only -------------------------------------------------------------------------------


def _drop_training_only(root: ModulePlan, alias: dict) -> None:
    root.children = [c for c in root.children if not (isinstance(c, ModulePlan) and c.aux)]
    root.steps = [s for s in root.steps if s.aux is None]
    if not root.outputs_dict:  # aux heads' outputs: training only
        root.outputs, root.outputs_type = (), None
    for p in iter_plans(root):
        if p.kind == "sequential":
            continue  # removing a member would renumber the others' keys
        kept, removed = [], []
        for s in p.steps:
            if s.leaf is not None and s.leaf.op in EVAL_IDENTITY:
                alias[s.target] = s.inputs[0]
                if s.module is not None:
                    removed.append(s.module)
                continue
            kept.append(s)
        p.steps = kept
        if removed:
            _remove(p, removed)


def _apply_alias(root: ModulePlan, alias: dict) -> None:
    def canon(nid):
        while nid in alias:
            nid = alias[nid]
        return nid

    for p in iter_plans(root):
        p.input, p.output = canon(p.input), canon(p.output)
        p.outputs = tuple((key, canon(nid)) for key, nid in p.outputs)
        for s in p.steps:
            s.inputs = tuple(canon(i) for i in s.inputs)


# ---- BatchNorm folding -------------------------------------------------------------------------


def _fold_units(root: ModulePlan, eps: dict) -> None:
    for p in iter_plans(root):
        for c in p.children:
            if isinstance(c, Leaf):
                c.init = None
                if c.attrs.get("zero_init"):  # an init too: the weights come from the trained model
                    c.attrs = {**c.attrs, "zero_init": False}
        if p.kind != "unit":
            continue
        conv, bn, _ = unit_parts(p)
        if bn is not None:
            eps[".".join(p.path)] = float(bn.attrs["eps"])
            p.children = [c for c in p.children if c is not bn]
            p.steps = [s for s in p.steps if s.leaf is not bn]
        # (the unit keeps its output node id: its parent refers to it)
        conv.attrs = {**conv.attrs, "bias": True}  # the folded bias (zero without a BatchNorm)
        p.args = {**p.args, "folded_from": p.args.get("style", "conv")}


def _fold_bare(p: ModulePlan, eps: dict, pairs: dict, alias: dict) -> None:
    """A bare ``batchnorm`` whose input is a bare conv read by nothing else merges into that
    conv (ResNet's ``conv1``/``bn1``). In a sequential the BatchNorm becomes an
    ``nn.Identity`` (removing it would renumber the keys after it)."""
    reads: dict[str, int] = {}
    for s in p.steps:
        for i in s.inputs:
            reads[i] = reads.get(i, 0) + 1
    by_target = {s.target: s for s in p.steps}
    kept = []
    removed: list[tuple[str, ...]] = []
    identities: dict[int, Leaf] = {}  # id(BatchNorm leaf) -> its nn.Identity (in a sequential)
    for s in p.steps:
        conv = by_target.get(s.inputs[0]) if s.inputs else None
        foldable = (
            s.leaf is not None
            and s.leaf.op is Op.BATCHNORM
            and s.module is not None
            and conv is not None
            and conv.leaf is not None
            and conv.leaf.op is Op.CONV2D
            and conv.module is not None
            and reads.get(conv.target) == 1
            and conv.target != p.output
            # a batch norm under a network flag the conv is not under (VGG's) stays: the
            # conv's weights must hold for either setting
            and s.when == conv.when
            # a block's output BatchNorm stays: its parent refers to that node by id
            and (p.kind == "sequential" or s.target != p.output)
        )
        if not foldable:
            kept.append(s)
            continue
        conv_path = ".".join((*p.path, *conv.module))
        pairs[conv_path] = ".".join((*p.path, *s.module))
        eps[conv_path] = float(s.leaf.attrs["eps"])
        conv.leaf.attrs = {**conv.leaf.attrs, "bias": True, "folded_bn": True}
        if p.kind == "sequential":
            identity = Leaf(
                s.leaf.name, s.leaf.node, Op.IDENTITY, {}, s.leaf.in_shape, s.leaf.shape, True, when=s.leaf.when
            )
            identities[id(s.leaf)] = identity
            kept.append(Step(s.target, s.inputs, s.module, identity, s.aux, s.shape, when=s.when))
            continue
        removed.append(s.module)
        alias[s.target] = conv.target
    p.steps = kept
    # children changed once, after the walk: one pass each, not one per BatchNorm
    if identities:
        p.children = [identities.get(id(c), c) for c in p.children]
    if removed:
        _remove(p, removed)


# ---- sibling 1x1 fusion ------------------------------------------------------------------------


def _members(p: ModulePlan) -> list[Member]:
    """The steps of ``p``'s forward with sequential children opened up (recursively)."""
    out: list[Member] = []
    index: dict[int, dict] = {}

    def expand(owner: ModulePlan, step: Step, prefix: tuple):
        if step.module is None:
            return
        obj = lookup(owner, step.module, index)
        path = prefix + step.module
        if isinstance(obj, ModulePlan) and obj.kind == "sequential":
            for sub in obj.steps:
                expand(obj, sub, path)
            return
        out.append(Member(step, path, obj))

    for step in p.steps:
        expand(p, step, ())
    return out


def _fusion_key(m: Member):
    item = m.item
    if isinstance(item, ModulePlan) and item.kind == "unit":
        conv, _, relu = unit_parts(item)
    elif isinstance(item, Leaf) and item.op is Op.CONV2D and not item.attrs.get("folded_bn"):
        conv, relu = item, False  # (a conv with a folded BatchNorm is left alone)
    else:
        return None
    a = conv.attrs
    if tuple(a["kernel_size"]) != (1, 1) or a["groups"] != 1:
        return None
    return m.step.inputs[0], tuple(a["stride"]), tuple(a["padding"]), tuple(a["dilation"]), relu


def fusion_groups(p: ModulePlan) -> list[list[Member]]:
    """Sibling 1×1 convs of ``p`` that can run as one conv, in order of their first member."""
    groups: dict[tuple, list[Member]] = {}
    for m in _members(p):
        key = _fusion_key(m)
        if key is not None:
            groups.setdefault(key, []).append(m)
    return [ms for ms in groups.values() if len(ms) > 1]


def _open(p: ModulePlan, path: tuple[str, ...], index: dict) -> None:
    """Turn the sequential at ``path`` (and those above it) into containers whose members'
    steps run inline in ``p``'s forward."""
    for k in range(1, len(path)):
        seq = lookup(p, path[:k], index)
        if seq.kind != "sequential":
            continue
        seq.kind = "container"
        at = next(i for i, s in enumerate(p.steps) if s.module == path[:k])
        inner = [
            Step(s.target, s.inputs, path[:k] + s.module if s.module else None, s.leaf, s.aux, s.shape, when=s.when)
            for s in seq.steps
        ]
        seq.steps = []
        p.steps[at : at + 1] = inner


def _remove(p: ModulePlan, paths: list[tuple[str, ...]]) -> None:
    """Remove the submodules at ``paths`` (one pass over each owner's children)."""
    by_owner: dict[tuple, set[str]] = {}
    for path in paths:
        by_owner.setdefault(path[:-1], set()).add(path[-1])
    index: dict[int, dict] = {}
    for owner_path, names in by_owner.items():
        owner = lookup(p, owner_path, index) if owner_path else p
        owner.children = [c for c in owner.children if c.name not in names]


def _conv_of(item) -> Leaf:
    return unit_parts(item)[0] if isinstance(item, ModulePlan) else item


def _fuse(p: ModulePlan) -> None:
    """Replace each fusion group by one ``fused`` module. The children and steps are
    rebuilt once after all groups (not once per group: linear in the plan's size)."""
    names = Namespace({c.name for c in p.children})
    before: dict[str, list[ModulePlan]] = {}  # child name -> fused modules inserted before it
    removed: list[tuple[str, ...]] = []
    replaced: dict[str, Step] = {}  # first member's target -> the fused step
    dropped: set[str] = set()  # the other members' targets
    index: dict[int, dict] = {}  # children by name; opening changes kinds and steps, not children
    for group in fusion_groups(p):
        for m in group:
            _open(p, m.path, index)
        first = group[0]
        name = names.name("fused_1x1", key=first.step.target)
        convs = [_conv_of(m.item) for m in group]
        fused = ModulePlan(
            name=name,
            path=(*p.path, name),
            kind="fused",
            input=first.step.inputs[0],
            output=first.step.target,
            args={
                "members": [(".".join(m.path), m.step.target, c) for m, c in zip(group, convs, strict=True)],
                "relu": _fusion_key(first)[-1],
            },
        )
        before.setdefault(first.path[0], []).append(fused)
        removed += [m.path for m in group]
        widths = " + ".join(str(c.attrs["out_channels"]) for c in convs)
        replaced[first.step.target] = Step(
            first.step.target,
            first.step.inputs,
            (name,),
            shape=(widths, *first.step.shape[1:]),
            targets=tuple(m.step.target for m in group),
            when=first.step.when,
        )
        dropped |= {m.step.target for m in group[1:]}
    if not replaced:
        return
    p.children = [x for c in p.children for x in (*before.get(c.name, ()), c)]
    _remove(p, removed)
    p.steps = [replaced.get(s.target, s) for s in p.steps if s.target not in dropped]
    # containers left empty by the fusion go away
    p.children = [c for c in p.children if not (isinstance(c, ModulePlan) and c.kind == "container" and not c.children)]


def inference_plan(root: ModulePlan, fuse: bool = True) -> tuple[ModulePlan, dict[str, float], dict[str, str]]:
    """The eval-mode plan (a deep copy: ``root`` is left as it is), the eps of each folded
    BatchNorm by unit (or bare conv) path, and the bare conv -> BatchNorm pairs folded."""
    root = copy.deepcopy(root)
    alias: dict[str, str] = {}
    eps: dict[str, float] = {}
    pairs: dict[str, str] = {}
    _drop_training_only(root, alias)
    _apply_alias(root, alias)
    _fold_units(root, eps)
    for p in list(iter_plans(root)):
        if p.kind in ("root", "block", "sequential"):
            _fold_bare(p, eps, pairs, alias)
    _apply_alias(root, alias)
    if fuse:
        for p in list(iter_plans(root)):
            if p.kind in ("root", "block"):
                _fuse(p)
    return root, eps, pairs
