"""The body of a generated network's ``_initialize_weights`` for every init scheme.

Specs whose inits are all truncated / plain normals without a bias constant (GoogLeNet,
Inception v3) keep the code of :func:`.texts.init_method`. The others are written as
torchvision writes VGG and ResNet: one loop over ``self.modules()`` with a branch per
module type when every conv (every linear) shares one init, otherwise a table by module
name. Modules are visited in registration order, as torchvision does, so the same seed
gives torchvision's weights. ``batchnorm(zero_init=true)`` layers (ResNet's
``zero_init_residual``) get their scale zeroed afterwards, as torchvision does.
"""

from __future__ import annotations

from archlang.ops import Op

from .ops import INIT_KWARGS, INIT_MEAN, INIT_SCHEMES, TORCH_OPS
from .plan import Leaf, ModulePlan, iter_plans
from .pyfmt import INDENT, Call, Seq, lines, py_str, py_value, statement
from .texts import init_method as legacy_init_method

I2, I3, I4, I5 = (INDENT * n for n in (2, 3, 4, 5))
LEGACY = frozenset({"trunc_normal", "normal"})
TYPES = {"conv2d": "nn.Conv2d", "linear": "nn.Linear"}


def initialize_weights(root: ModulePlan, zero_norms: list[str] | None = None, flag: str | None = None) -> list[str]:
    """The body of the network's ``_initialize_weights`` (empty: nothing to initialise).
    ``zero_norms``: the batch norms to zero (default: ``root``'s); ``flag``: the argument of
    ``_initialize_weights`` under which they are zeroed (``zero_init_residual``), if any."""
    inits, affine_varies = [], False
    for p in iter_plans(root):
        for c in p.children:
            if isinstance(c, Leaf) and TORCH_OPS[c.op].init:
                inits.append((".".join((*p.path, c.name)), c.init, c.op.value, c.attrs["bias"]))
            affine_varies |= isinstance(c, Leaf) and c.op is Op.BATCHNORM and not c.attrs["affine"]
    zero_norms = zero_init_norms(root) if zero_norms is None else zero_norms
    if is_legacy(inits) and not zero_norms:
        return legacy_init_method([(n, i) for n, i, _, _ in inits], affine_varies)
    bn_test = "isinstance(m, nn.BatchNorm2d)" + (" and m.affine" if affine_varies else "")
    return init_method(inits, bn_test, zero_norms, flag)


def is_legacy(inits: list[tuple[str, dict | None, str, bool]]) -> bool:
    """Inits the original generator writes (and its golden files pin)."""
    return all(i is None or (i["scheme"] in LEGACY and i.get("bias") is None) for _, i, _, _ in inits)


def _value(v) -> str:
    return py_str(v) if isinstance(v, str) else py_value(v)


# torch.nn.init's own defaults: arguments equal to them are left out of the generated call.
_KAIMING = {"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"}
TORCH_DEFAULTS = {
    "kaiming_normal": _KAIMING,
    "kaiming_uniform": _KAIMING,
    "xavier_normal": {"gain": 1.0},
    "xavier_uniform": {"gain": 1.0},
}


def _kwargs(init: dict) -> list[tuple[str, str]]:
    scheme = init["scheme"]
    defaults = TORCH_DEFAULTS.get(scheme, {})
    mean = [("mean", _value(INIT_MEAN[scheme]))] if scheme in INIT_MEAN else []
    return mean + [(k, _value(init[k])) for k in INIT_KWARGS[scheme] if k not in defaults or init[k] != defaults[k]]


def _weight_and_bias(init: dict, guard_bias: bool, indent: str) -> list[str]:
    if init["scheme"] == "default":  # `init default(bias=...)`: PyTorch's weights stay
        out = [f"{indent}# init default: PyTorch's own weight init, the bias set below"]
    else:
        out = lines(Call(INIT_SCHEMES[init["scheme"]], ["m.weight"], _kwargs(init)), indent)
    if init.get("bias") is not None:
        if guard_bias:
            out.append(f"{indent}if m.bias is not None:")
            indent += INDENT
        out.append(f"{indent}nn.init.constant_(m.bias, {_value(init['bias'])})")
    return out


def init_method(
    inits: list[tuple[str, dict | None, str, bool]], bn_test: str, zero_norms: list[str], flag: str | None = None
) -> list[str]:
    """``inits``: (module name, init or None, op value, has bias) of every conv / linear."""
    out = []
    if any(i is not None for _, i, _, _ in inits):
        out += _per_type(inits, bn_test) or _per_name(inits, bn_test)
    if zero_norms:
        indent = I3 if flag else I2
        if flag:
            out.append(f"{I2}if {flag}:")
        out.append(f"{indent}# batchnorm(zero_init=true): torchvision's zero_init_residual")
        out += statement("zero_init", Seq("(", ")", [py_str(n) for n in zero_norms]), indent)
        out.append(f"{indent}for name in zero_init:")
        out.append(f"{indent}{INDENT}nn.init.zeros_(self.get_submodule(name).weight)")
    return out


def _per_type(inits, bn_test) -> list[str]:
    branches = []
    for op, cls in TYPES.items():
        mine = [(i, bias) for _, i, o, bias in inits if o == op]
        distinct = {repr(i) for i, _ in mine}
        if len(distinct) > 1:
            return []
        if mine and mine[0][0] is not None:
            branches.append((cls, mine[0][0], not all(bias for _, bias in mine)))
    out = [
        f"{I2}# torchvision's order: one pass over modules() (same seed, same weights)",
        f"{I2}for m in self.modules():",
    ]
    keyword = "if"
    for cls, init, guard in branches[:1]:
        out.append(f"{I3}{keyword} isinstance(m, {cls}):")
        out += _weight_and_bias(init, guard, I4)
        keyword = "elif"
    out.append(f"{I3}{keyword} {bn_test}:")
    out += [f"{I4}nn.init.constant_(m.weight, 1)", f"{I4}nn.init.constant_(m.bias, 0)"]
    for cls, init, guard in branches[1:]:
        out.append(f"{I3}elif isinstance(m, {cls}):")
        out += _weight_and_bias(init, guard, I4)
    return out


def _per_name(inits, bn_test) -> list[str]:
    given = [(n, i, bias) for n, i, _, bias in inits if i is not None]
    table = Seq(
        "{",
        "}",
        [
            (
                py_str(n),
                Seq(
                    "(",
                    ")",
                    [
                        "None"
                        if i["scheme"] == "default"
                        else py_str(INIT_SCHEMES[i["scheme"]].removeprefix("nn.init.")),
                        Seq("{", "}", [] if i["scheme"] == "default" else [(py_str(k), v) for k, v in _kwargs(i)]),
                        # a bias-less layer under an init with a bias constant: nothing to set
                        _value(i.get("bias") if has_bias else None),
                    ],
                ),
            )
            for n, i, has_bias in given
        ],
        explode=True,
    )
    out = [f"{I2}# The spec's init per module, in module order (same seed, same weights)."]
    overridden = [n for n, i, _ in given if i.get("overrides")]
    if overridden:
        schemes = sorted({i["overrides"] for _, i, _ in given if i.get("overrides")})
        out.append(f"{I2}# init_std= under {', '.join(schemes)}: trunc_normal_ weights, the bias of that init")
        out.append(f"{I2}# ({', '.join(overridden[:3])}{', ...' if len(overridden) > 3 else ''}).")
    out += statement("inits", table, I2)
    out.append(f"{I2}for name, m in self.named_modules():")
    out.append(f"{I3}if name in inits:")
    out.append(f"{I4}init, kwargs, bias = inits[name]")
    if any(i["scheme"] == "default" for _, i, _ in given):
        out.append(f"{I4}if init is not None:  # None: `init default(bias=...)`, PyTorch's weights")
        out.append(f"{I5}getattr(nn.init, init)(m.weight, **kwargs)")
    else:
        out.append(f"{I4}getattr(nn.init, init)(m.weight, **kwargs)")
    out.append(f"{I4}if bias is not None:")
    out.append(f"{I5}nn.init.constant_(m.bias, bias)")
    out.append(f"{I3}elif {bn_test}:")
    out += [f"{I4}nn.init.constant_(m.weight, 1)", f"{I4}nn.init.constant_(m.bias, 0)"]
    return out


def zero_init_norms(root: ModulePlan) -> list[str]:
    """Dotted names of the batch norms whose scale starts at 0 (``batchnorm(zero_init=true)``)."""
    return [
        ".".join((*p.path, c.name))
        for p in iter_plans(root)
        for c in p.children
        if isinstance(c, Leaf) and c.op is Op.BATCHNORM and c.attrs.get("zero_init") and c.attrs["affine"]
    ]
