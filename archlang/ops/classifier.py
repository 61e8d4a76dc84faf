"""The classifier head: flatten and the fully connected layer."""

from __future__ import annotations

from . import costs, rf_rules
from . import shape_rules as sr
from . import torch_form as tf
from .base import A, Op, sig, t_bool, t_int, t_opt_float
from .import_form import NN, Unsupported, kw
from .record import Diagram, Imports, OpRecord
from .torch_form import Arg, TorchOp

LINEAR_SIG = sig(
    "fully connected layer", A("out_features", t_int), A("bias", t_bool, True), A("init_std", t_opt_float, None)
)


def import_flatten(m):
    if (m.start_dim, m.end_dim) != (1, -1):
        raise Unsupported(f"start_dim={m.start_dim}, end_dim={m.end_dim} (archlang flattens C×H×W)")
    return "flatten", (), ()


def f_flatten(input, start_dim=0, end_dim=-1, *, ndim):
    if end_dim not in (-1, ndim - 1) or start_dim != 1:
        raise Unsupported(f"flatten(start_dim={start_dim}, end_dim={end_dim}) (archlang flattens C×H×W)")
    return "flatten", (), ()


def f_view(input, *shape, ndim):
    """``x.view(x.size(0), -1)`` / ``x.reshape(x.shape[0], n)``: the batch size read off a
    tensor (the importer's sizes know their axis: ``.batch``) and one more dim is a flatten."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if len(shape) != 2 or not getattr(shape[0], "batch", False):
        raise Unsupported(
            f"a reshape to ({', '.join('B' if getattr(s, 'batch', False) else str(int(s)) for s in shape)}) "
            "(archlang reshapes only by `flatten`, keeping "
            "the batch dim: `x.view(x.size(0), -1)`)"
        )
    return None if ndim == 2 else ("flatten", (), ())


def import_linear(m):
    return "linear", (m.out_features,), kw(LINEAR_SIG, [("bias", m.bias is not None)])


def f_linear(input, weight, bias=None):
    """``F.linear`` on a module's own weight (timm's ``Linear``)."""
    return "linear", (weight.shape[0],), kw(LINEAR_SIG, [("bias", bias is not None)])


RECORDS = (
    OpRecord(
        Op.FLATTEN,
        sig("flatten C×H×W to a vector"),
        sr.flatten_shape,
        TorchOp("nn.Flatten", tf.none, "torch.flatten", extra=(Arg("start_dim", 1, True),), width="flatten"),
        Diagram("classifier", lambda a: "flatten"),
        channels_last=sr.flatten_shape,
        rf=rf_rules.whole,
        view=True,
        role="global",
        imports=Imports(
            modules={NN + "flatten.Flatten": import_flatten},
            functions={"torch.flatten": f_flatten, "torch.reshape": f_view},
            methods={"flatten": f_flatten, "view": f_view, "reshape": f_view},
        ),
    ),
    OpRecord(
        Op.LINEAR,
        LINEAR_SIG,
        sr.linear_shape,
        TorchOp("nn.Linear", tf.linear_args, init=True, fresh=True, width="out_arg"),
        Diagram("classifier", lambda a: f"fc, {a['out_features']}", "linear"),
        channels_last=sr.linear_last,
        params=costs.linear_params,
        macs=costs.linear_macs,
        flops=costs.linear_macs,
        all_ops=costs.dot_ops(costs.linear_macs),
        rf=rf_rules.linear,
        role="global",
        imports=Imports(
            modules={NN + "linear.Linear": import_linear}, functions={"torch.nn.functional.linear": f_linear}
        ),
        aliases={"fc": {}},
    ),
)
