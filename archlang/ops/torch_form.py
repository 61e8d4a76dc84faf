"""What each primitive op is in PyTorch, as data: its module, its functional call, the
arguments of each (the op records' ``torch`` field, read by :mod:`archlang.backends.torch`).

Rows are plain data — names such as ``"nn.Conv2d"`` and argument builders — so the code
generator can print them; this file does not import torch. Names that are not torch's
(``TransformInput``, ``transform_input``, ``StochasticDepth``, ``stochastic_depth``:
torchvision's, without importing torchvision) are defined by the generated file itself
(``backends/torch/texts.py``).

Arguments are ``Arg(name, value, positional)`` lists in the order PyTorch's signature takes
them; arguments equal to PyTorch's defaults are left out, so the generated code reads like
hand-written code (``nn.MaxPool2d(3, stride=2, ceil_mode=True)``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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


def size(v):
    """PyTorch accepts ``3`` for ``(3, 3)``; print the short form when it is square."""
    if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
        return v[0]
    return v


def opt(name, value, default, transform=size):
    value = transform(value) if value is not None else None
    default = transform(default) if default is not None else None
    return [] if value == default else [Arg(name, value)]


def conv_args(attrs, in_shape):
    return [
        Arg("in_channels", in_shape[0], True),
        Arg("out_channels", attrs["out_channels"], True),
        Arg("kernel_size", size(attrs["kernel_size"])),
        Arg("stride", size(attrs["stride"]), default=1),
        *opt("padding", attrs["padding"], (0, 0)),
        *opt("dilation", attrs["dilation"], (1, 1)),
        *opt("groups", attrs["groups"], 1, int),
        *opt("bias", attrs["bias"], True, bool),
    ]


def bn_args(attrs, in_shape):
    return [
        Arg("num_features", in_shape[0], True),
        *opt("eps", attrs["eps"], 1e-5, float),
        *opt("momentum", attrs["momentum"], 0.1, float),
        *opt("affine", attrs["affine"], True, bool),
    ]


def maxpool_args(attrs, in_shape=None):
    stride = attrs["stride"] or attrs["kernel_size"]
    return [
        Arg("kernel_size", size(attrs["kernel_size"]), True),
        Arg("stride", size(stride)),
        *opt("padding", attrs["padding"], (0, 0)),
        *opt("dilation", attrs["dilation"], (1, 1)),
        *opt("ceil_mode", attrs["ceil_mode"], False, bool),
    ]


def avgpool_args(attrs, in_shape=None):
    stride = attrs["stride"] or attrs["kernel_size"]
    return [
        Arg("kernel_size", size(attrs["kernel_size"]), True),
        Arg("stride", size(stride)),
        *opt("padding", attrs["padding"], (0, 0)),
        *opt("ceil_mode", attrs["ceil_mode"], False, bool),
        *opt("count_include_pad", attrs["count_include_pad"], True, bool),
    ]


def adaptive_args(attrs, in_shape=None):
    return [Arg("output_size", tuple(attrs["output_size"]), True)]


def lrn_args(attrs, in_shape=None):
    return [
        Arg("size", attrs["size"], True),
        *opt("alpha", attrs["alpha"], 1e-4, float),
        *opt("beta", attrs["beta"], 0.75, float),
        *opt("k", attrs["k"], 1.0, float),
    ]


def dropout_args(attrs, in_shape=None):
    return [Arg("p", attrs["p"])]


def linear_args(attrs, in_shape):
    return [
        Arg("in_features", in_shape[-1], True),  # the last dim: a vector, or channels-last
        Arg("out_features", attrs["out_features"], True),
        *opt("bias", attrs["bias"], True, bool),
    ]


def transform_args(attrs, in_shape=None):
    return [Arg("mean", tuple(attrs["mean"])), Arg("std", tuple(attrs["std"]))]


def pad_module(attrs) -> str:
    # nn.ZeroPad2d is nn.ConstantPad2d with value 0: the zero pad keeps its familiar name
    return "nn.ZeroPad2d" if attrs["value"] == 0 else "nn.ConstantPad2d"


def zero_pad_args(attrs, in_shape=None):
    top, bottom, left, right = attrs["padding"]
    sides = (left, right, top, bottom)  # PyTorch's order: last dimension first
    padding = [Arg("padding", sides[0] if len(set(sides)) == 1 else sides, True)]
    return padding if attrs["value"] == 0 else [*padding, Arg("value", attrs["value"], True)]


def f_pad_args(attrs, in_shape=None):
    top, bottom, left, right = attrs["padding"]
    return [Arg("pad", (left, right, top, bottom), True), *opt("value", attrs["value"], 0.0, float)]


def gelu_args(attrs, in_shape=None):
    return opt("approximate", attrs["approximate"], "none", str)


def stochastic_depth_args(attrs, in_shape=None):
    return [Arg("p", attrs["p"], True), Arg("mode", attrs["mode"], True)]  # torchvision's order


def shuffle_args(attrs, in_shape=None):
    return [Arg("groups", attrs["groups"], True)]


def chunk_args(attrs, in_shape=None):
    # sizes print as a list, as torch.split's documentation and published code write them
    chunks = attrs["chunks"]
    if isinstance(chunks, tuple):
        return [Arg("split_size_or_sections", list(chunks), True)]
    return [Arg("chunks", chunks, True)]


def chunk_function(attrs) -> str:
    return "torch.split" if isinstance(attrs["chunks"], tuple) else "torch.chunk"


def mean_args(attrs, in_shape=None):
    # the dims are the record's `extra`: (2, 3), or (1, 2) of a channels-last tensor
    return opt("keepdim", attrs["keepdim"], False, bool)


def none(attrs, in_shape=None):
    return []


def permute_args(attrs, in_shape=None):
    return [Arg("dims", tuple(attrs["dims"]), True)]


def layernorm_args(attrs, in_shape):
    return [
        Arg("normalized_shape", in_shape[-1], True),
        *opt("eps", attrs["eps"], 1e-5, float),
        *opt("elementwise_affine", attrs.get("affine", True), True, bool),
        *opt("bias", attrs.get("bias", True), True, bool),
    ]


def layer_scale_args(attrs, in_shape):
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
    module_args: Callable = none
    functional: str | None = None
    functional_args: Callable = none
    inputs: str = "one"
    init: bool = False
    extra: tuple[Arg, ...] = field(default_factory=tuple)
    index: str | None = None
    # A freshly allocated output: a ReLU that is its only reader may run in place (as
    # torchvision's BasicConv2d does). Not dropout (in eval it returns its input), nor
    # flatten (a view).
    fresh: bool = False
    # Emitted as a module of the network itself when at the top level (``self.pool1``).
    at_root: bool = False
    # Always a module, never the functional call (its training flag is the module's).
    always_module: bool = False
    # The identity in eval mode (the optimiser drops it).
    eval_identity: bool = False
    # How the output's channel count follows (block classes write it as an expression of
    # their parameters): "same" as the input's, "out_arg" the second constructor argument
    # (conv, linear), "flatten", "split", "concat", or "shape": the output's, as a literal.
    width: str = "same"
    # Definitions the generated file includes when the op uses them, by name (a function,
    # ``def name``, or a class): what torch lacks, written without importing torchvision.
    helpers: Mapping[str, str] = field(default_factory=dict)
    # The functional's name where the attributes choose it (``split``: ``torch.split`` for
    # sizes, ``torch.chunk`` for a count); None: always ``functional``.
    functional_for: Callable[[dict], str] | None = None

    def function(self, attrs: dict) -> str | None:
        return self.functional_for(attrs) if self.functional_for is not None else self.functional

    # ``extra`` for a channels-last (H×W×C) input, whose dims are counted differently
    # (``torch.cat(xs, -1)``); None: the op takes none
    extra_last: tuple[Arg, ...] | None = None

    def extras(self, channels_last: bool) -> tuple[Arg, ...]:
        return self.extra_last if channels_last and self.extra_last is not None else self.extra

    # the module class by the attributes, where one op has two (pad: nn.ZeroPad2d, or
    # nn.ConstantPad2d for another fill); None: always ``module``
    module_for: Callable[[dict], str] | None = None

    def module_name(self, attrs: dict) -> str | None:
        return self.module if self.module_for is None else self.module_for(attrs)
