"""archc lint: each rule on its fixture (tests/lint/inNNN_*.arch, firing and clean cases),
the MAC savings computed by hand, suppression, selection, the CLI, and the real specs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import examples
from hypothesis import given, settings
from strategies import valid_specs

from archlang.cli.main import main
from archlang.compiler import compile_spec
from archlang.diagnostics import Severity
from archlang.lint import RULES, explain, run_lint
from archlang.lint.factor import asymmetric, geometric_widths, stacked_3x3
from archlang.lint.view import OP_ROLE
from archlang.ops import Op

LINT = Path(__file__).parent / "lint"
ROOT = Path(__file__).resolve().parent.parent


def findings(fixture: str, code: str, **kw):
    compiled = compile_spec(str(LINT / fixture), **kw)
    return [d for d in run_lint(compiled, select=(code,)) if d.code == code]


def where(diags) -> list[tuple[int, int]]:
    return [(d.span.line, d.span.col) for d in diags]


# ---- one fixture per rule -----------------------------------------------------------------


def test_in101_bottleneck_fires_early_at_milder_shrink_and_spares_pools_and_classifier():
    diags = findings("in101_bottleneck.arch", "IN101")
    # squeeze: 64x64x64 -> 8x64x64 is 8x (> 4.5 on a 64 grid); late_bad: 96 -> 8 is 12x (> 8 on 16).
    # Clean: pool1/pool2 (4x), mild (4x), late_ok (6x on a 16 grid), the global pool.
    assert where(diags) == [(8, 12), (16, 13)]
    assert "8.0×" in diags[0].message and "12.0×" in diags[1].message
    assert all(d.severity is Severity.WARNING for d in diags)


SHRINK_EARLY = """
network Shrink() {
  input 3x64x64
  unit conv = conv_relu
  a: conv(50, 3, padding=1)
  five: conv(10, 1)
  b: conv(45, 3, padding=1)
  exact: conv(10, 1)
  adaptive_avgpool(1)
  flatten
  fc: linear(10)
}
"""


def test_in101_early_limit_is_four_and_a_half():
    # docs/lint.md: on grids >= 32x32 a step may shrink H*W*C by at most 4.5x. On 64x64,
    # `five` takes 50*64*64 to 10*64*64, 5.0x: over. `exact` takes 45*64*64 to 10*64*64,
    # 4.5x: not more than the limit, silent. A limit of 5 or more misses `five`, one under
    # 4.5 flags `exact`.
    diags = [d for d in run_lint(compile_spec(SHRINK_EARLY), select=("IN101",)) if d.code == "IN101"]
    assert [d.span.line for d in diags] == [6]
    assert f"{50 / 10:.1f}×" in diags[0].message
    # Widening `five` to ceil(50 / 4.5) = 12 channels brings the step to 4.17x.
    assert "at least 12 output channels" in diags[0].help


def test_in102_pool_before_expansion():
    diags = findings("in102_pool_expand.arch", "IN102")
    assert where(diags) == [(8, 10)]  # pool1; not `reduce` (conv||pool) nor pool3 (192/128 = 1.5x)
    # The suggested conv beside the pool: 3x3/2 pad 1, 32 -> 32 channels at 32x32.
    assert f"+{9 * 32 * 32 * 32 * 32:,} MACs" in diags[0].help
    assert f"+{9 * 32 * 32:,} weights" in diags[0].help
    assert "64 channels at 32×32" in diags[0].help


def test_in103_aggressive_reduction_with_cost_of_the_fix():
    diags = findings("in103_reduction.arch", "IN103")
    assert where(diags) == [(7, 8)]  # bad (128 -> 12); not ok (exactly 8x) nor head (no spatial conv after)
    # Widen to ceil(128 / 8) = 16 (+4): the 1x1 costs 128*4 per pixel, the 3x3 after it 9*4*64, on 16x16.
    assert "at least 16 channels" in diags[0].help
    assert f"+{128 * 4 * 256 + 9 * 4 * 64 * 256:,} MACs" in diags[0].help  # 720,896
    assert f"+{128 * 4 + 9 * 4 * 64:,} weights" in diags[0].help


def test_in104_stacked_3x3_savings_by_hand():
    diags = findings("in104_stacked.arch", "IN104")
    assert where(diags) == [(8, 9), (9, 10), (11, 10)]  # five, wider, seven; not already, head5
    hw = 32 * 32
    # five: 64 -> 64, 5x5 vs two 3x3 at equal width: (25 - 18) / 25 = the paper's 28%.
    orig = 25 * 64 * 64 * hw
    saved = orig - (9 * 64 * 64 + 9 * 64 * 64) * hw
    assert saved == 29_360_128 and saved / orig == pytest.approx(0.28)
    assert f"saves {saved:,} of {orig:,} MACs (28.0%)" in diags[0].help
    assert "stacked3x3(64, mid=64)" in diags[0].help
    # wider: 64 -> 144, middle width sqrt(64 * 144) = 96.
    saved = (25 * 64 * 144 - (9 * 64 * 96 + 9 * 96 * 144)) * hw
    assert f"saves {saved:,} of" in diags[1].help and "stacked3x3(144, mid=96)" in diags[1].help
    # seven: 7x7 -> three 3x3 at 64 channels: 49 vs 27.
    saved = (49 - 27) * 64 * 64 * hw
    assert f"saves {saved:,} of {49 * 64 * 64 * hw:,} MACs" in diags[2].help


def test_in105_asymmetric_on_medium_grid_by_hand():
    diags = findings("in105_asymmetric.arch", "IN105")
    assert where(diags) == [(7, 10)]  # seven on 17x17; not three (3x3), not late7 (8x8)
    orig = 49 * 64 * 64 * 17 * 17
    saved = orig - 2 * (7 * 64 * 64 * 17 * 17)  # 1x7 then 7x1, both 'same' padded
    assert saved == 41_431_040
    assert f"saves {saved:,} of {orig:,} MACs (71.4%)" in diags[0].help
    assert "factorized(64, 7, mid=64)" in diags[0].help


def test_in106_width_depth_balance():
    diags = findings("in106_balance.arch", "IN106")
    assert where(diags) == [(9, 9), (10, 10)]  # jump (16x over 1 conv), pool2 (12 convs, no widening)
    assert "16.0×" in diags[0].message and "12 conv layers" in diags[1].message
    assert all(d.severity is Severity.INFO for d in diags)


def test_in107_misaligned_concat():
    diags = findings("in107_alignment.arch", "IN107")
    assert where(diags) == [(7, 8)]  # bad; not good
    # 3x3/2 no pad: unit 0 centred on pixel (3-1)/2 = 1 of its input; 2x2/2: on 0.5.
    assert any("centres 1 vs 0.5" in n.message for n in diags[0].notes)


def test_in108_rf_exceeds_input_once():
    diags = findings("in108_rf.arch", "IN108")
    # RF by hand: 3, 5 (stride 2), 9, 13, 17 (stride 4), 25, 33 >= 32 at c7.
    assert where(diags) == [(13, 7)] and "33×33" in diags[0].message
    assert findings("in108_rf.arch", "IN108", input_shape=(3, 64, 64)) == []  # last RF 41 < 64
    assert "1 spatial layers after it" in diags[0].notes[0].message  # c8


def test_in108_silent_when_no_spatial_layer_follows():
    # RF by hand: 3, 5, 7 (stride 2), 11 >= 8 at c4, the last spatial layer.
    assert findings("in108_last_layer.arch", "IN108") == []


def test_every_rule_has_a_fixture_and_docs_row():
    docs = (ROOT / "docs" / "lint.md").read_text()
    for code in RULES:
        assert list(LINT.glob(f"{code.lower()}_*.arch")), code
        assert f"| {code} |" in docs, code


# ---- arithmetic -------------------------------------------------------------------------


def test_factorization_arithmetic():
    assert geometric_widths(64, 64, 2) == [64]
    assert geometric_widths(16, 32, 2) == [round(math.sqrt(16 * 32))]  # 23
    # A 5x5 on a 5x5 map (Inception v3's aux head): the first 3x3 runs on 3x3, not 1x1.
    f = stacked_3x3(128, 768, 5, (5, 5), (1, 1), (0, 0))
    assert f.original_macs == 25 * 128 * 768 and f.macs == 9 * 128 * 314 * 9 + 9 * 314 * 768
    assert f.saved < 0
    # Stride stays on the last layer and output sizes match: 5x5/2 pad 1 on 35 -> 17.
    f = stacked_3x3(64, 64, 5, (35, 35), (2, 2), (1, 1))
    assert f.original_macs == 25 * 64 * 64 * 17 * 17
    assert f.macs == 9 * 64 * 64 * 35 * 35 + 9 * 64 * 64 * 17 * 17
    f = asymmetric(16, 48, 5, (14, 14), (1, 1), (2, 2))
    assert f.widths == [28] and f.macs == (5 * 16 * 28 + 5 * 28 * 48) * 14 * 14


def test_op_role_table_covers_every_op():
    assert set(OP_ROLE) == set(Op)


# ---- suppression, selection ---------------------------------------------------------------

SPEC = """
block Five(c: int) {
  conv(c, 5, padding=2)
}
network N() {
  input 3x32x32
  unit conv = conv_relu
  stem: conv(64, 3, padding=1)
  a: conv(64, 5, padding=2)   # archlang: ignore[IN104]
  b: conv(64, 5, padding=2)   # archlang: ignore[IN1]
  c: conv(64, 5, padding=2)   # archlang: ignore
  d: conv(64, 5, padding=2)   # archlang: ignore[IN101, IN103]
  e: Five(64)                 # archlang: ignore[IN104]
  f: Five(64)
  flatten
  fc: linear(10)
}
"""


def test_suppression_comments():
    diags = run_lint(compile_spec(SPEC), select=("IN104",))
    # d's comment names other rules; e is silenced at its call site; f fires at the block's line,
    # so the two diagnostics are d (line 12) and the template statement (line 3, instance f).
    assert [(d.code, d.span.line) for d in diags] == [("IN104", 12), ("IN104", 3)]
    assert any("`f`" in n.message for n in diags[1].notes)


def test_select_and_ignore_by_prefix():
    compiled = compile_spec(str(LINT / "in104_stacked.arch"))
    all_codes = {d.code for d in run_lint(compiled)}
    assert all_codes == {"IN101", "IN104"}
    assert {d.code for d in run_lint(compiled, ignore=("IN104",))} == {"IN101"}
    assert {d.code for d in run_lint(compiled, select=("IN10",), ignore=("IN101",))} == {"IN104"}
    with pytest.raises(ValueError, match="IN9"):
        run_lint(compiled, select=("IN9",))


def test_explain():
    for code, rule in RULES.items():
        text = explain(code.lower())
        assert code in text and "Section" in text and rule.fix in text
    with pytest.raises(KeyError):
        explain("IN999")


# ---- CLI ----------------------------------------------------------------------------------


def test_cli_text_json_exit_codes():
    runner = CliRunner()
    res = runner.invoke(main, ["lint", str(LINT / "in104_stacked.arch"), "--select", "IN104"])
    assert res.exit_code == 1
    assert "warning[IN104]" in res.output and "in104_stacked.arch:8:9" in res.output
    assert "8 |   five: conv(64, 5, padding=2)" in res.output and "help:" in res.output
    res = runner.invoke(main, ["lint", str(LINT / "in108_rf.arch"), "--format", "json"])
    assert res.exit_code == 0  # only an info
    data = json.loads(res.output)
    assert [(f["code"], f["severity"], f["span"]["line"]) for f in data["findings"]] == [("IN108", "info", 13)]
    res = runner.invoke(main, ["lint", str(LINT / "in108_rf.arch"), "--select", "IN104"])
    assert res.exit_code == 0 and "no findings" in res.output
    res = runner.invoke(main, ["lint", "--explain", "IN102"])
    assert res.exit_code == 0 and "Figure 9" in res.output
    assert runner.invoke(main, ["lint", "--explain", "IN999"]).exit_code == 2
    assert runner.invoke(main, ["lint", str(LINT / "in108_rf.arch"), "--select", "XY"]).exit_code == 2


def test_lint_does_not_import_torch():
    code = (
        "import sys; from archlang.compiler import compile_spec; from archlang.lint import run_lint; "
        "run_lint(compile_spec('inception_v3')); assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---- the real specs -------------------------------------------------------------------------


def summary(source, params=None):
    return {(d.code, Path(d.span.file).name, d.span.line) for d in run_lint(compile_spec(source, params))}


def test_inception_v3_is_mostly_clean():
    diags = run_lint(compile_spec("inception_v3"))
    assert {(d.code, Path(d.span.file).name, d.span.line) for d in diags} == {
        ("IN102", "inception_v3.arch", 17),  # maxpool1 (64 ch) then 80 -> 192 in the stem
        ("IN104", "inception.arch", 37),  # torchvision's 5x5 in InceptionA; Figure 5 uses two 3x3
        ("IN108", "inception_v3.arch", 27),  # RF passes 299 at Mixed_6b
    }
    five = next(d for d in diags if d.code == "IN104")
    # Mixed_5b: 48 -> 64 at 35x35, middle width round(sqrt(48*64)) = 55.
    orig = 25 * 48 * 64 * 35 * 35
    saved = orig - (9 * 48 * 55 + 9 * 55 * 64) * 35 * 35
    assert f"saves {saved:,} of {orig:,}" in five.help  # 26,166,000 of 94,080,000


def test_googlenet_paper_variant_factorizes_its_5x5_branches():
    found = summary("googlenet", {"variant": "paper", "aux_logits": "false"})
    assert ("IN104", "inception.arch", 14) in found  # the true 5x5 of every Inception module
    assert ("IN105", "inception.arch", 14) in found  # on the 14x14 grid of 4a-4e
    assert ("IN103", "inception.arch", 14) in found  # 5x5 reduce 192 -> 16 etc.
    # torchvision's "5x5" is a 3x3: nothing to factorize there.
    tv = summary("googlenet")
    assert not {c for c, *_ in tv} & {"IN104", "IN105"}


# ---- robustness -----------------------------------------------------------------------------


@settings(max_examples=examples(60))
@given(valid_specs())
def test_lint_never_crashes_on_valid_specs(text):
    diags = run_lint(compile_spec(text))
    for d in diags:
        assert d.code in RULES and d.span is not None and d.message
