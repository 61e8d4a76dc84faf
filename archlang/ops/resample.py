"""Resampling the grid: upsampling / interpolation and centre cropping."""

from __future__ import annotations

import math
from fractions import Fraction

from . import labels, rf_rules
from . import shape_rules as sr
from .base import A, ArgError, Op, ShapeError, describe, sig, t_bool, t_choice, t_opt_pair, t_pair
from .fields import AxisRF, ReceptiveField
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
    shape = shapes[0]  # a second input only gave its size (``size_from_value``)
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
    except bilinear with align_corners, whose corners (unit 0 among them) are the input's.
    A value read only for its size adds nothing to the field."""
    rf = rfs[0]
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


CROP_SIG = sig("centre crop of the H×W grid to a size (torchvision's center_crop)", A("size", t_pair))


def crop_offsets(attrs, shape) -> tuple[int, int]:
    """torchvision's ``center_crop``: ``int(round((in - out) / 2))`` rows above, columns left."""
    (h, w), (_, hi, wi) = attrs["size"], shape
    return int(round((hi - h) / 2.0)), int(round((wi - w) / 2.0))


def crop_shape(attrs, shapes):
    shape = shapes[0]  # a second input only gave its size (``size_from_value``)
    c, h, w = sr.need_map(Op.CROP, shape)
    oh, ow = attrs["size"]
    if oh > h or ow > w:
        raise ShapeError(
            "E403",
            f"crop to {oh}×{ow} is larger than its {h}×{w} input",
            help="centre cropping only shrinks the grid; pad first to grow it",
        )
    return (c, oh, ow)


def crop_rf(attrs, rfs, ids, shapes) -> ReceptiveField:
    # cropping moves the grid: unit 0 is the input's unit `top` (`left`); nothing else changes
    rf = rfs[0]
    offsets = crop_offsets(attrs, shapes[0])
    axes = [
        a if a.size is None else AxisRF(a.size, a.stride, a.padding - o * a.stride) for a, o in zip(rf[:2], offsets)
    ]
    return ReceptiveField(*axes)


CROP_HELPERS = {
    "center_crop": '''def center_crop(x: torch.Tensor, size: tuple) -> torch.Tensor:
    """torchvision's `center_crop` of an NCHW map to `size` (h, w)."""
    h, w = size
    # torchvision's int(round((in - out) / 2)), half to even; integers, so it traces
    dh, dw = int(x.shape[-2]) - h, int(x.shape[-1]) - w
    top, left = dh // 2 + (dh % 4 == 3), dw // 2 + (dw % 4 == 3)
    return x[..., top : top + h, left : left + w]''',
    "CenterCrop": '''class CenterCrop(nn.Module):
    """`center_crop` as a module, for `nn.Sequential`."""

    def __init__(self, size: tuple) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.size
        dh, dw = int(x.shape[-2]) - h, int(x.shape[-1]) - w
        top, left = dh // 2 + (dh % 4 == 3), dw // 2 + (dw % 4 == 3)
        return x[..., top : top + h, left : left + w]''',
}


def _crop_call(out_size):
    out = size(out_size)
    return "crop", (tuple(out) if isinstance(out, (tuple, list)) else out,), ()


def f_center_crop(img, output_size):
    return _crop_call(output_size)


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
        size_from_value="size",
    ),
    OpRecord(
        Op.CROP,
        CROP_SIG,
        crop_shape,
        TorchOp(
            "CenterCrop",
            lambda a, s=None: [Arg("size", tuple(a["size"]), True)],
            "center_crop",
            lambda a, s=None: [Arg("size", tuple(a["size"]), True)],
            helpers=CROP_HELPERS,
        ),
        Diagram("other", lambda a: f"crop to {labels.kxk(a['size'])}"),
        rf=crop_rf,
        view=True,  # a slice of its input (aten::slice: no fvcore handle, no arithmetic)
        role="pointwise",  # no window: only moves the grid, as pad does
        imports=Imports(
            modules={"torchvision.transforms.transforms.CenterCrop": lambda m: _crop_call(m.size)},
            functions={"torchvision.transforms.functional.center_crop": f_center_crop},
            helpers={
                "CenterCrop": lambda m: _crop_call(m.size),
                "center_crop": lambda x, size: _crop_call(size),
            },
        ),
        size_from_value="size",
    ),
)
