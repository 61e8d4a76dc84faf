"""The text report's two layouts: rich's table (small reports) and the direct layout used
for big ones must agree character for character, so output does not change with size."""

import pytest
from archlang.backends.report.formats import RICH_MAX_ROWS, render_text
from archlang.backends.report.paper import paper_table
from archlang.backends.report.tables import layers_table

import archlang


@pytest.fixture(scope="module")
def analyses():
    return [
        archlang.analyze("specs/googlenet.arch"),
        archlang.analyze("specs/inception_v3.arch"),
        archlang.analyze("specs/googlenet.arch", variant="paper", aux_logits=False),
    ]


@pytest.mark.parametrize("depth", [None, 0, 1, 2])
def test_plain_layout_equals_rich(analyses, depth):
    for a in analyses:
        table = layers_table(a, depth)
        assert render_text(table, use_rich=False) == render_text(table, use_rich=True)


def test_paper_layout_equals_rich(analyses):
    for a in analyses:
        table = paper_table(a)
        assert render_text(table, use_rich=False) == render_text(table, use_rich=True)


def test_small_tables_go_through_rich(analyses, monkeypatch):
    calls = []
    from archlang.backends.report import formats as report_formats

    real = report_formats._rich_table
    monkeypatch.setattr(report_formats, "_rich_table", lambda *args: calls.append(1) or real(*args))
    render_text(layers_table(analyses[0], 1))
    assert calls == [1]
    render_text(layers_table(analyses[1], None))  # > RICH_MAX_ROWS rows
    assert calls == [1] and len(analyses[1].nodes) > RICH_MAX_ROWS
