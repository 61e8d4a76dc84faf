"""A model as ONNX bytes, the way ``archc export`` writes it (shared with ``archc bench``,
which must not import Lightning through :mod:`archlang.train`)."""

from __future__ import annotations

import io


def to_onnx(model, x, opset: int | None = None) -> bytes:
    """ONNX of ``model`` traced on ``x``: input ``input``, output ``logits``, batch axis dynamic."""
    import torch

    # The TorchScript exporter: the dynamo one needs onnxscript, which is not a dependency.
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (x,),
        buffer,
        dynamo=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        **({"opset_version": opset} if opset else {}),
    )
    return buffer.getvalue()
