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


def check_onnx(payload: bytes, model, x: torch.Tensor) -> float:
    """Largest difference between onnxruntime's and torch's outputs, scaled as ONNX_TOLERANCE."""
    import onnxruntime as ort

    session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    with torch.inference_mode():
        expected = model(x).numpy()
    return float(abs(got - expected).max()) / max(1.0, float(abs(expected).max()))


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
    payload = to_onnx(model, x, opset)
    difference = check_onnx(payload, model, torch.randn(3, *shape, generator=generator))
    if difference > ONNX_TOLERANCE:
        raise SpecError(
            Diagnostic(code="E810", message=f"onnxruntime's outputs differ from torch's by {difference:.2e}")
        )
    return {"format": "onnx", "payload": payload, "onnxruntime_max_diff": difference, "input_shape": ["batch", *shape]}
