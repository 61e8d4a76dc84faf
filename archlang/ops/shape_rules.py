"""Shape rules of the primitive ops: one per :class:`archlang.ops.Op`, from the call's
attributes and the input shapes to the output shape (per sample, without the batch).

The op records (:mod:`archlang.ops.records`) name them; the shape pass
(:mod:`archlang.graph.shape_pass`) applies them; lowering imports ``resolve_padding`` from here.
"""

from __future__ import annotations

import math

from archlang.graph.shape_text import format_shape
from archlang.ops.base import MAX_PARAM_ELEMENTS, Op, ShapeError

# ---- shape rules ------------------------------------------------------------------------

Shape = tuple[int, ...]


def need_map(op: Op, shape: Shape) -> Shape:
    if len(shape) != 3:
        raise ShapeError(
            "E404",
            f"{op.value} needs a C×H×W feature map, got a flat vector of {shape[0]}",
            help="move this layer before `flatten`",
        )
    return shape


def window_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's output-size formula, including ceil_mode's last-window rule."""
    eff = d * (k - 1) + 1
    span = size + 2 * p - eff
    if ceil_mode:
        # Rounding up keeps a window that overhangs the end, even one wider than the whole
        # padded input (torch: a 2/2 pool on 1 pixel gives 1), unless it would start past
        # the input and the left padding.
        out = -(-span // s) + 1
        if out > 0 and (out - 1) * s >= size + p:
            out -= 1
        return max(out, 0)
    return max(span // s + 1, 0)


def resolve_padding(attrs: dict) -> tuple[int, int]:
    pad = attrs["padding"]
    if pad == "valid":
        return (0, 0)
    if pad == "same":
        if max(attrs["stride"]) > 1:
            raise ShapeError(
                "E304",
                'padding="same" needs stride 1 (PyTorch refuses it for strided convolutions)',
                help="give explicit padding; for TensorFlow's asymmetric SAME padding put "
                "`pad((top, bottom, left, right))` before the conv",
            )
        out = []
        for k, d in zip(attrs["kernel_size"], attrs["dilation"]):
            total = d * (k - 1)
            if total % 2:
                raise ShapeError(
                    "E304",
                    'padding="same" needs an odd kernel (with its dilation)',
                    help="give explicit padding for even kernels",
                )
            out.append(total // 2)
        return tuple(out)
    return pad


def spatial(op: Op, shape: Shape, k, s, p, d, ceil_mode: bool) -> tuple[int, int]:
    _, h, w = shape
    if any(pi * 2 > ki for pi, ki in zip(p, k)) and op in (Op.MAXPOOL, Op.AVGPOOL):
        raise ShapeError(
            "E303",
            f"{op.value} padding {p} must be at most half the kernel {k}",
            help="PyTorch rejects pool padding larger than kernel_size / 2",
        )
    oh = window_out(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = window_out(w, k[1], s[1], p[1], d[1], ceil_mode)
    if oh < 1 or ow < 1:
        raise ShapeError(
            "E403",
            f"{op.value} output would be {oh}×{ow}: the {h}×{w} input is too small",
            help=f"kernel {k[0]}×{k[1]} (stride {s[0]}×{s[1]}, padding {p[0]}×{p[1]}) needs a larger "
            "input; use --input to change the input size, or add padding",
        )
    return oh, ow


def conv_shape_of(op: Op):
    """The shape rule of a 2-D convolution (conv2d and the weight-standardised ones), whose
    messages name ``op``."""

    def rule(attrs, shapes):
        (shape,) = shapes
        c, _, _ = need_map(op, shape)
        g = attrs["groups"]
        if c % g or attrs["out_channels"] % g:
            raise ShapeError(
                "E405", f"groups={g} must divide both in_channels ({c}) and out_channels ({attrs['out_channels']})"
            )
        kh, kw = attrs["kernel_size"]
        check_weight(op, (attrs["out_channels"], c // g, kh, kw))
        p = resolve_padding(attrs)
        oh, ow = spatial(op, shape, attrs["kernel_size"], attrs["stride"], p, attrs["dilation"], False)
        return (attrs["out_channels"], oh, ow)

    return rule


conv_shape = conv_shape_of(Op.CONV2D)


def check_weight(op: Op, shape: Shape) -> None:
    """One parameter tensor of more than MAX_PARAM_ELEMENTS elements cannot be allocated (a
    ``Linear(2**60, 2**20)`` would be emitted and fail at construction): refuse it here."""
    if math.prod(shape) > MAX_PARAM_ELEMENTS:
        raise ShapeError(
            "E603",
            f"{op.value} weight {'×'.join(map(str, shape))} has {math.prod(shape):,} elements, beyond the limit "
            f"of {MAX_PARAM_ELEMENTS:,} for one parameter tensor",
            help="archlang refuses parameter tensors this large; is there a typo?",
        )


def pool_shape(op):
    def rule(attrs, shapes):
        (shape,) = shapes
        c, _, _ = need_map(op, shape)
        k = attrs["kernel_size"]
        s = attrs["stride"] or k
        d = attrs.get("dilation", (1, 1))
        oh, ow = spatial(op, shape, k, s, attrs["padding"], d, attrs["ceil_mode"])
        return (c, oh, ow)

    return rule


def same(op):
    def rule(attrs, shapes):
        (shape,) = shapes
        return shape

    rule.layout_free = True  # elementwise: a channels-last input stays channels-last
    return rule


def map_same(op):
    def rule(attrs, shapes):
        (shape,) = shapes
        return need_map(op, shape)

    return rule


def transform_input_shape(attrs, shapes):
    (shape,) = shapes
    if len(shape) != 3 or shape[0] != 3:
        raise ShapeError("E406", f"transform_input needs a 3-channel image, got {'×'.join(map(str, shape))}")
    return shape


def pad_shape(attrs, shapes):
    (shape,) = shapes
    c, h, w = need_map(Op.PAD, shape)
    top, bottom, left, right = attrs["padding"]
    oh, ow = h + top + bottom, w + left + right
    # a negative amount crops (F.pad): the crops must fit in the input, and something is left
    if oh < 1 or ow < 1 or -min(top, 0) - min(bottom, 0) > h or -min(left, 0) - min(right, 0) > w:
        raise ShapeError(
            "E403",
            f"pad {(top, bottom, left, right)} crops more than its {h}×{w} input has (the output would be {oh}×{ow})",
            help="a negative amount crops that side; the crops of an axis must leave at least one row (column)",
        )
    return (c, oh, ow)


def adaptive_shape(attrs, shapes):
    (shape,) = shapes
    c, _, _ = need_map(Op.ADAPTIVE_AVGPOOL, shape)
    return (c, *attrs["output_size"])


def flatten_shape(attrs, shapes):
    (shape,) = shapes
    return (math.prod(shape),)


def require_flat(op: str, shape: tuple, help: str) -> None:
    """E404 unless ``shape`` is a vector (what ``linear`` and ``batchnorm1d`` take)."""
    if len(shape) != 1:
        raise ShapeError("E404", f"{op} needs a flat input, got a {'×'.join(map(str, shape))} feature map", help=help)


def linear_shape(attrs, shapes):
    (shape,) = shapes
    require_flat("linear", shape, "add `flatten` before this layer")
    check_weight(Op.LINEAR, (attrs["out_features"], shape[0]))
    return (attrs["out_features"],)


def channel_shuffle_shape(attrs, shapes):
    (shape,) = shapes
    c, _, _ = need_map(Op.CHANNEL_SHUFFLE, shape)
    g = attrs["groups"]
    if c % g:
        raise ShapeError(
            "E405",
            f"channel_shuffle groups={g} must divide the channels ({c})",
            help="nn.ChannelShuffle reshapes C into (groups, C / groups)",
        )
    return shape


def chunk_sizes(c: int, chunks: int) -> list[int]:
    """The channel counts ``torch.chunk(x, chunks, dim=1)`` returns for ``c`` channels: pieces
    of ``ceil(c / chunks)``, the last one smaller, so possibly fewer than ``chunks``."""
    size = -(-c // chunks)
    return [min(size, c - start) for start in range(0, c, size)]


def split(channels_last: bool):
    """``split``'s rule: the channels are the first dim, or the last of a channels-last
    (H×W×C) value (MambaOut's gated block splits its linear's output that way)."""

    def rule(attrs, shapes):
        (shape,) = shapes
        axis = len(shape) - 1 if channels_last else 0
        c, chunks, index = shape[axis], attrs["chunks"], attrs["index"]
        if isinstance(chunks, tuple):
            if sum(chunks) != c:
                raise ShapeError(
                    "E303",
                    f"split sizes {chunks} add up to {sum(chunks)} channels; the input has {c}",
                    help=f"give channel counts that add up to {c}",
                )
            sizes, what = list(chunks), f"{len(chunks)} pieces"
        else:
            sizes = chunk_sizes(c, chunks)
            fewer = f" (torch.chunk gives only {len(sizes)} for {c} channels)" if len(sizes) < chunks else ""
            what = f"{chunks} chunks{fewer}"
        if index >= len(sizes):
            raise ShapeError(
                "E303",
                f"split index {index} is out of range: {what}",
                help=f"index counts from 0; the pieces have {', '.join(map(str, sizes))} channels",
            )
        return (*shape[:axis], sizes[index], *shape[axis + 1 :])

    return rule


def spatial_mean_shape(attrs, shapes):
    (shape,) = shapes
    c, _, _ = need_map(Op.SPATIAL_MEAN, shape)
    return (c, 1, 1) if attrs["keepdim"] else (c,)


def spatial_mean_last(attrs, shapes):
    (shape,) = shapes
    _, _, c = need_map(Op.SPATIAL_MEAN, shape)
    return (1, 1, c) if attrs["keepdim"] else (c,)


def softmax_shape(attrs, shapes):
    (shape,) = shapes
    return shape


def concat_shape(attrs, shapes):
    if any(len(s) != len(shapes[0]) for s in shapes):
        raise ShapeError(
            "E401",
            "concat inputs mix feature maps and flat vectors",
            notes=tuple(f"branch {i + 1}: {format_shape(s)}" for i, s in enumerate(shapes)),
        )
    if len(shapes[0]) == 3:
        hw = {s[1:] for s in shapes}
        if len(hw) > 1:
            raise ShapeError(
                "E401",
                "concat inputs disagree in height×width",
                help="every branch of a concat must keep the same spatial size; check strides and padding",
                notes=tuple(f"branch {i + 1}: {format_shape(s)}" for i, s in enumerate(shapes)),
            )
        return (sum(s[0] for s in shapes), *shapes[0][1:])
    return (sum(s[0] for s in shapes),)


def concat_last(attrs, shapes):
    """Channels-last (H×W×C) values join on their last dim: ``torch.cat(xs, -1)``."""
    if len({s[:-1] for s in shapes}) > 1:
        raise ShapeError(
            "E401",
            "channels-last concat inputs disagree in the dims before the channels",
            help="every branch of a concat must keep the same spatial size; check strides and padding",
            notes=tuple(f"branch {i + 1}: {format_shape(s)}" for i, s in enumerate(shapes)),
        )
    return (*shapes[0][:-1], sum(s[-1] for s in shapes))


def add_shape(attrs, shapes):
    if len(set(shapes)) > 1:
        raise ShapeError(
            "E402",
            "add inputs disagree in shape",
            help="every branch of an add must produce the same C×H×W",
            notes=tuple(f"branch {i + 1}: {format_shape(s)}" for i, s in enumerate(shapes)),
        )
    return shapes[0]


def mul(channels_last: bool):
    def rule(attrs, shapes):
        """Equal shapes, or a per-channel C×1×1 (1×1×C channels-last) branch broadcast over
        the full map: the broadcasting of squeeze-and-excitation's ``scale * x``."""
        full = max(shapes, key=math.prod)
        per_channel = ((1, 1, full[-1]) if channels_last else (full[0], 1, 1)) if len(full) == 3 else full
        if any(s not in (full, per_channel) for s in shapes):
            mul_error(shapes)
        return full

    return rule


def mul_error(shapes):
    raise ShapeError(
        "E402",
        "mul inputs disagree in shape (only a C×1×1 branch broadcasts over C×H×W)",
        help="every branch of a mul must produce the same shape, or the per-channel C×1×1 of it",
        notes=tuple(f"branch {i + 1}: {format_shape(s)}" for i, s in enumerate(shapes)),
    )


def layernorm_shape(attrs, shapes):
    (shape,) = shapes
    if len(shape) != 1:
        raise ShapeError(
            "E407",
            f"layernorm normalises the last dim; on a C×H×W map ({format_shape(shape)}) that is the width",
            help="use `layernorm2d` to normalise the channels, or `permute((0, 2, 3, 1))` first (channels-last)",
        )
    return shape


def linear_last(attrs, shapes):
    (shape,) = shapes
    check_weight(Op.LINEAR, (attrs["out_features"], shape[-1]))
    return (*shape[:-1], attrs["out_features"])


def permute_shape(attrs, shapes):
    (shape,) = shapes
    dims = attrs["dims"]
    if len(dims) != len(shape) + 1:
        raise ShapeError(
            "E407",
            f"permute{dims} has {len(dims)} dims; its input has {len(shape) + 1} (with the batch dim)",
            help="give one index per dim, the batch dim 0 first: (0, 2, 3, 1) for a C×H×W map",
        )
    full = (None, *shape)
    return tuple(full[d] for d in dims[1:])


def permuted_layout(dims: tuple, channels_last: bool) -> bool | None:
    """Where the channels go: True channels-last, False channels-first, None neither."""
    new = dims.index(len(dims) - 1 if channels_last else 1)
    return True if new == len(dims) - 1 and len(dims) > 2 else False if new == 1 else None
