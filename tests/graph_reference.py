"""An independent reference for the torch back end: the compiled graph evaluated node by
node with ``torch.nn.functional``, in eval mode, taking each weighted node's tensors from a
state_dict by its path (``inception3a/branch1/conv`` -> ``inception3a.branch1.conv.weight``).

It shares nothing with the code generator but the graph, so a generated model that computes
the same function is right about wiring, arguments and order, not just equal to itself.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict

import torch
import torch.nn.functional as F

from archlang.ops import Op


def _conv(a, x, p):
    return F.conv2d(x, p["weight"], p.get("bias"), a["stride"], a["padding"], a["dilation"], a["groups"])


def _bn(a, x, p):
    weight, bias = p.get("weight"), p.get("bias")
    return F.batch_norm(x, p["running_mean"], p["running_var"], weight, bias, False, 0.0, a["eps"])


def _maxpool(a, x, p):
    return F.max_pool2d(
        x, a["kernel_size"], a["stride"] or a["kernel_size"], a["padding"], a["dilation"], a["ceil_mode"]
    )


def _avgpool(a, x, p):
    stride = a["stride"] or a["kernel_size"]
    return F.avg_pool2d(x, a["kernel_size"], stride, a["padding"], a["ceil_mode"], a["count_include_pad"])


def _transform(a, x, p):
    parts = [x[:, i : i + 1] * (s / 0.5) + (m - 0.5) / 0.5 for i, (m, s) in enumerate(zip(a["mean"], a["std"]))]
    return torch.cat(parts, 1)


def _pad(a, x):
    top, bottom, left, right = a["padding"]  # the spec's order; F.pad takes the last dim first
    return F.pad(x, (left, right, top, bottom), value=a["value"])  # a negative amount crops


def _shuffle(groups, x):
    n, c, h, w = x.shape  # torchvision's shufflenetv2.channel_shuffle, by hand
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def _layer_scale(scale, x):
    """A (C, 1, 1) gamma, or timm's flat (C,) one (``layer_scale(flat=true)``), per channel;
    a 0-d one (``scalar=true``) for the whole tensor, whatever its rank."""
    return scale * x if scale.dim() == 0 else scale.view(-1, 1, 1) * x


def _standardised(a, p):
    """Weight standardisation (Qiao et al.): each filter minus its mean over its fan-in, over
    sqrt(its biased variance + eps)."""
    w = p["weight"]
    flat = w.reshape(w.shape[0], -1)
    mean = flat.mean(1, keepdim=True)
    var = ((flat - mean) ** 2).mean(1, keepdim=True)
    return ((flat - mean) / torch.sqrt(var + a["eps"])).reshape(w.shape)


def _scaled_standardised(a, p):
    """NF-ResNets' form (Brock et al., 2021): the standardised filter times its gain and
    gamma / sqrt(fan-in)."""
    fan_in = p["weight"][0].numel()
    return _standardised(a, p) * p["gain"] * (a["gamma"] / fan_in**0.5)


def _eca(x, weight):
    """ECA-Net: each channel times the sigmoid of a k-tap correlation (zero-padded, no bias)
    across the channels' spatial means."""
    means = x.mean((2, 3))  # (N, C)
    k = weight.shape[-1]
    padded = F.pad(means, ((k - 1) // 2, (k - 1) // 2))
    taps = weight.reshape(-1)
    gate = sum(taps[i] * padded[:, i : i + means.shape[1]] for i in range(k))
    return x * torch.sigmoid(gate)[:, :, None, None]


def _radix_softmax(radix, groups, x):
    """ResNeSt's rSoftMax by index: input channel (g, r, j) of the (groups, radix, K) view goes
    to output channel (r, g, j), softmax-ed over r for each (g, j)."""
    k = x.shape[1] // (radix * groups)
    out = torch.empty_like(x)
    for g in range(groups):
        for j in range(k):
            paths = [x[:, (g * radix + r) * k + j] for r in range(radix)]
            peak = torch.stack(paths).amax(0)
            exps = [torch.exp(t - peak) for t in paths]
            total = sum(exps)
            for r in range(radix):
                out[:, (r * groups + g) * k + j] = exps[r] / total
    return out


_DIM = " dim"  # an attribute no op has: the channels' dim of the node's input


# op -> f(attrs, input tensors, parameters of the node) in eval mode
def _external(a, x, p):
    """An `extern` module: the declared class itself, made with the node's arguments and
    given the state_dict's tensors under its path."""
    module, _, cls = a["target"].partition(":")
    made = getattr(importlib.import_module(module), cls)(**dict(a["args"]))
    made.load_state_dict(p, strict=True)
    return made.eval().to(x.dtype)(x)


EVAL = {
    Op.TRANSFORM_INPUT: lambda a, xs, p: _transform(a, xs[0], p),
    Op.CONV2D: lambda a, xs, p: _conv(a, xs[0], p),
    Op.STD_CONV2D: lambda a, xs, p: _conv(a, xs[0], {**p, "weight": _standardised(a, p)}),
    Op.SCALED_STD_CONV2D: lambda a, xs, p: _conv(a, xs[0], {**p, "weight": _scaled_standardised(a, p)}),
    Op.BATCHNORM: lambda a, xs, p: _bn(a, xs[0], p),
    Op.FROZEN_BATCHNORM: lambda a, xs, p: _frozen_bn(a, xs[0], p),
    Op.RELU: lambda a, xs, p: torch.relu(xs[0]),
    Op.TANH: lambda a, xs, p: torch.tanh(xs[0]),
    Op.SIGMOID: lambda a, xs, p: torch.sigmoid(xs[0]),
    Op.RELU6: lambda a, xs, p: F.relu6(xs[0]),
    Op.SILU: lambda a, xs, p: F.silu(xs[0]),
    Op.HARDSWISH: lambda a, xs, p: F.hardswish(xs[0]),
    Op.HARDSIGMOID: lambda a, xs, p: F.hardsigmoid(xs[0]),
    Op.GELU: lambda a, xs, p: F.gelu(xs[0], approximate=a["approximate"]),
    Op.STOCHASTIC_DEPTH: lambda a, xs, p: xs[0],
    Op.CHANNEL_SHUFFLE: lambda a, xs, p: _shuffle(a["groups"], xs[0]),
    Op.SPLIT: lambda a, xs, p: _split(a, xs[0]),
    Op.SPATIAL_MEAN: lambda a, xs, p: xs[0].mean((1, 2) if a[_DIM] == -1 else (2, 3), keepdim=a["keepdim"]),
    Op.MAXPOOL: lambda a, xs, p: _maxpool(a, xs[0], p),
    Op.AVGPOOL: lambda a, xs, p: _avgpool(a, xs[0], p),
    Op.ADAPTIVE_AVGPOOL: lambda a, xs, p: F.adaptive_avg_pool2d(xs[0], a["output_size"]),
    Op.LRN: lambda a, xs, p: F.local_response_norm(xs[0], a["size"], a["alpha"], a["beta"], a["k"]),
    Op.DROPOUT: lambda a, xs, p: xs[0],
    Op.FLATTEN: lambda a, xs, p: torch.flatten(xs[0], 1),
    Op.LINEAR: lambda a, xs, p: F.linear(xs[0], p["weight"], p.get("bias")),
    Op.SOFTMAX: lambda a, xs, p: torch.softmax(xs[0], 1),
    Op.ATTENTION: lambda a, xs, p: _attention(a["heads"], xs[0]),
    Op.RADIX_SOFTMAX: lambda a, xs, p: _radix_softmax(a["radix"], a["groups"], xs[0]),
    Op.IDENTITY: lambda a, xs, p: xs[0],
    Op.PAD: lambda a, xs, p: _pad(a, xs[0]),
    Op.CONCAT: lambda a, xs, p: torch.cat(xs, a[_DIM]),
    Op.ADD: lambda a, xs, p: sum(xs[1:], xs[0]),
    Op.MUL: lambda a, xs, p: _product(xs),
    Op.LAYER_SCALE: lambda a, xs, p: _layer_scale(p["scale"], xs[0]),
    Op.ECA: lambda a, xs, p: _eca(xs[0], p["weight"]),
    Op.NARROW: lambda a, xs, p: xs[0][:, a["start"] : a["start"] + a["length"]],
    Op.SCALE: lambda a, xs, p: xs[0] * a["factor"],
    Op.BATCHNORM1D: lambda a, xs, p: _bn(a, xs[0], p),
    Op.PERMUTE: lambda a, xs, p: xs[0].permute(a["dims"]),
    Op.LAYERNORM: lambda a, xs, p: F.layer_norm(xs[0], xs[0].shape[-1:], p.get("weight"), p.get("bias"), a["eps"]),
    Op.LAYERNORM2D: lambda a, xs, p: _layernorm2d(a, xs[0], p),
    Op.PIXEL_SHUFFLE: lambda a, xs, p: F.pixel_shuffle(xs[0], a["upscale_factor"]),
    Op.PIXEL_UNSHUFFLE: lambda a, xs, p: F.pixel_unshuffle(xs[0], a["downscale_factor"]),
    Op.BLUR_POOL: lambda a, xs, p: blur_pool(a, xs[0]),
    Op.SPACE_TO_DEPTH: lambda a, xs, p: space_to_depth(xs[0], a["block_size"]),
    Op.DEPTH_TO_SPACE: lambda a, xs, p: depth_to_space(xs[0], a["block_size"]),
    Op.LEAKY_RELU: lambda a, xs, p: F.leaky_relu(xs[0], a["negative_slope"]),
    Op.PRELU: lambda a, xs, p: F.prelu(xs[0], p["weight"]),
    Op.STAR_RELU: lambda a, xs, p: p["scale"] * torch.relu(xs[0]) ** 2 + p["bias"],
    Op.ELU: lambda a, xs, p: F.elu(xs[0], a["alpha"]),
    Op.MISH: lambda a, xs, p: xs[0] * torch.tanh(F.softplus(xs[0])),
    Op.SOFTPLUS: lambda a, xs, p: F.softplus(xs[0], a["beta"], a["threshold"]),
    Op.HARDTANH: lambda a, xs, p: xs[0].clamp(a["min_val"], a["max_val"]),
    Op.SQUARE: lambda a, xs, p: xs[0] * xs[0],
    Op.DROPOUT2D: lambda a, xs, p: xs[0],
    Op.GROUP_NORM: lambda a, xs, p: F.group_norm(xs[0], a["num_groups"], p.get("weight"), p.get("bias"), a["eps"]),
    Op.INSTANCE_NORM: lambda a, xs, p: _instance_norm(a, xs[0], p),
    Op.ADAPTIVE_MAXPOOL: lambda a, xs, p: F.adaptive_max_pool2d(xs[0], a["output_size"]),
    Op.CONV_TRANSPOSE: lambda a, xs, p: _conv_transpose(a, xs[0], p),
    Op.UPSAMPLE: lambda a, xs, p: _upsample(a, xs[0]),
    Op.CROP: lambda a, xs, p: _crop(a, xs[0]),
    Op.EXTERNAL: lambda a, xs, p: _external(a, xs[0], p),
}


def _frozen_bn(a, x, p):
    # torchvision's FrozenBatchNorm2d.forward: folded to one scale and shift per channel
    scale = p["weight"] * (p["running_var"] + a["eps"]).rsqrt()
    shift = p["bias"] - p["running_mean"] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def _attention(heads, x):
    # softmax(qᵀk / √d) per head, written out (not scaled_dot_product_attention)
    n, c, h, w = x.shape
    d = c // (3 * heads)
    t = x.reshape(n, heads, 3 * d, h * w)
    q, k, v = t[:, :, :d], t[:, :, d : 2 * d], t[:, :, 2 * d :]  # (n, heads, d, positions)
    weights = torch.softmax(q.transpose(-1, -2) @ k / d**0.5, -1)
    return (v @ weights.transpose(-1, -2)).reshape(n, heads * d, h, w)


def _instance_norm(a, x, p):
    # eval: running statistics when tracked, else each sample's own
    stats = a["track_running_stats"]
    return F.instance_norm(
        x, p.get("running_mean"), p.get("running_var"), p.get("weight"), p.get("bias"), not stats, 0.0, a["eps"]
    )


def _conv_transpose(a, x, p):
    return F.conv_transpose2d(
        x, p["weight"], p.get("bias"), a["stride"], a["padding"], a["output_padding"], a["groups"], a["dilation"]
    )


def _upsample(a, x):
    corners = a["align_corners"] if a["mode"] == "bilinear" else None
    return F.interpolate(x, a["size"], a["scale_factor"], a["mode"], corners)


def _crop(a, x):
    (h, w), (hi, wi) = a["size"], x.shape[-2:]
    top, left = round((hi - h) / 2), round((wi - w) / 2)  # torchvision's center_crop
    return x[..., top : top + h, left : left + w]


def _split(a, x):
    chunks = a["chunks"]
    if isinstance(chunks, tuple):
        return torch.split(x, list(chunks), a[_DIM])[a["index"]]
    return torch.chunk(x, chunks, a[_DIM])[a["index"]]


def _product(xs):
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out


def _layernorm2d(a, x, p):
    x = x.permute(0, 2, 3, 1)
    return F.layer_norm(x, x.shape[-1:], p["weight"], p["bias"], a["eps"]).permute(0, 3, 1, 2)


BINOMIAL = {3: [1.0, 2.0, 1.0], 5: [1.0, 4.0, 6.0, 4.0, 1.0]}  # Pascal's triangle, by hand


def blur_pool(a, x):
    """Zhang's anti-aliased downsampling: pad, blur each channel with the normalised binomial
    outer product, at the stride."""
    (kh, kw), (ph, pw) = a["kernel_size"], a["padding"]
    rows, cols = (torch.tensor(BINOMIAL[k], dtype=x.dtype) / sum(BINOMIAL[k]) for k in (kh, kw))
    weight = (rows[:, None] * cols[None, :]).expand(x.shape[1], 1, kh, kw)
    x = F.pad(x, (pw, pw, ph, ph), mode=a["pad_mode"])
    return F.conv2d(x, weight, stride=a["stride"], groups=x.shape[1])


def space_to_depth(x, b):
    """ONNX's SpaceToDepth by its definition: output channel block (i·b + j) holds the input
    pixels at offset (i, j) of every b×b block (strided slices, not archlang's reshapes)."""
    n, c, h, w = x.shape
    out = x.new_empty(n, c * b * b, h // b, w // b)
    for i in range(b):
        for j in range(b):
            out[:, (i * b + j) * c : (i * b + j + 1) * c] = x[:, :, i::b, j::b]
    return out


def depth_to_space(x, b):
    """ONNX's DepthToSpace (DCR), the inverse of :func:`space_to_depth`."""
    n, c, h, w = x.shape
    c //= b * b
    out = x.new_empty(n, c, h * b, w * b)
    for i in range(b):
        for j in range(b):
            out[:, :, i::b, j::b] = x[:, (i * b + j) * c : (i * b + j + 1) * c]
    return out


def evaluate(graph, state_dict: dict, x: torch.Tensor):
    """The graph's main output for input ``x`` (eval mode; aux heads are not evaluated), or
    the dict of its returned values (``outputs dict(...)``)."""
    by_prefix: dict[str, dict] = {}
    for key, value in state_dict.items():
        prefix, _, name = key.rpartition(".")
        by_prefix.setdefault(prefix, {})[name] = value
    values = {}
    for nid, data in graph.nodes.items():
        if data.aux is not None:
            continue
        if data.op is Op.INPUT:
            values[nid] = x
            continue
        params = by_prefix.get(".".join(data.path), {})
        if data.op is Op.LAYER_SCALE:  # a bare parameter of its owner, named by the label
            params = {"scale": state_dict[".".join(data.path)]}
        if data.op is Op.ECA:  # its 1-D conv's weight: `<path>.conv.weight`
            params = by_prefix.get(".".join((*data.path, "conv")), {})
        # the channels' dim, for split and concat: the last of a channels-last (H×W×C) value
        attrs = {**data.attrs, _DIM: -1 if any(graph.nodes[i].channels_last for i in data.inputs) else 1}
        values[nid] = EVAL[data.op](attrs, [values[i] for i in data.inputs], params)
    if graph.returns:
        return OrderedDict((key, values[nid]) for key, nid in graph.returns)
    return values[graph.output]
