"""The result objects of ``archlang.analyze``: adding Totals, looking up blocks by path, the
receptive-field text, and the report's grouping by depth. Expected values are torchvision
figures (FACTS.md) or worked out in the test."""

from __future__ import annotations

import pytest

import archlang
from archlang.analysis.grouping import group_nodes

BLOCK_SPEC = """
block One() { relu }
network T() {
  input 3x8x8
  conv1: conv2d(4, 3, padding=1)
  conv10: conv2d(4, 1)
  b: One()
}"""


@pytest.fixture(scope="module")
def googlenet():
    return archlang.analyze("googlenet")


def test_totals_add_up(googlenet):
    aux1, aux2 = googlenet.aux_totals["aux1"], googlenet.aux_totals["aux2"]
    everything = googlenet.totals + aux1 + aux2
    # torchvision googlenet(aux_logits=True, init_weights=False): 13,004,888 parameters,
    # of which 6,624,904 outside the aux heads
    assert everything.params == 13_004_888 and googlenet.totals.params == 6_624_904
    assert everything.nodes == googlenet.totals.nodes + aux1.nodes + aux2.nodes
    assert everything.macs == googlenet.totals.macs + aux1.macs + aux2.macs


def test_a_path_names_a_whole_component_not_a_prefix():
    a = archlang.analyze(BLOCK_SPEC)
    # conv1: 4 * 3 * 9 + 4 = 112 parameters; conv10 (4 * 4 + 4 = 20) is not under conv1
    assert a.block("conv1").params == 112
    assert a.last_node("conv1").id == "conv1"
    with pytest.raises(KeyError):
        a.block("conv")
    with pytest.raises(KeyError):
        a.last_node("conv")


def test_googlenet_block_paths(googlenet):
    with pytest.raises(KeyError):
        googlenet.block("inception4")  # inception4a..e exist, "inception4" does not
    assert googlenet.last_node("inception4a").shape == (512, 14, 14)


def test_rf_text_per_axis():
    a = archlang.analyze("""network T() {
      input 2x6x6
      c: conv2d(2, (1, 3), padding=(0, 1))
      m: adaptive_avgpool((3, 4))
    }""")
    assert a.nodes["c"].rf.text() == "1×3"
    # H: 6 -> 3 is a 2x2 pooling on a 1-row field -> 2; W: 6 -> 4 bins unevenly -> global
    assert a.nodes["m"].rf.text() == "2×global"


def test_grouping_by_depth():
    a = archlang.analyze(BLOCK_SPEC)
    groups = {g.id: g for g in group_nodes(a, 1)}
    assert list(groups) == ["input", "conv1", "conv10", "b"]
    # a block instance with a single node is still labelled by its template, not its op
    assert groups["b"].label == "One" and [c.id for c in groups["b"].nodes] == ["b/relu"]
    assert groups["conv1"].label == "conv2d"


def test_depth_0_of_an_aux_head_is_the_head(googlenet):
    (group,) = group_nodes(googlenet, 0, aux="aux1")
    assert group.id == "aux1"
    assert group.totals == googlenet.aux_totals["aux1"]
    (main,) = group_nodes(googlenet, 0)
    assert main.id == "" and main.totals == googlenet.totals
