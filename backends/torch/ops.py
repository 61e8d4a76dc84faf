"""What each primitive op is in PyTorch: its module, its functional call, its init.

One row per :class:`archlang.ops.Op` (a test checks the table is complete). Rows are plain
data — names such as ``"nn.Conv2d"`` and argument builders — so the code generator can print
them; this file does not import torch. Names that are not torch's (``TransformInput``,
``transform_input``, ``StochasticDepth``, ``stochastic_depth``: torchvision's, without
importing torchvision) are defined by the generated file itself (:mod:`.texts`).

Arguments are ``Arg(name, value, positional)`` lists in the order PyTorch's signature takes
them; arguments equal to PyTorch's defaults are left out, so the generated code reads like
hand-written code (``nn.MaxPool2d(3, stride=2, ceil_mode=True)``). Arguments named in
``SYMBOLIC`` are widths and rates that a block class can take as constructor parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from archlang.ops import Op

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Arg:
    """One argument; ``default``: PyTorch's default, for an argument that is always listed
    because a block class may take it as a parameter (a conv's ``stride``) — printed only
    when it differs (see :func:`explicit`)."""

    name: str
    value: object
    positional: bool = False
    default: object = _NO_DEFAULT

    @property
    def has_default(self) -> bool:
        return self.default is not _NO_DEFAULT


def explicit(args) -> list[Arg]:
    """The arguments a person would write: those not equal to their PyTorch default."""
    return [a for a in args if not (a.has_default and a.value == a.default)]


class Training:
    """Placeholder for ``self.training`` in a functional call (dropout)."""

    def __repr__(self) -> str:  # pragma: no cover - rendered by the generator
        return "self.training"


TRAINING = Training()

# Ops whose output is a freshly allocated tensor: a ReLU that is their only reader may run
# in place (as torchvision's BasicConv2d does). Dropout is not here: in eval it returns its
# input, and flatten returns a view.
FRESH_OUTPUT = frozenset(
    {Op.CONV2D, Op.BATCHNORM, Op.LINEAR, Op.CONCAT, Op.ADD, Op.MUL, Op.LAYER_SCALE, Op.LAYERNORM, Op.LAYERNORM2D}
)


def _size(v):
    """PyTorch accepts ``3`` for ``(3, 3)``; print the short form when it is square."""
    if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
        return v[0]
    return v


def _opt(name, value, default, transform=_size):
    value = transform(value) if value is not None else None
    default = transform(default) if default is not None else None
    return [] if value == default else [Arg(name, value)]


def _conv_args(attrs, in_shape):
    return [
        Arg("in_channels", in_shape[0], True),
        Arg("out_channels", attrs["out_channels"], True),
        Arg("kernel_size", _size(attrs["kernel_size"])),
        Arg("stride", _size(attrs["stride"]), default=1),
        *_opt("padding", attrs["padding"], (0, 0)),
        *_opt("dilation", attrs["dilation"], (1, 1)),
        *_opt("groups", attrs["groups"], 1, int),
        *_opt("bias", attrs["bias"], True, bool),
    ]


def _bn_args(attrs, in_shape):
    return [
        Arg("num_features", in_shape[0], True),
        *_opt("eps", attrs["eps"], 1e-5, float),
        *_opt("momentum", attrs["momentum"], 0.1, float),
        *_opt("affine", attrs["affine"], True, bool),
    ]


def _maxpool_args(attrs, in_shape=None):
    stride = attrs["stride"] or attrs["kernel_size"]
    return [
        Arg("kernel_size", _size(attrs["kernel_size"]), True),
        Arg("stride", _size(stride)),
        *_opt("padding", attrs["padding"], (0, 0)),
        *_opt("dilation", attrs["dilation"], (1, 1)),
        *_opt("ceil_mode", attrs["ceil_mode"], False, bool),
    ]


def _avgpool_args(attrs, in_shape=None):
    stride = attrs["stride"] or attrs["kernel_size"]
    return [
        Arg("kernel_size", _size(attrs["kernel_size"]), True),
        Arg("stride", _size(stride)),
        *_opt("padding", attrs["padding"], (0, 0)),
        *_opt("ceil_mode", attrs["ceil_mode"], False, bool),
        *_opt("count_include_pad", attrs["count_include_pad"], True, bool),
    ]


def _adaptive_args(attrs, in_shape=None):
    return [Arg("output_size", tuple(attrs["output_size"]), True)]


def _lrn_args(attrs, in_shape=None):
    return [
        Arg("size", attrs["size"], True),
        *_opt("alpha", attrs["alpha"], 1e-4, float),
        *_opt("beta", attrs["beta"], 0.75, float),
        *_opt("k", attrs["k"], 1.0, float),
    ]


def _dropout_args(attrs, in_shape=None):
    return [Arg("p", attrs["p"])]


def _linear_args(attrs, in_shape):
    return [
        Arg("in_features", in_shape[-1], True),  # the last dim: a vector, or channels-last
        Arg("out_features", attrs["out_features"], True),
        *_opt("bias", attrs["bias"], True, bool),
    ]


def _transform_args(attrs, in_shape=None):
    return [Arg("mean", tuple(attrs["mean"])), Arg("std", tuple(attrs["std"]))]


def _zero_pad_args(attrs, in_shape=None):
    top, bottom, left, right = attrs["padding"]
    sides = (left, right, top, bottom)  # PyTorch's order: last dimension first
    return [Arg("padding", sides[0] if len(set(sides)) == 1 else sides, True)]


def _f_pad_args(attrs, in_shape=None):
    top, bottom, left, right = attrs["padding"]
    return [Arg("pad", (left, right, top, bottom), True)]


def _gelu_args(attrs, in_shape=None):
    return _opt("approximate", attrs["approximate"], "none", str)


def _stochastic_depth_args(attrs, in_shape=None):
    return [Arg("p", attrs["p"], True), Arg("mode", attrs["mode"], True)]  # torchvision's order


def _shuffle_args(attrs, in_shape=None):
    return [Arg("groups", attrs["groups"], True)]


def _chunk_args(attrs, in_shape=None):
    return [Arg("chunks", attrs["chunks"], True)]


def _mean_args(attrs, in_shape=None):
    return [Arg("dim", (2, 3), True), *_opt("keepdim", attrs["keepdim"], False, bool)]


def _none(attrs, in_shape=None):
    return []


def _permute_args(attrs, in_shape=None):
    return [Arg("dims", tuple(attrs["dims"]), True)]


def _layernorm_args(attrs, in_shape):
    return [
        Arg("normalized_shape", in_shape[-1], True),
        *_opt("eps", attrs["eps"], 1e-5, float),
        *_opt("elementwise_affine", attrs.get("affine", True), True, bool),
    ]


def _layer_scale_args(attrs, in_shape):
    # a bare parameter: nn.Parameter(torch.full((C, 1, 1), init)) (see describe.Describer)
    return [Arg("channels", in_shape[0], True), Arg("init", attrs["init"], True)]


@dataclass(frozen=True)
class TorchOp:
    """How one op is written in PyTorch.

    ``module``: the ``nn`` class (``None``: no module form, e.g. concat); ``module_args``
    builds its constructor arguments from (attrs, input shape). ``functional``: the call used
    in a ``forward`` when the op is not a submodule (``None``: it has parameters, so it is
    always a submodule), with ``functional_args`` after the input. ``inputs`` says how the
    inputs are passed: ``"one"`` tensor, a ``"list"`` (concat), a ``"sum"`` (add) or an
    ``"alias"`` (identity: no code at all), a ``"product"`` (mul) or a ``"scale"`` (layer_scale:
    ``module`` is a bare ``nn.Parameter`` of the owner, multiplied in). ``init``: whether the spec's weight init applies.
    ``index``: the attribute that subscripts the functional call's result (``split``:
    ``torch.chunk(x, 2, dim=1)[index]``).
    """

    module: str | None
    module_args: Callable = _none
    functional: str | None = None
    functional_args: Callable = _none
    inputs: str = "one"
    init: bool = False
    extra: tuple[Arg, ...] = field(default_factory=tuple)
    index: str | None = None


TORCH_OPS: dict[Op, TorchOp] = {
    Op.INPUT: TorchOp(None, inputs="alias"),
    Op.TRANSFORM_INPUT: TorchOp("TransformInput", _transform_args, "transform_input", _transform_args),
    Op.CONV2D: TorchOp("nn.Conv2d", _conv_args, init=True),
    Op.BATCHNORM: TorchOp("nn.BatchNorm2d", _bn_args),
    Op.RELU: TorchOp("nn.ReLU", _none, "F.relu"),
    Op.TANH: TorchOp("nn.Tanh", _none, "torch.tanh"),
    Op.SIGMOID: TorchOp("nn.Sigmoid", _none, "torch.sigmoid"),
    Op.RELU6: TorchOp("nn.ReLU6", _none, "F.relu6"),
    Op.SILU: TorchOp("nn.SiLU", _none, "F.silu"),
    Op.HARDSWISH: TorchOp("nn.Hardswish", _none, "F.hardswish"),
    Op.HARDSIGMOID: TorchOp("nn.Hardsigmoid", _none, "F.hardsigmoid"),
    Op.GELU: TorchOp("nn.GELU", _gelu_args, "F.gelu", _gelu_args),
    Op.STOCHASTIC_DEPTH: TorchOp(
        "StochasticDepth",
        _stochastic_depth_args,
        "stochastic_depth",
        _stochastic_depth_args,
        extra=(Arg("training", TRAINING),),
    ),
    Op.CHANNEL_SHUFFLE: TorchOp("nn.ChannelShuffle", _shuffle_args, "F.channel_shuffle", _shuffle_args),
    Op.SPLIT: TorchOp(None, _none, "torch.chunk", _chunk_args, extra=(Arg("dim", 1),), index="index"),
    Op.SPATIAL_MEAN: TorchOp(None, _none, "torch.mean", _mean_args),
    Op.MAXPOOL: TorchOp("nn.MaxPool2d", _maxpool_args, "F.max_pool2d", _maxpool_args),
    Op.AVGPOOL: TorchOp("nn.AvgPool2d", _avgpool_args, "F.avg_pool2d", _avgpool_args),
    Op.ADAPTIVE_AVGPOOL: TorchOp("nn.AdaptiveAvgPool2d", _adaptive_args, "F.adaptive_avg_pool2d", _adaptive_args),
    Op.LRN: TorchOp("nn.LocalResponseNorm", _lrn_args, "F.local_response_norm", _lrn_args),
    Op.DROPOUT: TorchOp("nn.Dropout", _dropout_args, "F.dropout", _dropout_args, extra=(Arg("training", TRAINING),)),
    Op.FLATTEN: TorchOp("nn.Flatten", _none, "torch.flatten", extra=(Arg("start_dim", 1, True),)),
    Op.LINEAR: TorchOp("nn.Linear", _linear_args, init=True),
    Op.SOFTMAX: TorchOp("nn.Softmax", lambda a, s=None: [Arg("dim", 1)], "F.softmax", extra=(Arg("dim", 1),)),
    Op.IDENTITY: TorchOp("nn.Identity", _none, inputs="alias"),
    Op.PAD: TorchOp("nn.ZeroPad2d", _zero_pad_args, "F.pad", _f_pad_args),
    Op.CONCAT: TorchOp(None, _none, "torch.cat", inputs="list", extra=(Arg("dim", 1, True),)),
    Op.ADD: TorchOp(None, _none, "add", inputs="sum"),
    Op.MUL: TorchOp(None, _none, "mul", inputs="product"),
    Op.LAYER_SCALE: TorchOp("nn.Parameter", _layer_scale_args, inputs="scale"),
    Op.PERMUTE: TorchOp("Permute", _permute_args, "torch.permute", _permute_args),
    Op.LAYERNORM: TorchOp("nn.LayerNorm", _layernorm_args),
    Op.LAYERNORM2D: TorchOp("LayerNorm2d", _layernorm_args),
}

# Constructor / functional arguments a block class may take from its own parameters.
SYMBOLIC = {
    "in_channels": "channels",
    "out_channels": "channels",
    "num_features": "channels",
    "in_features": "channels",
    "out_features": "channels",
    "p": "rate",
    "stride": "size",
}

# The weight initialisers a spec's `init` statement can name, as torch.nn.init calls.
INIT_SCHEMES = {
    "trunc_normal": "nn.init.trunc_normal_",
    "normal": "nn.init.normal_",
    "kaiming_normal": "nn.init.kaiming_normal_",
    "kaiming_uniform": "nn.init.kaiming_uniform_",
    "xavier_normal": "nn.init.xavier_normal_",
    "xavier_uniform": "nn.init.xavier_uniform_",
}
# The keyword arguments of each initialiser, taken from the spec's init (archlang/ops/inits.py);
# the normals draw around mean 0.
INIT_KWARGS = {
    "trunc_normal": ("std", "a", "b"),
    "normal": ("std",),
    "kaiming_normal": ("a", "mode", "nonlinearity"),
    "kaiming_uniform": ("a", "mode", "nonlinearity"),
    "xavier_normal": ("gain",),
    "xavier_uniform": ("gain",),
}
INIT_MEAN = {"trunc_normal": 0.0, "normal": 0.0}
