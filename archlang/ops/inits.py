"""Weight-init schemes an ``init`` statement can name, and how their arguments are checked.

One row per scheme: its arguments with their defaults, which are ``torch.nn.init``'s (the
torch back end maps each scheme to its ``nn.init`` call, ``backends/torch/ops.py``). Every
scheme also takes ``bias``: ``none`` keeps PyTorch's default bias init, a number sets the
bias to that constant (torchvision's VGG: ``nn.init.constant_(m.bias, 0)``).

A resolved init is a dict ``{"scheme": name, <each argument>: value, "bias": ...}`` stored
on every conv / linear node created in its scope (``node.init``); ``default`` is ``None``,
and ``default(bias=0)`` is ``{"scheme": "default", "bias": 0.0}`` (PyTorch's weights, the
biases set).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# torch.nn.init.calculate_gain's names (the ones without an extra parameter count too).
NONLINEARITIES = ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")
FAN_MODES = ("fan_in", "fan_out")


class InitArgError(Exception):
    def __init__(self, message: str, help: str | None = None):
        super().__init__(message)
        self.message, self.help = message, help


def _number(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InitArgError(f"init {name} must be a finite number, got {v!r}")
    return float(v)


def _positive(v, name):
    v = _number(v, name)
    if v <= 0:
        raise InitArgError(f"init {name} must be positive, got {v}")
    return v


def _optional_number(v, name):
    return None if v is None else _number(v, name)


def _choice(options: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(v, name):
        if v not in options:
            raise InitArgError(
                f"init {name} must be one of {', '.join(map(repr, options))}, got {v!r}",
                help=f'e.g. {name}="{options[0]}"',
            )
        return v

    return check


@dataclass(frozen=True)
class InitArg:
    name: str
    check: Callable[[Any, str], Any]
    default: Any


_BIAS = InitArg("bias", _optional_number, None)

INIT_SCHEMES: dict[str, tuple[InitArg, ...]] = {
    "default": (_BIAS,),  # PyTorch's own weights; `bias=0` still sets the biases
    "trunc_normal": (
        InitArg("std", _positive, 0.01),
        InitArg("a", _number, -2.0),
        InitArg("b", _number, 2.0),
        _BIAS,
    ),
    "normal": (InitArg("std", _positive, 0.01), InitArg("a", _number, -2.0), InitArg("b", _number, 2.0), _BIAS),
    "kaiming_normal": (
        InitArg("mode", _choice(FAN_MODES), "fan_in"),
        InitArg("nonlinearity", _choice(NONLINEARITIES), "leaky_relu"),
        InitArg("a", _number, 0.0),  # the negative slope, for leaky_relu
        _BIAS,
    ),
    "kaiming_uniform": (
        InitArg("mode", _choice(FAN_MODES), "fan_in"),
        InitArg("nonlinearity", _choice(NONLINEARITIES), "leaky_relu"),
        InitArg("a", _number, 0.0),
        _BIAS,
    ),
    "xavier_normal": (InitArg("gain", _positive, 1.0), _BIAS),
    "xavier_uniform": (InitArg("gain", _positive, 1.0), _BIAS),
}
# `normal` keeps a and b (unused) so that an init dict has the same keys for both normals.

# The positional argument of each scheme (`init trunc_normal(0.01)`), if it takes one.
POSITIONAL = {"trunc_normal": "std", "normal": "std", "xavier_normal": "gain", "xavier_uniform": "gain"}


def usage(scheme: str) -> str:
    args = ", ".join(f"{a.name}={a.default!r}" for a in INIT_SCHEMES[scheme])
    return f"usage: init {scheme}({args})".replace("None", "none")


def resolve_init(scheme: str, positional: list, keyword: dict) -> dict | None:
    """Check an init statement's arguments; ``None`` for ``default``. Raises
    :class:`InitArgError` with ``.code`` and ``.arg`` (the offending keyword or index)."""
    spec = {a.name: a for a in INIT_SCHEMES[scheme]}
    values: dict = {}
    if positional:
        first = POSITIONAL.get(scheme)
        if first is None or len(positional) > 1:
            raise _coded(
                InitArgError(
                    f"init {scheme} takes {'no positional argument' if first is None else 'one positional argument'}",
                    help=usage(scheme),
                ),
                "E203",
                1 if first else 0,
            )
        values[first] = positional[0]
    for name, value in keyword.items():
        if name not in spec:
            raise _coded(InitArgError(f"init {scheme} has no argument `{name}`", help=usage(scheme)), "E202", name)
        if name in values:
            raise _coded(InitArgError(f"init argument `{name}` given twice", help=usage(scheme)), "E206", name)
        values[name] = value
    if scheme == "default" and values.get("bias") is None:
        return None
    out: dict = {"scheme": scheme}
    for name, arg in spec.items():
        try:
            out[name] = arg.check(values.get(name, arg.default), name)
        except InitArgError as err:
            raise _coded(err, "E205", name if name in keyword else 0) from None
    if scheme == "trunc_normal" and not out["a"] < out["b"]:
        err = InitArgError(
            f"init trunc_normal needs a < b (the truncation interval), got a={out['a']}, b={out['b']}",
            help=usage(scheme),
        )
        raise _coded(err, "E205", "b" if "b" in keyword else "a" if "a" in keyword else 0)
    return out


def _coded(err: InitArgError, code: str, arg) -> InitArgError:
    err.code, err.arg = code, arg
    return err
