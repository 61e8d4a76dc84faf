"""Normalisation layers."""

from __future__ import annotations

import math

from . import costs
from . import shape_rules as sr
from . import torch_form as tf
from .base import A, Op, ShapeError, sig, t_bool, t_float, t_int, t_positive_float
from .import_form import NN, Unsupported, kw
from .record import Diagram, Imports, OpRecord
from .torch_form import Arg, TorchOp

_BN_ARGS = (A("eps", t_positive_float, 1e-5), A("momentum", t_float, 0.1), A("affine", t_bool, True))
BATCHNORM_SIG = sig(
    "batch normalisation over channels",
    *_BN_ARGS,
    A("zero_init", t_bool, False, "start the scale γ at 0 (ResNet's zero_init_residual)"),
)
LRN_SIG = sig(
    "local response normalisation across channels",
    A("size", t_int),
    A("alpha", t_float, 1e-4),
    A("beta", t_float, 0.75),
    A("k", t_float, 1.0),
)
LAYERNORM_SIG = sig(
    "layer normalisation over the last dim (channels of a channels-last tensor)",
    A("eps", t_positive_float, 1e-5),
    A("affine", t_bool, True),
    A("bias", t_bool, True, "the affine shift β beside the scale γ (false: nn.LayerNorm(bias=False))"),
)
LAYERNORM2D_SIG = sig("layer normalisation over the channels of a C×H×W map", A("eps", t_positive_float, 1e-5))


def import_batchnorm(m):
    if not m.track_running_stats:
        raise Unsupported("track_running_stats=False")
    if m.momentum is None:
        raise Unsupported("momentum=None (a cumulative moving average)")
    return "batchnorm", (), kw(BATCHNORM_SIG, [("eps", m.eps), ("momentum", m.momentum), ("affine", m.affine)])


FROZEN_BATCHNORM_SIG = sig(
    "batch normalisation with fixed statistics and affine (torchvision's FrozenBatchNorm2d)",
    A("eps", t_positive_float, 1e-5),
)

# torchvision.ops.misc.FrozenBatchNorm2d, written out so the generated file needs no
# torchvision. Its forward is torchvision's, line for line: the same rounding, so outputs are
# bit-equal (nn.BatchNorm2d's kernel rounds differently).
FROZEN_BATCHNORM_HELPERS = {
    "FrozenBatchNorm2d": '''class FrozenBatchNorm2d(nn.Module):
    """torchvision's `FrozenBatchNorm2d`: batch norm whose statistics and affine
    γ, β are buffers, not parameters: nothing trains, and training mode computes
    as eval does."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        # a BatchNorm2d's state_dict loads too (pretrained weights): its step count goes
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.reshape(1, -1, 1, 1)
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + self.eps).rsqrt()
        bias = b - rm * scale
        return x * scale + bias

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"''',
}


def import_frozen_batchnorm(m):
    return "frozen_batchnorm", (), kw(FROZEN_BATCHNORM_SIG, [("eps", m.eps)])


def _frozen_bn_args(attrs, in_shape):
    return [Arg("num_features", in_shape[0], True), *tf.opt("eps", attrs["eps"], 1e-5, float)]


def import_batchnorm1d(m):
    op, args, kwargs = import_batchnorm(m)
    return "batchnorm1d", args, kwargs


def _vector_same(attrs, shapes):
    (shape,) = shapes
    sr.require_flat("batchnorm1d", shape, "use `batchnorm` on feature maps, or `flatten` first")
    return shape


def f_batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """``F.batch_norm`` on a module's own buffers and parameters (timm's ``BatchNormAct2d``)."""
    if running_mean is None or running_var is None:
        raise Unsupported("no running statistics (track_running_stats=False)")
    if (weight is None) != (bias is None):
        raise Unsupported("a weight without a bias, or a bias without a weight")
    if momentum is None:
        raise Unsupported("momentum=None (a cumulative moving average)")
    return "batchnorm", (), kw(BATCHNORM_SIG, [("eps", eps), ("momentum", momentum), ("affine", weight is not None)])


def import_lrn(m):
    return "lrn", (m.size,), kw(LRN_SIG, [("alpha", m.alpha), ("beta", m.beta), ("k", float(m.k))])


def import_layernorm(m):
    if len(m.normalized_shape) != 1:
        raise Unsupported(f"normalized_shape={tuple(m.normalized_shape)} (archlang normalises the last dim)")
    bias = not m.elementwise_affine or m.bias is not None
    return "layernorm", (), kw(LAYERNORM_SIG, [("eps", m.eps), ("affine", m.elementwise_affine), ("bias", bias)])


def f_layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """``F.layer_norm`` on a module's own parameters (timm's ``LayerNorm2d`` between permutes)."""
    if len(normalized_shape) != 1:
        raise Unsupported(f"normalized_shape={tuple(normalized_shape)} (archlang normalises the last dim)")
    if weight is None and bias is not None:
        raise Unsupported("a bias without a weight")
    pairs = [("eps", eps), ("affine", weight is not None), ("bias", weight is None or bias is not None)]
    return "layernorm", (), kw(LAYERNORM_SIG, pairs)


def _layernorm_params(attrs, ins, out) -> int:
    return out[-1] * (1 + attrs["bias"]) if attrs["affine"] else 0


def import_layernorm2d(m):
    if not m.elementwise_affine or m.bias is None:
        raise Unsupported("LayerNorm2d without affine weight and bias")
    return "layernorm2d", (), kw(LAYERNORM2D_SIG, [("eps", m.eps)])


GROUP_NORM_SIG = sig(
    "group normalisation: channels in num_groups groups, each normalised over its channels and H×W",
    A("num_groups", t_int),
    A("eps", t_positive_float, 1e-5),
    A("affine", t_bool, True),
    A("bias", t_bool, True, "the affine shift β beside the scale γ (false: nn.GroupNorm(bias=False))"),
)
INSTANCE_NORM_SIG = sig(
    "instance normalisation: each channel of each sample over its H×W",
    A("eps", t_positive_float, 1e-5),
    A("momentum", t_float, 0.1),
    A("affine", t_bool, False),
    A("track_running_stats", t_bool, False),
)


def _group_norm_shape(attrs, shapes):
    (shape,) = shapes
    c, _, _ = sr.need_map(Op.GROUP_NORM, shape)
    g = attrs["num_groups"]
    if c % g:
        raise ShapeError("E405", f"group_norm num_groups={g} must divide the channels ({c})")
    return shape


def _group_norm_args(attrs, in_shape):
    return [
        Arg("num_groups", attrs["num_groups"], True),
        Arg("num_channels", in_shape[0], True),
        *tf.opt("eps", attrs["eps"], 1e-5, float),
        *tf.opt("affine", attrs["affine"], True, bool),
        *tf.opt("bias", attrs["bias"], True, bool),
    ]


def _instance_norm_args(attrs, in_shape):
    return [
        Arg("num_features", in_shape[0], True),
        *tf.opt("eps", attrs["eps"], 1e-5, float),
        *tf.opt("momentum", attrs["momentum"], 0.1, float),
        *tf.opt("affine", attrs["affine"], False, bool),
        *tf.opt("track_running_stats", attrs["track_running_stats"], False, bool),
    ]


def import_group_norm(m):
    bias = not m.affine or m.bias is not None
    return "group_norm", (m.num_groups,), kw(GROUP_NORM_SIG, [("eps", m.eps), ("affine", m.affine), ("bias", bias)])


def f_group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """``F.group_norm`` on a module's own parameters (timm's ``GroupNorm1``, a one-group
    ``nn.GroupNorm`` whose forward calls the function)."""
    if weight is None and bias is not None:
        raise Unsupported("a bias without a weight")
    pairs = [("eps", eps), ("affine", weight is not None), ("bias", weight is None or bias is not None)]
    return "group_norm", (num_groups,), kw(GROUP_NORM_SIG, pairs)


def import_instance_norm(m):
    if m.momentum is None:
        raise Unsupported("momentum=None (a cumulative moving average)")
    pairs = [
        ("eps", m.eps),
        ("momentum", m.momentum),
        ("affine", m.affine),
        ("track_running_stats", m.track_running_stats),
    ]
    return "instance_norm", (), kw(INSTANCE_NORM_SIG, pairs)


def _normalise_ops(attrs, ins, out) -> int:
    # as layernorm: mean, subtract, square, variance, scale (5 per element), + multiply and
    # add when affine (no add without a bias)
    return math.prod(out) * (5 + attrs["affine"] * (1 + attrs.get("bias", True)))


def _instance_norm_ops(attrs, ins, out) -> int:
    # with running statistics eval normalises as batchnorm does: x * scale_c + shift_c
    return 2 * math.prod(out) if attrs["track_running_stats"] else _normalise_ops(attrs, ins, out)


def _affine_flops(attrs, ins, out) -> int:
    # fvcore's norm_flop_counter: 5 per element with affine weight, else 4
    return math.prod(out) * (5 if attrs["affine"] else 4)


RECORDS = (
    OpRecord(
        Op.BATCHNORM,
        BATCHNORM_SIG,
        sr.map_same(Op.BATCHNORM),
        TorchOp("nn.BatchNorm2d", tf.bn_args, fresh=True),
        Diagram("norm", lambda a: "batch norm"),
        params=costs.bn_params,
        buffers=costs.bn_buffers,
        flops=costs.fvcore_bn,
        all_ops=costs.per_element(2),  # eval: folded to x * scale_c + shift_c
        imports=Imports(
            modules={
                NN + "batchnorm.BatchNorm2d": import_batchnorm,
            },
            functions={"torch.nn.functional.batch_norm": f_batch_norm},
        ),
        aliases={"batch_norm": {}},
    ),
    OpRecord(
        Op.FROZEN_BATCHNORM,
        FROZEN_BATCHNORM_SIG,
        sr.map_same(Op.FROZEN_BATCHNORM),
        TorchOp("FrozenBatchNorm2d", _frozen_bn_args, fresh=True, helpers=FROZEN_BATCHNORM_HELPERS),
        Diagram("norm", lambda a: "frozen batch norm"),
        # γ, β, running mean and variance: buffers (no num_batches_tracked), no parameters
        buffers=lambda attrs, ins, out: 4 * out[0],
        # fvcore has no handle for the forward's aten::mul / add / rsqrt / sub: 0 FLOPs
        all_ops=costs.per_element(2),  # x * scale_c + shift_c
        imports=Imports(
            modules={"torchvision.ops.misc.FrozenBatchNorm2d": import_frozen_batchnorm},
            helpers={"FrozenBatchNorm2d": import_frozen_batchnorm},
        ),
    ),
    OpRecord(
        Op.BATCHNORM1D,
        sig("batch normalisation of a flat vector's features (nn.BatchNorm1d)", *_BN_ARGS),
        _vector_same,
        TorchOp("nn.BatchNorm1d", tf.bn_args, fresh=True),
        Diagram("norm", lambda a: "batch norm"),
        params=costs.bn_params,
        buffers=costs.bn_buffers,
        flops=costs.fvcore_bn,
        all_ops=costs.per_element(2),  # eval: folded to x * scale_f + shift_f
        imports=Imports(modules={NN + "batchnorm.BatchNorm1d": import_batchnorm1d}),
    ),
    OpRecord(
        Op.LRN,
        LRN_SIG,
        sr.map_same(Op.LRN),
        TorchOp("nn.LocalResponseNorm", tf.lrn_args, "F.local_response_norm", tf.lrn_args, at_root=True),
        # the paper applies LRN after pool1 and conv3 but gives it no row
        Diagram("norm", lambda a: f"local response norm, {a['size']}"),
        all_ops=costs.lrn_ops,
        role="pointwise",  # normalises across channels only
        imports=Imports(modules={NN + "normalization.LocalResponseNorm": import_lrn}),
    ),
    OpRecord(
        Op.LAYERNORM,
        LAYERNORM_SIG,
        sr.layernorm_shape,
        TorchOp("nn.LayerNorm", tf.layernorm_args, fresh=True),
        Diagram("norm", lambda a: "layer norm"),
        channels_last=lambda attrs, shapes: shapes[0],
        params=_layernorm_params,  # weight (and bias) over the last dim
        # fvcore's norm_flop_counter: 5 per element with a weight, bias or not
        flops=lambda attrs, ins, out: math.prod(out) * (5 if attrs["affine"] else 4),
        # mean (1 add), subtract, square, variance (1 add), scale by 1/sqrt: 5 per element (the
        # per-row sqrt and divide not counted), plus multiply and add when affine
        all_ops=lambda attrs, ins, out: math.prod(out) * (5 + attrs["affine"] * (1 + attrs["bias"])),
        imports=Imports(
            modules={NN + "normalization.LayerNorm": import_layernorm},
            functions={"torch.nn.functional.layer_norm": f_layer_norm},
        ),
    ),
    OpRecord(
        Op.LAYERNORM2D,
        LAYERNORM2D_SIG,
        sr.map_same(Op.LAYERNORM2D),
        TorchOp("LayerNorm2d", tf.layernorm_args, fresh=True),
        Diagram("norm", lambda a: "layer norm"),
        params=costs.two_per_channel,
        flops=costs.per_element(5),  # aten::layer_norm with weight and bias
        all_ops=costs.per_element(7),
        imports=Imports(modules={"torchvision.models.convnext.LayerNorm2d": import_layernorm2d}),
    ),
    OpRecord(
        Op.GROUP_NORM,
        GROUP_NORM_SIG,
        _group_norm_shape,
        TorchOp("nn.GroupNorm", _group_norm_args, fresh=True),
        Diagram("norm", lambda a: f"group norm, {a['num_groups']} groups"),
        params=lambda attrs, ins, out: out[0] * (1 + attrs["bias"]) if attrs["affine"] else 0,
        flops=_affine_flops,  # aten::group_norm (5 per element with a weight, bias or not)
        all_ops=_normalise_ops,
        imports=Imports(
            modules={NN + "normalization.GroupNorm": import_group_norm},
            functions={"torch.nn.functional.group_norm": f_group_norm},
        ),
    ),
    OpRecord(
        Op.INSTANCE_NORM,
        INSTANCE_NORM_SIG,
        sr.map_same(Op.INSTANCE_NORM),
        TorchOp("nn.InstanceNorm2d", _instance_norm_args, fresh=True),
        Diagram("norm", lambda a: "instance norm"),
        params=costs.bn_params,
        buffers=lambda attrs, ins, out: 2 * out[0] + 1 if attrs["track_running_stats"] else 0,
        flops=_affine_flops,  # aten::instance_norm
        all_ops=_instance_norm_ops,
        imports=Imports(modules={NN + "instancenorm.InstanceNorm2d": import_instance_norm}),
    ),
)
