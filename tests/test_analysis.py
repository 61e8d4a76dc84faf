"""Static analyses against outside numbers: FACTS.md (papers, torchvision, fvcore), the
per-block torchvision/fvcore figures in tests/data/torchvision_blocks.json, and small
networks whose figures are worked out by hand in the test."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import archlang
from archlang.analysis import compute, memory, params, receptive
from archlang.ops import Op

DATA = json.loads((Path(__file__).parent / "data" / "torchvision_blocks.json").read_text())


@pytest.fixture(scope="module")
def googlenet():
    return archlang.analyze("specs/googlenet.arch", aux_logits=False)


@pytest.fixture(scope="module")
def googlenet_aux():
    return archlang.analyze("specs/googlenet.arch")


@pytest.fixture(scope="module")
def inception_v3():
    return archlang.analyze("specs/inception_v3.arch")


TABLES = {
    "params": params.PARAMS,
    "buffers": params.BUFFERS,
    "macs": compute.MACS,
    "flops": compute.FLOPS,
    "all_ops": compute.ALL_OPS,
    "rf": receptive.RF_RULES,
    "aliases": memory.ALIASES,
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_op_has_a_row(name):
    assert set(TABLES[name]) == set(Op), f"{name} lacks rows for {set(Op) - set(TABLES[name])}"


# ---- totals (FACTS.md, "Totals" table) --------------------------------------------------


def test_googlenet_totals(googlenet):
    t = googlenet.totals
    assert t.params == 6_624_904
    assert t.buffers == 14_617  # torchvision buffers_total, no aux
    assert t.macs == 1_498_376_192
    assert t.flops == 1_504_878_688
    assert googlenet.aux_totals == {}


def test_inception_v3_totals(inception_v3):
    t, aux = inception_v3.totals, inception_v3.aux_totals["AuxLogits"]
    assert t.params + aux.params == 27_161_264
    assert t.params == 23_834_568  # torchvision inception_v3 without aux
    assert t.buffers + aux.buffers == 36_320
    assert t.macs == 5_713_216_096
    assert t.flops == 5_731_282_144
    assert aux.macs == 5_683_200  # FACTS: AuxLogits MACs (training only)


def test_googlenet_aux_heads_counted_apart(googlenet_aux):
    a = googlenet_aux
    assert a.totals.params == 6_624_904 and a.totals.flops == 1_504_878_688
    blocks = {b["name"]: b for b in DATA["googlenet_aux"]["blocks"]}
    assert a.aux_totals["aux1"].params == blocks["aux1"]["params"]
    assert a.aux_totals["aux2"].params == blocks["aux2"]["params"]
    assert a.totals.params + sum(t.params for t in a.aux_totals.values()) == 13_004_888
    assert a.totals.buffers + sum(t.buffers for t in a.aux_totals.values()) == DATA["googlenet_aux"]["buffers_total"]
    # FACTS: both aux heads add 8,372,224 MACs in training.
    assert sum(t.macs for t in a.aux_totals.values()) == 8_372_224


# ---- per block (torchvision children, fvcore by module) ----------------------------------


@pytest.mark.parametrize("key,fixture", [("googlenet_noaux", "googlenet"), ("inception_v3_aux", "inception_v3")])
def test_per_block_params_flops_shapes(key, fixture, request):
    a = request.getfixturevalue(fixture)
    checked = 0
    for b in DATA[key]["blocks"]:
        if b["name"] in a.aux_totals:
            assert a.aux_totals[b["name"]].params == b["params"], b["name"]
            continue
        got = a.block(b["name"])
        assert (got.params, got.flops) == (b["params"], b["flops"]), b["name"]
        out = a.last_node(b["name"]).shape
        # torchvision's dropout keeps 2048×1×1 in inception_v3 (flatten comes after it).
        assert out == tuple(b["out"]) or (b["name"] == "dropout" and out == (b["out"][0],)), b["name"]
        checked += 1
    assert checked == len(DATA[key]["blocks"]) - len(a.aux_totals)


# FACTS.md, torchvision Inception3 table (params, MACs per module).
V3_BLOCK_MACS = {
    "Conv2d_1a_3x3": 19_181_664,
    "Conv2d_2a_3x3": 199_148_544,
    "Conv2d_2b_3x3": 398_297_088,
    "Conv2d_3b_1x1": 27_284_480,
    "Conv2d_4a_3x3": 696_867_840,
    "Mixed_5b": 312_345_600,
    "Mixed_5c": 338_688_000,
    "Mixed_5d": 348_096_000,
    "Mixed_6a": 401_937_408,
    "Mixed_6b": 374_063_104,
    "Mixed_6c": 487_702_528,
    "Mixed_6d": 487_702_528,
    "Mixed_6e": 617_914_368,
    "Mixed_7a": 291_004_416,
    "Mixed_7b": 322_437_120,
    "Mixed_7c": 388_497_408,
    "fc": 2_048_000,
}


def test_inception_v3_block_macs(inception_v3):
    for name, macs in V3_BLOCK_MACS.items():
        assert inception_v3.block(name).macs == macs, name


def test_fvcore_by_operator(googlenet, inception_v3):
    # FACTS.md "fvcore by operator".
    def by_op(a, op):
        return sum(c.flops for c in a.nodes.values() if c.op is op and c.aux is None)

    assert by_op(googlenet, Op.CONV2D) == 1_497_352_192
    assert by_op(googlenet, Op.BATCHNORM) == 6_452_320
    assert by_op(googlenet, Op.LINEAR) == 1_024_000
    assert by_op(googlenet, Op.ADAPTIVE_AVGPOOL) == 50_176
    assert by_op(inception_v3, Op.CONV2D) == 5_711_168_096
    assert by_op(inception_v3, Op.BATCHNORM) == 17_934_976
    assert by_op(inception_v3, Op.ADAPTIVE_AVGPOOL) == 131_072


def test_paper_googlenet_params_and_macs():
    # FACTS.md: the paper / Caffe bvlc_googlenet main path.
    a = archlang.analyze("specs/googlenet.arch", variant="paper", aux_logits=False)
    assert a.totals.params == 6_998_552
    assert a.totals.macs == 1_582_671_872


# ---- receptive fields -------------------------------------------------------------------


def test_inception_v3_rf_at_mixed_7c(inception_v3):
    # google-research/receptive_field README: 1311 / 32 / 618.
    rf = inception_v3.last_node("Mixed_7c").rf
    for axis in (rf.h, rf.w):
        assert (axis.size, axis.stride, axis.padding) == (1311, 32, 618)
    assert not rf.misaligned
    assert not any(c.rf.misaligned for c in inception_v3.nodes.values())
    assert inception_v3.output_rf.whole  # after global pooling and fc


def test_rf_hand_computed_chain():
    # conv 3x3/2 pad 1 -> maxpool 3x3/2 -> conv 3x3 dilation 2 pad 2 -> conv 1x7 pad (0, 3)
    #  r: 1 -> 3 -> 3+2*2=7 -> 7+(5-1)*4=23 (H) ; W: 23 -> 23+6*4=47
    #  j: 1 -> 2 -> 4 -> 4 -> 4 ; p: 0 -> 1 -> 1+0*2=1 -> 1+2*4=9 -> H 9, W 9+3*4=21
    a = archlang.analyze("""network T() {
      input 3x64x64
      c1: conv2d(8, 3, stride=2, padding=1)
      p1: maxpool(3, stride=2)
      c2: conv2d(8, 3, dilation=2, padding=2)
      c3: conv2d(8, (1, 7), padding=(0, 3))
    }""")
    rf = a.nodes["c3"].rf
    assert (rf.h.size, rf.h.stride, rf.h.padding) == (23, 4, 9)
    assert (rf.w.size, rf.w.stride, rf.w.padding) == (47, 4, 21)
    assert a.nodes["p1"].rf.h == archlang.analysis.AxisRF(7, 4, 1)


def test_rf_misaligned_concat_flagged():
    # Branch a: 1x1/2 centres unit 0 on pixel 0; branch b: 2x2/2 on pixel 0.5.
    a = archlang.analyze("""network T() {
      input 3x8x8
      concat { a: conv2d(8, 1, stride=2); b: conv2d(8, 2, stride=2) }
    }""")
    rf = a.nodes["concat"].rf
    assert rf.h.size == 2 and len(rf.misaligned) == 2
    assert "centre 0.5" in rf.misaligned[0]


def test_rf_adaptive_pool_divisible_is_plain_pooling():
    a = archlang.analyze("""network T() {
      input 3x8x8
      adaptive_avgpool(2)
      flatten
    }""")
    assert a.nodes["adaptive_avgpool"].rf.h == archlang.analysis.AxisRF(4, 4, 0)
    assert a.nodes["flatten"].rf.whole


# ---- hand-computed costs and memory -----------------------------------------------------

SMALL = """network T() {
  input 3x8x8
  conv: conv2d(4, 3, padding=1)
  relu
  flatten
  fc: linear(10)
}"""


def test_small_network_costs():
    a = archlang.analyze(SMALL)
    conv, fc = a.nodes["conv"], a.nodes["fc"]
    assert conv.params == 4 * 3 * 9 + 4 and fc.params == 256 * 10 + 10
    assert conv.macs == 4 * 3 * 9 * 64 and fc.macs == 2560
    assert conv.flops == conv.macs  # fvcore counts no bias adds
    assert conv.all_ops == 2 * conv.macs  # with bias: one mul and one add per MAC
    assert a.nodes["relu"].all_ops == 256


def test_all_ops_rules():
    a = archlang.analyze("""network T() {
      input 2x5x5
      c: conv2d(3, 1, bias=false)
      m: maxpool(3, stride=1, padding=1)
      p: avgpool(3, stride=1, padding=1)
      g: adaptive_avgpool(3)
    }""")
    # no bias: each of the 75 outputs is a 2-term dot product -> 2 muls + 1 add
    assert a.nodes["c"].all_ops == 75 * (2 + 1)
    assert a.nodes["m"].all_ops == 75 * 8  # 8 comparisons per 3x3 window
    assert a.nodes["p"].all_ops == 75 * 9  # 8 adds + 1 divide
    # adaptive bins for 5 -> 3: [0,2) [1,4) [3,5) -> 2+3+2 = 7 per axis
    assert a.nodes["g"].all_ops == 3 * 7 * 7
    assert a.nodes["g"].flops == 75  # fvcore: input numel


def test_peak_memory_hand_computed():
    # per sample elements: input 192, conv 256, relu 256, flatten = view of relu, fc 10.
    # Steps: input 192 | conv 192+256 | relu 256+256 | flatten 256 | fc 256+10 -> peak 512 at relu.
    a = archlang.analyze(SMALL, dtype="int8", batch=3)
    assert a.peak_activation_bytes == 512 * 3 and a.peak_at == "relu"
    assert a.nodes["conv"].out_bytes == 256 * 3
    b = archlang.analyze(SMALL, dtype="float64")
    assert b.peak_activation_bytes == 512 * 8


@pytest.mark.parametrize("dtype,width", [("float32", 4), ("float16", 2), ("bfloat16", 2), ("float64", 8), ("int8", 1)])
def test_dtype_widths(dtype, width):
    a = archlang.analyze(SMALL, dtype=dtype)
    assert a.nodes["input"].out_bytes == 192 * width


def test_bad_dtype_and_batch():
    with pytest.raises(ValueError, match="dtype"):
        archlang.analyze(SMALL, dtype="float8")
    with pytest.raises(ValueError, match="batch"):
        archlang.analyze(SMALL, batch=0)


def test_keywords_input_shape_and_params():
    a = archlang.analyze("googlenet", input_shape=(3, 112, 112), params={"aux_logits": False}, num_classes=10)
    assert a.input_shape == (3, 112, 112)
    assert a.nodes["fc"].shape == (10,)
    assert a.nodes["conv1/conv"].shape == (64, 56, 56)


def test_analyze_accepts_compiled():
    compiled = archlang.compile_spec(SMALL)
    assert archlang.analyze(compiled).totals.params == 112 + 2570


def test_block_unknown_path(googlenet):
    with pytest.raises(KeyError):
        googlenet.block("inception9z")


def test_analysis_does_not_import_torch():
    code = (
        "import sys, archlang; archlang.analyze('specs/inception_v3.arch'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'fvcore')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent
    )
    assert out.stdout.strip() == "[]"
