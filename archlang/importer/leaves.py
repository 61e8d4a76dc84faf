"""Functions the tracer records as one call (a leaf) instead of tracing through them, and
small torch helpers of the trace."""

from __future__ import annotations

import torch
import torch.fx as fx

from ..backends.torch.plan import MODULE_AT_ROOT
from ..ops import IMAGENET_MEAN, IMAGENET_STD

# Parameter-free ops the torch back end makes submodules outside blocks (named by the label).
NAMED_STATELESS = frozenset(op.value for op in MODULE_AT_ROOT)


def transform_input(x: torch.Tensor) -> torch.Tensor:
    """torchvision's ``_transform_input`` (GoogLeNet, Inception v3): ImageNet-normalised -> [-1, 1].
    Traced as one call (a leaf), becomes the ``transform_input`` op."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
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
