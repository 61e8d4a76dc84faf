"""Generated PyTorch code from hostile names: it imports cleanly, runs nothing but
definitions, and keeps the state_dict naming rule.

The rule (backends/torch/naming.py): a layer's spec name IS its submodule attribute name and so
its state_dict key, verbatim — ``"a-b"`` stays ``a-b`` (the code uses ``add_module`` and
``getattr`` where ``self.<name>`` is not valid Python or would be NFKC-normalized by Python),
and ``a-b`` and ``a_b`` stay two different modules. Names PyTorch cannot hold (a dot, an
attribute every Module has such as ``forward``) are E701; control characters are E207.
Python identifiers for parameters and locals are sanitized separately (``self`` -> ``self_2``).
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import subprocess

import pytest
import torch
from click.testing import CliRunner

from archlang import compile_spec
from archlang.cli.main import main
from archlang.diagnostics import SpecError

HOSTILE = """block lambda(self: int = 4) {
  fwd: conv(self, 1)
  "class": relu
}
network class(torch: int = 10, nn: bool = true, F: str = "\\"\\"\\" ; __import__('os').system('id') #") {
  input 3x16x16
  "__import__('os')'; system('id') #'": conv(4, 1)
  "\\"\\"\\"": relu
  self: lambda(4)
  "c\u043env": conv(4, 3, padding=1)
  "\ufb01lter": conv(4, 1)
  "a-b": conv(4, 1)
  "a_b": conv(4, 1)
  "a b": relu
  "0": relu
  "'": relu
  "\\\\": relu
  nn_: adaptive_avgpool(1)
  flatten
  fc: linear(torch)
}
"""

# Every parametrized layer by its spec name (hand-listed from HOSTILE): these are the keys.
EXPECTED_KEYS = {
    f"{name}.{p}"
    for name in ["__import__('os')'; system('id') #'", "self.fwd", "c\u043env", "\ufb01lter", "a-b", "a_b", "fc"]
    for p in ("weight", "bias")
}


@pytest.fixture
def emitted(tmp_path):
    spec = tmp_path / "hostile.arch"
    spec.write_text(HOSTILE, encoding="utf-8")
    out = tmp_path / "hostile_model.py"
    result = CliRunner().invoke(main, [str(spec), "--emit", "torch", "-o", str(out)], env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return spec, out


def _import(path, monkeypatch):
    """Import generated code with process-spawning calls and unexpected imports recorded."""
    calls = []
    monkeypatch.setattr(os, "system", lambda *a, **k: calls.append(("os.system", a)))
    monkeypatch.setattr(os, "popen", lambda *a, **k: calls.append(("os.popen", a)))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: calls.append(("Popen", a)))
    real_import = builtins.__import__

    def recording_import(name, globals=None, *args, **kwargs):
        # only the generated module's own imports (torch imports more of itself lazily)
        from_generated = (globals or {}).get("__name__") == "hostile_model"
        if from_generated and name.split(".")[0] not in ("torch", "collections", "typing", "__future__", "math"):
            calls.append(("import", name))
        return real_import(name, globals, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", recording_import)
    spec = importlib.util.spec_from_file_location("hostile_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(builtins, "__import__", real_import)
    return module, calls


def _network_class(module):
    classes = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, torch.nn.Module) and (v.__doc__ or "").startswith("Network")
    ]
    assert len(classes) == 1
    return classes[0]


def test_generated_module_runs_nothing_but_definitions(emitted, monkeypatch):
    _, out = emitted
    module, calls = _import(out, monkeypatch)
    assert calls == []
    net = _network_class(module)
    assert "__import__" in net.__doc__  # the string default is inert text in the docstring
    model = net()
    assert calls == []
    assert model(torch.zeros(2, 3, 16, 16)).shape == (2, 10)


def test_state_dict_keys_are_the_spec_names(emitted, monkeypatch):
    import archlang

    spec, out = emitted
    module, _ = _import(out, monkeypatch)
    generated = _network_class(module)()
    built = archlang.build(str(spec))
    assert set(generated.state_dict()) == EXPECTED_KEYS
    assert set(built.state_dict()) == EXPECTED_KEYS
    # the two are the same network: weights load across and the outputs agree
    generated.load_state_dict(built.state_dict())
    x = torch.randn(2, 3, 16, 16)
    generated.eval()
    built.eval()
    with torch.no_grad():
        assert torch.allclose(generated(x), built(x), atol=1e-6)


def test_generated_code_is_deterministic(emitted, tmp_path):
    spec, out = emitted
    again = tmp_path / "again.py"
    CliRunner().invoke(main, [str(spec), "--emit", "torch", "-o", str(again)])
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("label", ['"a\\nb"', '"a\\tb"', '"\\x00"', '"\\x1b[31m"', '""', '"a/b"'])
def test_control_characters_and_slashes_in_names_are_refused(label):
    with pytest.raises(SpecError) as info:
        compile_spec(f"network N {{\n  input 3x8x8\n  {label}: conv(4, 1)\n}}")
    (d,) = info.value.diagnostics
    assert d.code == "E207" and (d.span.line, d.span.col) == (3, 3)


@pytest.mark.parametrize("name, why", [('"a.b"', "dot"), ("forward", "attribute"), ('"training"', "attribute")])
def test_names_pytorch_cannot_hold_are_located_diagnostics(tmp_path, name, why):
    spec = tmp_path / "n.arch"
    spec.write_text(f"network N {{\n  input 3x8x8\n  {name}: conv(4, 1)\n}}\n")
    result = CliRunner().invoke(main, [str(spec), "--emit", "torch"], env={"NO_COLOR": "1"})
    assert result.exit_code == 1
    assert "error[E701]" in result.output and why in result.output
    assert f"{spec}:3:" in result.output and "^" in result.output  # located, with the line quoted
