"""Paper-style labels of the op records ("1x1 conv, 64", "3x3 max pool, /2"), which the
diagrams and the report print: helpers the family modules share."""

from __future__ import annotations

from collections.abc import Callable


def kxk(pair) -> str:
    return f"{pair[0]}x{pair[1]}"


def stride_suffix(stride) -> str:
    # ResNet-paper style: ", /2" marks a strided layer.
    if stride is None or max(stride) == 1:
        return ""
    return f", /{stride[0]}" if stride[0] == stride[1] else f", /{kxk(stride)}"


def conv_label(a: dict) -> str:
    groups = f", g{a['groups']}" if a["groups"] > 1 else ""
    return f"{kxk(a['kernel_size'])} conv, {a['out_channels']}{groups}{stride_suffix(a['stride'])}"


def pool_label(kind: str) -> Callable[[dict], str]:
    def label(a: dict) -> str:
        stride = a["stride"] or a["kernel_size"]
        return f"{kxk(a['kernel_size'])} {kind} pool{stride_suffix(stride)}"

    return label


def percent(p: float) -> str:
    return f"{p * 100:g}%"


def permute_label(a: dict) -> str:
    dims = a["dims"]
    if dims == (0, 2, 3, 1):
        return "to channels-last"
    return "to channels-first" if dims == (0, 3, 1, 2) else "permute " + ", ".join(map(str, dims))
