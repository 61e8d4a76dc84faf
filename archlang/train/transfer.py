"""Transfer learning as the course describes it: start from released weights (``init``), give
the network a new classifier (``num_classes``), and freeze what should not move (``freeze``,
``linear_probe``).

The classifier and aux classifiers are found by their spec names, not by guessing: they are
the parameters whose shapes change with the network's ``num_classes`` (``fc``,
``aux1.fc2``, ``AuxLogits.fc`` in torchvision's layout).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch
from torch import nn

import archlang
from archlang.diagnostics import Diagnostic, SpecError


def _error(code: str, message: str, help: str | None = None) -> SpecError:
    return SpecError(Diagnostic(code=code, message=message, help=help))


def head_parameters(source, params: dict, num_classes: int, input_shape=None) -> set[str]:
    """Names of the parameters whose shape depends on ``num_classes`` (built on the meta
    device: no memory, no initialisation cost)."""
    shapes = []
    for classes in (num_classes, num_classes + 1):
        with torch.device("meta"):
            model = archlang.build(source, input_shape, **{**params, "num_classes": classes})
        shapes.append({name: p.shape for name, p in model.named_parameters()})
    return {name for name, shape in shapes[0].items() if shapes[1].get(name) != shape}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a file: a plain ``state_dict`` (torchvision's released weights), a
    ``{"state_dict": ...}`` or ``{"model": ...}`` checkpoint, or one of this package's
    Lightning checkpoints (keys ``model.<name>``)."""
    from .checkpoint import safe_load

    data = safe_load(path, "E805", "weights")
    lightning = isinstance(data, dict) and "pytorch-lightning_version" in data
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if lightning:  # SpecModule's state: the network under `model.`, metric states beside it
        data = {k[len("model.") :]: v for k, v in data.items() if k.startswith("model.")}
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise _error("E805", f"`{path}` holds no state_dict (a mapping of names to tensors)")
    for prefix in ("model.", "module.", "_orig_mod."):
        if data and all(k.startswith(prefix) for k in data):
            data = {k[len(prefix) :]: v for k, v in data.items()}
    return data


def load_init(model: nn.Module, state: dict[str, torch.Tensor], heads: set[str]) -> list[str]:
    """Copy ``state`` into ``model``; the head tensors whose shapes differ keep their fresh
    initialisation. Returns the names of the replaced head tensors. Any other missing,
    unexpected or mis-shaped tensor is an error."""
    own = model.state_dict()
    replaced = sorted(k for k in heads if k in state and state[k].shape != own[k].shape)
    problems = []
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and k not in heads and state[k].shape != own[k].shape]
    if missing:
        problems.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
    for k in wrong[:3]:
        problems.append(f"`{k}` is {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the spec")
    if problems:
        raise _error(
            "E805",
            "the weights do not fit the spec: " + "; ".join(problems),
            help="--init wants a state_dict in the spec's (torchvision's) layout; "
            "check --set parameters such as aux_logits",
        )
    model.load_state_dict({k: v for k, v in state.items() if k not in replaced}, strict=False)
    return replaced


def layer_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def freeze(model: nn.Module, until: str | None, heads: set[str], linear_probe: bool = False) -> list[str]:
    """Set ``requires_grad=False`` on every parameter up to and including layer ``until``
    (in the spec's order), or on all but the heads for ``linear_probe``. A top-level layer
    holding a head (an aux classifier) is never frozen by ``until``. Returns the frozen names."""
    names = [name for name, _ in model.named_parameters()]
    if linear_probe:
        chosen = [n for n in names if n not in heads]
    elif until:
        inside = [i for i, n in enumerate(names) if n.startswith(until + ".")]
        if not inside:
            close = difflib.get_close_matches(until, layer_names(model), n=3)
            raise _error(
                "E806",
                f"--freeze: the spec has no layer with parameters named `{until}`",
                help=f"did you mean {', '.join(f'`{c}`' for c in close)}?" if close else "see `archc FILE --report`",
            )
        head_tops = {h.split(".")[0] for h in heads}
        chosen = [n for n in names[: inside[-1] + 1] if n.split(".")[0] not in head_tops]
    else:
        return []
    parameters = dict(model.named_parameters())
    for name in chosen:
        parameters[name].requires_grad_(False)
    return chosen


def frozen_norm_layers(model: nn.Module) -> list[str]:
    """BatchNorm layers whose parameters are all frozen: they stay in eval mode (running
    statistics not updated) while the rest trains."""
    names = []
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = list(module.parameters())
            if params and not any(p.requires_grad for p in params):
                names.append(name)
    return names
