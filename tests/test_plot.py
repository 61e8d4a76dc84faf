"""``--emit plot``: every bundled spec to SVG, PDF and PNG; one bar per top-level block,
deterministic bytes, the figures behind the bars checked by hand, clear errors."""

from __future__ import annotations

import struct
import sys
import xml.etree.ElementTree as ET

import pytest
from archlang.backends.plot import emit_cli
from archlang.backends.plot.costs import block_rows
from click.testing import CliRunner
from conftest import bundled_params

from archlang.analysis import analyze
from archlang.cli.main import main
from archlang.compiler import compile_spec
from archlang.diagnostics import SpecError

GOOGLENET_BLOCKS = [
    "input", "conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
    "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4", "inception5a",
    "inception5b", "avgpool", "flatten", "dropout", "fc",
]  # fmt: skip


def _emit(tmp_path, spec: str, suffix: str) -> bytes:
    out = tmp_path / f"{spec}.{suffix}"
    result = CliRunner().invoke(main, [spec, "--emit", "plot", "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_bytes()


@pytest.mark.parametrize("spec", bundled_params())  # the heavy specs: slow
def test_every_bundled_spec_plots_in_every_format(tmp_path, spec):
    svg = _emit(tmp_path, spec, "svg")
    ids = {el.get("id") for el in ET.fromstring(svg).iter() if el.get("id")}
    names = [r["name"] for r in block_rows(analyze(spec))]
    assert names and all(f"macs-{n}" in ids and f"params-{n}" in ids for n in names)
    assert _emit(tmp_path, spec, "pdf").startswith(b"%PDF-")
    png = _emit(tmp_path, spec, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 900 and height > 800


def test_googlenet_bars_are_its_top_level_blocks(tmp_path):
    svg = _emit(tmp_path, "googlenet", "svg")
    bars = [el.get("id")[5:] for el in ET.fromstring(svg).iter() if (el.get("id") or "").startswith("macs-")]
    assert bars == GOOGLENET_BLOCKS  # network order; aux heads (training only) are not drawn


def test_block_figures_by_hand():
    rows = {r["name"]: r for r in block_rows(analyze("googlenet"))}
    assert rows["conv1"]["macs"] == 112 * 112 * 64 * 7 * 7 * 3
    assert rows["conv1"]["rf"] == 7 and rows["conv1"]["height"] == 112
    assert rows["maxpool1"]["rf"] == 7 + (3 - 1) * 2 and rows["maxpool1"]["height"] == 56
    assert rows["fc"]["params"] == 1024 * 1000 + 1000 and rows["fc"]["rf"] is None and rows["fc"]["height"] is None


@pytest.mark.parametrize("suffix", ["svg", "pdf", "png"])
def test_output_is_deterministic(tmp_path, suffix):
    first = _emit(tmp_path, "googlenet", suffix)
    assert _emit(tmp_path, "googlenet", suffix) == first


def test_stdout_is_svg():
    result = CliRunner().invoke(main, ["inception_v3", "--emit", "plot"])
    assert result.exit_code == 0 and result.stdout.lstrip().startswith("<?xml")


def test_bad_suffix_and_missing_matplotlib(monkeypatch, tmp_path):
    result = CliRunner().invoke(main, ["googlenet", "--emit", "plot", "-o", str(tmp_path / "x.txt")])
    assert result.exit_code == 1 and "error[E110]" in result.output and ".svg, .pdf or .png" in result.output
    compiled = compile_spec("googlenet")
    monkeypatch.delitem(sys.modules, "archlang.backends.plot.costs", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(SpecError) as err:
        emit_cli(compiled, "plot", {"output": None})
    assert err.value.diagnostics[0].code == "E114" and "archlang[plot]" in err.value.diagnostics[0].help
