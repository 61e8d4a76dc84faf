"""The typed graph between the stages: :class:`Node` records in a :class:`Graph`, its order
and its edges, the networkx view the lint's dominators use, and the verifier's checks."""

from __future__ import annotations

import pickle

import networkx as nx
import pytest

from archlang import compile_spec
from archlang.diagnostics import Span
from archlang.graph.model import Graph, Node
from archlang.graph.verify import verify
from archlang.ops import Op

SPAN = Span.point("t.arch", 1, 1)


def _node(nid: str, op: Op, *inputs: str) -> Node:
    return Node(id=nid, op=op, attrs={}, inputs=inputs, path=tuple(nid.split("/")), span=SPAN)


def _diamond() -> Graph:
    """input -> a -> {b, c}; add(b, c); a concat reading b twice (one edge, two inputs)."""
    g = Graph(network="D", input="input", input_shape=(3, 8, 8))
    for node in [
        _node("input", Op.INPUT),
        _node("a", Op.RELU, "input"),
        _node("m/b", Op.RELU, "a"),
        _node("m/c", Op.RELU, "a"),
        _node("m/add", Op.ADD, "m/b", "m/c"),
        _node("cat", Op.CONCAT, "m/b", "m/add", "m/b"),
    ]:
        g.add_node(node)
    g.output = "cat"
    return g


def test_nodes_are_records_in_creation_order_with_their_readers():
    g = _diamond()
    assert g.topological() == list(g) == ["input", "a", "m/b", "m/c", "m/add", "cat"]
    assert len(g) == 6 and "m/add" in g and "m/d" not in g
    assert g.nodes["m/add"].op is Op.ADD and g.nodes["m/add"].inputs == ("m/b", "m/c")
    assert g.nodes["m/add"].shape is None and g.nodes["m/add"].exprs == {}  # until the shape pass / lowering
    assert g.predecessors("cat") == ["m/b", "m/add"]  # each once, in input order
    assert g.successors("a") == ["m/b", "m/c"]
    assert g.successors("m/b") == ["m/add", "cat"]  # read twice by cat: one reader
    assert g.successors("cat") == []
    assert not hasattr(Node, "__getitem__")  # attribute access only: no dict-style shim
    assert verify(g) == []


def test_a_node_id_is_added_once():
    g = _diamond()
    with pytest.raises(ValueError, match="`a` is already in the graph"):
        g.add_node(_node("a", Op.RELU, "input"))


def test_the_networkx_view_has_the_same_nodes_and_edges():
    g = _diamond()
    view = g.to_networkx()
    assert list(view.nodes) == g.topological()
    assert set(view.edges) == {
        ("input", "a"),
        ("a", "m/b"),
        ("a", "m/c"),
        ("m/b", "m/add"),
        ("m/c", "m/add"),
        ("m/b", "cat"),
        ("m/add", "cat"),
    }
    assert view.nodes["m/add"]["node"] is g.nodes["m/add"]
    assert nx.immediate_dominators(view, "input")["cat"] == "a"


def test_a_compiled_network_agrees_with_its_networkx_view():
    g = compile_spec("googlenet").graph
    view = g.to_networkx()
    order = {nid: i for i, nid in enumerate(g.topological())}
    assert nx.is_directed_acyclic_graph(view) and len(view) == len(g)
    for nid, node in g.nodes.items():
        assert node.id == nid and all(order[src] < order[nid] for src in node.inputs)
        assert g.successors(nid) == list(view.successors(nid))
        assert set(g.predecessors(nid)) == set(view.predecessors(nid)) == set(node.inputs)


def test_the_graph_pickles_to_an_equal_graph():
    g = compile_spec("resnet18").graph
    back = pickle.loads(pickle.dumps(g))
    assert back == g and back.successors(g.input) == g.successors(g.input)
    back.nodes["fc"].shape = (7,)
    assert back != g


def test_verify_reports_a_node_that_reads_a_later_one():
    g = Graph(input="input", output="b")
    g.add_node(_node("input", Op.INPUT))
    g.add_node(_node("a", Op.RELU, "b"))
    g.add_node(_node("b", Op.RELU, "input"))
    problems = verify(g)
    assert [d.code for d in problems] == ["E900"]
    assert "`a` reads `b`, which is not defined before it" in problems[0].message


def test_verify_reports_inputs_changed_behind_the_readers_back():
    g = _diamond()
    g.nodes["m/c"].inputs = ("input",)  # the reader lists were built from the old inputs
    messages = [d.message for d in verify(g)]
    assert any("the readers of `a` disagree" in m for m in messages)
    assert any("the readers of `input` disagree" in m for m in messages)
