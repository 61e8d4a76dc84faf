"""The torch back end's Python API: one rule for parameters given with a compiled spec,
a clear message without torch, tracebacks that show the generated code, network parameters
as constructor arguments, and ``--optimize`` on every bundled spec."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import traceback

import pytest
import torch
from archlang.backends.torch import optimize as torch_optimize
from archlang.backends.torch.build import build
from archlang.backends.torch.codegen import emit
from bn_stats import randomize_bn
from conftest import HEAVY_SPECS, bundled_names, bundled_params
from generated import import_source
from graph_reference import evaluate
from test_torch_differential import _compile_small

import archlang
from archlang.compiler import ensure_compiled
from archlang.diagnostics import SpecError


@pytest.mark.parametrize(
    "call",
    [
        lambda c: archlang.build(c, num_classes=10),
        lambda c: archlang.build(c, (3, 64, 64)),
        lambda c: torch_optimize.build(c, num_classes=10),
        lambda c: torch_optimize.optimize(c, {}, num_classes=10),
        lambda c: archlang.analyze(c, num_classes=10),
        lambda c: ensure_compiled(c, {"num_classes": 10}),
    ],
    ids=["build", "build-input-shape", "optimize.build", "optimize.optimize", "analyze", "ensure_compiled"],
)
def test_parameters_with_a_compiled_spec_are_an_error_everywhere(call):
    """Before: build(compile_spec("googlenet"), num_classes=10) silently had 1000 outputs."""
    compiled = archlang.compile_spec("googlenet")
    with pytest.raises(ValueError, match="already compiled"):
        call(compiled)


def test_parameters_apply_when_the_spec_is_not_compiled():
    assert archlang.build("googlenet", num_classes=10, aux_logits=False).fc.out_features == 10
    assert ensure_compiled(archlang.compile_spec("googlenet")).graph.params["num_classes"] == 1000


def test_build_without_torch_names_the_extra(tmp_path):
    """As after `pip install .` without the torch extra: torch cannot be imported."""
    code = textwrap.dedent(
        """
        import importlib.abc, sys

        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, NoTorch())
        import archlang
        archlang.compile_spec("googlenet")  # the compiler needs no torch
        try:
            archlang.build("googlenet")
        except ModuleNotFoundError as err:
            print(err)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'pip install "archlang[torch]"' in result.stdout


def test_tracebacks_show_the_generated_code():
    """A built model's classes come from the generated source under a filename naming the
    network; the source is in linecache, so a traceback prints the failing generated line."""
    model = build("googlenet", aux_logits=False).eval()
    with pytest.raises(RuntimeError) as info:
        model(torch.randn(1, 5, 64, 64))  # 5 channels: the first conv refuses
    text = "".join(traceback.format_exception(info.value))
    assert 'File "<archlang: GoogLeNet from googlenet.arch #' in text
    assert "x = self.conv1(x)  # (N, 64, 112, 112)" in text


def test_two_builds_never_share_classes():
    a, b = build("googlenet"), build("googlenet", num_classes=10)
    assert type(a) is not type(b) and type(a).__module__ != type(b).__module__


@pytest.mark.parametrize("name", bundled_params())
def test_network_parameters_are_constructor_arguments(name, tmp_path):
    """archlang.build(spec, num_classes=10) == the emitted class instantiated with
    num_classes=10: same keys and shapes, and with the same weights the same outputs."""
    compiled = _compile_small(name)
    if "num_classes" not in compiled.graph.params:
        pytest.skip(f"{name} has no num_classes parameter")
    module = import_source(emit(compiled), tmp_path, name)
    network = getattr(module, compiled.graph.network)
    shape = compiled.graph.input_shape
    built = archlang.build(name, input_shape=shape, num_classes=10).double().eval()
    mine = network(num_classes=10).double().eval()
    assert [(k, v.shape) for k, v in mine.state_dict().items()] == [(k, v.shape) for k, v in built.state_dict().items()]
    mine.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, *shape, dtype=torch.float64)
    # build and the file share the generator; the graph compiled with num_classes=10 and
    # evaluated op by op (tests/graph_reference.py) is the independent check.
    graph = archlang.compile_spec(name, {"num_classes": 10}, input_shape=shape).graph
    with torch.no_grad():
        torch.testing.assert_close(mine(x), built(x), rtol=1e-9, atol=0)
        torch.testing.assert_close(mine(x), evaluate(graph, built.state_dict(), x), rtol=1e-9, atol=1e-12)


def _flag_cases():
    for name in bundled_names():
        params = archlang.compile_spec(name).graph.params
        for flag, value in params.items():
            if isinstance(value, bool):
                marks = [pytest.mark.slow] if name in HEAVY_SPECS else []
                yield pytest.param(name, flag, not value, marks=marks, id=f"{name}-{flag}")


def _small_shape(name: str, channels: int, flags: dict) -> tuple:
    """An input the network with ``flags`` takes at the compiled channel count: 64×64 where
    it allows that (fast), else the smallest of a few larger squares (U-Net unpadded takes
    16k + 124: 188), else its own size."""
    for size in (64, 124, 140, 156, 172, 188):
        try:
            return archlang.compile_spec(name, flags, input_shape=(channels, size, size)).graph.input_shape
        except SpecError:
            continue
    return archlang.compile_spec(name, flags).graph.input_shape


@pytest.mark.parametrize("name,flag,value", list(_flag_cases()))
def test_boolean_network_parameters_are_constructor_arguments(name, flag, value, tmp_path):
    """`Inception3(aux_logits=False)` from the default file == archlang.build(...,
    aux_logits=False): keys, shapes and, with the same weights, eval and train outputs."""
    compiled = archlang.compile_spec(name)
    source = emit(compiled)
    assert f"{flag}: bool = {not value}" in source  # a constructor argument
    module = import_source(source, tmp_path, name)
    network = getattr(module, compiled.graph.network)
    shape = _small_shape(name, compiled.graph.input_shape[0], {flag: value})
    torch.manual_seed(0)
    mine = network(**{flag: value}).double()
    torch.manual_seed(0)
    built = archlang.build(name, **{flag: value}).double()
    assert [(k, v.shape) for k, v in mine.state_dict().items()] == [(k, v.shape) for k, v in built.state_dict().items()]
    randomize_bn(built, seed=5, affine=True)
    mine.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        for mode in ("eval", "train"):
            getattr(mine, mode)(), getattr(built, mode)()
            torch.manual_seed(1)
            a = mine(x)
            torch.manual_seed(1)
            b = built(x)
            assert type(a).__name__ == type(b).__name__
            for u, v in zip(a if isinstance(a, tuple) else [a], b if isinstance(b, tuple) else [b], strict=True):
                torch.testing.assert_close(u, v, rtol=1e-9, atol=0)
            if mode == "eval":  # the graph with the flag set, evaluated independently of the generator
                graph = archlang.compile_spec(name, {flag: value}, input_shape=shape).graph
                torch.testing.assert_close(a, evaluate(graph, built.state_dict(), x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", bundled_params())
def test_optimize_on_every_bundled_spec_equals_the_plain_model(name, tmp_path):
    """float64, random BN statistics and affine parameters, eval outputs within 1e-9."""
    compiled = _compile_small(name)
    torch.manual_seed(0)
    plain = archlang.build(compiled).double()
    randomize_bn(plain, seed=4, affine=True)
    plain.eval()
    fast = torch_optimize.optimize(compiled, plain.state_dict(), dtype=torch.float64)
    x = torch.randn(2, *compiled.graph.input_shape, dtype=torch.float64)
    with torch.no_grad():
        expected, got_plain, got_fast = evaluate(compiled.graph, plain.state_dict(), x), plain(x), fast(x)
        if isinstance(expected, dict):  # `outputs dict(...)` (the segmentation models): each tensor
            assert list(got_plain) == list(got_fast) == list(expected)
            triples = [(got_plain[k], got_fast[k], expected[k]) for k in expected]
        else:
            triples = [(got_plain, got_fast, expected)]
        for a, b, want in triples:
            torch.testing.assert_close(a, want, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(b, want, rtol=1e-9, atol=1e-9 * float(want.abs().max()))
