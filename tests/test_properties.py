"""Property tests: random valid specs compile with the shapes PyTorch's formulas give, and
random mutations of the real specs end in a located SpecError, never another exception.

About 200 examples in all (deadline off) so the file stays within a few seconds.
"""

from __future__ import annotations

import json
import re

from conftest import SPECS, examples
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import reference_out, spec_cases

from archlang import compile_spec
from archlang.diagnostics import SpecError
from archlang.frontend import ir
from archlang.frontend.loader import load_text
from archlang.frontend.parser import parse
from archlang.ops import Op


def _last_node_under(graph, label: str) -> str:
    if label in graph:
        return label
    return [n for n in graph if n.startswith(label + "/")][-1]


def _check_window(graph, nid):
    """Recompute a conv/pool output size by the formula in the PyTorch docs."""
    data = graph.nodes[nid]
    a = data["attrs"]
    _, h, w = graph.nodes[data["inputs"][0]]["shape"]
    k, pad = a["kernel_size"], a["padding"]
    s = a["stride"] or k
    d = a.get("dilation", (1, 1))
    ceil = a.get("ceil_mode", False)
    expected = tuple(reference_out(x, k[i], s[i], pad[i], d[i], ceil) for i, x in enumerate((h, w)))
    assert data["shape"][1:] == expected, nid


@settings(max_examples=examples(70))
@given(spec_cases())
def test_random_valid_specs_infer_shapes(case):
    graph = compile_spec(case.text).graph  # raises on any diagnostic
    assert graph.nodes[graph.graph["output"]]["shape"] == case.output_shape
    assert graph.graph["input_shape"] == case.input_shape
    for label, expected in case.named_shapes.items():
        assert graph.nodes[_last_node_under(graph, label)]["shape"] == expected, label
    for nid, data in graph.nodes(data=True):
        assert data["shape"] is not None and all(x >= 1 for x in data["shape"]), nid
        if data["op"] in (Op.CONV2D, Op.MAXPOOL, Op.AVGPOOL):
            _check_window(graph, nid)
        if data["op"] is Op.CONCAT:
            shapes = [graph.nodes[i]["shape"] for i in data["inputs"]]
            assert data["shape"][0] == sum(s[0] for s in shapes)
            assert {s[1:] for s in shapes} == {data["shape"][1:]}


@settings(max_examples=examples(30))
@given(spec_cases())
def test_random_specs_round_trip_through_ir_json(case):
    module = parse(case.text, "random.arch")
    assert ir.Module.model_validate_json(module.model_dump_json()) == module
    assert ir.Module.model_validate(json.loads(module.model_dump_json())) == module


# ---- mutations of the real specs --------------------------------------------------------

REAL = {
    p.name: p.read_text()
    for p in [SPECS / "googlenet.arch", SPECS / "inception_v3.arch", SPECS / "lib" / "inception.arch"]
}
TOKENS = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    ";",
    "=",
    '"',
    "'",
    "#",
    "@",
    "\n",
    "0",
    "-1",
    "3x3",
    "1e400",
    "2 ** 99",
    "concat",
    "add",
    "input",
    "network",
    "block",
    "repeat",
    "for",
    "if",
    "else",
    "aux",
    "at",
    "outputs",
    "unit",
    "conv",
    "relu",
    "flatten",
    "linear(10)",
    "x",
    "true",
    "none",
    "\x00",
    "\ufeff",
    "é",
    "\t",
]
TOKEN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\S")


@st.composite
def mutants(draw):
    name = draw(st.sampled_from(sorted(REAL)))
    text = REAL[name]
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "insert", "replace_token", "swap_lines"]))
        pos = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 8)) :]
        elif kind == "insert":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        elif kind == "replace_token":
            tokens = list(TOKEN_RE.finditer(text))
            tok = tokens[draw(st.integers(0, len(tokens) - 1))]
            text = text[: tok.start()] + draw(st.sampled_from(TOKENS)) + text[tok.end() :]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return name, text


@settings(max_examples=examples(100))
@given(mutants())
def test_mutated_specs_fail_with_located_diagnostics(mutant):
    name, text = mutant
    try:
        program = load_text(text, name, base_dir=SPECS)
        compile_spec(program, max_nodes=20_000)
    except SpecError as err:
        assert err.diagnostics
        assert any(d.span is not None for d in err.diagnostics), err
        for d in err.diagnostics:
            assert re.fullmatch(r"E\d{3}", d.code) and d.message
            if d.span is not None:
                assert d.span.line >= 1 and d.span.col >= 1
    # a mutation can keep the spec valid (a changed number, a swapped blank line): fine
