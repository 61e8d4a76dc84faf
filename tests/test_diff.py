"""``archc diff``: GoogLeNet (torchvision) against the paper's variant, with the per-block
differences computed by hand and the totals checked against ``--report``."""

from __future__ import annotations

import json

import pytest
from archlang.backends.report.diff import merged_order
from click.testing import CliRunner

from archlang.cli.main import main


@pytest.fixture(scope="module")
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(main, list(args), env={"NO_COLOR": "1"})


@pytest.fixture(scope="module")
def googlenet_vs_paper(run):
    result = run("diff", "googlenet", "googlenet", "--set-b", "variant=paper", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows = {r["name"]: r for r in doc["sections"][0]["rows"]}
    return doc, rows


def _report_totals(run, *sets) -> dict:
    result = run("googlenet", "--report", "--format", "json", *sets)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["totals"]


def test_totals_are_the_two_report_totals(run, googlenet_vs_paper):
    doc, _ = googlenet_vs_paper
    total = doc["sections"][0]["total"]
    a, b = _report_totals(run), _report_totals(run, "--set", "variant=paper")
    for key in ("params", "macs", "flops"):
        assert total[f"{key}_a"] == a[key] and total[f"{key}_b"] == b[key]
        assert total[f"{key}_delta"] == b[key] - a[key]
    assert doc["a"]["totals"] == a and doc["b"]["totals"] == b


def test_conv1_differs_by_bn_against_bias(googlenet_vs_paper):
    _, rows = googlenet_vs_paper
    conv1 = rows["conv1"]
    # torchvision: 7×7×3×64 weights + BN (γ, β) per channel; the paper: weights + a bias.
    assert conv1["params_a"] == 7 * 7 * 3 * 64 + 2 * 64
    assert conv1["params_b"] == 7 * 7 * 3 * 64 + 64
    assert conv1["params_delta"] == -64 and conv1["status"] == "changed"
    assert conv1["macs_delta"] == 0 and conv1["shape_a"] == conv1["shape_b"] == [64, 112, 112]
    assert conv1["params_pct"] == pytest.approx(-64 * 100 / 9536, abs=1e-4)


def test_inception_5a_differs_by_the_5x5_branch(googlenet_vs_paper):
    _, rows = googlenet_vs_paper
    row = rows["inception5a"]
    # The "5x5" branch (32 -> 128 channels) is 3×3 in torchvision, 5×5 in the paper: 16 more
    # weights per channel pair, at 7×7; every conv trades BN's 2 per channel for one bias.
    channels = 256 + 160 + 320 + 32 + 128 + 128  # outputs of the six convs
    assert row["params_delta"] == (25 - 9) * 32 * 128 - channels
    assert row["macs_delta"] == (25 - 9) * 32 * 128 * 7 * 7
    assert row["rf_a"]["h"]["size"] < row["rf_b"]["h"]["size"]


def test_blocks_on_one_side_only(googlenet_vs_paper):
    doc, rows = googlenet_vs_paper
    # the paper's LRN layers exist only in B, and sit where B has them
    assert rows["norm1"]["status"] == "only B" and rows["norm1"]["shape_a"] is None
    assert rows["norm2"]["status"] == "only B"
    names = list(rows)
    assert names.index("maxpool1") < names.index("norm1") < names.index("conv2")
    assert rows["fc"]["status"] == "same" and rows["fc"]["params_delta"] == 0
    assert doc["counts"]["only B"] == 2 and doc["counts"]["only A"] == 0
    aux = {r["name"]: r for r in doc["sections"][1]["rows"]}
    assert set(aux) == {"aux1", "aux2"}


@pytest.mark.parametrize(
    "fmt, marks",
    [
        ("text", ["only B", "changed", "total (inference)", "Δ params"]),
        ("md", ["| name | A vs B |", "| norm1 | only B |"]),
        ("latex", [r"\begin{tabular}", r"\toprule", "only B"]),
        ("csv", ["section,name,status"]),
    ],
)
def test_formats(run, fmt, marks):
    result = run("diff", "googlenet", "googlenet", "--set-b", "variant=paper", "--format", fmt)
    assert result.exit_code == 0, result.output
    for mark in marks:
        assert mark in result.stdout


def test_same_spec_has_no_differences_and_set_applies_to_both(run):
    result = run("diff", "googlenet", "googlenet", "--set", "aux_logits=false", "--format", "json")
    doc = json.loads(result.stdout)
    assert len(doc["sections"]) == 1  # no aux heads on either side
    assert {r["status"] for r in doc["sections"][0]["rows"]} == {"same"}
    assert doc["sections"][0]["total"]["macs_delta"] == 0


def test_two_files_and_errors(run, tmp_path):
    a = tmp_path / "a.arch"
    a.write_text("network A { input 3x8x8\n  c: conv(4, 3)\n  relu }\n")
    b = tmp_path / "b.arch"
    b.write_text("network B { input 3x8x8\n  c: conv(8, 3)\n  p: maxpool(2) }\n")
    doc = json.loads(run("diff", str(a), str(b), "--format", "json").stdout)
    rows = {r["name"]: r for r in doc["sections"][0]["rows"]}
    assert rows["c"]["params_a"] == 4 * 27 + 4 and rows["c"]["params_b"] == 8 * 27 + 8
    assert rows["c"]["params_pct"] == pytest.approx(100.0)
    assert rows["relu"]["status"] == "only A" and rows["p"]["status"] == "only B"
    bad = run("diff", str(a), "googlenet", "--set-b", "nope=1")
    assert bad.exit_code == 1 and "error[E505]" in bad.output and "Traceback" not in bad.output


def test_merged_order_keeps_both_orders():
    assert merged_order(["a", "b", "c"], ["a", "x", "c", "y"]) == ["a", "x", "b", "c", "y"]
    assert merged_order([], ["x", "y"]) == ["x", "y"]
    assert merged_order(["a"], ["x", "a"]) == ["x", "a"]
