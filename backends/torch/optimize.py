"""``archc FILE --emit torch --optimize``: an inference-only PyTorch model, BN folded, 1×1s fused.

The unoptimized module plan is rewritten (:mod:`.rewrite`) and printed by the same emitter
as ``--emit torch``; :func:`build` executes that source, so the in-memory model *is* the
emitted one. Weights come from the unoptimized model's state_dict (torchvision's layout)
through the generated ``from_unoptimized`` class method:

    >>> from archlang.backends.torch import optimize
    >>> model = optimize.optimize("inception_v3", torchvision_model.state_dict())

:class:`Frozen` runs such a model with TorchScript's oneDNN Graph fuser: the fastest CPU
route PyTorch offers here (about onnxruntime's speed; docs/torch.md). Emitting does not
import torch.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from archlang.compiler import Compiled, ensure_compiled

from .inference import InferenceExtras
from .rewrite import inference_plan
from .runtime import check_externals, load_source
from .source import generate


def _rewrite(channels_last: bool, fuse: bool):
    def rewrite(root):
        new, eps, pairs = inference_plan(root, fuse=fuse)
        new.extras = InferenceExtras(eps=eps, pairs=pairs, channels_last=channels_last)
        return new

    return rewrite


def emit(compiled: Compiled, channels_last: bool = True, fuse: bool = True) -> str:
    """The optimized Python source for a compiled spec (``channels_last``: convert weights
    and input to NHWC; ``fuse``: fuse sibling 1×1 convs, else only fold BatchNorm)."""
    return generate(compiled, _rewrite(channels_last, fuse))[0]


def _instantiate(compiled: Compiled, channels_last: bool, fuse: bool):
    check_externals(compiled)
    source, network = generate(compiled, _rewrite(channels_last, fuse))
    module = load_source(source, f"{network}, optimized")
    return module, getattr(module, network)().eval()


def build_compiled(compiled: Compiled, channels_last: bool = True, fuse: bool = True):
    """The optimized network of a compiled spec, in eval mode, PyTorch's default weights."""
    return _instantiate(compiled, channels_last, fuse)[1]


def build(
    source: str | Path | Compiled,
    input_shape: tuple[int, ...] | None = None,
    channels_last: bool = True,
    fuse: bool = True,
    **params,
):
    """The optimized ``nn.Module`` for a spec, in eval mode, with PyTorch's default weights
    (load real ones with :func:`optimize` or the class's ``from_unoptimized``). Its classes
    live in a module that is not importable: ``torch.save`` the state_dict, not the model."""
    return build_compiled(ensure_compiled(source, params, input_shape), channels_last, fuse)


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
    compiled = ensure_compiled(source, params, input_shape)
    module, model = _instantiate(compiled, channels_last, fuse)
    if dtype is not None:
        model.to(dtype)
    model.load_state_dict(module.convert_unoptimized(model, state_dict))
    return model


class Frozen:
    """An inference model traced on an example batch, frozen (weights become constants, BN
    already folded by ``--optimize``) and run by TorchScript with the oneDNN Graph fuser:
    conv + bias + ReLU and conv + add + ReLU run as one oneDNN partition each, and
    activations stay in oneDNN's blocked layout from one partition to the next (what
    onnxruntime's NCHWc transformer does). The fuser is a process-wide TorchScript switch,
    so each call turns it on and restores it after: TorchScript profiles the first calls
    for each new input shape, and the fused plan it builds then is the one it keeps.

        >>> fast = optimize.Frozen(archlang.build("resnet50", optimize=True), torch.randn(1, 3, 224, 224))
        >>> logits = fast(images)  # any batch size; no autograd

    The example's batch size does not bind later calls."""

    def __init__(self, model, example):
        import torch

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # torch >= 2.9 marks TorchScript deprecated; this route is chosen knowingly
            warnings.simplefilter("ignore", FutureWarning)
            self.module = torch.jit.freeze(torch.jit.trace(model.eval(), example, check_trace=False))

    def __call__(self, x):
        import torch

        was = torch.jit.onednn_fusion_enabled()
        torch.jit.enable_onednn_fusion(True)
        try:
            with torch.no_grad():
                return self.module(x)
        finally:
            torch.jit.enable_onednn_fusion(was)
