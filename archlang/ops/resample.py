"""Resampling the grid: upsampling / interpolation and centre cropping."""

from __future__ import annotations

import math
from fractions import Fraction

from . import labels, rf_rules
from . import shape_rules as sr
from .base import A, ArgError, Op, ShapeError, describe, sig, t_bool, t_choice, t_opt_pair
from .fields import ReceptiveField
from .import_form import NN, F, Unsupported, kw
from .import_form import import_size as size
from .record import Diagram, Imports, OpRecord
from .torch_form import Arg, TorchOp


def t_scale(v, name):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ArgError(f"{name} must be a positive number, got {describe(v)}", help="e.g. scale_factor=2")
    return int(v) if float(v).is_integer() else float(v)


UPSAMPLE_SIG = sig(
    "upsampling (F.interpolate) to a size, or by a scale factor: nearest or bilinear",
    A("scale_factor", t_scale, None),
    A("size", t_opt_pair, None),
    A("mode", t_choice("nearest", "bilinear"), "nearest"),
    A("align_corners", t_bool, False),
)


def upsample_shape(attrs, shapes):
    (shape,) = shapes
    c, h, w = sr.need_map(Op.UPSAMPLE, shape)
    if (attrs["size"] is None) == (attrs["scale_factor"] is None):
        raise ShapeError(
            "E303",
            "upsample needs either scale_factor or size, not both" + (" and not neither" if attrs["size"] else ""),
            help="e.g. upsample(scale_factor=2) or upsample(size=(56, 56))",
        )
    if attrs["align_corners"] and attrs["mode"] == "nearest":
        raise ShapeError("E303", "align_corners applies to bilinear upsampling only", help='add mode="bilinear"')
    if attrs["size"] is not None:
        return (c, *attrs["size"])
    # PyTorch: floor(input size × scale factor)
    oh, ow = math.floor(h * attrs["scale_factor"]), math.floor(w * attrs["scale_factor"])
    if oh < 1 or ow < 1:
        raise ShapeError("E403", f"upsample output would be {oh}×{ow}: the {h}×{w} input is too small")
    return (c, oh, ow)


def _factors(attrs, shape) -> tuple:
    if attrs["size"] is not None:
        return Fraction(attrs["size"][0], shape[1]), Fraction(attrs["size"][1], shape[2])
    return (Fraction(attrs["scale_factor"]),) * 2


def upsample_rf(attrs, rfs, ids, shapes) -> ReceptiveField:
    """Nearest: each output unit is one input unit's copy, 1 / factor apart. Bilinear: it
    mixes two neighbouring input units per axis. PyTorch's half-pixel mapping places unit 0,
    except bilinear with align_corners, whose corners (unit 0 among them) are the input's."""
    (rf,) = rfs
    axes = []
    for a, factor in zip(rf[:2], _factors(attrs, shapes[0])):
        corners = attrs["mode"] == "bilinear" and attrs["align_corners"]
        shift = 0 if corners else rf_rules.half_pixel_shift(factor)
        axes.append(rf_rules.resampled(a, factor, shift, 1 if attrs["mode"] == "bilinear" else 0))
    return ReceptiveField(*axes)


def upsample_args(attrs, in_shape=None):
    where = (
        [Arg("size", tf_size(attrs["size"]))]
        if attrs["size"] is not None
        else [Arg("scale_factor", attrs["scale_factor"])]
    )
    mode = [] if attrs["mode"] == "nearest" else [Arg("mode", attrs["mode"])]
    corners = [Arg("align_corners", True)] if attrs["align_corners"] else []
    return [*where, *mode, *corners]


def tf_size(v):
    return v[0] if v[0] == v[1] else v


def _upsample_flops(attrs, ins, out) -> int:
    # fvcore: aten::upsample_nearest2d elementwise_flop_counter(0, 1), aten::upsample_bilinear2d (0, 4)
    return math.prod(out) * (1 if attrs["mode"] == "nearest" else 4)


def _upsample_ops(attrs, ins, out) -> int:
    # nearest: a gather, no arithmetic; bilinear: 4 weighted neighbours (4 multiplies, 3 adds)
    return 0 if attrs["mode"] == "nearest" else 7 * math.prod(out)


def _upsample_call(out_size, scale_factor, mode, align_corners, recompute_scale_factor=None):
    if mode not in ("nearest", "bilinear"):
        raise Unsupported(f"mode={mode!r} (archlang upsamples nearest or bilinear)")
    if recompute_scale_factor:
        raise Unsupported("recompute_scale_factor=True")
    if isinstance(scale_factor, (tuple, list)):
        if len(set(scale_factor)) != 1:
            raise Unsupported(f"scale_factor={tuple(scale_factor)} (archlang scales H and W alike)")
        scale_factor = scale_factor[0]
    if scale_factor is not None and float(scale_factor).is_integer():
        scale_factor = int(scale_factor)
    pairs = [
        ("scale_factor", scale_factor),
        ("size", None if out_size is None else size(out_size)),
        ("mode", mode),
        ("align_corners", bool(align_corners)),
    ]
    return "upsample", (), kw(UPSAMPLE_SIG, pairs)


def import_upsample(m):
    return _upsample_call(m.size, m.scale_factor, m.mode, m.align_corners, m.recompute_scale_factor)


def f_interpolate(
    input,
    size=None,
    scale_factor=None,
    mode="nearest",
    align_corners=None,
    recompute_scale_factor=None,
    antialias=False,
):
    if antialias:
        raise Unsupported("antialias=True")
    return _upsample_call(size, scale_factor, mode, align_corners, recompute_scale_factor)


def upsample_label(a: dict) -> str:
    how = "" if a["mode"] == "nearest" else ", bilinear"
    if a["size"] is not None:
        return f"upsample to {labels.kxk(a['size'])}{how}"
    return f"upsample ×{a['scale_factor']:g}{how}"


RECORDS = (
    OpRecord(
        Op.UPSAMPLE,
        UPSAMPLE_SIG,
        upsample_shape,
        TorchOp("nn.Upsample", upsample_args, "F.interpolate", upsample_args),
        Diagram("other", upsample_label),
        flops=_upsample_flops,
        all_ops=_upsample_ops,
        rf=upsample_rf,
        role="upsample",
        imports=Imports(
            modules={
                NN + "upsampling.Upsample": import_upsample,
                NN + "upsampling.UpsamplingNearest2d": import_upsample,
                NN + "upsampling.UpsamplingBilinear2d": import_upsample,
            },
            functions={F + "interpolate": f_interpolate},
        ),
        aliases={"interpolate": {}},
    ),
)
