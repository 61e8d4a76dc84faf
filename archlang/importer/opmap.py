"""What each supported ``nn.Module`` class and function is in archlang: tables keyed by the
class's (or function's) qualified name, each row a function from the module (or the call's
bound arguments) to ``(op, args, kwargs)``.

Arguments equal to the archlang default are left out (``maxpool(3, stride=2)``, not
``maxpool(3, stride=2, padding=0, dilation=1, ceil_mode=false)``). A value with no archlang
equivalent (``padding_mode="reflect"``, ``return_indices=True``) raises :class:`Unsupported`
with the reason; :mod:`.trace` turns it into a located E722.
"""

from __future__ import annotations

import importlib
import inspect
import operator

from ..ops import CALLABLE_OPS, SIGNATURES
from . import generated


class Unsupported(Exception):
    """A call archlang cannot express: ``str(err)`` says why (the caller adds where)."""


def qualname(obj) -> str:
    """``torch.nn.modules.conv.Conv2d`` for a class; ``torch.nn.functional.relu`` for a function."""
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", repr(obj))
    if name.startswith("_VariableFunctionsClass.") or module.startswith("torch._C"):
        module, name = "torch", getattr(obj, "__name__", name)
    return f"{module}.{name}" if module else name


def public_name(cls: type) -> str:
    """``torch.nn.Conv2d`` rather than ``torch.nn.modules.conv.Conv2d`` where torch exports it."""
    module = cls.__module__
    if module.startswith("torch.nn.modules."):
        return f"torch.nn.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def _size(value):
    """A kernel/stride/padding value: an int for a square pair."""
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        return value[0]
    if isinstance(value, tuple) and len(value) == 1:
        return value[0]
    return value


def _kw(op: str, pairs) -> tuple:
    """``op``'s keyword arguments ``(name, value)`` whose value differs from the default the
    op's signature gives (archlang.ops.SIGNATURES): those the spec must write."""
    return tuple((k, v) for k, v in pairs if v != _default(op, k))


def _default(op: str, arg: str):
    return next(a.default for a in SIGNATURES[CALLABLE_OPS[op]].args if a.name == arg)


# ---- leaf modules ----------------------------------------------------------------------


def _conv2d(m):
    if m.padding_mode != "zeros":
        raise Unsupported(f"padding_mode={m.padding_mode!r} (archlang convolutions pad with zeros)")
    if getattr(m, "transposed", False):
        raise Unsupported("transposed convolution")
    padding = m.padding if isinstance(m.padding, str) else _size(m.padding)
    if padding == "same" and any(d * (k - 1) % 2 for k, d in zip(m.kernel_size, m.dilation)):
        raise Unsupported("padding='same' with an even kernel (torch pads one side more; archlang's 'same' is even)")
    kwargs = _kw(
        "conv2d",
        [
            ("stride", _size(m.stride)),
            ("padding", padding),
            ("dilation", _size(m.dilation)),
            ("groups", m.groups),
            ("bias", m.bias is not None),
        ],
    )
    return "conv2d", (m.out_channels, _size(m.kernel_size)), kwargs


def _batchnorm(m):
    if not m.track_running_stats:
        raise Unsupported("track_running_stats=False")
    if m.momentum is None:
        raise Unsupported("momentum=None (a cumulative moving average)")
    return "batchnorm", (), _kw("batchnorm", [("eps", m.eps), ("momentum", m.momentum), ("affine", m.affine)])


def _pool_stride(kernel, stride):
    stride = _size(stride)
    return None if stride in (None, kernel) or stride == () else stride


def _maxpool(m):
    if m.return_indices:
        raise Unsupported("return_indices=True")
    return _maxpool_args(m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)


def _maxpool_args(kernel_size, stride, padding, dilation, ceil_mode):
    kernel = _size(kernel_size)
    kwargs = _kw(
        "maxpool",
        [
            ("stride", _pool_stride(kernel, stride)),
            ("padding", _size(padding)),
            ("dilation", _size(dilation)),
            ("ceil_mode", bool(ceil_mode)),
        ],
    )
    return "maxpool", (kernel,), kwargs


def _avgpool(m):
    return _avgpool_args(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad, m.divisor_override)


def _avgpool_args(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    if divisor_override is not None:
        raise Unsupported(f"divisor_override={divisor_override}")
    kernel = _size(kernel_size)
    kwargs = _kw(
        "avgpool",
        [
            ("stride", _pool_stride(kernel, stride)),
            ("padding", _size(padding)),
            ("ceil_mode", bool(ceil_mode)),
            ("count_include_pad", bool(count_include_pad)),
        ],
    )
    return "avgpool", (kernel,), kwargs


def _adaptive(output_size):
    size = _size(output_size)
    if size is None or (isinstance(size, tuple) and None in size):
        raise Unsupported(f"output_size={output_size!r} (a None size keeps the input's)")
    return "adaptive_avgpool", () if size == _default("adaptive_avgpool", "output_size") else (size,), ()


def _dropout(m):
    return "dropout", () if m.p == _default("dropout", "p") else (float(m.p),), ()


def _linear(m):
    return "linear", (m.out_features,), _kw("linear", [("bias", m.bias is not None)])


def _lrn(m):
    return "lrn", (m.size,), _kw("lrn", [("alpha", m.alpha), ("beta", m.beta), ("k", float(m.k))])


def _zeropad(m):
    left, right, top, bottom = m.padding
    return "pad", ((top, bottom, left, right),), ()


def _flatten(m):
    if (m.start_dim, m.end_dim) != (1, -1):
        raise Unsupported(f"start_dim={m.start_dim}, end_dim={m.end_dim} (archlang flattens C×H×W)")
    return "flatten", (), ()


def _softmax(m):
    if m.dim not in (1, -1):
        raise Unsupported(f"dim={m.dim} (archlang's softmax runs over the features)")
    return "softmax", (), ()


def _layernorm(m):
    if len(m.normalized_shape) != 1:
        raise Unsupported(f"normalized_shape={tuple(m.normalized_shape)} (archlang normalises the last dim)")
    if m.elementwise_affine and getattr(m, "bias", True) is None:
        raise Unsupported("bias=False")
    return "layernorm", (), _kw("layernorm", [("eps", m.eps), ("affine", m.elementwise_affine)])


def _layernorm2d(m):
    if not m.elementwise_affine or m.bias is None:
        raise Unsupported("LayerNorm2d without affine weight and bias")
    return "layernorm2d", (), _kw("layernorm2d", [("eps", m.eps)])


def _gelu(m):
    return "gelu", (), _kw("gelu", [("approximate", m.approximate)])


def _stochastic_depth(m):
    return "stochastic_depth", (float(m.p),), _kw("stochastic_depth", [("mode", m.mode)])


def _simple(op):
    return lambda m: (op, (), ())


_NN = "torch.nn.modules."
MODULES = {
    _NN + "conv.Conv2d": _conv2d,
    _NN + "batchnorm.BatchNorm2d": _batchnorm,
    _NN + "activation.ReLU": _simple("relu"),
    _NN + "activation.ReLU6": _simple("relu6"),
    _NN + "activation.SiLU": _simple("silu"),
    _NN + "activation.Hardswish": _simple("hardswish"),
    _NN + "activation.Hardsigmoid": _simple("hardsigmoid"),
    _NN + "activation.GELU": _gelu,
    _NN + "activation.Sigmoid": _simple("sigmoid"),
    _NN + "activation.Tanh": _simple("tanh"),
    _NN + "activation.Softmax": _softmax,
    _NN + "pooling.MaxPool2d": _maxpool,
    _NN + "pooling.AvgPool2d": _avgpool,
    _NN + "pooling.AdaptiveAvgPool2d": lambda m: _adaptive(m.output_size),
    _NN + "dropout.Dropout": _dropout,
    _NN + "flatten.Flatten": _flatten,
    _NN + "linear.Linear": _linear,
    _NN + "linear.Identity": _simple("identity"),
    _NN + "normalization.LocalResponseNorm": _lrn,
    _NN + "normalization.LayerNorm": _layernorm,
    _NN + "padding.ZeroPad2d": _zeropad,
    _NN + "channelshuffle.ChannelShuffle": lambda m: ("channel_shuffle", (m.groups,), ()),
    "torchvision.models.convnext.LayerNorm2d": _layernorm2d,
    "torchvision.ops.misc.Permute": lambda m: ("permute", (tuple(m.dims),), ()),
    "torchvision.ops.stochastic_depth.StochasticDepth": _stochastic_depth,
}


def is_leaf_class(cls: type) -> bool:
    """A module the tracer does not enter: one archlang op, or a ``torch.nn`` module with
    no op (refused by name rather than by whatever functions its forward calls)."""
    name = qualname(cls)
    if name in MODULES or generated.helper_class(cls):
        return True
    return name.startswith("torch.nn.") and not name.startswith(_NN + "container.")


def module_op(module) -> tuple[str, tuple, tuple]:
    """``(op, args, kwargs)`` for a leaf module; :class:`Unsupported` if none."""
    row = MODULES.get(qualname(type(module)))
    if row is None and generated.helper_class(type(module)):
        return generated.helper_module_op(module)
    if row is None:
        raise Unsupported("no archlang op for this module")
    return row(module)


# ---- functions and tensor methods -----------------------------------------------------
# Each stub has the function's signature (the tensor first); `inspect` binds the traced
# call's arguments to it, defaults filled in, and the body makes the op.


def _f_maxpool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    if return_indices:
        raise Unsupported("return_indices=True")
    return _maxpool_args(kernel_size, stride, padding, dilation, ceil_mode)


def _f_avgpool(
    input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    return _avgpool_args(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _f_adaptive(input, output_size):
    return _adaptive(output_size)


def _f_dropout(input, p=0.5, training=True, inplace=False):
    if not training:
        return None  # F.dropout(x, training=False) is the identity
    return "dropout", () if p == 0.5 else (float(p),), ()


def _f_act(op):
    def stub(input, inplace=False):
        return op, (), ()

    return stub


def _f_gelu(input, approximate="none"):
    return "gelu", (), _kw("gelu", [("approximate", approximate)])


def _f_flatten(input, start_dim=0, end_dim=-1, *, ndim):
    if end_dim not in (-1, ndim - 1) or start_dim != 1:
        raise Unsupported(f"flatten(start_dim={start_dim}, end_dim={end_dim}) (archlang flattens C×H×W)")
    return "flatten", (), ()


def _m_flatten(input, start_dim=0, end_dim=-1, *, ndim):
    return _f_flatten(input, start_dim, end_dim, ndim=ndim)


def _f_mean(input, dim=None, keepdim=False, *, ndim, dtype=None):
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    if ndim != 4 or sorted(d % 4 for d in dims if d is not None) != [2, 3]:
        raise Unsupported(f"mean over dim={dim!r} (archlang's spatial_mean averages H×W of a C×H×W map)")
    return "spatial_mean", (), _kw("spatial_mean", [("keepdim", bool(keepdim))])


def _f_softmax(input, dim=None, _stacklevel=3, dtype=None, *, ndim):
    if dim is None or dim % ndim != 1 or ndim != 2:
        raise Unsupported(f"softmax over dim={dim!r} (archlang's softmax runs over the features of a vector)")
    return "softmax", (), ()


def _f_permute(input, *dims):
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    return "permute", (tuple(dims),), ()


def _f_pad(input, pad, mode="constant", value=None):
    if mode != "constant" or value not in (None, 0) or len(pad) != 4:
        raise Unsupported(f"pad={tuple(pad)}, mode={mode!r}, value={value!r} (archlang pads H and W with zeros)")
    left, right, top, bottom = pad
    return "pad", ((top, bottom, left, right),), ()


def _f_channel_shuffle(x, groups):
    return "channel_shuffle", (groups,), ()


def _f_stochastic_depth(input, p, mode, training=True):
    if not training:
        return None
    return "stochastic_depth", (float(p),), _kw("stochastic_depth", [("mode", mode)])


def _f_identity(input, *args, **kwargs):
    return None  # contiguous(), clone(): no change to the values


def _f_transform_input(x):
    return "transform_input", (), ()


def function_table() -> dict:
    """The supported functions, keyed by the function object a traced node calls."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    from .leaves import transform_input

    table = {
        F.channel_shuffle: _f_channel_shuffle,
        torch.channel_shuffle: _f_channel_shuffle,
        F.relu: _f_act("relu"),
        torch.relu: _f_act("relu"),
        F.relu6: _f_act("relu6"),
        F.silu: _f_act("silu"),
        F.hardswish: _f_act("hardswish"),
        F.hardsigmoid: _f_act("hardsigmoid"),
        F.sigmoid: _f_act("sigmoid"),
        torch.sigmoid: _f_act("sigmoid"),
        F.tanh: _f_act("tanh"),
        torch.tanh: _f_act("tanh"),
        F.gelu: _f_gelu,
        F.max_pool2d: _f_maxpool,
        F.avg_pool2d: _f_avgpool,
        F.adaptive_avg_pool2d: _f_adaptive,
        F.dropout: _f_dropout,
        torch.flatten: _f_flatten,
        torch.mean: _f_mean,
        F.softmax: _f_softmax,
        torch.softmax: _f_softmax,
        torch.permute: _f_permute,
        transform_input: _f_transform_input,
        F.pad: _f_pad,
    }
    for module, name, stub in (
        ("torchvision.models.shufflenetv2", "channel_shuffle", _f_channel_shuffle),
        ("torchvision.ops.stochastic_depth", "stochastic_depth", _f_stochastic_depth),
    ):
        try:
            table[getattr(importlib.import_module(module), name)] = stub
        except (ImportError, AttributeError):  # torchvision missing or changed
            pass
    return table


METHODS = {
    "relu": _f_act("relu"),
    "relu_": _f_act("relu"),
    "sigmoid": _f_act("sigmoid"),
    "tanh": _f_act("tanh"),
    "flatten": _m_flatten,
    "mean": _f_mean,
    "softmax": _f_softmax,
    "permute": _f_permute,
    "contiguous": _f_identity,
    "clone": _f_identity,
}

# Binary elementwise functions: the archlang group they become.
MERGES = {
    operator.add: "add",
    operator.iadd: "add",
    operator.mul: "mul",
    operator.imul: "mul",
}
MERGE_METHODS = {"add": "add", "add_": "add", "mul": "mul", "mul_": "mul"}


def function_op(stub, args: tuple, kwargs: dict, ndim: int | None):
    """Bind ``args``/``kwargs`` to ``stub`` (the tensor first) and make the op; ``None``
    for a call that is the identity (``F.dropout(x, training=False)``)."""
    params = inspect.signature(stub).parameters
    extra = {"ndim": ndim} if "ndim" in params else {}
    try:
        bound = inspect.signature(stub).bind(*args, **kwargs, **extra)
    except TypeError as err:
        raise Unsupported(f"arguments not understood ({err})") from None
    return stub(*bound.args, **bound.kwargs)
