"""`archc FILE --report`: layouts, formats and figures, checked against FACTS.md,
torchvision's per-child numbers (tests/data) and hand computations."""

import csv
import io
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from archlang.cli.main import main
from archlang.ops import Op

ROOT = Path(__file__).resolve().parent.parent
DATA = json.loads((Path(__file__).parent / "data" / "torchvision_blocks.json").read_text())
NOAUX = ["--set", "aux_logits=false"]
PAPER = ["--set", "variant=paper", "--set", "aux_logits=false"]


def archc(*args) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def archc_json(*args) -> dict:
    return json.loads(archc(*args, "--format", "json"))


# ---- per-layer table ----------------------------------------------------------------


def test_text_report_totals():
    out = archc("specs/googlenet.arch", *NOAUX, "--report")
    total = next(line for line in out.splitlines() if line.strip().startswith("total (inference)"))
    assert "6,624,904" in total and "1,498,376,192" in total and "1,504,878,688" in total
    assert "fvcore" in out and "multiply-accumulates" in out  # the conventions are stated


def test_depth_1_rows_are_torchvision_children():
    doc = archc_json("specs/googlenet.arch", *NOAUX, "--report", "--depth", "1")
    (main_section,) = doc["sections"]
    rows = {r["name"]: r for r in main_section["rows"]}
    for block in DATA["googlenet_noaux"]["blocks"]:
        row = rows[block["name"]]
        assert (row["params"], row["flops"]) == (block["params"], block["flops"]), block["name"]
    # ours has two extra rows: the input and the functional flatten torchvision calls in forward()
    assert set(rows) - {b["name"] for b in DATA["googlenet_noaux"]["blocks"]} == {"input", "flatten"}
    assert rows["inception3a"]["op"] == "Inception"
    assert rows["inception3a"]["shape"] == [256, 28, 28]


def test_json_exact_integers_and_aux_sections():
    doc = archc_json("specs/inception_v3.arch", "--report", "--depth", "1")
    assert doc["schema_version"] == 1
    assert doc["totals"]["params"] == 23_834_568 and doc["totals"]["macs"] == 5_713_216_096
    assert doc["totals"]["flops"] == 5_731_282_144
    assert doc["aux_totals"]["AuxLogits"]["params"] == 27_161_264 - 23_834_568
    main_section, aux = doc["sections"]
    assert aux["title"].startswith("aux head AuxLogits")
    assert aux["total"]["params"] == 3_326_696
    for row in main_section["rows"] + [main_section["total"]]:
        for key in ("params", "macs", "flops", "memory", "all_ops", "buffers"):
            assert type(row[key]) is int, (row["name"], key)
    mixed_7c = next(r for r in main_section["rows"] if r["name"] == "Mixed_7c")
    assert mixed_7c["rf"]["h"] == {"size": 1311, "stride": 32, "padding": 618}  # receptive_field README


def test_csv_parses_and_totals():
    text = archc("specs/googlenet.arch", *NOAUX, "--report", "--depth", "1", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    total = next(r for r in rows if r["section"] == "main total")
    assert int(total["params"]) == 6_624_904 and int(total["macs"]) == 1_498_376_192
    assert next(r for r in rows if r["name"] == "conv1")["shape"] == "64x112x112"


def test_markdown_table():
    text = archc("specs/googlenet.arch", "--report", "--depth", "1", "--format", "md")
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert table[0].startswith("| name | op | output |")
    assert set(table[1]) <= set("|-:")
    assert any("aux head aux1" in line for line in table)
    assert {line.count("|") for line in table} == {9}  # 8 columns on every row


def test_latex_booktabs_and_escaping():
    text = archc("specs/inception_v3.arch", "--report", "--depth", "1", "--format", "latex")
    body = [line for line in text.splitlines() if not line.startswith("%")]
    assert body[0].startswith(r"\begin{tabular}") and body[-1] == r"\end{tabular}"
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert rule in body
    joined = "\n".join(body)
    assert r"Conv2d\_1a\_3x3" in joined and r"conv\_bn\_relu" in joined
    assert "_" not in joined.replace(r"\_", "")
    assert "×" not in joined  # replaced by \ensuremath{\times}


def test_memory_follows_batch_and_dtype():
    doc = archc_json("specs/googlenet.arch", *NOAUX, "--report", "--batch", "4", "--dtype", "float16")
    first = doc["sections"][0]["rows"][0]
    assert first["name"] == "input" and first["memory"] == 3 * 224 * 224 * 4 * 2
    assert doc["batch"] == 4 and doc["dtype"] == "float16"


def test_input_override():
    doc = archc_json("specs/googlenet.arch", "--input", "3x112x112", "--report", "--depth", "1")
    assert doc["input"] == [3, 112, 112]
    conv1 = doc["sections"][0]["rows"][1]
    assert conv1["shape"] == [64, 56, 56] and conv1["macs"] == 7 * 7 * 3 * 64 * 56 * 56


def test_output_file(tmp_path):
    out = tmp_path / "r.json"
    archc("specs/googlenet.arch", "--report", "--format", "json", "-o", str(out))
    assert json.loads(out.read_text())["network"] == "GoogLeNet"


def test_report_does_not_import_torch():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "archlang.cli.main", "specs/inception_v3.arch", "--report"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert imported and not [m for m in imported if m.split(".")[0] in ("torch", "torchvision", "fvcore")]
    assert "23,834,568" in proc.stdout


# ---- lint summary (optional dependency) ---------------------------------------------


def test_lint_summary_when_lint_present(monkeypatch):
    fake = types.ModuleType("archlang.lint")
    fake.run_lint = lambda compiled, **options: [
        types.SimpleNamespace(code="W1"),
        types.SimpleNamespace(code="W1"),
        types.SimpleNamespace(code="W2"),
    ]
    monkeypatch.setitem(sys.modules, "archlang.lint", fake)
    assert "lint: 3 findings (2 W1, 1 W2)" in archc("specs/googlenet.arch", "--report", "--depth", "1")
    assert "lint:" not in archc("specs/googlenet.arch", "--report", "--depth", "1", "--format", "csv")


def test_lint_summary_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "archlang.lint", types.ModuleType("archlang.lint"))  # no run_lint
    assert "lint:" not in archc("specs/googlenet.arch", "--report", "--depth", "1")


# ---- the paper's Table 1 ------------------------------------------------------------

# FACTS.md, Table 1 as published: type, output, (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
PUBLISHED_STRUCTURE = [
    ("convolution", "112×112×64", None),
    ("max pool", "56×56×64", None),
    ("convolution", "56×56×192", (None, 64, 192, None, None, None)),
    ("max pool", "28×28×192", None),
    ("inception (3a)", "28×28×256", (64, 96, 128, 16, 32, 32)),
    ("inception (3b)", "28×28×480", (128, 128, 192, 32, 96, 64)),
    ("max pool", "14×14×480", None),
    ("inception (4a)", "14×14×512", (192, 96, 208, 16, 48, 64)),
    ("inception (4b)", "14×14×512", (160, 112, 224, 24, 64, 64)),
    ("inception (4c)", "14×14×512", (128, 128, 256, 24, 64, 64)),
    ("inception (4d)", "14×14×528", (112, 144, 288, 32, 64, 64)),
    ("inception (4e)", "14×14×832", (256, 160, 320, 32, 128, 128)),
    ("max pool", "7×7×832", None),
    ("inception (5a)", "7×7×832", (256, 160, 320, 32, 128, 128)),
    ("inception (5b)", "7×7×1024", (384, 192, 384, 48, 128, 128)),
    ("avg pool", "1×1×1024", None),
    ("dropout (40%)", "1×1×1024", None),
    ("linear", "1×1×1000", None),
    ("softmax", "1×1×1000", None),
]
WIDTHS = ("n1x1", "n3x3red", "n3x3", "n5x5red", "n5x5", "pool_proj")


@pytest.fixture(scope="module")
def paper_doc():
    return archc_json("specs/googlenet.arch", *PAPER, "--report", "--table", "paper")


def test_paper_table_structure(paper_doc):
    rows = paper_doc["sections"][0]["rows"]
    assert [(r["type"], r["output"]) for r in rows] == [(t, o) for t, o, _ in PUBLISHED_STRUCTURE]
    for row, (_, _, widths) in zip(rows, PUBLISHED_STRUCTURE):
        assert tuple(row[k] for k in WIDTHS) == (widths or (None,) * 6), row["type"]
    assert [r["patch"] for r in rows[:4]] == ["7×7/2", "3×3/2", "3×3/1", "3×3/2"]
    assert rows[15]["patch"] == "7×7/1"
    assert [r["depth"] for r in rows] == [1, 0, 2, 0, 2, 2, 0, 2, 2, 2, 2, 2, 0, 2, 2, 0, 0, 1, 0]


def test_paper_table_ops_and_flags(paper_doc):
    ordered = paper_doc["sections"][0]["rows"]
    rows = {r["type"]: r for r in ordered}
    # Hand computation, inception (3a) on 28×28×192 with the paper's true 5×5:
    # 28*28*(192*64 + 192*96 + 96*128*9 + 192*16 + 16*32*25 + 192*32)
    assert rows["inception (3a)"]["ops"] == 28 * 28 * (
        192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32
    )
    assert ordered[0]["ops"] == 7 * 7 * 3 * 64 * 112 * 112  # conv1: 118M, published 34M
    # conv2 + conv3: 1×1 64 on 56×56×64, then 3×3 192 (published 360M)
    assert ordered[2]["ops"] == 56 * 56 * (64 * 64 + 64 * 192 * 9)
    flagged_ops = [i for i, r in enumerate(ordered) if "ops ≠" in r["check"]]
    assert flagged_ops == [0, 13]  # FACTS: conv1 and 5a only
    notes = " ".join(paper_doc["notes"])
    assert "34M" in notes and "118,013,952" in notes and "54M" in notes
    assert "approximate" in notes
    assert paper_doc["totals"]["params"] == 6_998_552 and paper_doc["totals"]["macs"] == 1_582_671_872


def test_paper_table_text_and_torchvision_variant():
    text = archc("specs/googlenet.arch", *PAPER, "--report", "--table", "paper")
    assert "inception (3a)" in text and "#3×3 reduce" in text and "paper ops" in text
    # best effort on torchvision's variant: same structure, compared, 3×3 "5x5" branches differ
    doc = archc_json("specs/googlenet.arch", "--report", "--table", "paper")
    rows = doc["sections"][0]["rows"]
    assert len(rows) == len(PUBLISHED_STRUCTURE)
    # torchvision 3a MACs: its fvcore FLOPs (tests/data) minus BN's 2 per element of its 6 convs' outputs
    assert rows[4]["ops"] == 122_203_648 - 2 * (64 + 96 + 128 + 16 + 32 + 32) * 28 * 28
    assert "ops ≠" in rows[4]["check"]


def test_paper_table_other_networks_not_compared():
    doc = archc_json("specs/inception_v3.arch", "--report", "--table", "paper")
    assert any("not compared" in n for n in doc["notes"])
    assert any(r["type"] == "InceptionA (Mixed_5b)" for r in doc["sections"][0]["rows"])


def test_paper_row_type_table_complete():
    from archlang.backends.report.paper import PAPER_ROW_TYPE

    assert set(PAPER_ROW_TYPE) == set(Op)
