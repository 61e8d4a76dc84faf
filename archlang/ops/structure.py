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
    t_chunks,
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


def _layer_scale_shape(attrs, shapes):
    (shape,) = shapes
    if attrs["scalar"] and attrs["flat"]:
        raise ShapeError("E303", "layer_scale is either `scalar` (one number) or `flat` (C numbers), not both")
    return shape if attrs["scalar"] else sr.need_map(Op.LAYER_SCALE, shape)


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


def split_label(a) -> str:
    chunks, index = a["chunks"], a["index"]
    if isinstance(chunks, tuple):
        start = sum(chunks[:index])
        return f"split, channels {start}..{start + chunks[index] - 1}" if index < len(chunks) else "split"
    return f"split {index + 1}/{chunks}"


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


def shuffle_shape(op: Op):
    """``pixel_shuffle`` / ``depth_to_space``: C×H×W -> C/r²×rH×rW, r² dividing C."""

    def rule(attrs, shapes):
        (shape,) = shapes
        c, h, w = sr.need_map(op, shape)
        r = attrs["upscale_factor" if op is Op.PIXEL_SHUFFLE else "block_size"]
        if c % (r * r):
            raise ShapeError(
                "E405",
                f"{op.value}({r}) needs channels divisible by {r * r}, got {c}",
                help=f"{op.value} moves r² channels into an r×r block of pixels",
            )
        return (c // (r * r), h * r, w * r)

    return rule


def unshuffle_shape(op: Op):
    """``pixel_unshuffle`` / ``space_to_depth``: C×H×W -> r²C×H/r×W/r, r dividing H and W."""

    def rule(attrs, shapes):
        (shape,) = shapes
        c, h, w = sr.need_map(op, shape)
        r = attrs["downscale_factor" if op is Op.PIXEL_UNSHUFFLE else "block_size"]
        if h % r or w % r:
            raise ShapeError(
                "E405",
                f"{op.value}({r}) needs H and W divisible by {r}, got {h}×{w}",
                help=f"pad or crop the map to a multiple of {r} first",
            )
        return (c * r * r, h // r, w // r)

    return rule


def blocks_rf(key: str):
    """Space to depth by ``r``: an output unit holds one r×r block of input units, r apart."""

    def rule(attrs, rfs, ids, shapes):
        (rf,) = rfs
        r = attrs[key]
        return rf_rules.ReceptiveField(*(rf_rules.window_axis(a, r, r, 0, 1) for a in (rf.h, rf.w)))

    return rule


# TensorFlow's / ONNX's depth-space moves (DCR order: the position in the block is the major
# part of the channel index), which torch lacks: F.pixel_unshuffle / F.pixel_shuffle put the
# channel major. The generated file defines them; the importer reads them back by name and
# recognises any other spelling by its effect (archlang/importer/rearrange.py).
SPACE_TO_DEPTH_HELPERS = {
    "space_to_depth": '''def space_to_depth(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """ONNX's SpaceToDepth: each b×b block of pixels becomes b²·C channels, the block
    position major (TResNet's stem; `F.pixel_unshuffle` puts the channel major)."""
    n, c, h, w = x.shape
    b = block_size
    x = x.view(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(n, b * b * c, h // b, w // b)''',
    "SpaceToDepth": '''class SpaceToDepth(nn.Module):
    """`space_to_depth` as a module, for `nn.Sequential`."""

    def __init__(self, block_size: int) -> None:
        super().__init__()
        self.block_size = block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        b = self.block_size
        x = x.view(n, c, h // b, b, w // b, b).permute(0, 3, 5, 1, 2, 4)
        return x.reshape(n, b * b * c, h // b, w // b)''',
}
DEPTH_TO_SPACE_HELPERS = {
    "depth_to_space": '''def depth_to_space(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """ONNX's DepthToSpace (DCR): b²·C channels become a b×b block of pixels, the block
    position major (`F.pixel_shuffle` puts the channel major)."""
    n, c, h, w = x.shape
    b = block_size
    x = x.view(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(n, c // (b * b), h * b, w * b)''',
    "DepthToSpace": '''class DepthToSpace(nn.Module):
    """`depth_to_space` as a module, for `nn.Sequential`."""

    def __init__(self, block_size: int) -> None:
        super().__init__()
        self.block_size = block_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        b = self.block_size
        x = x.view(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
        return x.reshape(n, c // (b * b), h * b, w * b)''',
}


def _block_args(attrs, in_shape=None):
    return [Arg("block_size", attrs["block_size"], True)]


def _block_call(op: str):
    return lambda x, block_size: (op, (block_size,), ())


def _merge(op: Op, doc: str, functional: str, inputs: str, shape, label: str, **more):
    extra, width, last = more.pop("extra", ()), more.pop("width", "same"), more.pop("extra_last", None)
    return OpRecord(
        op,
        sig(doc),
        shape,
        TorchOp(None, tf.none, functional, inputs=inputs, fresh=True, extra=extra, width=width, extra_last=last),
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
        extra_last=(Arg("dim", -1, True),),
        width="concat",
        channels_last=sr.concat_last,
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
            A(
                "scalar",
                t_bool,
                False,
                "one learnable number for all channels (SkipInit's gain, NF-Nets' skipinit_gain)",
            ),
        ),
        _layer_scale_shape,
        TorchOp("nn.Parameter", tf.layer_scale_args, inputs="scale", fresh=True),
        Diagram("other", lambda a: "scalar gain" if a["scalar"] else "layer scale"),
        params=lambda attrs, ins, out: 1 if attrs["scalar"] else out[0],  # the scalar, or the C×1×1 scale
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
            "one piece of the channels: torch.chunk(x, chunks, dim=1)[index] for a count of equal "
            "chunks, torch.split(x, [10, 30], dim=1)[index] for the sizes (10, 30)",
            A("chunks", t_chunks),
            A("index", t_nonneg),
        ),
        sr.split(False),
        TorchOp(
            None,
            tf.none,
            "torch.chunk",
            tf.chunk_args,
            extra=(Arg("dim", 1),),
            extra_last=(Arg("dim", -1),),
            index="index",
            width="split",
            functional_for=tf.chunk_function,
        ),
        Diagram("other", split_label),
        channels_last=sr.split(True),  # the last dim: torch.split(x, sizes, dim=-1)[index]
        view=True,  # torch.chunk and torch.split return views of their input
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
            },
        ),
    ),
    OpRecord(
        Op.PIXEL_SHUFFLE,
        sig("pixel shuffle: C×H×W -> C/r²×rH×rW (sub-pixel convolution's upsampling)", A("upscale_factor", t_int)),
        shuffle_shape(Op.PIXEL_SHUFFLE),
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
    OpRecord(
        Op.PIXEL_UNSHUFFLE,
        sig(
            "pixel unshuffle: C×H×W -> r²C×H/r×W/r, the channel major (pixel_shuffle's inverse)",
            A("downscale_factor", t_int),
        ),
        unshuffle_shape(Op.PIXEL_UNSHUFFLE),
        TorchOp(
            "nn.PixelUnshuffle",
            lambda a, s=None: [Arg("downscale_factor", a["downscale_factor"], True)],
            "F.pixel_unshuffle",
            lambda a, s=None: [Arg("downscale_factor", a["downscale_factor"], True)],
            width="shape",
        ),
        Diagram("other", lambda a: f"pixel unshuffle, /{a['downscale_factor']}"),
        # a copy (aten::pixel_unshuffle: no fvcore handle, no arithmetic)
        rf=blocks_rf("downscale_factor"),
        role="pointwise",  # moves values between the grid and the channels; the size stays
        imports=Imports(
            modules={NN + "pixelshuffle.PixelUnshuffle": lambda m: ("pixel_unshuffle", (m.downscale_factor,), ())},
            functions={
                "torch.nn.functional.pixel_unshuffle": lambda input, downscale_factor: (
                    "pixel_unshuffle",
                    (downscale_factor,),
                    (),
                )
            },
        ),
    ),
    OpRecord(
        Op.SPACE_TO_DEPTH,
        sig(
            "space to depth: C×H×W -> b²C×H/b×W/b, the block position major (ONNX's SpaceToDepth)",
            A("block_size", t_int),
        ),
        unshuffle_shape(Op.SPACE_TO_DEPTH),
        TorchOp(
            "SpaceToDepth",
            _block_args,
            "space_to_depth",
            _block_args,
            width="shape",
            helpers=SPACE_TO_DEPTH_HELPERS,
        ),
        Diagram("other", lambda a: f"space to depth, /{a['block_size']}"),
        # a copy (view, permute, reshape: no fvcore handle, no arithmetic)
        rf=blocks_rf("block_size"),
        role="pointwise",  # moves values between the grid and the channels; the size stays
        imports=Imports(
            helpers={
                "SpaceToDepth": lambda m: ("space_to_depth", (m.block_size,), ()),
                "space_to_depth": _block_call("space_to_depth"),
            },
        ),
    ),
    OpRecord(
        Op.DEPTH_TO_SPACE,
        sig(
            "depth to space: C×H×W -> C/b²×bH×bW, the block position major (ONNX's DepthToSpace)",
            A("block_size", t_int),
        ),
        shuffle_shape(Op.DEPTH_TO_SPACE),
        TorchOp(
            "DepthToSpace",
            _block_args,
            "depth_to_space",
            _block_args,
            width="shape",
            helpers=DEPTH_TO_SPACE_HELPERS,
        ),
        Diagram("other", lambda a: f"depth to space, ×{a['block_size']}"),
        # a copy (view, permute, reshape: no fvcore handle, no arithmetic)
        rf=rf_rules.upscaled(lambda a, shape: (a["block_size"],) * 2),
        role="upsample",
        imports=Imports(
            helpers={
                "DepthToSpace": lambda m: ("depth_to_space", (m.block_size,), ()),
                "depth_to_space": _block_call("depth_to_space"),
            },
        ),
    ),
)
