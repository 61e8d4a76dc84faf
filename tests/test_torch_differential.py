"""Differential tests: what PyTorch actually computes vs what the compiler says statically.

For both specs and for random valid specs (``strategies.spec_cases``): the output shape of
every submodule (forward hooks keyed by scope path) equals the shape pass's; the parameter
count equals the graph's; fvcore's FLOP count of the built module equals the analysis's; and
the generated source builds the same module as the in-memory builder.
"""

from __future__ import annotations

import importlib.util
import logging

import pytest
from hypothesis import HealthCheck, given, settings

torch = pytest.importorskip("torch")

from archlang.backends.torch.build import build_compiled  # noqa: E402
from archlang.backends.torch.codegen import emit  # noqa: E402
from archlang.backends.torch.plan import module_outputs, plan  # noqa: E402
from strategies import spec_cases  # noqa: E402

import archlang  # noqa: E402
from archlang.summary import count_params  # noqa: E402


def observed_shapes(model, compiled, x) -> dict[str, tuple]:
    """Run ``model`` on ``x``; the per-sample output shape of every submodule that ran."""
    names = module_outputs(plan(compiled.graph))
    seen = {}
    handles = []
    for name, module in model.named_modules():
        if name in names:

            def hook(mod, args, out, name=name):
                seen[name] = tuple(out.shape[1:])

            handles.append(module.register_forward_hook(hook))
    with torch.inference_mode():
        model(x)
    for h in handles:
        h.remove()
    return seen, names


def check_shapes(model, compiled, batch=2):
    g = compiled.graph
    x = torch.randn(batch, *g.graph["input_shape"])
    seen, names = observed_shapes(model.eval(), compiled, x)
    main = {n for n, nid in names.items() if g.nodes[nid]["aux"] is None}
    assert main <= set(seen)  # every main-path module ran
    for name, shape in seen.items():
        assert shape == tuple(g.nodes[names[name]]["shape"]), name
    return seen


def fvcore_flops(model, shape) -> int:
    fvcore = pytest.importorskip("fvcore.nn")
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    counter = fvcore.FlopCountAnalysis(model.eval(), torch.randn(1, *shape))
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    return int(counter.total())


def analysis_totals(compiled):
    """(params of every node including aux heads, eval-mode fvcore FLOPs) from the analysis."""
    analysis = pytest.importorskip("archlang.analysis")
    result = analysis.analyze(compiled)
    params = result.totals.params + sum(t.params for t in result.aux_totals.values())
    return params, result.totals.flops


@pytest.fixture(scope="module")
def googlenet():
    compiled = archlang.compile_spec("googlenet")
    return compiled, build_compiled(compiled).eval()


def test_googlenet_shapes_params_flops(googlenet):
    compiled, model = googlenet
    seen = check_shapes(model, compiled, batch=1)
    assert seen["inception4e"] == (832, 14, 14)  # Table 1 of the paper, torchvision
    params = sum(p.numel() for p in model.parameters())
    assert params == count_params(compiled.graph) == 13_004_888  # FACTS.md, both aux heads
    analysed_params, analysed_flops = analysis_totals(compiled)
    assert analysed_params == params
    # fvcore on the built module; FACTS.md gives 1,504,878,688 for torchvision's googlenet
    assert fvcore_flops(model, compiled.graph.graph["input_shape"]) == analysed_flops == 1_504_878_688


def test_inception_v3_shapes_and_params():
    compiled = archlang.compile_spec("inception_v3")
    model = build_compiled(compiled).eval()
    seen = check_shapes(model, compiled, batch=1)
    assert seen["Mixed_6e"] == (768, 17, 17) and seen["Mixed_7c"] == (2048, 8, 8)  # FACTS.md
    assert sum(p.numel() for p in model.parameters()) == count_params(compiled.graph) == 27_161_264


def _import(source: str, path):
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"gen_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(case=spec_cases())
def test_random_specs_agree_with_static_analysis(case, tmp_path):
    compiled = archlang.compile_spec(case.text)
    torch.manual_seed(0)
    model = build_compiled(compiled).eval()
    check_shapes(model, compiled)
    out = model(torch.randn(2, *case.input_shape))
    assert tuple(out.shape[1:]) == case.output_shape  # reference formulas in strategies.py
    params = sum(p.numel() for p in model.parameters())
    assert params == count_params(compiled.graph)
    analysed_params, analysed_flops = analysis_totals(compiled)
    assert params == analysed_params
    assert fvcore_flops(model, case.input_shape) == analysed_flops
    # the generated file builds the same module
    generated_module = _import(emit(compiled), tmp_path / "gen.py")
    network = getattr(generated_module, [n for n in dir(generated_module) if n == compiled.graph.graph["network"]][0])
    generated = network().eval()
    assert list(generated.state_dict()) == list(model.state_dict())
    generated.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *case.input_shape)
    with torch.inference_mode():
        torch.testing.assert_close(generated(x), model(x), atol=1e-5, rtol=1e-5)
