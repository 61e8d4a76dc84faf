"""``archc export``: a trained spec as ONNX (dynamic batch axis, checked against onnxruntime)
or as a ``torch.export`` program (``.pt2``)."""

from __future__ import annotations

import os
import tempfile

import torch

from archlang.backends.torch.onnx_export import to_onnx
from archlang.diagnostics import Diagnostic, SpecError

from .evaluate import load_model

ONNX_TOLERANCE = 1e-4  # max |onnxruntime - torch|, relative to the output's scale when above 1


def _opsets() -> range | None:
    """The opsets torch's TorchScript exporter writes (private constants: None if moved)."""
    try:
        from torch.onnx import _constants
    except ImportError:
        return None
    low = getattr(_constants, "ONNX_MIN_OPSET", None)
    high = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", getattr(_constants, "ONNX_MAX_OPSET", None))
    return range(low, high + 1) if isinstance(low, int) and isinstance(high, int) else None


def _bad_opset(opset: int, opsets: range | None) -> SpecError:
    known = f" (this torch writes {opsets.start} to {opsets.stop - 1})" if opsets else ""
    return SpecError(Diagnostic(code="E813", message=f"--opset {opset}: not an ONNX opset torch can export{known}"))


def _to_onnx(model, x: torch.Tensor, opset: int | None) -> bytes:
    # The TorchScript exporter: the dynamo one needs onnxscript, which is not a dependency.
    opsets = _opsets()
    if opset is not None and opsets is not None and opset not in opsets:
        raise _bad_opset(opset, opsets)
    try:
        return to_onnx(model, x, opset)
    except (RuntimeError, ValueError) as err:
        if opset is not None and "opset" in str(err).lower():
            raise _bad_opset(opset, opsets) from None
        raise


def check_onnx(payload: bytes, model, x: torch.Tensor) -> float:
    """Largest difference between onnxruntime's and torch's outputs, scaled as ONNX_TOLERANCE."""
    import onnxruntime as ort

    session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.inference_mode():
        expected = model(x)
    got = torch.from_numpy(got)
    # equal infinities (a `pad(value=-inf)` border left in the output) are no difference
    diff = torch.where(got == expected, 0.0, (got - expected).abs())
    finite = expected[expected.isfinite()].abs()
    return float(diff.max()) / max(1.0, float(finite.max()) if finite.numel() else 1.0)


def _to_pt2(model, x: torch.Tensor) -> bytes:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    fd, path = tempfile.mkstemp(suffix=".pt2")
    os.close(fd)
    try:
        torch.export.save(program, path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def export(spec, weights, fmt: str, *, params=None, input_shape=None, opset=None) -> dict:
    """``{"payload": bytes, "format": ..., ...}``; for ONNX also the difference from torch
    under onnxruntime on a batch of 3 (a size other than the traced one: the batch axis is dynamic)."""
    model, compiled, _ = load_model(spec, weights, params, input_shape)
    shape = compiled.graph.input_shape
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, *shape, generator=generator)
    if fmt == "pt2":
        return {"format": "pt2", "payload": _to_pt2(model, x), "input_shape": ["batch", *shape]}
    payload = _to_onnx(model, x, opset)
    difference = check_onnx(payload, model, torch.randn(3, *shape, generator=generator))
    if difference > ONNX_TOLERANCE:
        raise SpecError(
            Diagnostic(code="E810", message=f"onnxruntime's outputs differ from torch's by {difference:.2e}")
        )
    return {"format": "onnx", "payload": payload, "onnxruntime_max_diff": difference, "input_shape": ["batch", *shape]}
