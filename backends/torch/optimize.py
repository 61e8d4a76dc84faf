"""``archc FILE --emit torch --optimize``: an inference-only PyTorch model, BN folded, 1×1s fused.

Two rewrites, both exact in eval mode:

* **BatchNorm folding.** A conv unit's BatchNorm uses its running statistics in eval, so it
  is an affine map per channel and merges into the conv: ``w' = w · s``,
  ``b' = β + (b − μ) · s`` with ``s = γ / sqrt(σ² + eps)``. The unit becomes Conv2d (with
  bias) + ReLU.
* **Sibling 1×1 fusion** (the "dense submatrices" of the GoogLeNet paper, done by the
  compiler). 1×1 convs that read the same tensor, with the same stride, padding, dilation,
  ``groups=1`` and the same activation, are one wider conv whose output is split along
  channels (InceptionA's ``branch1x1``, ``branch5x5_1``, ``branch3x3dbl_1``; GoogLeNet's
  ``branch1`` and the 1×1 reduces of ``branch2`` / ``branch3``). Their weights and biases
  are concatenated in split order.

The optimized model drops what only training uses: aux heads and dropout (identity in eval).
Weights come from the unoptimized model's state_dict (torchvision's layout) through the
generated ``from_unoptimized`` class method, which this module also uses in memory:

    >>> from archlang.backends.torch import optimize
    >>> model = torch_optimize.optimize("inception_v3", torchvision_model.state_dict())

This module plans the rewrite (it does not import torch); :mod:`.torch_optimize_emit` writes
the source; :func:`build` executes that source, so the in-memory model *is* the emitted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archlang.compiler import Compiled, ensure_compiled
from archlang.ops import Op

from .ops import TORCH_OPS
from .plan import Leaf, ModulePlan
from .runtime import load_source

# Ops that carry weights and therefore stay submodules in the optimized model.
PARAM_OPS = frozenset(op for op, row in TORCH_OPS.items() if row.has_params)
# Ops that are the identity in eval mode: they produce no code in the optimized forward.
EVAL_IDENTITY = frozenset({Op.INPUT, Op.IDENTITY, Op.DROPOUT})


@dataclass
class Flat:
    """One forward step of a block or network, with sequentials and containers opened up.

    ``path`` is the submodule path relative to the owning module (``("branch2", "1")``) or
    ``None`` for a functional op; ``item`` is the unit / block :class:`ModulePlan` or the
    :class:`Leaf`.
    """

    target: str
    inputs: tuple[str, ...]
    path: tuple[str, ...] | None
    item: Leaf | ModulePlan
    shape: tuple


@dataclass
class Fusion:
    """Sibling 1×1 convs fused into one: members in split (= creation) order."""

    members: list[Flat]
    relu: bool

    @property
    def input(self) -> str:
        return self.members[0].inputs[0]


def lookup(owner: ModulePlan, path: tuple[str, ...]):
    node = owner
    for name in path:
        node = next(c for c in node.children if c.name == name)
    return node


def flat_steps(p: ModulePlan, opened=None) -> list[Flat]:
    """The main-path steps of a root / block plan with sequential children opened up (their
    members become steps addressed by path): all of them, or those whose path
    ``opened(path)`` accepts. Aux steps (training only) are left out."""
    out: list[Flat] = []

    def expand(owner: ModulePlan, step, prefix: tuple):
        if step.module is None:
            out.append(Flat(step.target, step.inputs, None, step.leaf, step.shape))
            return
        obj = lookup(owner, step.module)
        path = prefix + step.module
        if isinstance(obj, ModulePlan) and obj.kind == "sequential" and (opened is None or opened(path)):
            for sub in obj.steps:
                expand(obj, sub, path)
            return
        out.append(Flat(step.target, step.inputs, path, obj, step.shape))

    for step in p.steps:
        if step.aux is None:
            expand(p, step, ())
    return out


def unit_parts(unit: ModulePlan) -> tuple[Leaf, Leaf | None, bool]:
    """(conv, batchnorm or None, has ReLU) of a conv unit (lowering makes them conv [bn] [relu])."""
    conv = next(c for c in unit.children if isinstance(c, Leaf) and c.op is Op.CONV2D)
    bn = next((c for c in unit.children if isinstance(c, Leaf) and c.op is Op.BATCHNORM), None)
    relu = any(s.leaf is not None and s.leaf.op is Op.RELU for s in unit.steps)
    return conv, bn, relu


def conv_like(step: Flat) -> tuple[Leaf, bool] | None:
    """(conv leaf, ReLU after it) for a conv unit or a bare conv step, else None."""
    item = step.item
    if isinstance(item, ModulePlan) and item.kind == "unit":
        conv, _, relu = unit_parts(item)
        return conv, relu
    if isinstance(item, Leaf) and item.op is Op.CONV2D and step.path is not None:
        return item, False
    return None


def _fusion_key(step: Flat):
    found = conv_like(step)
    if found is None:
        return None
    conv, relu = found
    a = conv.attrs
    if tuple(a["kernel_size"]) != (1, 1) or a["groups"] != 1:
        return None
    return step.inputs[0], tuple(a["stride"]), tuple(a["padding"]), tuple(a["dilation"]), relu


def fusions(steps: list[Flat]) -> list[Fusion]:
    """Groups of two or more sibling 1×1 convs with identical input, stride, padding,
    dilation, ``groups=1`` and activation, in order of their first member."""
    groups: dict[tuple, list[Flat]] = {}
    for step in steps:
        key = _fusion_key(step)
        if key is not None:
            groups.setdefault(key, []).append(step)
    return [Fusion(members, key[-1]) for key, members in groups.items() if len(members) > 1]


# ---- API -------------------------------------------------------------------------------------


def emit(compiled: Compiled, channels_last: bool = True, fuse: bool = True) -> str:
    """The optimized Python source for a compiled spec (``channels_last``: convert weights
    and input to NHWC; ``fuse``: fuse sibling 1×1 convs, else only fold BatchNorm)."""
    from .optimize_emit import generate

    return generate(compiled, channels_last=channels_last, fuse=fuse)[0]


def emit_cli(compiled: Compiled, fmt: str, options: dict) -> str:
    """``archc FILE --emit torch --optimize``."""
    return emit(compiled)


def build_compiled(compiled: Compiled, channels_last: bool = True, fuse: bool = True):
    """The optimized network of a compiled spec, in eval mode, PyTorch's default weights."""
    return _instantiate(compiled, channels_last, fuse)[1]


def _instantiate(compiled: Compiled, channels_last: bool, fuse: bool):
    from .optimize_emit import generate

    source, network = generate(compiled, channels_last=channels_last, fuse=fuse)
    module = load_source(source, f"{network}, optimized")
    return module, getattr(module, network)().eval()


def build(
    source: str | Path | Compiled,
    input_shape: tuple[int, ...] | None = None,
    channels_last: bool = True,
    fuse: bool = True,
    **params,
):
    """The optimized ``nn.Module`` for a spec, in eval mode, with PyTorch's default weights
    (load real ones with :func:`optimize` or the class's ``from_unoptimized``).

    The classes come from executing :func:`emit`'s source, so the in-memory model and the
    file ``archc --emit torch --optimize`` writes are the same code. They live in a module
    that is not importable: ``torch.save`` the state_dict, not the model.
    """
    return _instantiate(ensure_compiled(source, params, input_shape), channels_last, fuse)[1]


def optimize(
    source: str | Path | Compiled,
    state_dict: dict,
    input_shape: tuple[int, ...] | None = None,
    channels_last: bool = True,
    fuse: bool = True,
    dtype=None,
    **params,
):
    """The optimized model for a spec, with the weights of the *unoptimized* model's
    ``state_dict`` (``archlang.build(spec).state_dict()`` or torchvision's checkpoint):
    BatchNorm folded, fused convs concatenated. Eval mode. Folding runs in the state_dict's
    precision; ``dtype`` (e.g. ``torch.float64``) sets the model's before loading."""
    module, model = _instantiate(ensure_compiled(source, params, input_shape), channels_last, fuse)
    if dtype is not None:
        model.to(dtype)
    model.load_state_dict(module.convert_unoptimized(model, state_dict))
    return model
