"""``archc --emit torch --optimize``: BatchNorm folding and sibling 1×1 fusion.

Expected values come from torchvision: its models (random init, BN affine parameters
randomised, running statistics measured on random images, so folding changes every
weight) are the reference outputs, and the fusions expected per block are counted by hand
from torchvision's ``inception.py`` / ``googlenet.py`` (listed below).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
import warnings

import pytest
import torch
import torchvision.models as models
from archlang.backends.torch import optimize as torch_optimize  # noqa: E402
from bn_stats import randomize_bn
from conftest import assert_ruff_clean
from graph_reference import evaluate
from hypothesis import HealthCheck, given, settings
from strategies import spec_cases  # noqa: E402

import archlang  # noqa: E402

# Sibling 1×1 convs that read the block input, by hand from torchvision 0.29's source
# (every one is BasicConv2d(kernel_size=1), stride 1, no padding, BN + ReLU):
#   InceptionA: branch1x1, branch5x5_1, branch3x3dbl_1 (branch_pool reads the avg pool)
#   InceptionB: only branch3x3dbl_1 is 1×1 (branch3x3 is 3×3/2): nothing to fuse
#   InceptionC: branch1x1, branch7x7_1, branch7x7dbl_1
#   InceptionD: branch3x3_1, branch7x7x3_1
#   InceptionE: branch1x1, branch3x3_1, branch3x3dbl_1
#   GoogLeNet Inception: branch1, branch2[0], branch3[0] (branch4[1] reads the max pool)
V3_FUSED = {
    **{b: ["branch1x1", "branch5x5_1", "branch3x3dbl_1"] for b in ("Mixed_5b", "Mixed_5c", "Mixed_5d")},
    **{b: ["branch1x1", "branch7x7_1", "branch7x7dbl_1"] for b in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e")},
    "Mixed_7a": ["branch3x3_1", "branch7x7x3_1"],
    **{b: ["branch1x1", "branch3x3_1", "branch3x3dbl_1"] for b in ("Mixed_7b", "Mixed_7c")},
}
GOOGLENET_FUSED = {
    f"inception{b}": ["branch1", "branch2.0", "branch3.0"]
    for b in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
}

# Small inputs keep the suite fast: GoogLeNet at 64×64 (its aux heads pool adaptively),
# Inception v3 at 75×75, its smallest valid size, with the aux head off (it needs 299).
CASES = {
    "googlenet": (models.googlenet, 64, {}, GOOGLENET_FUSED),
    "inception_v3": (models.inception_v3, 75, {"aux_logits": False}, V3_FUSED),
}


def _calibrated(name: str) -> torch.nn.Module:
    """torchvision's model (aux heads included, so their keys are in the state_dict) with
    random BN affine parameters and running statistics measured on random images."""
    factory, size, _, _ = CASES[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = factory(weights=None, aux_logits=True, init_weights=True)
    g = torch.Generator().manual_seed(1)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # the statistics of the calibration batch
        aux = getattr(model, "AuxLogits", None)
        if name == "inception_v3":
            model.AuxLogits = None  # its 5×5 conv needs a 299 input; train mode would run it
        model.train()
        model(torch.randn(32, 3, size, size, generator=g))
        if name == "inception_v3":
            model.AuxLogits = aux
    return model.eval()


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    """(name, torchvision model, optimized model, input)."""
    name = request.param
    _, size, params, _ = CASES[name]
    reference = _calibrated(name)
    optimized = torch_optimize.optimize(name, reference.state_dict(), input_shape=(3, size, size), **params)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    return name, reference, optimized, x


def _assert_accurate(out, reference, x):
    """Float32: within 1e-4 of torchvision, or, where random (untrained) weights amplify
    rounding so much that torchvision itself is farther than that from its own float64
    result (Inception v3 at 75×75: about 1.5e-3 on logits of about 14), no farther from
    the float64 result than twice torchvision's own float32 error."""
    with torch.inference_mode():
        ref = reference(x)
        exact = copy.deepcopy(reference).double()(x.double())
    assert ref.abs().max() > 0.1  # calibrated: logits of order 1, so the tolerance means something
    own_error = (ref.double() - exact).abs().max().item()
    if own_error < 5e-5:
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert (out.double() - exact).abs().max().item() <= max(1e-4, 2 * own_error)


def test_optimized_equals_torchvision_in_eval(case):
    name, reference, optimized, x = case
    assert not optimized.training
    with torch.inference_mode():
        out = optimized(x)
    assert out.shape == (2, 1000)
    _assert_accurate(out, reference, x)


def test_folding_and_fusion_are_exact_in_float64(case):
    """In float64 the rewrite is exact up to rounding: any mistake in the folding formula,
    the split order or the concatenation would show far above 1e-9."""
    name, reference, _, x = case
    _, size, params, _ = CASES[name]
    reference.double()
    try:
        optimized = torch_optimize.optimize(
            name, reference.state_dict(), input_shape=(3, size, size), dtype=torch.float64, **params
        )
        with torch.inference_mode():
            ref, out = reference(x.double()), optimized(x.double())
    finally:
        reference.float()
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref, atol=1e-9, rtol=1e-9)


def test_fused_convs_per_block_match_the_hand_count(case):
    name, reference, optimized, _ = case
    expected = CASES[name][3]
    fused = {n.rpartition(".")[0]: list(m.widths) for n, m in optimized.named_modules() if hasattr(m, "widths")}
    assert fused == expected
    # widths are the out_channels of torchvision's convs, in split order
    for block, units in expected.items():
        module = dict(optimized.named_modules())[f"{block}.fused_1x1"]
        tv_widths = [reference.get_submodule(f"{block}.{u}").conv.out_channels for u in units]
        assert list(module.widths.values()) == tv_widths
        assert module.conv.kernel_size == (1, 1) and module.conv.out_channels == sum(tv_widths)


def test_no_batchnorm_and_conv_and_param_counts(case):
    name, reference, optimized, _ = case
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in optimized.modules())
    main = [(n, m) for n, m in reference.named_modules() if not n.startswith(("aux", "AuxLogits"))]
    tv_convs = sum(isinstance(m, torch.nn.Conv2d) for _, m in main)
    removed = sum(len(units) - 1 for units in CASES[name][3].values())
    assert sum(isinstance(m, torch.nn.Conv2d) for m in optimized.modules()) == tv_convs - removed
    # each BN's weight and bias (2 x C) become one conv bias (C); aux heads are gone
    tv_params = sum(p.numel() for _, m in main for p in m.parameters(recurse=False))
    bn_channels = sum(m.num_features for _, m in main if isinstance(m, torch.nn.BatchNorm2d))
    assert sum(p.numel() for p in optimized.parameters()) == tv_params - bn_channels


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_file_imported_from_disk_gives_the_same_result(tmp_path, case):
    from click.testing import CliRunner

    from archlang.cli.main import main

    name, reference, optimized, x = case
    _, size, params, _ = CASES[name]
    out = tmp_path / f"{name}_opt.py"
    args = [name, "--emit", "torch", "--optimize", "-o", str(out), "--input", f"3x{size}x{size}"]
    for key, value in params.items():
        args += ["--set", f"{key}={str(value).lower()}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    module = _load(out, f"{name}_opt")
    network = {"googlenet": "GoogLeNet", "inception_v3": "Inception3"}[name]
    model = getattr(module, network).from_unoptimized(reference.state_dict())
    assert not model.training
    with torch.inference_mode():
        mine = model(x)
        torch.testing.assert_close(mine, optimized(x), atol=0, rtol=0)  # the same code and weights


@pytest.fixture(scope="module")
def sources():
    return {name: torch_optimize.emit(archlang.compile_spec(name)) for name in CASES}


@pytest.mark.parametrize("config", [[], ["--line-length", "120"]], ids=["default", "project"])
def test_emitted_source_is_ruff_clean(tmp_path, sources, config):
    for name, source in sources.items():
        (tmp_path / f"{name}.py").write_text(source)
    assert_ruff_clean(tmp_path, config=config)


def test_emitted_source_is_deterministic(sources):
    code = (
        "import archlang, sys; from archlang.backends.torch import optimize as torch_optimize; "
        "sys.stdout.write(torch_optimize.emit(archlang.compile_spec('googlenet')))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert other.stdout == sources["googlenet"]
    assert torch_optimize.emit(archlang.compile_spec("inception_v3")) == sources["inception_v3"]


def test_emitted_source_reads_like_the_blocks(sources):
    v3 = sources["inception_v3"]
    # one class per block template, the fused conv named and listing what it replaces
    for cls in ("InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE", "Inception3"):
        assert f"\nclass {cls}(nn.Module):" in v3
    assert "InceptionAux" not in v3 and "BatchNorm2d(" not in v3 and "dropout" not in v3.lower().split('"""')[-1]
    assert '{"branch1x1": 64, "branch5x5_1": 48, "branch3x3dbl_1": 64}' in v3
    assert '{"branch1x1": 192, "branch7x7_1": c7, "branch7x7dbl_1": c7}' in v3  # a template parameter
    assert "branch1x1, branch5x5_1, branch3x3dbl_1 = self.fused_1x1(x)" in v3
    g = sources["googlenet"]
    assert '{"branch1": ch1x1, "branch2.0": ch3x3red, "branch3.0": ch5x5red}' in g


# A spec that exercises the fusion rules: which 1×1 siblings may and may not be fused.
RULES = """
network Rules() {
  input 8x8x8
  unit conv = conv_bn_relu(eps=0.001)
  concat {
    a: conv(4, 1)
    b: { conv(6, 1); conv(4, 3, padding=1) }
    s: { conv(4, 1, stride=2); conv(4, 1, padding=2) }
    g: conv(4, 1, groups=2)
    r: conv2d(4, 1)
    n: conv2d(5, 1)
    k: conv(4, 3, padding=1)
  }
  global_avgpool
  flatten
  fc: linear(10)
}
"""


def test_fusion_rules_on_a_small_spec():
    """Fused: a + b.0 (1×1, stride 1, BN + ReLU) and r + n (bare 1×1 convs, no activation).
    Not fused: s.0 (stride 2), g (groups=2), k (3×3), and no unit with a bare conv (their
    activations differ)."""
    torch.manual_seed(0)
    plain = archlang.build(RULES)
    randomize_bn(plain, seed=3, affine=True)
    g = torch.Generator().manual_seed(103)
    plain.eval()
    optimized = torch_optimize.optimize(RULES, plain.state_dict())
    fused = {n: (dict(m.widths), type(m).__name__) for n, m in optimized.named_modules() if hasattr(m, "widths")}
    assert fused == {
        "fused_1x1": ({"a": 4, "b.0": 6}, "FusedConv1x1ReLU"),
        "fused_1x1_2": ({"r": 4, "n": 5}, "FusedConv1x1"),
    }
    x = torch.randn(2, 8, 8, 8, generator=g)
    with torch.inference_mode():
        torch.testing.assert_close(optimized(x), plain(x), atol=1e-5, rtol=1e-5)


NEW_OPS = """
network NewOps() {
  input 8x8x8
  unit conv = conv_bn_relu
  concat {
    a: conv(4, 1)
    b: { conv(6, 1); hardswish; conv(4, 3, padding=1); stochastic_depth(0.2) }
    h: { split(2, 1); conv2d(4, 1); batchnorm; gelu }
  }
  channel_shuffle(3)
  silu
  sd: stochastic_depth(0.1, mode="batch")
  m: spatial_mean
  fc: linear(10)
}
"""


def test_new_ops_optimize_to_the_same_function():
    """hardswish, gelu, silu, split, channel_shuffle and spatial_mean are kept, stochastic
    depth (the identity in eval) is dropped outside sequentials (inside, as dropout, it stays:
    removing it would renumber the keys), BN folds and a + b.0 fuse around them."""
    torch.manual_seed(0)
    plain = archlang.build(NEW_OPS).double()
    randomize_bn(plain, seed=3)
    g = torch.Generator().manual_seed(103)
    plain.eval()
    assert type(plain.sd).__name__ == "StochasticDepth"
    optimized = torch_optimize.optimize(NEW_OPS, plain.state_dict(), dtype=torch.float64)
    assert "BatchNorm2d" not in {type(m).__name__ for m in optimized.modules()} and not hasattr(optimized, "sd")
    assert any(dict(getattr(m, "widths", {})) == {"a": 4, "b.0": 6} for m in optimized.modules())
    x = torch.randn(2, 8, 8, 8, generator=g, dtype=torch.float64)
    with torch.inference_mode():
        torch.testing.assert_close(optimized(x), plain(x), atol=1e-12, rtol=1e-12)


def test_no_batchnorm_network_paper_googlenet():
    """The paper's GoogLeNet has biased convs and no BN: fusion alone, exact."""
    params = {"variant": "paper", "aux_logits": False}
    torch.manual_seed(0)
    plain = archlang.build("googlenet", **params).eval()
    optimized = torch_optimize.optimize("googlenet", plain.state_dict(), **params)
    assert len([m for m in optimized.modules() if hasattr(m, "widths")]) == 9
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        torch.testing.assert_close(optimized(x), plain(x), atol=1e-5, rtol=1e-4)


def test_channels_last_is_optional(case):
    name, reference, optimized, x = case
    _, size, params, _ = CASES[name]
    source = torch_optimize.emit(archlang.compile_spec(name, params or None, (3, size, size)), channels_last=False)
    assert "channels_last" not in source
    nchw = torch_optimize.optimize(
        name, reference.state_dict(), input_shape=(3, size, size), channels_last=False, **params
    )
    assert nchw.fc.weight.is_contiguous()
    conv = next(m for m in optimized.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = nchw(x)
    _assert_accurate(out, reference, x)


def test_transform_input_is_kept_and_clean(tmp_path):
    params = {"transform_input": True, "aux_logits": False}
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = models.googlenet(weights=None, init_weights=True, **params).eval()
    optimized = torch_optimize.optimize("googlenet", reference.state_dict(), input_shape=(3, 64, 64), **params)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        torch.testing.assert_close(optimized(x), reference(x), atol=1e-4, rtol=1e-4)
    path = tmp_path / "t.py"
    path.write_text(torch_optimize.emit(archlang.compile_spec("googlenet", params)))
    assert_ruff_clean(path)


def test_emitting_does_not_import_torch():
    code = (
        "import sys, archlang; from archlang.backends.torch import optimize as torch_optimize; "
        "torch_optimize.emit(archlang.compile_spec('googlenet')); "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=spec_cases())
def test_random_specs_optimize_to_the_same_function(case):
    """Random valid specs (``strategies.spec_cases``: every unit style, bare batchnorm,
    pools, concat, add, repeats, blocks): the optimized model computes the plain model's
    eval function, checked in float64 with random BN statistics."""
    compiled = archlang.compile_spec(case.text)
    torch.manual_seed(0)
    plain = archlang.build(compiled).double()
    randomize_bn(plain, seed=6)
    g = torch.Generator().manual_seed(106)
    plain.eval()
    optimized = torch_optimize.optimize(compiled, plain.state_dict(), dtype=torch.float64)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in optimized.modules()) or "batchnorm" in case.text
    x = torch.randn(2, *case.input_shape, generator=g, dtype=torch.float64)
    with torch.inference_mode():
        expected = evaluate(compiled.graph, plain.state_dict(), x)  # independent of both generators
        torch.testing.assert_close(plain(x), expected, atol=1e-9, rtol=1e-9)
        torch.testing.assert_close(optimized(x), expected, atol=1e-9, rtol=1e-9)


def test_build_with_optimize_flag_gives_the_optimized_module():
    import archlang

    model = archlang.build("googlenet", optimize=True, aux_logits=False)
    kinds = {type(m).__name__ for m in model.modules()}
    assert "BatchNorm2d" not in kinds  # folded: the optimized module has no BN at all
    assert not model.training


# Residual add, ReLU after it, and a concat of fused 1×1 siblings: the patterns the oneDNN
# Graph fuser turns into partitions (conv + add + ReLU, conv + ReLU).
FROZEN = """
network Tiny() {
  input 3x16x16
  unit conv = conv_bn_relu
  stem: conv(8, 3, padding=1)
  add {
    { conv(8, 3, padding=1); conv2d(8, 3, padding=1); batchnorm }
    identity
  }
  relu
  concat {
    a: conv(4, 1)
    b: { conv(6, 1); conv(4, 3, padding=1) }
  }
  global_avgpool
  flatten
  fc: linear(10)
}
"""


@pytest.mark.parametrize("fusion_before", [False, True])
def test_frozen_runs_fused_and_agrees_with_eager(fusion_before):
    """``optimize.Frozen``: traced on a batch of 1, called on other batch sizes, float32
    outputs of the eager build (random BN statistics and affine parameters) within 1e-4; the
    graph TorchScript ran holds oneDNN fusion groups; the process-wide fuser switch is as
    the caller left it. No timing."""
    torch.manual_seed(0)
    plain = archlang.build(FROZEN).eval()
    randomize_bn(plain, seed=7, affine=True)
    optimized = torch_optimize.optimize(FROZEN, plain.state_dict())
    g = torch.Generator().manual_seed(107)
    torch.jit.enable_onednn_fusion(fusion_before)
    try:
        frozen = torch_optimize.Frozen(optimized, torch.randn(1, 3, 16, 16, generator=g))
        for call, batch in enumerate((2, 2, 3)):
            x = torch.randn(batch, 3, 16, 16, generator=g)
            out = frozen(x)
            assert torch.jit.onednn_fusion_enabled() is fusion_before
            with torch.inference_mode():
                expected = plain(x)
            assert expected.abs().max() > 0.5  # the tolerance means something
            torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)
            if call == 1:  # TorchScript profiles the first call, runs the fused graph from the second
                assert "prim::oneDNNFusionGroup" in str(torch.jit.last_executed_optimized_graph())
    finally:
        torch.jit.enable_onednn_fusion(False)


# One conv on a 3×16×16 input: its float32 output, 8×16×16×4 = 8192 bytes per image, is
# the largest tensor the traced model computes (the NHWC input copy is 3×16×16×4 = 3072).
CHUNKED = """
network Chunked() {
  input 3x16x16
  conv2d(8, 3, padding=1)
  relu
  global_avgpool
  flatten
  fc: linear(5)
}
"""


class _Recorder:
    """Calls a frozen module and records the batch size of each call."""

    def __init__(self, module):
        self.module, self.batches = module, []

    def __call__(self, x):
        self.batches.append(len(x))
        return self.module(x)


def test_frozen_runs_large_batches_in_sub_batches_under_the_limit():
    """A batch whose largest activation would pass ``chunk_bytes`` runs as near-equal
    sub-batches under it (3 images of 8192 bytes fit 3 × 8192 + 1; a batch of 7 runs as 3,
    2, 2), and the concatenated output is the whole batch's (to float32 rounding: kernels
    may block a batch of 3 differently from one of 7)."""
    torch.manual_seed(0)
    model = archlang.build(CHUNKED, optimize=True)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(7, 3, 16, 16, generator=g)
    chunked = torch_optimize.Frozen(model, x[:2], chunk_bytes=3 * 8192 + 1)
    whole = torch_optimize.Frozen(model, x[:2], chunk_bytes=None)
    assert (chunked.chunk, whole.chunk) == (3, None)
    chunked.module = recorder = _Recorder(chunked.module)
    for _ in range(3):  # past TorchScript's profiling calls
        out = chunked(x)
    assert recorder.batches[-3:] == [3, 2, 2]
    for _ in range(3):
        expected = whole(x)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=1e-6)
    with torch.inference_mode():
        torch.testing.assert_close(out, model(x), atol=1e-5, rtol=1e-5)
    recorder.batches.clear()
    chunked(x[:3])  # a batch within the limit runs whole
    assert recorder.batches == [3]
    # one image over the limit: sub-batches cannot help, the batch runs whole
    assert torch_optimize.Frozen(model, x[:2], chunk_bytes=8191).chunk is None


class _Pair(torch.nn.Module):
    def forward(self, x):
        y = torch.relu(x) * 2
        return y, y.mean((2, 3))


class _AcrossBatch(torch.nn.Module):
    def forward(self, x):
        return x.sum(0)  # not batch-first: splitting the batch would change the result


def test_frozen_sub_batches_only_batch_first_outputs():
    """Tuple outputs are concatenated element by element; a model whose output is not
    batch-first never runs in sub-batches."""
    x = torch.randn(5, 2, 4, 4)
    pair = torch_optimize.Frozen(_Pair(), x[:2], chunk_bytes=2 * 2 * 4 * 4 * 4)
    assert pair.chunk == 2  # the largest tensors (x * 2, relu(x)) are 128 bytes per item
    for _ in range(3):
        got = pair(x)
    torch.testing.assert_close(got, _Pair()(x), atol=0, rtol=0)
    # (2, 4, 4) from a batch of 3: the leading size is not the batch
    assert torch_optimize.Frozen(_AcrossBatch(), x[:3], chunk_bytes=64).chunk is None


def test_frozen_default_limit_on_inception_v3():
    """The default limit is glibc's mmap ceiling, 32 MiB: Inception v3's largest activation
    is Conv2d_2b's output, 64 × 147 × 147 float32 = 5,531,904 bytes per image (torchvision's
    table of shapes), so 6 images fit and a batch of 8 runs as two of 4."""
    assert torch_optimize.GLIBC_MMAP_CEILING == 32 * 1024 * 1024
    model = archlang.build("inception_v3", optimize=True, aux_logits=False)
    frozen = torch_optimize.Frozen(model, torch.randn(1, 3, 299, 299))
    assert frozen.chunk == (32 * 1024 * 1024) // (64 * 147 * 147 * 4) == 6
