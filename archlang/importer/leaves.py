"""Functions the tracer records as one call (a leaf) instead of tracing through them, and
small torch helpers of the trace."""

from __future__ import annotations

import torch
import torch.fx as fx


def transform_input(x: torch.Tensor) -> torch.Tensor:
    """torchvision's ``_transform_input`` (GoogLeNet, Inception v3): ImageNet-normalised -> [-1, 1].
    Traced as one call (a leaf), becomes the ``transform_input`` op."""
    mean = torch.tensor((0.485, 0.456, 0.406), dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor((0.229, 0.224, 0.225), dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x * (std / 0.5) + (mean - 0.5) / 0.5


def transform_input_method(x):
    """Stands in for a model's ``_transform_input`` method while it is traced."""
    if isinstance(x, fx.Proxy):
        return x.tracer.create_proxy("call_function", transform_input, (x,), {})
    return transform_input(x)


def shortest(value: torch.Tensor) -> float:
    """The shortest decimal that rounds to ``value`` in its dtype (``1e-06``, not
    ``9.999999974752427e-07`` for a float32)."""
    exact = float(value)
    for digits in range(1, 18):
        candidate = float(f"{exact:.{digits}g}")
        if torch.tensor(candidate, dtype=value.dtype).item() == value.item():
            return candidate
    return exact


def is_param(module, path: str) -> bool:
    try:
        module.get_parameter(path)
    except AttributeError:
        return False
    return True
