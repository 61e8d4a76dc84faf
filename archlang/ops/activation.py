"""Activations (elementwise) and softmax."""

from __future__ import annotations

from . import costs
from . import shape_rules as sr
from . import torch_form as tf
from .base import A, Op, ShapeError, sig, t_choice, t_float, t_int, t_positive_float
from .import_form import NN, F, Unsupported, activation_stub, kw, simple
from .record import Diagram, Imports, OpRecord
from .torch_form import Arg, TorchOp, opt

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


RADIX_SOFTMAX_SIG = sig(
    "ResNeSt's rSoftMax: channels as (groups, radix, C/(groups·radix)), softmax over radix, "
    "written in (radix, groups, C/(groups·radix)) order",
    A("radix", t_int),
    A("groups", t_int, 1),
)
# The generated file's definition (a helper: torch has no such function); re-importing a
# built spec reads the call back as the op (``Imports.helpers``).
RADIX_SOFTMAX_HELPERS = {
    "radix_softmax": '''def radix_softmax(x: torch.Tensor, radix: int, groups: int = 1) -> torch.Tensor:
    """ResNeSt's rSoftMax over the channels of a map or vector, at every position."""
    y = x.reshape(x.shape[0], groups, radix, -1).transpose(1, 2)
    return torch.softmax(y, dim=1).reshape(x.shape)'''
}


def _radix_call(radix, groups):
    if radix == 1:  # timm's RadixSoftmax and ResNeSt's rSoftMax: a sigmoid gate without paths
        return "sigmoid", (), ()
    return "radix_softmax", (int(radix),), kw(RADIX_SOFTMAX_SIG, [("groups", int(groups))])


def _radix_softmax_shape(attrs, shapes):
    (shape,) = shapes
    c, r, g = shape[0], attrs["radix"], attrs["groups"]
    if r < 2:  # the emitted softmax over one path would be 1 everywhere, not rSoftMax's gate
        raise ShapeError(
            "E303",
            f"radix_softmax needs radix ≥ 2, got {r}",
            help="ResNeSt's rSoftMax with radix 1 is a sigmoid gate: write `sigmoid`",
        )
    if c % (r * g):
        raise ShapeError(
            "E405",
            f"radix_softmax radix={r} × groups={g} must divide the channels ({c})",
            help="the channels are viewed as (groups, radix, C / (groups · radix))",
        )
    return shape


LEAKY_RELU_SIG = sig("leaky ReLU: x if x > 0 else negative_slope * x", A("negative_slope", t_float, 0.01))
ELU_SIG = sig("ELU: x if x > 0 else alpha * (exp(x) - 1)", A("alpha", t_float, 1.0))
SOFTPLUS_SIG = sig(
    "softplus: log(1 + exp(beta * x)) / beta, x where beta * x > threshold",
    A("beta", t_positive_float, 1.0),
    A("threshold", t_float, 20.0),
)
HARDTANH_SIG = sig("hardtanh: x clipped to [min_val, max_val]", A("min_val", t_float, -1.0), A("max_val", t_float, 1.0))
PRELU_SIG = sig(
    "PReLU: leaky ReLU with a learnt slope, one for all channels or one per channel",
    A("num_parameters", t_int, 1),
    A("init", t_float, 0.25),
)


def _with_args(op: Op, signature, module: str, functional: str, label, all_ops: int, args, names: dict) -> OpRecord:
    """An elementwise activation with float arguments: ``args(attrs)`` builds torch's
    (the same for the module and the function); ``names``: torch's argument name -> ours."""
    short = op.value

    def from_module(m):
        return short, (), kw(signature, [(ours, float(getattr(m, theirs))) for theirs, ours in names.items()])

    def from_function(input, *values, inplace=False, **given):
        bound = dict(zip(names, values)) | given
        if set(bound) - set(names):
            raise Unsupported(f"arguments {sorted(set(bound) - set(names))}")
        return short, (), kw(signature, [(names[k], float(v)) for k, v in bound.items()])

    return OpRecord(
        op,
        signature,
        sr.same(op),
        TorchOp(module, lambda a, s=None: args(a), functional, lambda a, s=None: args(a)),
        Diagram("other", label),
        all_ops=costs.per_element(all_ops),  # no fvcore handle: 0 FLOPs there
        imports=Imports(
            modules={NN + "activation." + module.removeprefix("nn."): from_module},
            functions={F + functional.removeprefix("F."): from_function},
        ),
    )


def _hardtanh_shape(attrs, shapes):
    if attrs["min_val"] >= attrs["max_val"]:
        raise ShapeError("E303", f"hardtanh needs min_val < max_val, got {attrs['min_val']} and {attrs['max_val']}")
    return shapes[0]


_hardtanh_shape.layout_free = True


def f_hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return "hardtanh", (), kw(HARDTANH_SIG, [("min_val", float(min_val)), ("max_val", float(max_val))])


def _prelu_shape(attrs, shapes):
    (shape,) = shapes
    n = attrs["num_parameters"]
    channels = shape[0]
    if n not in (1, channels):
        raise ShapeError(
            "E405",
            f"prelu num_parameters={n} must be 1 or the channels ({channels})",
            help="nn.PReLU learns one slope, or one per channel (dim 1)",
        )
    return shape


def import_prelu(m):
    init = float(m.weight.detach().flatten()[0]) if m.weight.numel() else 0.25
    return "prelu", (), kw(PRELU_SIG, [("num_parameters", m.num_parameters), ("init", init)])


STAR_RELU_SIG = sig(
    "StarReLU (MetaFormer baselines): scale · relu(x)² + bias, a learnt scalar scale and bias",
    A("scale", t_float, 1.0),
    A("bias", t_float, 0.0),
)
STAR_RELU_HELPERS = {
    "StarReLU": '''class StarReLU(nn.Module):
    """MetaFormer's StarReLU: scale * relu(x) ** 2 + bias (learnt scalars)."""

    def __init__(self, scale: float = 1.0, bias: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), float(scale)))
        self.bias = nn.Parameter(torch.full((1,), float(bias)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.relu(x) ** 2 + self.bias'''
}


def import_star_relu(m):
    # timm's StarReLU (and the back end's own): a (1,) scale and a (1,) bias around relu(x)²
    if m.scale.numel() != 1 or m.bias.numel() != 1:
        raise Unsupported("a scale or bias of more than one value")
    pairs = [("scale", float(m.scale.detach().flatten()[0])), ("bias", float(m.bias.detach().flatten()[0]))]
    return "star_relu", (), kw(STAR_RELU_SIG, pairs)


def _star_relu_args(attrs, in_shape=None):
    return [*opt("scale", attrs["scale"], 1.0, float), *opt("bias", attrs["bias"], 0.0, float)]


def f_square(input):
    return "square", (), ()


def f_pow(input, exponent):
    if exponent != 2 or isinstance(exponent, bool):
        raise Unsupported(f"a power {exponent!r} (archlang has `square`, x ** 2)")
    return "square", (), ()


def _prelu_args(attrs, in_shape=None):
    return [*opt("num_parameters", attrs["num_parameters"], 1, int), *opt("init", attrs["init"], 0.25, float)]


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
    OpRecord(
        Op.RADIX_SOFTMAX,
        RADIX_SOFTMAX_SIG,
        _radix_softmax_shape,
        TorchOp(
            None,
            tf.none,
            "radix_softmax",
            lambda a, s=None: [Arg("radix", a["radix"], True), *opt("groups", a["groups"], 1, int)],
            helpers=RADIX_SOFTMAX_HELPERS,
        ),
        Diagram("other", lambda a: f"radix softmax, r{a['radix']}" + (f" g{a['groups']}" if a["groups"] > 1 else "")),
        # aten::softmax has no fvcore handle (0 FLOPs there, as softmax); the reshapes are views
        all_ops=costs.per_element(3),  # exp, add to the sum, divide (as softmax)
        imports=Imports(
            # timm's module; other copies of rSoftMax are traced through (view, transpose,
            # softmax over dim 1, reshape: the importer's channel-group views)
            modules={"timm.layers.split_attn.RadixSoftmax": lambda m: _radix_call(m.radix, m.cardinality)},
            helpers={"radix_softmax": lambda x, radix, groups=1: _radix_call(radix, groups)},
        ),
    ),
    _with_args(
        Op.LEAKY_RELU,
        LEAKY_RELU_SIG,
        "nn.LeakyReLU",
        "F.leaky_relu",
        lambda a: "leaky ReLU" if a["negative_slope"] == 0.01 else f"leaky ReLU, {a['negative_slope']:g}",
        2,  # one comparison, one multiply
        lambda a: opt("negative_slope", a["negative_slope"], 0.01, float),
        {"negative_slope": "negative_slope"},
    ),
    _with_args(
        Op.ELU,
        ELU_SIG,
        "nn.ELU",
        "F.elu",
        lambda a: "ELU" if a["alpha"] == 1.0 else f"ELU, α={a['alpha']:g}",
        4,  # comparison, exp, subtract, multiply
        lambda a: opt("alpha", a["alpha"], 1.0, float),
        {"alpha": "alpha"},
    ),
    _with_args(
        Op.SOFTPLUS,
        SOFTPLUS_SIG,
        "nn.Softplus",
        "F.softplus",
        lambda a: "softplus",
        6,  # multiply by beta, comparison with the threshold, exp, add, log, divide by beta
        lambda a: [*opt("beta", a["beta"], 1.0, float), *opt("threshold", a["threshold"], 20.0, float)],
        {"beta": "beta", "threshold": "threshold"},
    ),
    OpRecord(
        Op.HARDTANH,
        HARDTANH_SIG,
        _hardtanh_shape,
        TorchOp(
            "nn.Hardtanh",
            lambda a, s=None: [*opt("min_val", a["min_val"], -1.0, float), *opt("max_val", a["max_val"], 1.0, float)],
            "F.hardtanh",
            lambda a, s=None: [*opt("min_val", a["min_val"], -1.0, float), *opt("max_val", a["max_val"], 1.0, float)],
        ),
        Diagram("other", lambda a: f"hardtanh [{a['min_val']:g}, {a['max_val']:g}]"),
        all_ops=costs.per_element(2),  # two comparisons (no fvcore handle: 0 FLOPs there)
        imports=Imports(
            modules={
                NN + "activation.Hardtanh": lambda m: (
                    "hardtanh",
                    (),
                    kw(HARDTANH_SIG, [("min_val", float(m.min_val)), ("max_val", float(m.max_val))]),
                )
            },
            functions={F + "hardtanh": f_hardtanh},
        ),
    ),
    _activation(
        Op.MISH,
        "Mish: x * tanh(softplus(x))",
        "nn.Mish",
        "F.mish",
        "Mish",
        # softplus with beta 1 (threshold comparison, exp, add, log: 4), tanh (5, as Op.TANH),
        # multiply (1)
        10,
        _plain_imports("mish", "activation.Mish", (F + "mish",)),
    ),
    OpRecord(
        Op.PRELU,
        PRELU_SIG,
        _prelu_shape,
        TorchOp("nn.PReLU", _prelu_args),  # a learnt slope: always a module
        Diagram("other", lambda a: "PReLU" if a["num_parameters"] == 1 else "PReLU, per channel"),
        params=lambda attrs, ins, out: attrs["num_parameters"],
        all_ops=costs.per_element(2),  # one comparison, one multiply (aten::prelu: no fvcore handle)
        imports=Imports(modules={NN + "activation.PReLU": import_prelu}),
    ),
    OpRecord(
        Op.STAR_RELU,
        STAR_RELU_SIG,
        sr.same(Op.STAR_RELU),
        TorchOp("StarReLU", _star_relu_args, helpers=STAR_RELU_HELPERS),  # a learnt scale: always a module
        Diagram("other", lambda a: "StarReLU"),
        params=lambda attrs, ins, out: 2,
        # comparison, square, multiply, add (aten::mul / pow / add: no fvcore handle)
        all_ops=costs.per_element(4),
        imports=Imports(
            modules={"timm.models.metaformer.StarReLU": import_star_relu},
            helpers={"StarReLU": import_star_relu},
        ),
    ),
    OpRecord(
        Op.SQUARE,
        sig("x², elementwise (MetaFormer's SquaredReLU is relu then square)"),
        sr.same(Op.SQUARE),
        TorchOp(None, tf.none, "torch.square"),
        Diagram("other", lambda a: "square"),
        all_ops=costs.per_element(1),  # aten::square / pow: no fvcore handle
        imports=Imports(
            functions={"torch.square": f_square, "torch.pow": f_pow, "operator.pow": f_pow},
            methods={"square": f_square, "pow": f_pow},
        ),
    ),
)
