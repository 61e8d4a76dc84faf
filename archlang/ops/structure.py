"""Structural ops: the input, merges, padding, layout and channel moves."""

from __future__ import annotations

from . import costs, labels, rf_rules
from . import shape_rules as sr
from . import torch_form as tf
from .base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    A,
    Op,
    ShapeError,
    sig,
    t_bool,
    t_fill,
    t_float,
    t_float_triple,
    t_int,
    t_nonneg,
    t_pad4,
    t_permutation,
)
from .import_form import NN, Unsupported, simple
from .record import Diagram, Imports, OpRecord
from .torch_form import Arg, TorchOp


def _pad_call(sides, value):
    """``(op, args, kwargs)`` of PyTorch's (left, right, top, bottom) with a fill value."""
    left, right, top, bottom = sides
    value = 0.0 if value is None else float(value)
    return "pad", ((top, bottom, left, right),), (() if value == 0 else (("value", value),))


def import_constant_pad(m):  # nn.ZeroPad2d is an nn.ConstantPad2d whose value is 0
    return _pad_call(m.padding, m.value)


def f_pad(input, pad, mode="constant", value=None):
    if mode != "constant" or len(pad) != 4 or (value is not None and value != value):
        raise Unsupported(
            f"pad={tuple(pad)}, mode={mode!r}, value={value!r} (archlang pads H and W with a constant value, not NaN)"
        )
    return _pad_call(pad, value)


def pad_label(a) -> str:
    sides = ", ".join(map(str, a["padding"]))
    return f"zero pad {sides}" if a["value"] == 0 else f"pad {sides} with {a['value']:g}"


def narrow_shape(attrs, shapes):
    (shape,) = shapes
    start, length = attrs["start"], attrs["length"]
    if start + length > shape[0]:
        raise ShapeError(
            "E303",
            f"narrow({start}, {length}) reaches channel {start + length}, past the input's {shape[0]}",
            help=f"start + length must be at most {shape[0]}",
        )
    return (length, *shape[1:])


def f_narrow(input, dim, start, length):
    if dim != 1:
        raise Unsupported(f"narrow along dim {dim} (archlang narrows the channels, dim 1)")
    return "narrow", (start, length), ()


def f_scale(input, other):
    return "scale", (float(other),), ()


def f_channel_shuffle(x, groups):
    return "channel_shuffle", (groups,), ()


def f_permute(input, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return "permute", (tuple(dims),), ()


def f_identity(input, *args, **kwargs):
    return None  # contiguous(), clone(): no change to the values


def pixel_shuffle_shape(attrs, shapes):
    (shape,) = shapes
    c, h, w = sr.need_map(Op.PIXEL_SHUFFLE, shape)
    r = attrs["upscale_factor"]
    if c % (r * r):
        raise ShapeError(
            "E405",
            f"pixel_shuffle({r}) needs channels divisible by {r * r}, got {c}",
            help="nn.PixelShuffle moves r² channels into an r×r block of pixels",
        )
    return (c // (r * r), h * r, w * r)


def _merge(op: Op, doc: str, functional: str, inputs: str, shape, label: str, **more):
    extra, width = more.pop("extra", ()), more.pop("width", "same")
    return OpRecord(
        op,
        sig(doc),
        shape,
        TorchOp(None, tf.none, functional, inputs=inputs, fresh=True, extra=extra, width=width),
        Diagram("other", lambda a: label),
        **more,
        rf=rf_rules.merge,
        role="merge",
    )


RECORDS = (
    OpRecord(
        Op.INPUT,
        sig("the network input"),
        lambda attrs, shapes: tuple(attrs["shape"]),
        TorchOp(None, inputs="alias"),
        Diagram("other", lambda a: "input"),
        rf=rf_rules.source,
        role="source",
    ),
    OpRecord(
        Op.TRANSFORM_INPUT,
        sig(
            "torchvision's transform_input: re-normalise ImageNet-normalised input to [-1, 1]",
            A("mean", t_float_triple, IMAGENET_MEAN),
            A("std", t_float_triple, IMAGENET_STD),
        ),
        sr.transform_input_shape,
        TorchOp("TransformInput", tf.transform_args, "transform_input", tf.transform_args),
        Diagram("other", lambda a: "transform input"),
        all_ops=costs.per_element(2),  # x * scale_c + shift_c (aten::mul / add / cat: no fvcore handle)
        # constants folded into the expression, not registered: no params
    ),
    OpRecord(
        Op.IDENTITY,
        sig("identity"),
        sr.same(Op.IDENTITY),
        TorchOp("nn.Identity", tf.none, inputs="alias"),
        Diagram("other", lambda a: "identity"),
        view=True,
        imports=Imports(
            modules={NN + "linear.Identity": simple("identity")},
            methods={"contiguous": f_identity, "clone": f_identity},
        ),
    ),
    OpRecord(
        Op.PAD,
        sig(
            "constant padding of the borders: an integer, (h, w) or (top, bottom, left, right); "
            "a negative amount crops; value: the fill (0, or -inf before a max pool)",
            A("padding", t_pad4),
            A("value", t_fill, 0.0),
        ),
        sr.pad_shape,
        TorchOp("nn.ZeroPad2d", tf.zero_pad_args, "F.pad", tf.f_pad_args, module_for=tf.pad_module),
        Diagram("other", pad_label),
        # no costs: constant_pad_nd copies (no arithmetic, whatever the fill), fvcore has no handle
        rf=rf_rules.pad,
        role="pointwise",  # no window: only moves the grid (receptive field keeps its size)
        imports=Imports(
            modules={NN + "padding.ZeroPad2d": import_constant_pad, NN + "padding.ConstantPad2d": import_constant_pad},
            functions={"torch.nn.functional.pad": f_pad},
        ),
    ),
    _merge(
        Op.CONCAT,
        "channel concatenation of parallel branches",
        "torch.cat",
        "list",
        sr.concat_shape,
        "concat",
        extra=(Arg("dim", 1, True),),  # a copy, no arithmetic
        width="concat",
    ),
    _merge(
        Op.ADD,
        "elementwise sum of parallel branches",
        "add",
        "sum",
        sr.add_shape,
        "sum",
        channels_last=sr.add_shape,
        all_ops=costs.add_ops,  # aten::add: no fvcore handle
    ),
    _merge(
        Op.MUL,
        "elementwise product of parallel branches, a C×1×1 branch broadcast over C×H×W",
        "mul",
        "product",
        sr.mul(False),
        "×",
        channels_last=sr.mul(True),
        all_ops=costs.add_ops,  # one multiply per element per extra branch (after broadcasting)
    ),
    OpRecord(
        Op.LAYER_SCALE,
        sig(
            "learnable per-channel scale (C×1×1 parameter named by the label)",
            A("init", t_float, 1e-6),
            A("flat", t_bool, False, "a (C,) parameter, reshaped to (1, C, 1, 1) where it multiplies (timm's gamma)"),
        ),
        sr.map_same(Op.LAYER_SCALE),
        TorchOp("nn.Parameter", tf.layer_scale_args, inputs="scale", fresh=True),
        Diagram("other", lambda a: "layer scale"),
        params=costs.channels,  # the C×1×1 scale
        all_ops=costs.per_element(1),
    ),
    OpRecord(
        Op.PERMUTE,
        sig("torch.permute, dims with the batch dim: (0, 2, 3, 1) is channels-last", A("dims", t_permutation)),
        sr.permute_shape,
        TorchOp("Permute", tf.permute_args, "torch.permute", tf.permute_args),
        Diagram("other", labels.permute_label),
        channels_last=sr.permute_shape,
        view=True,  # strides change, no copy
        role="pointwise",  # changes the layout, not the representation
        imports=Imports(
            modules={"torchvision.ops.misc.Permute": lambda m: ("permute", (tuple(m.dims),), ())},
            functions={"torch.permute": f_permute},
            methods={"permute": f_permute},
        ),
    ),
    OpRecord(
        Op.SPLIT,
        sig(
            "one chunk along channels: torch.chunk(x, chunks, dim=1)[index]",
            A("chunks", t_int),
            A("index", t_nonneg),
        ),
        sr.split_shape,
        TorchOp(None, tf.none, "torch.chunk", tf.chunk_args, extra=(Arg("dim", 1),), index="index", width="split"),
        Diagram("other", lambda a: f"split {a['index'] + 1}/{a['chunks']}"),
        view=True,  # torch.chunk returns a view of its input
        role="pointwise",  # a subset of the channels, at every position
    ),
    OpRecord(
        Op.NARROW,
        sig(
            "consecutive channels: torch.narrow(x, 1, start, length), x[:, start:start + length]",
            A("start", t_nonneg),
            A("length", t_int),
        ),
        narrow_shape,
        TorchOp(
            None,
            tf.none,
            "torch.narrow",
            lambda a, s=None: [Arg("dim", 1, True), Arg("start", a["start"], True), Arg("length", a["length"], True)],
            width="shape",
        ),
        Diagram("other", lambda a: f"channels {a['start']}..{a['start'] + a['length'] - 1}"),
        view=True,  # a slice of its input (aten::narrow / aten::slice: no fvcore handle)
        role="pointwise",  # a subset of the channels, at every position
        imports=Imports(functions={"torch.narrow": f_narrow}, methods={"narrow": f_narrow}),
    ),
    OpRecord(
        Op.SCALE,
        sig("a constant factor: x * factor (Inception-ResNet's residual scale)", A("factor", t_float)),
        sr.same(Op.SCALE),
        TorchOp(None, tf.none, "torch.mul", lambda a, s=None: [Arg("other", a["factor"], True)]),
        Diagram("other", lambda a: f"× {a['factor']:g}"),
        flops=costs.zero,  # aten::mul: fvcore has no handle for it
        all_ops=costs.per_element(1),
    ),
    OpRecord(
        Op.CHANNEL_SHUFFLE,
        sig("channel shuffle: (groups, C/groups) -> (C/groups, groups)", A("groups", t_int)),
        sr.channel_shuffle_shape,
        TorchOp("nn.ChannelShuffle", tf.shuffle_args, "F.channel_shuffle", tf.shuffle_args),
        Diagram("other", lambda a: f"channel shuffle, g{a['groups']}"),
        # a copy (the transpose is made contiguous); it permutes channels only
        imports=Imports(
            modules={NN + "channelshuffle.ChannelShuffle": lambda m: ("channel_shuffle", (m.groups,), ())},
            functions={
                "torch.nn.functional.channel_shuffle": f_channel_shuffle,
                "torch.channel_shuffle": f_channel_shuffle,
                "torchvision.models.shufflenetv2.channel_shuffle": f_channel_shuffle,
            },
        ),
    ),
    OpRecord(
        Op.PIXEL_SHUFFLE,
        sig("pixel shuffle: C×H×W -> C/r²×rH×rW (sub-pixel convolution's upsampling)", A("upscale_factor", t_int)),
        pixel_shuffle_shape,
        TorchOp(
            "nn.PixelShuffle",
            lambda a, s=None: [Arg("upscale_factor", a["upscale_factor"], True)],
            "F.pixel_shuffle",
            lambda a, s=None: [Arg("upscale_factor", a["upscale_factor"], True)],
            width="shape",
        ),
        Diagram("other", lambda a: f"pixel shuffle, ×{a['upscale_factor']}"),
        # a copy (aten::pixel_shuffle: no fvcore handle, no arithmetic)
        rf=rf_rules.upscaled(lambda a, shape: (a["upscale_factor"],) * 2),
        role="upsample",
        imports=Imports(
            modules={NN + "pixelshuffle.PixelShuffle": lambda m: ("pixel_shuffle", (m.upscale_factor,), ())},
            functions={
                "torch.nn.functional.pixel_shuffle": lambda input, upscale_factor: (
                    "pixel_shuffle",
                    (upscale_factor,),
                    (),
                )
            },
        ),
    ),
)
