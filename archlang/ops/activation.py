"""Activations (elementwise) and softmax."""

from __future__ import annotations

from . import costs
from . import shape_rules as sr
from . import torch_form as tf
from .base import A, Op, sig, t_choice
from .import_form import NN, F, Unsupported, activation_stub, kw, simple
from .record import Diagram, Imports, OpRecord
from .torch_form import Arg, TorchOp

GELU_SIG = sig("Gaussian error linear unit", A("approximate", t_choice("none", "tanh"), "none"))


def _activation(op: Op, doc: str, module: str, functional: str, label: str, all_ops: int, imports: Imports):
    """An elementwise activation without arguments."""
    return OpRecord(
        op,
        sig(doc),
        sr.same(op),
        TorchOp(module, tf.none, functional),
        Diagram("other", lambda a: label),
        all_ops=costs.per_element(all_ops),
        imports=imports,
    )


def _plain_imports(op: str, module: str, functions=(), methods=()) -> Imports:
    return Imports(
        modules={NN + module: simple(op)},
        functions={name: activation_stub(op) for name in functions},
        methods={name: activation_stub(op) for name in methods},
    )


def import_gelu(m):
    return "gelu", (), kw(GELU_SIG, [("approximate", m.approximate)])


def f_gelu(input, approximate="none"):
    return "gelu", (), kw(GELU_SIG, [("approximate", approximate)])


def import_softmax(m):
    if m.dim not in (1, -1):
        raise Unsupported(f"dim={m.dim} (archlang's softmax runs over the features)")
    return "softmax", (), ()


def f_softmax(input, dim=None, _stacklevel=3, dtype=None, *, ndim):
    if dim is None or dim % ndim != 1 or ndim != 2:
        raise Unsupported(f"softmax over dim={dim!r} (archlang's softmax runs over the features of a vector)")
    return "softmax", (), ()


RECORDS = (
    _activation(
        Op.RELU,
        "rectified linear unit",
        "nn.ReLU",
        "F.relu",
        "ReLU",
        1,  # one comparison
        _plain_imports("relu", "activation.ReLU", (F + "relu", "torch.relu"), ("relu", "relu_")),
    ),
    _activation(
        Op.TANH,
        "hyperbolic tangent",
        "nn.Tanh",
        "torch.tanh",
        "tanh",
        5,  # 1 - 2 / (exp(2x) + 1): multiply, exp, add, divide, subtract (aten::tanh: no fvcore handle)
        _plain_imports("tanh", "activation.Tanh", (F + "tanh", "torch.tanh"), ("tanh",)),
    ),
    _activation(
        Op.SIGMOID,
        "logistic sigmoid 1 / (1 + exp(-x))",
        "nn.Sigmoid",
        "torch.sigmoid",
        "sigmoid",
        3,  # 1 / (1 + exp(-x)): exp, add, divide
        _plain_imports("sigmoid", "activation.Sigmoid", (F + "sigmoid", "torch.sigmoid"), ("sigmoid",)),
    ),
    _activation(
        Op.RELU6,
        "ReLU clipped at 6: min(max(x, 0), 6)",
        "nn.ReLU6",
        "F.relu6",
        "ReLU6",
        2,  # two comparisons (0 and 6)
        _plain_imports("relu6", "activation.ReLU6", (F + "relu6",)),
    ),
    _activation(
        Op.SILU,
        "SiLU (swish): x * sigmoid(x)",
        "nn.SiLU",
        "F.silu",
        "SiLU",
        4,  # x * sigmoid(x): sigmoid (3) and a multiply
        _plain_imports("silu", "activation.SiLU", (F + "silu",)),
    ),
    _activation(
        Op.HARDSWISH,
        "hard swish: x * relu6(x + 3) / 6",
        "nn.Hardswish",
        "F.hardswish",
        "hard swish",
        5,  # x * relu6(x + 3) / 6: add, 2 comparisons, multiply, divide
        _plain_imports("hardswish", "activation.Hardswish", (F + "hardswish",)),
    ),
    _activation(
        Op.HARDSIGMOID,
        "hard sigmoid: relu6(x + 3) / 6",
        "nn.Hardsigmoid",
        "F.hardsigmoid",
        "hard sigmoid",
        4,  # relu6(x + 3) / 6: add, 2 comparisons, divide
        _plain_imports("hardsigmoid", "activation.Hardsigmoid", (F + "hardsigmoid",)),
    ),
    OpRecord(
        Op.GELU,
        GELU_SIG,
        sr.same(Op.GELU),
        TorchOp("nn.GELU", tf.gelu_args, "F.gelu", tf.gelu_args),
        Diagram("other", lambda a: "GELU" if a["approximate"] == "none" else "GELU (tanh)"),
        all_ops=costs.gelu_ops,
        imports=Imports(modules={NN + "activation.GELU": import_gelu}, functions={F + "gelu": f_gelu}),
    ),
    OpRecord(
        Op.SOFTMAX,
        sig("softmax over features"),
        sr.softmax_shape,
        TorchOp("nn.Softmax", lambda a, s=None: [Arg("dim", 1)], "F.softmax", extra=(Arg("dim", 1),)),
        Diagram("classifier", lambda a: "softmax", "softmax"),
        all_ops=costs.per_element(3),  # exp, add to the sum, divide (max-subtraction not counted)
        imports=Imports(
            modules={NN + "activation.Softmax": import_softmax},
            functions={F + "softmax": f_softmax, "torch.softmax": f_softmax},
            methods={"softmax": f_softmax},
        ),
    ),
)
