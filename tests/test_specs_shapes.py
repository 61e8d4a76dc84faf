"""Every block of the bundled specs has the output shape the papers and torchvision give.

Expected numbers are copied from outside archlang (see each table's comment); shapes are
per sample, (C, H, W) or (F,).
"""

from __future__ import annotations

import pytest
from conftest import SPECS

from archlang import compile_spec
from archlang.diagnostics import SpecError
from archlang.graph.shape_pass import infer_shapes
from archlang.ops import Op

# torchvision 0.29.1 GoogLeNet(aux_logits=True), forward hooks on each child in eval mode
# (../shared/reference/torchvision_blocks.json, "googlenet_aux" -> blocks -> out).
TORCHVISION_GOOGLENET = {
    "conv1": (64, 112, 112),
    "maxpool1": (64, 56, 56),
    "conv2": (64, 56, 56),
    "conv3": (192, 56, 56),
    "maxpool2": (192, 28, 28),
    "inception3a": (256, 28, 28),
    "inception3b": (480, 28, 28),
    "maxpool3": (480, 14, 14),
    "inception4a": (512, 14, 14),
    "inception4b": (512, 14, 14),
    "inception4c": (512, 14, 14),
    "inception4d": (528, 14, 14),
    "inception4e": (832, 14, 14),
    "maxpool4": (832, 7, 7),
    "inception5a": (832, 7, 7),
    "inception5b": (1024, 7, 7),
    "avgpool": (1024, 1, 1),
    "dropout": (1024,),
    "fc": (1000,),
}

# Szegedy et al., "Going deeper with convolutions" (arXiv 1409.4842), Table 1, "output size"
# column, written H x W x C there and (C, H, W) here. The row "convolution 3x3/1 56x56x192"
# is the 1x1 reduction (conv2) followed by the 3x3 (conv3); LRN keeps the shape.
PAPER_GOOGLENET = {
    "conv1": (64, 112, 112),  # convolution 7x7/2
    "maxpool1": (64, 56, 56),  # max pool 3x3/2
    "norm1": (64, 56, 56),
    "conv3": (192, 56, 56),  # convolution 3x3/1
    "norm2": (192, 56, 56),
    "maxpool2": (192, 28, 28),  # max pool 3x3/2
    "inception3a": (256, 28, 28),
    "inception3b": (480, 28, 28),
    "maxpool3": (480, 14, 14),
    "inception4a": (512, 14, 14),
    "inception4b": (512, 14, 14),
    "inception4c": (512, 14, 14),
    "inception4d": (528, 14, 14),
    "inception4e": (832, 14, 14),
    "maxpool4": (832, 7, 7),
    "inception5a": (832, 7, 7),
    "inception5b": (1024, 7, 7),
    "avgpool": (1024, 1, 1),  # avg pool 7x7/1
    "fc": (1000,),  # linear 1x1x1000
}
PAPER_CONV2_REDUCE = (64, 56, 56)  # Table 1: "#3x3 reduce" 64 of the 3x3/1 convolution row

# torchvision 0.29.1 Inception3(aux_logits=True), children's outputs in eval mode
# (torchvision_blocks.json "inception_v3_aux"; FACTS.md's Inception3 table).
TORCHVISION_INCEPTION_V3 = {
    "Conv2d_1a_3x3": (32, 149, 149),
    "Conv2d_2a_3x3": (32, 147, 147),
    "Conv2d_2b_3x3": (64, 147, 147),
    "maxpool1": (64, 73, 73),
    "Conv2d_3b_1x1": (80, 73, 73),
    "Conv2d_4a_3x3": (192, 71, 71),
    "maxpool2": (192, 35, 35),
    "Mixed_5b": (256, 35, 35),
    "Mixed_5c": (288, 35, 35),
    "Mixed_5d": (288, 35, 35),
    "Mixed_6a": (768, 17, 17),
    "Mixed_6b": (768, 17, 17),
    "Mixed_6c": (768, 17, 17),
    "Mixed_6d": (768, 17, 17),
    "Mixed_6e": (768, 17, 17),
    "Mixed_7a": (1280, 8, 8),
    "Mixed_7b": (2048, 8, 8),
    "Mixed_7c": (2048, 8, 8),
    "avgpool": (2048, 1, 1),
    "dropout": (2048, 1, 1),
    "fc": (1000,),
}


def block_outputs(graph) -> dict[str, tuple]:
    """Output shape of each top-level layer/block of the main path: the last node created
    under its name (lowering creates nodes in topological order)."""
    out = {}
    for _, data in graph.nodes.items():
        if data.aux is None:
            out[data.path[0]] = data.shape
    return out


@pytest.fixture(scope="module")
def googlenet():
    return compile_spec(str(SPECS / "googlenet.arch")).graph


@pytest.fixture(scope="module")
def googlenet_paper():
    return compile_spec(str(SPECS / "googlenet.arch"), {"variant": "paper"}).graph


@pytest.fixture(scope="module")
def inception_v3():
    return compile_spec(str(SPECS / "inception_v3.arch")).graph


@pytest.mark.parametrize("name", list(TORCHVISION_GOOGLENET))
def test_googlenet_torchvision_blocks(googlenet, name):
    assert block_outputs(googlenet)[name] == TORCHVISION_GOOGLENET[name]


def test_googlenet_torchvision_has_exactly_these_blocks(googlenet):
    # torchvision's children minus the aux heads; plus our explicit `input` and `flatten`
    # (torchvision flattens with torch.flatten inside forward()).
    assert list(block_outputs(googlenet)) == [
        "input",
        *[n for n in TORCHVISION_GOOGLENET if n != "fc" and n != "dropout"],
        "flatten",
        "dropout",
        "fc",
    ]


@pytest.mark.parametrize("name", list(PAPER_GOOGLENET))
def test_googlenet_paper_table1(googlenet_paper, name):
    assert block_outputs(googlenet_paper)[name] == PAPER_GOOGLENET[name]


def test_googlenet_paper_reduce_and_dropout(googlenet_paper):
    outs = block_outputs(googlenet_paper)
    assert outs["conv2"] == PAPER_CONV2_REDUCE
    # Table 1: "dropout (40%) 1x1x1024" — after flatten here, so 1024 features.
    assert outs["dropout"] == (1024,)
    assert googlenet_paper.nodes["dropout"].attrs["p"] == pytest.approx(0.4)


@pytest.mark.parametrize("name", list(TORCHVISION_INCEPTION_V3))
def test_inception_v3_blocks(inception_v3, name):
    assert block_outputs(inception_v3)[name] == TORCHVISION_INCEPTION_V3[name]


@pytest.mark.parametrize("variant", [None, "paper"])
def test_googlenet_aux_heads(variant):
    graph = compile_spec(str(SPECS / "googlenet.arch"), {"variant": variant} if variant else None).graph
    aux = graph.aux_outputs
    assert list(aux) == ["aux1", "aux2"]
    for name in aux:
        assert graph.nodes[aux[name]].shape == (1000,)
    # Paper, section 5: the aux average pool "5x5 filter size and stride 3, resulting in an
    # 4x4x512 output for the (4a), and 4x4x528 for the (4d) stage"; torchvision pools
    # adaptively to the same 4x4.
    pool = "avgpool" if variant == "paper" else "adaptive_avgpool"
    assert graph.nodes[f"aux1/{pool}"].shape == (512, 4, 4)
    assert graph.nodes[f"aux2/{pool}"].shape == (528, 4, 4)
    # torchvision InceptionAux: conv 1x1 -> 128, fc1 2048 -> 1024.
    assert graph.nodes["aux1/fc1"].shape == (1024,)
    assert graph.nodes["aux1/flatten"].shape == (2048,)


def test_inception_v3_aux_head(inception_v3):
    # FACTS.md, InceptionAux(768): avg_pool 5x5/3 (17->5), 1x1 128, 5x5 768 (valid, 5->1).
    g = inception_v3
    assert g.aux_outputs == {"AuxLogits": "AuxLogits/fc"}
    assert g.nodes["AuxLogits/avgpool"].shape == (768, 5, 5)
    assert g.nodes["AuxLogits/conv0/relu"].shape == (128, 5, 5)
    assert g.nodes["AuxLogits/conv1/relu"].shape == (768, 1, 1)
    assert g.nodes["AuxLogits/fc"].shape == (1000,)


def test_googlenet_paper_variant_is_structurally_the_paper(googlenet_paper):
    # The paper's network: true 5x5 convs with bias and ReLU, no BN, LRN, ceil pools,
    # 3x3/2 fourth pool (FACTS.md, "Paper details").
    g = googlenet_paper
    ops = {d.op for d in g.nodes.values()}
    assert Op.BATCHNORM not in ops and Op.LRN in ops
    conv5 = g.nodes["inception3a/branch3/1/conv"].attrs
    assert conv5["kernel_size"] == (5, 5) and conv5["padding"] == (2, 2) and conv5["bias"] is True
    assert g.nodes["maxpool4"].attrs["kernel_size"] == (3, 3)
    assert g.nodes["maxpool4"].attrs["ceil_mode"] is True


def test_set_num_classes_changes_every_head():
    g = compile_spec(str(SPECS / "inception_v3.arch"), {"num_classes": 10}).graph
    assert g.nodes["fc"].shape == (10,)
    assert g.nodes["AuxLogits/fc"].shape == (10,)


# ---- --input overrides: re-run the shape pass on the existing graph ----------------------


@pytest.fixture(scope="module")
def v3_no_aux():
    return compile_spec(str(SPECS / "inception_v3.arch"), {"aux_logits": False}).graph


def test_infer_shapes_on_existing_graph_75(v3_no_aux):
    # torchvision documents 75x75 as inception_v3's minimum input. Hand computation of the
    # spatial sizes (floor((H + 2p - k) / s) + 1): 75 -3/2-> 37 -3-> 35 -3p1-> 35 -pool3/2-> 17
    # -1x1-> 17 -3-> 15 -pool3/2-> 7 (Mixed_5x) -> Mixed_6a 3 -> Mixed_7a 1.
    g = v3_no_aux
    nodes_before = list(g.nodes)
    assert infer_shapes(g, (3, 75, 75)) == []
    assert list(g.nodes) == nodes_before  # not re-lowered
    outs = block_outputs(g)
    assert outs["Conv2d_1a_3x3"] == (32, 37, 37)
    assert outs["maxpool1"] == (64, 17, 17)
    assert outs["Conv2d_4a_3x3"] == (192, 15, 15)
    assert outs["Mixed_5d"] == (288, 7, 7)
    assert outs["Mixed_6e"] == (768, 3, 3)
    assert outs["Mixed_7c"] == (2048, 1, 1)
    assert outs["fc"] == (1000,)
    assert g.input_shape == (3, 75, 75)
    # and back to the default size: the same graph gives the torchvision table again
    assert infer_shapes(g, (3, 299, 299)) == []
    assert block_outputs(g)["Mixed_7c"] == (2048, 8, 8)


@pytest.mark.parametrize("size", [74, 60])
def test_infer_shapes_too_small_fails_where_size_reaches_zero(v3_no_aux, size):
    # At 74: ... Mixed_6a gives 2x2, and Mixed_7a's three stride-2 3x3 branches would give 0.
    # At 60: Mixed_6a gives 2x2 as well ((60-3)//2+1 = 29, 27, 27, 13, 13, 11, 5, then 2).
    problems = infer_shapes(v3_no_aux, (3, size, size))
    assert problems and {d.code for d in problems} == {"E403"}
    assert all("Mixed_7a" in d.message for d in problems)
    # the three branches of the reduction fail independently, each at its own line
    assert len(problems) == 3
    assert len({(d.span.file, d.span.line) for d in problems}) == 3
    assert all(d.span.file.endswith("inception.arch") for d in problems)
    infer_shapes(v3_no_aux, (3, 299, 299))


def test_input_override_in_compile_and_aux_needs_17x17():
    with pytest.raises(SpecError) as info:
        compile_spec(str(SPECS / "inception_v3.arch"), input_shape=(3, 75, 75))
    (diag,) = info.value.diagnostics
    # the aux head's 5x5/3 average pool meets a 3x3 Mixed_6e map
    assert diag.code == "E403" and "AuxLogits/avgpool" in diag.message
    ok = compile_spec(str(SPECS / "inception_v3.arch"), {"aux_logits": False}, input_shape=(3, 75, 75))
    assert ok.graph.nodes["fc"].shape == (1000,)


def test_googlenet_floor_pools_would_give_55():
    # FACTS.md pitfall: floor-mode pooling gives 55/27/13 instead of 56/28/14.
    text = (SPECS / "googlenet.arch").read_text().replace("ceil_mode=true", "ceil_mode=false")
    g = compile_spec(_with_abs_import(text)).graph
    outs = block_outputs(g)
    assert outs["maxpool1"] == (64, 55, 55)
    assert outs["maxpool2"] == (192, 27, 27)
    assert outs["maxpool3"] == (480, 13, 13)


def _with_abs_import(text: str) -> str:
    """Spec text compiled from a string resolves imports from the cwd: point at the lib."""
    return text.replace('import "lib/inception.arch"', f'import "{SPECS / "lib" / "inception.arch"}"')
