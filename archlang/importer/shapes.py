"""Every value's shape in a traced graph: one forward pass (eval mode, no grad) of a random
``(1, C, H, W)`` input, on fake tensors where torch can (shapes without the arithmetic: a
100-GFLOP model in a second), else on real ones."""

from __future__ import annotations

import torch
import torch.fx as fx

from .structure import problem


def propagate_shapes(gm: fx.GraphModule, module, input_shape) -> None:
    from torch.fx.passes.shape_prop import ShapeProp

    param = next(module.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else "cpu"
    gm.eval()
    x = torch.randn(1, *input_shape, dtype=dtype, device=device)
    try:
        try:  # fake tensors: shapes without the arithmetic (a 100-GFLOP model in a second)
            from torch._subclasses.fake_tensor import FakeTensorMode

            with torch.no_grad():
                ShapeProp(gm, fake_mode=FakeTensorMode(allow_non_fake_inputs=True)).propagate(x)
        except Exception:
            with torch.no_grad():
                ShapeProp(gm).propagate(x)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise problem(
            "E727",
            f"the module fails on a 1x{'x'.join(map(str, input_shape))} input: {reason}",
            "give the input size it expects with --input CxHxW (input_shape=)",
        ) from None


def ndim(node) -> int | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return len(meta.shape) if meta is not None and hasattr(meta, "shape") else None
