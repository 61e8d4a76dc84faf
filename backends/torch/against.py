"""``archc check SPEC --against REF``: the spec's state_dict (keys and shapes) compared with a
model's or a checkpoint's, each difference a diagnostic located at the spec's layer.

A key-name slip (``"denselayer{i}"`` one off) passes every static check and shows up only as
``load_state_dict``'s size mismatch at run time; here it is the line that made the key.

* E730: the spec has a tensor the reference lacks (at the layer that makes it);
* E731: the reference has a tensor the spec lacks (at the closest layer of the spec, with
  the spec's nearest key as a did-you-mean);
* E732: a tensor both have, of different shapes.

REF is a checkpoint file (``torch.load(weights_only=True)``: a state_dict, or a dict holding
one under ``state_dict`` / ``model``, Lightning's ``model.`` prefix removed) or a callable
that returns an ``nn.Module`` (``torchvision.models.resnet50``, ``pkg.mod:factory``,
``file.py:make``), as ``archc import`` takes it.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from archlang.diagnostics import Diagnostic, Severity, SpecError

from .plan import module_outputs, plan

MAX_REPORTED = 40


def reference_state(ref: str, kwargs: dict) -> dict[str, tuple]:
    """Key -> shape of the reference's tensors; SpecError E726 / E733 when it cannot be read."""
    import torch

    path = Path(ref)
    if path.suffix in (".pt", ".pth", ".ckpt", ".bin", ".tar") or path.is_file():
        if not path.is_file():
            raise SpecError(Diagnostic(code="E733", message=f"no checkpoint file `{ref}`"))
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - any unreadable or unsafe file is one refusal
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SpecError(
                Diagnostic(
                    code="E733",
                    message=f"cannot read `{ref}` as a checkpoint: {reason[:300]}",
                    help="only tensors, numbers and plain containers are loaded (torch.load(weights_only=True))",
                )
            ) from None
        return _tensors(data, ref)
    from archlang.cli.import_command import make_model

    return {k: tuple(v.shape) for k, v in make_model(ref, kwargs).state_dict().items()}


def _tensors(data, ref: str) -> dict[str, tuple]:
    import torch

    if isinstance(data, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise SpecError(Diagnostic(code="E733", message=f"`{ref}` holds no state_dict (a dict of tensors)"))
    keys = list(data)
    if keys and all(k.startswith("model.") for k in keys):  # a LightningModule wrapping the network
        data = {k[len("model.") :]: v for k, v in data.items()}
    return {str(k): tuple(v.shape) for k, v in data.items()}


def _shape(shape: tuple) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def compare(compiled, mine: dict[str, tuple], theirs: dict[str, tuple]) -> list[Diagnostic]:
    """The differences, in the spec's key order (then the reference's)."""
    g = compiled.graph
    modules = module_outputs(plan(g))

    def span_of(key: str):
        parts = key.split(".")
        for k in range(len(parts) - 1, 0, -1):
            scope = g.scopes.get("/".join(parts[:k]))
            if scope is not None:
                return scope.span
            node = modules.get(".".join(parts[:k]))
            if node is not None:
                return g.nodes[node].span
        return g.nodes[g.input].span

    out = []
    for key, shape in mine.items():
        if key not in theirs:
            close = difflib.get_close_matches(key, [k for k in theirs if k not in mine], n=1)
            out.append(
                Diagnostic(
                    code="E730",
                    message=f"the spec has `{key}` ({_shape(shape)}), which the reference lacks",
                    span=span_of(key),
                    help=f"the reference has `{close[0]}`: rename the layer?" if close else None,
                )
            )
        elif theirs[key] != shape:
            out.append(
                Diagnostic(
                    code="E732",
                    message=f"`{key}` is {_shape(shape)} in the spec, {_shape(theirs[key])} in the reference",
                    span=span_of(key),
                )
            )
    for key, shape in theirs.items():
        if key not in mine:
            close = difflib.get_close_matches(key, [k for k in mine if k not in theirs], n=1)
            out.append(
                Diagnostic(
                    code="E731",
                    message=f"the reference has `{key}` ({_shape(shape)}), which the spec lacks",
                    span=span_of(key),
                    help=f"the spec has `{close[0]}`" if close else None,
                )
            )
    if len(out) > MAX_REPORTED:
        rest = len(out) - MAX_REPORTED
        out = out[:MAX_REPORTED]
        out.append(Diagnostic(code="E730", message=f"and {rest:,} more differences", severity=Severity.ERROR))
    return out


def check_against(compiled, ref: str, kwargs: dict) -> tuple[list[Diagnostic], int]:
    """(differences, number of keys compared)."""
    import archlang

    theirs = reference_state(ref, kwargs)
    model = archlang.build(compiled)
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return compare(compiled, mine, theirs), len(mine)
