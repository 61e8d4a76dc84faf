"""Graphviz diagrams: DOT structure against the graph, concat order, rendering, errors.

Expected structure comes from the graph itself (node/edge/scope counts), from torchvision's
module definitions (top-level children, block conv kernels and widths) and from the
GoogLeNet paper's Table 1 (inception 3a widths); FACTS.md numbers are copied in with their
source named.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter

import graphviz
import pytest
from archlang.backends.diagrams.render import build, dot_id, emit_cli, to_dot
from archlang.backends.diagrams.style import CATEGORY, PAPER_LABEL
from click.testing import CliRunner

from archlang.cli.main import main
from archlang.compiler import compile_spec
from archlang.diagnostics import SpecError
from archlang.ops import Op

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(
    not HAS_DOT, reason="Graphviz's `dot` is not installed (CI installs it: apt-get install graphviz)"
)


@pytest.fixture(scope="module")
def v3():
    return compile_spec("inception_v3")


@pytest.fixture(scope="module")
def googlenet():
    return compile_spec("googlenet")


# ---- a small DOT reader (the generated text only; ids may be quoted) -----------------------

_ID = r'("[^"]+"|[A-Za-z0-9_.\-]+)'
NODE_RE = re.compile(rf"^\s*{_ID} \[label=", re.M)
EDGE_RE = re.compile(rf"^\s*{_ID}(?::(\w+)(?::\w+)?)? -> {_ID}(?::(\w+)(?::\w+)?)?(?: \[(.*)\])?$", re.M)


def unq(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name


def nodes_of(dot: str) -> list[str]:
    return [unq(m.group(1)) for m in NODE_RE.finditer(dot)]


def edges_of(dot: str) -> list[tuple[str, str | None, str, str | None, str]]:
    """(tail, tail port, head, head port, attributes) per visible edge."""
    out = []
    for m in EDGE_RE.finditer(dot):
        if "style=invis" not in (m.group(5) or ""):
            out.append((unq(m.group(1)), m.group(2), unq(m.group(3)), m.group(4), m.group(5) or ""))
    return out


def positions(dot: str) -> dict[str, tuple[float, float]]:
    """Node centres from `dot -Tplain` (y grows upwards)."""
    plain = graphviz.Source(dot).pipe(format="plain").decode()
    pos = {}
    for line in plain.splitlines():
        if line.startswith("node "):
            m = re.match(r'node ("[^"]+"|\S+) (\S+) (\S+)', line)
            pos[unq(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    return pos


# ---- tables ---------------------------------------------------------------------------------


@pytest.mark.parametrize("table", [CATEGORY, PAPER_LABEL], ids=["CATEGORY", "PAPER_LABEL"])
def test_every_op_has_a_row(table):
    assert set(table) == set(Op)


def test_dot_ids_are_one_to_one():
    ids = ["a/b", "a.b", "a_b", "a-b", "a b", "a/b/c"]
    assert len({dot_id(i) for i in ids}) == len(ids)
    assert dot_id("Mixed_5b/branch1x1/conv") == "Mixed_5b.branch1x1.conv"


# ---- blocks view ------------------------------------------------------------------------------

# torchvision's top-level children (torchvision 0.29.1, `named_children()` of
# inception_v3(aux_logits=True) and googlenet(aux_logits=True)); the specs add `input` and
# the functional `flatten` as nodes of their own.
TV_V3_CHILDREN = [
    "Conv2d_1a_3x3",
    "Conv2d_2a_3x3",
    "Conv2d_2b_3x3",
    "maxpool1",
    "Conv2d_3b_1x1",
    "Conv2d_4a_3x3",
    "maxpool2",
    "Mixed_5b",
    "Mixed_5c",
    "Mixed_5d",
    "Mixed_6a",
    "Mixed_6b",
    "Mixed_6c",
    "Mixed_6d",
    "Mixed_6e",
    "AuxLogits",
    "Mixed_7a",
    "Mixed_7b",
    "Mixed_7c",
    "avgpool",
    "dropout",
    "fc",
]
TV_GOOGLENET_CHILDREN = [
    "conv1",
    "maxpool1",
    "conv2",
    "conv3",
    "maxpool2",
    "inception3a",
    "inception3b",
    "maxpool3",
    "inception4a",
    "inception4b",
    "inception4c",
    "inception4d",
    "inception4e",
    "maxpool4",
    "inception5a",
    "inception5b",
    "aux1",
    "aux2",
    "avgpool",
    "dropout",
    "fc",
]


@pytest.mark.parametrize("spec, children", [("inception_v3", TV_V3_CHILDREN), ("googlenet", TV_GOOGLENET_CHILDREN)])
def test_blocks_view_has_one_node_per_top_level_module(spec, children):
    dot = to_dot(compile_spec(spec), {"view": "blocks", "collapse": False})
    drawn = nodes_of(dot)
    assert sorted(drawn) == sorted(children + ["input", "flatten", "legend"])
    # A chain through the main path plus one edge per aux head into it.
    aux = sum(1 for c in children if c.startswith(("aux", "Aux")))
    assert len(edges_of(dot)) == (len(children) + 2 - aux - 1) + aux


def test_blocks_view_collapses_identical_chained_blocks(v3):
    dot = to_dot(v3, {"view": "blocks"})
    drawn = nodes_of(dot)
    # Mixed_5c/5d (pool_features 64), 6c/6d (c7 160) and 7b/7c (InceptionE) are identical and
    # chained; Mixed_6e stays alone (different c7, and the aux head hangs off it).
    assert "Mixed_5d" not in drawn and "Mixed_6d" not in drawn and "Mixed_7c" not in drawn
    assert {"Mixed_5b", "Mixed_5c", "Mixed_6b", "Mixed_6c", "Mixed_6e", "Mixed_7b"} <= set(drawn)
    assert "Mixed_5c, Mixed_5d" in dot and "InceptionA × 2" in dot
    assert "Mixed_7b, Mixed_7c" in dot and "InceptionE × 2" in dot
    assert len(drawn) == len(TV_V3_CHILDREN) + 2 + 1 - 3
    heads = {(t, h) for t, _, h, _, _ in edges_of(dot)}
    assert ("Mixed_5c", "Mixed_6a") in heads and ("Mixed_6c", "Mixed_6e") in heads


def test_googlenet_blocks_are_not_merged_across_a_pool(googlenet):
    # 4e and 5a have the same arguments (Table 1) but maxpool4 sits between them.
    drawn = nodes_of(to_dot(googlenet, {"view": "blocks"}))
    assert {"inception4e", "inception5a"} <= set(drawn)


def test_blocks_view_labels_and_aux_side_branch(v3):
    dot = to_dot(v3, {"view": "blocks"})
    # Output shapes from FACTS.md (torchvision Inception3 table): Conv2d_1a_3x3 32x149x149.
    assert re.search(r"Conv2d_1a_3x3</b>.*3x3 conv, 32, /2.*32×149×149", dot)
    assert re.search(r"Mixed_5b</b>.*InceptionA.*256×35×35", dot)
    aux_edges = [e for e in edges_of(dot) if e[2] == "AuxLogits"]
    assert len(aux_edges) == 1 and aux_edges[0][0] == "Mixed_6e"
    assert "style=dashed" in aux_edges[0][4] and "aux (train only)" in aux_edges[0][4]


def test_costs_on_nodes(v3):
    dot = to_dot(v3, {"view": "blocks", "costs": True})
    # FACTS.md, torchvision Inception3 table: Conv2d_1a_3x3 has 928 params and 19,181,664 MACs.
    assert re.search(r"Conv2d_1a_3x3</b>.*928 params, 19.2M MACs", dot)


def test_edge_shapes(v3):
    dot = to_dot(v3, {"view": "blocks", "edge_shapes": True})
    [edge] = [e for e in edges_of(dot) if e[:3:2] == ("maxpool2", "Mixed_5b")]
    assert 'label="192×35×35"' in edge[4]  # FACTS.md: maxpool2 -> 192x35x35


# ---- layers view ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["googlenet", "inception_v3"])
def test_layers_view_matches_the_graph(spec):
    compiled = compile_spec(spec)
    g = compiled.graph
    dot = to_dot(compiled, {"view": "layers"})
    assert sorted(nodes_of(dot)) == sorted([dot_id(n) for n in g.nodes] + ["legend"])
    assert len(edges_of(dot)) == sum(len(d.inputs) for d in g.nodes.values())
    scopes = g.scopes
    clusters = re.findall(r'subgraph "?cluster_([^" ]+)"? \{', dot)
    assert sorted(clusters) == sorted([dot_id(s) for s in scopes] + ["legend"])
    blocks = [s for s in scopes.values() if s.kind == "block"]
    assert len(blocks) == (11 if spec == "googlenet" else 12)  # 9 inception + 2 aux; 11 Mixed + 1 aux


def test_layers_view_nests_scope_clusters(googlenet):
    dot = to_dot(googlenet, {"view": "layers"})
    start = dot.index("subgraph cluster_inception3a {")
    depth, i = 0, start
    while True:  # the text of the inception3a cluster, braces balanced
        depth += {"{": 1, "}": -1}.get(dot[i], 0)
        i += 1
        if depth == 0 and dot[i - 1] == "}":
            break
    body = dot[start:i]
    assert '"cluster_inception3a.branch2"' in body and '"cluster_inception3a.branch2.0"' in body
    assert '"inception3a.branch4.0"' in body  # the pool of branch 4
    assert "inception3b" not in body


@pytest.mark.parametrize("spec", ["googlenet", "inception_v3"])
def test_concat_inputs_enter_in_order(spec):
    compiled = compile_spec(spec)
    dot = to_dot(compiled, {"view": "layers"})
    edges = edges_of(dot)
    for nid, data in compiled.graph.nodes.items():
        if data.op is not Op.CONCAT:
            continue
        into = [(t, hp) for t, _, h, hp, _ in edges if h == dot_id(nid)]
        assert into == [(dot_id(src), f"i{k}") for k, src in enumerate(data.inputs)]


@needs_dot
@pytest.mark.parametrize("spec", ["googlenet", "inception_v3"])
def test_concat_inputs_are_drawn_left_to_right(spec):
    compiled = compile_spec(spec)
    pos = positions(to_dot(compiled, {"view": "layers"}))
    checked = 0
    for nid, data in compiled.graph.nodes.items():
        if data.op is Op.CONCAT:
            xs = [pos[dot_id(src)][0] for src in data.inputs]
            assert xs == sorted(xs), f"{nid}: inputs drawn out of order"
            checked += 1
    assert checked == (9 if spec == "googlenet" else 15)  # InceptionE has 3 concats each


# ---- module figures (--block) -------------------------------------------------------------------


def _tv_conv_labels(module) -> Counter:
    import torch.nn as nn

    return Counter(
        f"{m.kernel_size[0]}x{m.kernel_size[1]} conv, {m.out_channels}"
        for m in module.modules()
        if isinstance(m, nn.Conv2d)
    )


def _box_labels(dot: str) -> Counter:
    return Counter(re.findall(r"<td>(\d+x\d+ conv, \d+)(?:, /\d+)?</td>", dot))


@pytest.mark.parametrize(
    "template, tv_block",
    [
        ("InceptionA", lambda m: m.InceptionA(192, pool_features=32)),  # Mixed_5b
        ("InceptionC", lambda m: m.InceptionC(768, channels_7x7=128)),  # Mixed_6b
        ("InceptionE", lambda m: m.InceptionE(1280)),  # Mixed_7b
    ],
)
def test_v3_module_boxes_match_torchvision(v3, template, tv_block):
    from torchvision.models import inception

    dot = to_dot(v3, {"block_name": template})
    assert _box_labels(dot) == _tv_conv_labels(tv_block(inception))
    assert "Filter concatenation" in dot and "Previous layer" in dot and "3x3 avg pool" in dot
    assert "rankdir=BT" in dot


def test_googlenet_module_is_figure_2b():
    # Table 1, inception (3a): #1x1 64, #3x3 reduce 96, #3x3 128, #5x5 reduce 16, #5x5 32,
    # pool proj 32; the paper variant has true 5x5 convolutions.
    dot = to_dot(compile_spec("googlenet", {"variant": "paper"}), {"block_name": "Inception"})
    assert _box_labels(dot) == Counter(
        ["1x1 conv, 64", "1x1 conv, 96", "3x3 conv, 128", "1x1 conv, 16", "5x5 conv, 32", "1x1 conv, 32"]
    )
    assert "3x3 max pool</td>" in dot
    assert len(nodes_of(dot)) == 6 + 1 + 2  # convs, pool, previous layer, concatenation


def test_inner_concats_fold_into_the_filter_concatenation(v3):
    # Figure 7: the 1x3 / 3x1 pairs feed the module's concatenation directly, so one merge
    # node with six inputs (1x1, 1x3, 3x1, 1x3, 3x1, pool 1x1).
    dot = to_dot(v3, {"block_name": "InceptionE"})
    edges = edges_of(dot)
    into = [(t, hp) for t, _, h, hp, _ in edges if h == "Mixed_7b.concat_3"]
    assert into == [
        ("Mixed_7b.branch1x1", "i0"),
        ("Mixed_7b.branch3x3_2a", "i1"),
        ("Mixed_7b.branch3x3_2b", "i2"),
        ("Mixed_7b.branch3x3dbl_3a", "i3"),
        ("Mixed_7b.branch3x3dbl_3b", "i4"),
        ("Mixed_7b.branch_pool", "i5"),
    ]
    assert "Mixed_7b.concat" not in nodes_of(dot) and "Mixed_7b.concat_2" not in nodes_of(dot)


@needs_dot
@pytest.mark.parametrize(
    "spec, template",
    [
        ("googlenet", "Inception"),
        ("inception_v3", "InceptionA"),
        ("inception_v3", "InceptionC"),
        ("inception_v3", "InceptionE"),
    ],
)
def test_module_figure_layout(spec, template):
    """Previous layer at the bottom, concatenation on top, branches left to right."""
    compiled = compile_spec(spec)
    dot = to_dot(compiled, {"block_name": template})
    pos = positions(dot)
    base = [n for n in pos if n.startswith("base")]
    top = [t for t, _, h, hp, _ in edges_of(dot) if hp and hp.startswith("i")]
    concat = next(h for _, _, h, hp, _ in edges_of(dot) if hp == "i0")
    assert len(base) == 1
    assert pos[base[0]][1] < min(pos[t][1] for t in top) < pos[concat][1]
    xs = [pos[t][0] for t in top]
    assert xs == sorted(xs)


def test_unknown_block_lists_the_templates(v3):
    with pytest.raises(SpecError) as err:
        to_dot(v3, {"block_name": "InceptionZ"})
    diag = err.value.diagnostics[0]
    assert diag.code == "E113" and "InceptionZ" in diag.message
    for name in ("InceptionA", "InceptionB", "InceptionC", "InceptionD", "InceptionE", "InceptionAux3"):
        assert name in diag.help


# ---- determinism, rendering, missing dot ------------------------------------------------------


def test_same_input_gives_identical_dot_across_processes():
    code = (
        "from archlang.compiler import compile_spec; from archlang.backends.diagrams.render import to_dot; "
        "import sys; c = compile_spec('inception_v3'); "
        "sys.stdout.write(to_dot(c, {'view': 'layers', 'costs': True, 'edge_shapes': True}) "
        "+ to_dot(c, {'view': 'blocks'}) + to_dot(c, {'block_name': 'InceptionE'}))"
    )
    outs = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2")
    ]
    assert outs[0] == outs[1] and len(outs[0]) > 10_000
    assert b" at 0x" not in outs[0]


@needs_dot
def test_renders_svg(googlenet):
    svg = emit_cli(googlenet, "svg", {"view": "blocks"})
    assert isinstance(svg, bytes) and b"<svg" in svg
    assert b"<title>inception3a</title>" in svg and b"Helvetica" in svg


def test_dot_text_needs_no_dot_program(googlenet, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert emit_cli(googlenet, "dot", {}).startswith("digraph GoogLeNet {")


def test_missing_dot_is_a_diagnostic(googlenet, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot` anywhere
    with pytest.raises(SpecError) as err:
        emit_cli(googlenet, "svg", {})
    diag = err.value.diagnostics[0]
    assert diag.code == "E111" and "apt-get install graphviz" in diag.help and "brew install graphviz" in diag.help


def test_missing_dot_through_the_cli(monkeypatch, tmp_path):
    def not_found(*args, **kwargs):
        raise graphviz.ExecutableNotFound(("dot",))

    monkeypatch.setattr(graphviz.Source, "pipe", not_found)
    out = tmp_path / "net.png"
    result = CliRunner().invoke(main, ["googlenet", "--emit", "png", "-o", str(out)])
    assert result.exit_code == 1
    assert "error[E111]" in result.output and "apt-get install graphviz" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_cli_writes_dot_and_block_errors(tmp_path):
    out = tmp_path / "v3.dot"
    result = CliRunner().invoke(
        main, ["inception_v3", "--emit", "dot", "--view", "layers", "--rankdir", "LR", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "rankdir=LR" in text and ":i0:w" in text  # merge inputs enter from the left in LR
    result = CliRunner().invoke(main, ["inception_v3", "--emit", "dot", "--block", "Nope"])
    assert result.exit_code == 1 and "error[E113]" in result.output and "InceptionA" in result.output


def test_build_returns_a_digraph(v3):
    assert isinstance(build(v3, {}), graphviz.Digraph)
