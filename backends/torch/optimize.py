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


# glibc's malloc serves a block over its mmap ceiling (DEFAULT_MMAP_THRESHOLD_MAX, 32 MiB on
# 64-bit) from a fresh mapping and unmaps it when freed, so the next call page-faults it
# back in: Inception v3's 44 MB Conv2d_2b output at batch 8 costs 10,800 faults per call,
# 20 ms of a 75 ms layer at 1 thread, more at 2 (the faults serialise in the kernel).
# onnxruntime's arena reuses its buffers; a sub-batch whose activations all stay under the
# ceiling gets the same from malloc's heap.
GLIBC_MMAP_CEILING = 32 << 20


def _largest_per_item(graph, batch: int) -> int | None:
    """Bytes of the largest tensor a traced (inlined) graph computes, per batch item (None
    when a size is unknown). Parameters (``prim::GetAttr``) are not activations."""
    import math

    import torch

    largest = 0
    for node in graph.nodes():
        if node.kind() == "prim::GetAttr":
            continue
        for value in node.outputs():
            kind = value.type()
            if not isinstance(kind, torch._C.TensorType):
                continue
            sizes, dtype = kind.sizes(), kind.dtype()
            if sizes is None or dtype is None or None in sizes:
                return None
            itemsize = torch.empty((), dtype=dtype).element_size()
            largest = max(largest, math.prod(sizes) * itemsize)
    return -(-largest // batch)


def _batched_outputs(graph, batch: int) -> bool:
    """Whether a traced (inlined) graph returns a tensor, or a tuple of tensors, each
    batch-first."""
    import torch

    (out,) = graph.outputs()
    kinds = out.type().elements() if isinstance(out.type(), torch._C.TupleType) else [out.type()]
    for kind in kinds:
        sizes = kind.sizes() if isinstance(kind, torch._C.TensorType) else None
        if not sizes or sizes[0] != batch:
            return False
    return True


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

    The example's batch size does not bind later calls. A batch whose largest activation
    would pass ``chunk_bytes`` (by default glibc's mmap ceiling, 32 MiB; None turns it off)
    runs as near-equal sub-batches that stay under it, outputs concatenated. That needs a
    model that treats batch items independently (every archlang model does in eval mode)
    and returns batch-first tensors; other models, and those whose single item passes the
    limit, always run whole. ``chunk`` is the largest sub-batch (None: no limit)."""

    def __init__(self, model, example, chunk_bytes: int | None = GLIBC_MMAP_CEILING):
        import torch

        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # torch >= 2.9 marks TorchScript deprecated; this route is chosen knowingly
            warnings.simplefilter("ignore", FutureWarning)
            traced = torch.jit.trace(model.eval(), example, check_trace=False)
            self.chunk = None
            batch, graph = len(example), traced.inlined_graph
            if chunk_bytes is not None and batch > 0 and _batched_outputs(graph, batch):
                per_item = _largest_per_item(graph, batch)
                if per_item:
                    self.chunk = chunk_bytes // per_item or None
            self.module = torch.jit.freeze(traced)

    def sub_batches(self, batch: int) -> int:
        """How many near-equal sub-batches a batch of that size runs as (1: whole)."""
        return 1 if self.chunk is None else max(1, -(-batch // self.chunk))

    def __call__(self, x):
        import torch

        was = torch.jit.onednn_fusion_enabled()
        torch.jit.enable_onednn_fusion(True)
        try:
            with torch.no_grad():
                count = self.sub_batches(len(x))
                if count == 1:
                    return self.module(x)
                parts = [self.module(part) for part in x.tensor_split(count)]
        finally:
            torch.jit.enable_onednn_fusion(was)
        if isinstance(parts[0], torch.Tensor):
            return torch.cat(parts)
        return tuple(torch.cat(outputs) for outputs in zip(*parts, strict=True))
