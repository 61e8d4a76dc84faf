"""The one-paragraph summary ``archc check`` prints."""

from __future__ import annotations

from .compiler import Compiled
from .ops import Op
from .param_counts import conv_weight_count
from .shape_format import format_shape


def count_params(graph) -> int:
    """Parameters as torch counts them (weights, biases, BN affine), no analysis module needed."""
    total = 0
    for _, d in graph.nodes(data=True):
        op, a, shape = d["op"], d["attrs"], d["shape"]
        if op is Op.CONV2D:
            cin = graph.nodes[d["inputs"][0]]["shape"][0]
            total += conv_weight_count(cin, a["out_channels"], a["kernel_size"], a["groups"])
            total += a["out_channels"] if a["bias"] else 0
        elif op is Op.LINEAR:
            fin = graph.nodes[d["inputs"][0]]["shape"][0]
            total += a["out_features"] * fin + (a["out_features"] if a["bias"] else 0)
        elif op is Op.BATCHNORM and a["affine"]:
            total += 2 * shape[0]
    return total


def summary_line(compiled: Compiled) -> str:
    g = compiled.graph
    main = [n for n, d in g.nodes(data=True) if d["aux"] is None]
    layers = sum(1 for n in main if g.nodes[n]["op"] not in (Op.INPUT, Op.CONCAT, Op.ADD))
    out = g.nodes[g.graph["output"]]["shape"]
    aux = g.graph.get("aux_outputs") or {}
    text = (
        f"ok: {g.graph['network']} ({g.graph['file']}): {layers} layers, "
        f"{count_params(g):,} parameters, input {format_shape(g.graph['input_shape'])} -> output {format_shape(out)}"
    )
    if aux:
        text += f"; aux heads: {', '.join(aux)}"
    return text
