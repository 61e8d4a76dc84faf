"""The IR: ``archc FILE --emit ir`` writes every field of the parsed IR, so that reading the
JSON back (by kind tag and field name, below) gives the parsed module again.

``--emit ir`` prints ``{"main": <Module>, "imports": [<Module>, ...]}``: the main file's
module and each imported file's module (the prelude is left out). archlang itself never
reads IR from JSON: the IR is plain frozen dataclasses built by the parser
(docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from conftest import ROOT
from ir_json import KINDS, UNTAGGED, read_ir

from archlang.diagnostics import Span
from archlang.frontend import ir
from archlang.frontend.expressions import Env, evaluate
from archlang.frontend.parser import parse

SPECS = ["specs/googlenet.arch", "specs/inception_v3.arch"]
LIB = "specs/lib/inception.arch"


def _emit_ir(spec: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", spec, "--emit", "ir"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module", params=SPECS)
def emitted(request):
    return request.param, _emit_ir(request.param)


def test_emit_ir_document_shape(emitted):
    spec, doc = emitted
    assert set(doc) == {"main", "imports"}
    assert doc["main"]["file"] == spec
    assert [m["file"] for m in doc["imports"]] == [LIB]
    assert doc["main"]["ir_version"] == ir.IR_VERSION


def test_main_round_trips_to_the_parsed_module(emitted):
    spec, doc = emitted
    assert read_ir(json.loads(json.dumps(doc["main"]))) == parse((ROOT / spec).read_text(), spec)


def test_imported_lib_round_trips(emitted):
    _, doc = emitted
    (lib,) = doc["imports"]
    assert read_ir(lib) == parse((ROOT / LIB).read_text(), LIB)


def test_every_node_class_has_a_distinct_kind_or_a_field_that_names_it():
    # the reader above relies on it
    classes = {c for c in vars(ir).values() if isinstance(c, type) and dataclasses.is_dataclass(c)}
    tagged = {c for c in classes if "kind" in ir.field_names(c)}
    # 10 expressions, 4 layers, 12 statements, `from input` and `from a.b`, 4 more top items
    assert len(tagged) == len(KINDS) == 32
    assert classes - tagged - {ir.Node, ir.Module, Span} == set(UNTAGGED.values())


def test_round_trip_changes_something_when_the_text_does():
    # the equality above is not vacuous: one changed number breaks it
    text = (ROOT / SPECS[1]).read_text()
    assert parse(text, SPECS[1]) != parse(text.replace("conv(32, 3, stride=2)", "conv(33, 3, stride=2)"), SPECS[1])


def test_spans_point_at_the_source():
    text = (ROOT / SPECS[1]).read_text()
    module = parse(text, SPECS[1])
    net = next(i for i in module.items if i.kind == "network")
    layer = next(s for s in net.body if s.kind == "layer" and s.labels and s.labels[0].text == "Conv2d_1a_3x3")
    lines = text.split("\n")
    line_no = next(i for i, line in enumerate(lines, 1) if "Conv2d_1a_3x3:" in line)
    col = lines[line_no - 1].index("Conv2d_1a_3x3") + 1
    assert (layer.span.line, layer.span.col) == (line_no, col)
    call = layer.layer
    assert call.kind == "call" and call.name == "conv"
    assert [a.value for a in call.args] == [32, 3]
    assert [(k.name, k.value.value) for k in call.kwargs] == [("stride", 2)]
    assert call.span.col == lines[line_no - 1].index("conv(") + 1


def test_ir_is_frozen():
    module = parse((ROOT / SPECS[1]).read_text(), SPECS[1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        module.file = "other.arch"
    with pytest.raises(dataclasses.FrozenInstanceError):
        module.items[0].kind = "network"


# ---- what the parser builds -------------------------------------------------------------


def _expr(text: str):
    module = parse(f"const x = {text}")
    return module.items[0].value


@pytest.mark.parametrize(
    "text, value",
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("2 ** 3 ** 2", 512),
        ("-2 ** 2", -4),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("7 / 2", 3.5),
        ("1 < 2 and not 3 < 2", True),
        ("false or 1 == 1", True),
        ("if 1 > 2 then 10 else 20", 20),
        ("[1, 2, 3][1]", 2),
        ("(1, 2)", (1, 2)),
        ("(1,)", (1,)),
        ("3x224x224", (3, 224, 224)),
        ("1x7", (1, 7)),
        ('"a" + "b"', "ab"),
        ("max(3, 9, 4)", 9),
        ("len([1, 2])", 2),
        ("range(3)", (0, 1, 2)),
        ("1e3", 1000.0),
        ("none", None),
    ],
)
def test_expression_precedence_and_values(text, value):
    # Python's precedence rules, written out by hand in the expected values
    assert evaluate(_expr(text), Env()) == value


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_comparisons_agree_with_python_on_a_grid(op):
    # Python's own operator is the oracle; the grid includes the ties where `<=` and `<`
    # (or `>=` and `>`) part ways, and negative numbers.
    for a in range(-2, 3):
        for b in range(-2, 3):
            text = f"{a} {op} {b}"
            assert evaluate(_expr(text), Env()) is eval(text), text


def test_expression_tree_shape():
    e = _expr("1 + 2 * 3")
    assert (e.kind, e.op, e.left.value) == ("binop", "+", 1)
    assert (e.right.kind, e.right.op) == ("binop", "*")
    dims = _expr("1x7")
    assert dims.kind == "dims" and dims.values == (1, 7)
