"""What each primitive op is in PyTorch: the op records' ``torch`` field
(:mod:`archlang.ops.torch_form`), as tables keyed by :class:`archlang.ops.Op`, plus the
init schemes.

Arguments named in ``SYMBOLIC`` are widths and rates that a block class can take as
constructor parameters. This file does not import torch.
"""

from __future__ import annotations

from archlang.ops import Op
from archlang.ops.records import RECORDS
from archlang.ops.torch_form import TRAINING, Arg, TorchOp, Training, explicit

TORCH_OPS: dict[Op, TorchOp] = {op: r.torch for op, r in RECORDS.items()}
# Ops whose output is a freshly allocated tensor: a ReLU that is their only reader may run
# in place (as torchvision's BasicConv2d does). Dropout is not here: in eval it returns its
# input, and flatten returns a view.
FRESH_OUTPUT = frozenset(op for op, row in TORCH_OPS.items() if row.fresh)


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

__all__ = ["FRESH_OUTPUT", "INIT_KWARGS", "INIT_MEAN", "INIT_SCHEMES", "SYMBOLIC", "TORCH_OPS", "TRAINING", "Arg"]
__all__ += ["TorchOp", "Training", "explicit"]
