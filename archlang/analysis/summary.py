"""The one-paragraph summary ``archc check`` prints."""

from __future__ import annotations

from archlang.analysis.params import PARAMS
from archlang.compiler import Compiled
from archlang.diagnostics import printable
from archlang.graph.shape_text import format_shape
from archlang.ops import MERGE_OPS, Op


def count_params(graph) -> int:
    """All parameters (aux heads included), as ``model.parameters()`` counts them."""
    return sum(params_by_head(graph).values())


def params_by_head(graph) -> dict[str | None, int]:
    """Parameters as torch counts them, per aux head (``None``: the main path), from the
    analysis' per-op table without running the other passes."""
    totals: dict[str | None, int] = {}
    for d in graph.nodes.values():
        ins = [graph.nodes[i].shape for i in d.inputs]
        n = PARAMS[d.op](d.attrs, ins, d.shape)
        totals[d.aux] = totals.get(d.aux, 0) + n
    return totals


def summary_line(compiled: Compiled) -> str:
    """``ok: GoogLeNet (googlenet.arch): 57 layers, 6,624,904 parameters (13,004,888 with aux
    heads aux1, aux2), input 3×224×224 -> output 1000``: the inference network's parameters
    first (what torchvision's docs and the papers quote), the training total beside them."""
    g = compiled.graph
    main = [n for n, d in g.nodes.items() if d.aux is None]
    layers = sum(1 for n in main if g.nodes[n].op is not Op.INPUT and g.nodes[n].op not in MERGE_OPS)
    out = g.nodes[g.output].shape
    aux = list(g.aux_outputs)
    params = params_by_head(g)
    text = f"ok: {g.network} ({printable(g.file, keep_newlines=False)}): {layers} layers, {params.get(None, 0):,} parameters"
    if aux:
        heads = f"aux head{'s' if len(aux) > 1 else ''} {', '.join(aux)}"
        text += f" ({sum(params.values()):,} with {heads})"
    return text + f", input {format_shape(g.input_shape)} -> output {format_shape(out)}"
