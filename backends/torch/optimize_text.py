"""Pieces of the optimized model's source that are not about the plan: the fixed classes
and functions every optimized file contains, and small text helpers. (Symbolic widths are
the plain code generator's: ``torch_codegen.Slot`` / ``Lin`` / ``bind_slots``.) No torch import.
"""

from __future__ import annotations


def shape_comment(shape) -> str:
    return "(" + ", ".join(["N", *map(str, shape)]) + ")" if shape else ""


def show(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return repr(v) if isinstance(v, str) else str(v)


def tuple_source(names: list[str]) -> str:
    if not names:
        return "()"
    return f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"


UNIT_SOURCE = '''class {name}(nn.Module):
    """Conv unit for inference: Conv2d (BatchNorm folded into it), {act}."""

    def __init__(self, in_channels: int, out_channels: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return {out}'''

FUSED_SOURCE = '''class {name}(nn.Module):
    """Sibling 1x1 conv units over one input as one wider Conv2d, {act}.

    BatchNorm is folded into the conv. `widths` maps each fused unit (its path in the
    unoptimized block) to its output channels, in split order; forward returns one
    tensor per unit (channel slices of the wide output).
    """

    def __init__(self, in_channels: int, widths: dict[str, int], **kwargs) -> None:
        super().__init__()
        self.widths = widths
        out_channels = sum(widths.values())
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, **kwargs)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = {out}
        return torch.split(y, list(self.widths.values()), 1)'''

FOLD_SOURCE = '''def fold_batchnorm(state_dict: dict, unit: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv weight and bias of conv unit `unit` (a state_dict prefix) with its BatchNorm
    folded in: w' = w * s, b' = beta + (b - mean) * s, s = gamma / sqrt(var + eps)."""
    conv = f"{{unit}}.conv" if f"{{unit}}.conv.weight" in state_dict else unit
    weight = state_dict[f"{{conv}}.weight"]
    bias = state_dict.get(f"{{conv}}.bias")
    if bias is None:
        bias = torch.zeros(weight.shape[0], dtype=weight.dtype)
    if f"{{unit}}.bn.running_var" not in state_dict:
        return weight, bias
    mean = state_dict[f"{{unit}}.bn.running_mean"]
    var = state_dict[f"{{unit}}.bn.running_var"]
    gamma = state_dict.get(f"{{unit}}.bn.weight", torch.ones_like(var))
    beta = state_dict.get(f"{{unit}}.bn.bias", torch.zeros_like(var))
    scale = gamma / torch.sqrt(var + {eps})
    return weight * scale.reshape(-1, 1, 1, 1), beta + (bias - mean) * scale'''

CONVERTER_SOURCE = '''def convert_unoptimized(model: nn.Module, state_dict: dict) -> dict:
    """`model`'s state_dict from the unoptimized model's: BatchNorm folded into each
    conv unit, fused units' weights and biases concatenated in split order, the rest
    copied by name."""
    out = {{}}
    for name, module in model.named_modules():
        if isinstance(module, {units}):
            weight, bias = fold_batchnorm(state_dict, name)
        elif isinstance(module, {fused}):
            block = name.rpartition(".")[0]
            units = [f"{{block}}.{{unit}}" if block else unit for unit in module.widths]
            parts = [fold_batchnorm(state_dict, unit) for unit in units]
            weight = torch.cat([w for w, _ in parts])
            bias = torch.cat([b for _, b in parts])
        else:
            continue
        out[f"{{name}}.conv.weight"], out[f"{{name}}.conv.bias"] = weight, bias
    for key in model.state_dict():
        if key not in out:
            out[key] = state_dict[key]
    return out'''
