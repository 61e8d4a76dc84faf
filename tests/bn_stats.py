"""Batch-norm state away from the identity, so a BN wired wrong shows in eval mode."""

import torch


def randomize_bn(model: torch.nn.Module, seed: int = 0, affine: bool = False) -> None:
    """Random running statistics (mean ~ N(0, 1), var ~ U(0.5, 1.5)) for every BatchNorm2d,
    in the dtype of its buffers; with ``affine`` also γ ~ U(0.5, 1.5) and β ~ N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n, dtype = m.num_features, m.running_mean.dtype
                m.running_mean.copy_(torch.randn(n, generator=g, dtype=dtype))
                m.running_var.copy_(torch.rand(n, generator=g, dtype=dtype) + 0.5)
                if affine and m.affine:
                    m.weight.copy_(torch.rand(n, generator=g, dtype=dtype) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=g, dtype=dtype))
