"""The README's table of bundled specs: what scripts/spec_table.py prints, and equal to
torchvision and fvcore (tests/data/torchvision_models.json, written from them alone by
scripts/torchvision_reference.py) and to FACTS.md's GoogLeNet / Inception v3 totals."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = json.loads((ROOT / "tests" / "data" / "torchvision_models.json").read_text())
# FACTS.md, torchvision at batch 1, eval, no aux heads: params, MACs, fvcore FLOPs.
FACTS = {
    "googlenet": (6_624_904, 1_498_376_192, 1_504_878_688),
    "inception_v3": (23_834_568, 5_713_216_096, 5_731_282_144),
}


def _script():
    spec = importlib.util.spec_from_file_location("spec_table", ROOT / "scripts" / "spec_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _readme_rows() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text()
    script = _script()
    body = text.split(script.START)[1].split(script.END)[0]
    rows = {}
    for line in body.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    return rows


def _int(cell: str) -> int:
    return int(cell.replace(",", ""))


def test_readme_table_is_what_the_script_prints():
    script = _script()
    text = (ROOT / "README.md").read_text()
    assert f"{script.START}\n{script.table()}\n{script.END}" in text, "run scripts/spec_table.py --write"


def test_readme_table_equals_torchvision_and_fvcore():
    rows = _readme_rows()
    checked = 0
    for name, ref in REFERENCE.items():
        if name == "source":
            continue
        cells = rows[name]
        assert (_int(cells[3]), _int(cells[4]), _int(cells[5])) == (ref["params"], ref["macs"], ref["fvcore_flops"])
        checked += 1
    for name, expected in FACTS.items():
        assert tuple(_int(c) for c in rows[name][3:6]) == expected
    assert checked == 24  # alexnet, 8 VGGs, 5 ResNets, 3 ResNeXts, 2 wide ResNets, MobileNetV2, 4 DenseNets


def test_readme_table_course_numbers():
    rows = _readme_rows()
    assert _int(rows["alexnet_paper"][3]) == 60_965_224  # Caffe's bvlc_alexnet
    assert _int(rows["lenet5"][3]) == 61_706  # LeNet-5 with full C3 connectivity
    assert rows["lenet5"][6] == "32×32"  # C5 sees the whole 32×32 input
