"""The way out of the closed op set: a PyTorch module archlang has no op for, declared
with ``extern`` (docs/language.md) and called like a block.

One record for every such module: the node's attributes carry what the declaration says —
the class to import (``target``, ``class``), its constructor arguments (``args``), its output
``shape`` and its ``params`` and ``flops`` (expressions the spec evaluated for this call) —
so the analyses carry on, the generated file imports the class, and the diagram draws it.
"""

from __future__ import annotations

from .base import Op, sig
from .record import Diagram, OpRecord
from .torch_form import Arg, TorchOp

EXTERNAL_SIG = sig("a PyTorch module from outside archlang (declared with `extern`)")


def external_args(attrs, in_shape=None):
    return [Arg(name, value) for name, value in attrs["args"]]


RECORDS = (
    OpRecord(
        Op.EXTERNAL,
        EXTERNAL_SIG,
        lambda attrs, shapes: tuple(attrs["shape"]),
        # the class is the node's (attrs["class"]), imported by the generated file
        TorchOp("<extern>", external_args, width="shape"),
        Diagram("other", lambda a: a["class"]),
        params=lambda attrs, ins, out: attrs["params"],
        flops=lambda attrs, ins, out: attrs["flops"],
        all_ops=lambda attrs, ins, out: attrs["flops"],
    ),
)
