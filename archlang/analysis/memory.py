"""Activation memory: bytes per node output, and the peak of live activations at inference.

A node's output is live from the step that produces it to the step of its last consumer
(graph outputs: to the end). Views allocate nothing: their storage is their input's, which
stays live as long as any view of it is used (table ``ALIASES``). The estimate runs the
inference path (aux heads excluded) in topological order, one node at a time, and counts
the output being written together with everything still live; in-place ReLU, allocator
caching and workspace buffers are not modelled, so it is an estimate of what the
activations themselves need.
"""

from __future__ import annotations

from ..ops import Op

DTYPE_BYTES: dict[str, int] = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}

# True where the op's output shares its input's storage (a view, or the identity at inference).
ALIASES: dict[Op, bool] = {
    Op.INPUT: False,
    Op.TRANSFORM_INPUT: False,
    Op.CONV2D: False,
    Op.BATCHNORM: False,
    Op.RELU: False,  # torch modules often run it in place; counted as a new tensor (upper bound)
    Op.TANH: False,
    Op.SIGMOID: False,
    Op.RELU6: False,
    Op.SILU: False,
    Op.HARDSWISH: False,
    Op.HARDSIGMOID: False,
    Op.GELU: False,
    Op.STOCHASTIC_DEPTH: True,  # eval mode returns its input
    Op.CHANNEL_SHUFFLE: False,  # a copy (the transpose is made contiguous)
    Op.SPLIT: True,  # torch.chunk returns a view of its input
    Op.SPATIAL_MEAN: False,
    Op.MAXPOOL: False,
    Op.AVGPOOL: False,
    Op.ADAPTIVE_AVGPOOL: False,
    Op.LRN: False,
    Op.DROPOUT: True,  # eval mode returns its input
    Op.FLATTEN: True,  # a view
    Op.LINEAR: False,
    Op.SOFTMAX: False,
    Op.IDENTITY: True,
    Op.PAD: False,
    Op.CONCAT: False,
    Op.ADD: False,
    Op.MUL: False,
    Op.LAYER_SCALE: False,
    Op.PERMUTE: True,  # a view (strides change, no copy)
    Op.LAYERNORM: False,
    Op.LAYERNORM2D: False,
}


def dtype_bytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}") from None


def peak_live(order: list[str], ops: dict, inputs: dict, nbytes: dict, outputs: set[str]) -> tuple[int, str | None]:
    """Peak of live activation bytes over ``order`` (ids of the nodes that run), and the node
    during which it happens. ``ops``/``inputs``/``nbytes`` map id to op, input ids, output bytes."""
    step = {nid: i for i, nid in enumerate(order)}
    root = {}
    last = {}
    for i, nid in enumerate(order):
        root[nid] = root[inputs[nid][0]] if ALIASES[ops[nid]] else nid
        last.setdefault(root[nid], i)
        for src in inputs[nid]:
            r = root[src]
            if last[r] < i:
                last[r] = i
    end = len(order) - 1
    for nid in outputs:
        if nid in root:
            last[root[nid]] = end
    delta = [0] * (len(order) + 1)
    for r, stop in last.items():
        delta[step[r]] += nbytes[r]
        delta[stop + 1] -= nbytes[r]
    peak, at, live = 0, None, 0
    for i, nid in enumerate(order):
        live += delta[i]
        if live > peak:
            peak, at = live, nid
    return peak, at
