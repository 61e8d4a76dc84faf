"""A minimal printer of importer trees for the blocks tests (the importer's own printer is
``archlang.importer.text``; this one is deliberately plain, so a test of :mod:`blocks`
does not depend on it)."""

from __future__ import annotations

import json
import keyword

from archlang.importer import tree

_KEYWORDS = set(
    "network block import const input unit init aux at outputs if elif else then for in repeat as concat add "
    "mul and or not true false none".split()
)


def value(v) -> str:
    if isinstance(v, (tree.Param,)):
        return v.name
    if isinstance(v, tree.Expr):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, tuple):
        inner = ", ".join(value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def label(text: str | None) -> str:
    if text is None:
        return ""
    if text.isidentifier() and text not in _KEYWORDS and not keyword.iskeyword(text):
        return text + ": "
    return json.dumps(text) + ": "


def item(it, indent: str) -> list[str]:
    if isinstance(it, tree.Call):
        parts = [value(a) for a in it.args] + [f"{k}={value(v)}" for k, v in it.kwargs]
        return [f"{indent}{label(it.label)}{it.op}({', '.join(parts)})"]
    if isinstance(it, tree.Seq):
        return _body(f"{indent}{label(it.label)}{{", it.items, indent)
    if isinstance(it, tree.Instance):
        return _body(f"{indent}{label(it.label)}{{", it.body.items, indent)
    if isinstance(it, tree.Group):
        return _body(f"{indent}{label(it.label)}{it.mode} {{", it.branches, indent)
    if isinstance(it, tree.Repeat):
        return _body(f"{indent}repeat {value(it.count)} {{", it.body, indent)
    if isinstance(it, tree.If):
        lines = _body(f"{indent}if {value(it.cond)} {{", it.then, indent)
        if it.orelse:
            lines[-1] += " else {"
            lines += [line for i in it.orelse for line in item(i, indent + "  ")] + [indent + "}"]
        return lines
    raise TypeError(it)


def _body(head: str, items: list, indent: str) -> list[str]:
    return [head] + [line for i in items for line in item(i, indent + "  ")] + [indent + "}"]


def network(net: tree.Network) -> str:
    lines = []
    for blk in net.blocks:
        params = []
        for name, typ, default in blk.params:
            text = name + (f": {typ}" if typ else "")
            if default is not None:
                text += f" = {value(default)}"
            params.append(text)
        lines += _body(f"block {blk.name}({', '.join(params)}) {{", blk.body, "")
    lines.append(f"network {net.name} {{")
    lines.append("  input " + "x".join(str(d) for d in net.input_shape))
    for it in net.body.items:
        lines += item(it, "  ")
    for a in net.aux:
        body = item(a.body, "  ")
        body[0] = f"  aux {a.label} at {a.anchor}: " + body[0].strip()
        lines += body
    if net.outputs:
        typ, fields = net.outputs
        lines.append(f"  outputs {typ}(" + ", ".join(f if s == "logits" else f"{f} = {s}" for f, s in fields) + ")")
    lines.append("}")
    return "\n".join(lines) + "\n"
