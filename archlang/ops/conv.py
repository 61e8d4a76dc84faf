"""Convolutions."""

from __future__ import annotations

from . import costs, labels, rf_rules
from . import shape_rules as sr
from . import torch_form as tf
from .base import A, Op, sig, t_bool, t_int, t_opt_float, t_padding, t_pair
from .import_form import NN, Unsupported, kw
from .import_form import import_size as size
from .record import Diagram, Imports, OpRecord
from .torch_form import TorchOp

CONV2D_SIG = sig(
    "2-D convolution",
    A("out_channels", t_int),
    A("kernel_size", t_pair),
    A("stride", t_pair, 1),
    A("padding", t_padding, 0),
    A("dilation", t_pair, 1),
    A("groups", t_int, 1),
    A("bias", t_bool, True),
    A("init_std", t_opt_float, None),
)


def import_conv2d(m):
    if m.padding_mode != "zeros":
        raise Unsupported(f"padding_mode={m.padding_mode!r} (archlang convolutions pad with zeros)")
    if getattr(m, "transposed", False):
        raise Unsupported("transposed convolution")
    padding = m.padding if isinstance(m.padding, str) else size(m.padding)
    if padding == "same" and any(d * (k - 1) % 2 for k, d in zip(m.kernel_size, m.dilation)):
        raise Unsupported("padding='same' with an even kernel (torch pads one side more; archlang's 'same' is even)")
    kwargs = kw(
        CONV2D_SIG,
        [
            ("stride", size(m.stride)),
            ("padding", padding),
            ("dilation", size(m.dilation)),
            ("groups", m.groups),
            ("bias", m.bias is not None),
        ],
    )
    return "conv2d", (m.out_channels, size(m.kernel_size)), kwargs


RECORDS = (
    OpRecord(
        Op.CONV2D,
        CONV2D_SIG,
        sr.conv_shape,
        TorchOp("nn.Conv2d", tf.conv_args, init=True, fresh=True, width="out_arg"),
        Diagram("conv", labels.conv_label, "convolution"),
        params=costs.conv_params,
        macs=costs.conv_macs,
        flops=costs.conv_macs,
        all_ops=costs.dot_ops(costs.conv_macs),
        rf=rf_rules.windowed,
        role="conv",
        imports=Imports(modules={NN + "conv.Conv2d": import_conv2d}),
    ),
)
