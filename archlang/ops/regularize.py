"""Regularisers: the identity at inference."""

from __future__ import annotations

from . import labels
from . import shape_rules as sr
from . import torch_form as tf
from .base import A, Op, sig, t_choice, t_prob
from .import_form import NN, Unsupported, default, kw
from .record import Diagram, Imports, OpRecord
from .torch_form import TRAINING, Arg, TorchOp

DROPOUT_SIG = sig("dropout (training only)", A("p", t_prob, 0.5))
STOCHASTIC_DEPTH_SIG = sig(
    "stochastic depth: zeroes whole samples (row) or the whole batch in training; identity in eval",
    A("p", t_prob),
    A("mode", t_choice("row", "batch"), "row"),
)


def import_dropout(m):
    return "dropout", () if m.p == default(DROPOUT_SIG, "p") else (float(m.p),), ()


def f_dropout(input, p=0.5, training=True, inplace=False):
    if not training:
        return None  # F.dropout(x, training=False) is the identity
    return "dropout", () if p == 0.5 else (float(p),), ()


def import_stochastic_depth(m):
    return "stochastic_depth", (float(m.p),), kw(STOCHASTIC_DEPTH_SIG, [("mode", m.mode)])


_NO_RESCALE = "scale_by_keep=False (archlang's stochastic_depth scales the kept samples by 1 / (1 - p))"


def import_drop_path(m):
    """timm's ``DropPath``: per-sample stochastic depth, the survivors scaled by 1 / keep
    (torchvision's ``stochastic_depth(mode="row")``) unless ``scale_by_keep`` is off."""
    if not getattr(m, "scale_by_keep", True):
        raise Unsupported(_NO_RESCALE)
    return "stochastic_depth", (float(m.drop_prob),), ()


def f_drop_path(x, drop_prob=0.0, training=False, scale_by_keep=True):
    if not training or drop_prob == 0.0:
        return None
    if not scale_by_keep:
        raise Unsupported(_NO_RESCALE)
    return "stochastic_depth", (float(drop_prob),), ()


def f_stochastic_depth(input, p, mode, training=True):
    if not training:
        return None
    return "stochastic_depth", (float(p),), kw(STOCHASTIC_DEPTH_SIG, [("mode", mode)])


DROPOUT2D_SIG = sig("channel dropout: zeroes whole channels (training only)", A("p", t_prob, 0.5))


def import_dropout2d(m):
    return "dropout2d", () if m.p == default(DROPOUT2D_SIG, "p") else (float(m.p),), ()


def f_dropout2d(input, p=0.5, training=True, inplace=False):
    if not training:
        return None
    return "dropout2d", () if p == 0.5 else (float(p),), ()


# Always modules at the root: their behaviour follows train() / eval(), which a module makes
# plain (and a block class can then take the rate as a constructor argument).
_TRAIN_ONLY = {"at_root": True, "always_module": True, "eval_identity": True, "extra": (Arg("training", TRAINING),)}

RECORDS = (
    OpRecord(
        Op.DROPOUT,
        DROPOUT_SIG,
        sr.same(Op.DROPOUT),
        TorchOp("nn.Dropout", tf.dropout_args, "F.dropout", tf.dropout_args, **_TRAIN_ONLY),
        Diagram("classifier", lambda a: f"dropout ({labels.percent(a['p'])})", "dropout"),
        view=True,  # eval mode returns its input
        imports=Imports(
            modules={NN + "dropout.Dropout": import_dropout}, functions={"torch.nn.functional.dropout": f_dropout}
        ),
    ),
    OpRecord(
        Op.STOCHASTIC_DEPTH,
        STOCHASTIC_DEPTH_SIG,
        sr.same(Op.STOCHASTIC_DEPTH),
        TorchOp(
            "StochasticDepth", tf.stochastic_depth_args, "stochastic_depth", tf.stochastic_depth_args, **_TRAIN_ONLY
        ),
        Diagram("other", lambda a: f"stochastic depth ({labels.percent(a['p'])}, {a['mode']})"),
        view=True,  # eval mode returns its input
        imports=Imports(
            modules={
                "torchvision.ops.stochastic_depth.StochasticDepth": import_stochastic_depth,
                "timm.layers.drop.DropPath": import_drop_path,
            },
            functions={
                "torchvision.ops.stochastic_depth.stochastic_depth": f_stochastic_depth,
                "timm.layers.drop.drop_path": f_drop_path,
            },
        ),
    ),
    OpRecord(
        Op.DROPOUT2D,
        DROPOUT2D_SIG,
        sr.map_same(Op.DROPOUT2D),
        TorchOp("nn.Dropout2d", tf.dropout_args, "F.dropout2d", tf.dropout_args, **_TRAIN_ONLY),
        Diagram("other", lambda a: f"channel dropout ({labels.percent(a['p'])})"),
        view=True,  # eval mode returns its input
        imports=Imports(
            modules={NN + "dropout.Dropout2d": import_dropout2d},
            functions={"torch.nn.functional.dropout2d": f_dropout2d},
        ),
    ),
)
