"""Shared by the test_hostile_*.py files: compile a spec that must fail and look at the
diagnostics, or run ``archc`` in-process."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from archlang import compile_spec
from archlang.cli import main
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
