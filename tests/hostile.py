"""Shared by the test_hostile_*.py files: compile a spec that must fail and look at the
diagnostics, or run ``archc`` in-process."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from archlang import compile_spec
from archlang.cli.main import main
from archlang.diagnostics import SpecError, render_all

HEAD = "network N {\n  input 3x8x8\n"


def errors(source, **kwargs):
    """The diagnostics of a spec that must not compile, checked to render without a traceback."""
    with pytest.raises(SpecError) as info:
        compile_spec(source, **kwargs)
    diags = info.value.diagnostics
    rendered = render_all(diags, getattr(info.value, "sources", None))
    assert "Traceback" not in rendered
    return diags


def one_error(source, **kwargs):
    diags = errors(source, **kwargs)
    assert len(diags) == 1, diags
    return diags[0]


def at(diag) -> tuple[int, int]:
    assert diag.span is not None, diag
    return diag.span.line, diag.span.col


def archc(*args):
    """``archc ARGS`` in-process, without colour; returns click's Result."""
    return CliRunner().invoke(main, [str(a) for a in args], env={"NO_COLOR": "1"})


SIMPLE = "  conv(4, 3)\n"
NET = "network N {{\n  input 3x8x8\n{body}}}\n"
SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def spec_file(tmp_path: Path, body: str, name: str = "net.arch") -> Path:
    path = tmp_path / name
    path.write_text(NET.format(body=body), encoding="utf-8")
    return path


def no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


def svg_nodes(svg: bytes) -> tuple[list[str], list[ET.Element]]:
    root = ET.fromstring(svg)
    titles = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"]
    return titles, list(root.iter())
