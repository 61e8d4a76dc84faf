"""Built modules train, move between devices/dtypes, compile without graph breaks and export
to ONNX with the same outputs."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from archlang.backends.torch.codegen import emit  # noqa: E402

import archlang  # noqa: E402

# A small GoogLeNet-like net: conv units with BN, a concat block, an aux head with dropout.
SMALL = """
block Mix(a: int, b: int) {
  concat {
    one: conv(a, 1)
    two: { conv(b, 1); conv(b, 3, padding=1) }
    { maxpool(3, stride=1, padding=1, ceil_mode=true); proj: conv(a, 1) }
  }
}
block Head(num_classes: int) {
  adaptive_avgpool(2)
  conv: conv(8, 1)
  flatten
  fc1: linear(16)
  relu
  dropout(0.5)
  fc2: linear(num_classes)
}
network Small(num_classes: int = 4) {
  input 3x16x16
  unit conv = conv_bn_relu(eps=0.001)
  init trunc_normal(std=0.1)
  stem: conv(8, 3, stride=2, padding=1)
  mix1: Mix(4, 8)
  aux aux1 at mix1: Head(num_classes)
  pool: maxpool(2, stride=2)
  mix2: Mix(8, 8)
  outputs SmallOutputs(logits, aux_logits1 = aux1)
  avgpool: adaptive_avgpool(1)
  flatten
  dropout: dropout(0.2)
  fc: linear(num_classes)
}
"""


def test_sgd_with_aux_loss_and_label_smoothing_reduces_loss():
    torch.manual_seed(0)
    model = archlang.build(SMALL)
    x = torch.randn(16, 3, 16, 16)
    y = torch.randint(0, 4, (16,))
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def loss_of(out):
        # GoogLeNet's recipe: main loss + 0.3 x each aux loss (training mode only)
        return criterion(out.logits, y) + 0.3 * criterion(out.aux_logits1, y)

    model.train()
    first = loss_of(model(x))
    losses = [first.item()]
    for _ in range(15):
        opt.zero_grad()
        loss = loss_of(model(x))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    model.eval()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (16, 4)  # eval: logits only


def test_train_returns_namedtuple_eval_returns_tensor_and_dropout_respects_mode():
    torch.manual_seed(0)
    model = archlang.build(SMALL)
    x = torch.randn(2, 3, 16, 16)
    out = model.train()(x)
    assert type(out).__name__ == "SmallOutputs" and out._fields == ("logits", "aux_logits1")
    model.eval()
    with torch.inference_mode():
        a, b = model(x), model(x)
    assert torch.equal(a, b)  # eval: dropout off, BN uses running stats


def test_dtype_and_device_agnostic():
    model = archlang.build(SMALL).eval().to(torch.float64)
    out = model(torch.randn(2, 3, 16, 16, dtype=torch.float64))
    assert out.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert all(b.dtype == torch.float64 for n, b in model.named_buffers() if "num_batches" not in n)


def _generated(tmp_path, text):
    path = tmp_path / "small.py"
    path.write_text(emit(archlang.compile_spec(text)))
    spec = importlib.util.spec_from_file_location(f"small_{abs(hash(str(tmp_path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # torch.compile: tens of seconds per model on a CPU
@pytest.mark.parametrize("which", ["built", "generated"])
def test_torch_compile_has_no_graph_breaks(which, tmp_path):
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = archlang.build(SMALL) if which == "built" else _generated(tmp_path, SMALL).Small()
    model.eval()
    x = torch.randn(2, 3, 16, 16)
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name,size", [("googlenet", 224), pytest.param("inception_v3", 299, marks=pytest.mark.slow)])
def test_onnx_export_matches_onnxruntime(name, size, tmp_path):
    import onnx  # noqa: F401
    import onnxruntime as ort

    torch.manual_seed(0)
    model = archlang.build(name).eval()
    x = torch.randn(1, 3, size, size)
    path = tmp_path / f"{name}.onnx"
    # The TorchScript exporter: the dynamo one needs onnxscript, which is not a dependency.
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"], output_names=["logits"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.inference_mode():
        expected = model(x).numpy()
    assert got.shape == (1, 1000)
    # Random init without trained BN statistics gives Inception v3 logits of order 1e11, so
    # the tolerance is 1e-4 relative to the output's scale (absolute for outputs below 1).
    assert abs(got - expected).max() <= 1e-4 * max(1.0, float(abs(expected).max()))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_amp_training_step():
    torch.manual_seed(0)
    model = archlang.build("googlenet", num_classes=10).cuda().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(4, 3, 224, 224, device="cuda")
    y = torch.randint(0, 10, (4,), device="cuda")
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    scaler = torch.amp.GradScaler("cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        out = model(x)
        assert out.logits.dtype == torch.float16
        loss = criterion(out.logits, y) + 0.3 * (criterion(out.aux_logits1, y) + criterion(out.aux_logits2, y))
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.isfinite(loss)
    model.eval()
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        assert model(x).shape == (4, 10)
