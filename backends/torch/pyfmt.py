"""Tiny Python source formatting for the code generator, in ruff's (black's) style.

Generated files must pass ``ruff format --check`` without running ruff. Calls are written on
one line when they fit in :data:`LIMIT` columns (ruff's default, so the files are clean with
the default configuration and with the project's wider one); otherwise one argument per line
with a trailing comma, which ruff keeps exploded at any line length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

LIMIT = 88
INDENT = "    "


@dataclass
class Call:
    """``func(arg, ..., name=value, ...)``; values are source strings or nested calls."""

    func: str
    args: list = field(default_factory=list)
    kwargs: list[tuple[str, object]] = field(default_factory=list)
    explode: bool = False  # always one argument per line (e.g. nn.Sequential)
    subscript: str = ""  # printed after the closing parenthesis: ``torch.chunk(x, 2, dim=1)[0]``

    def items(self) -> list:
        return [*self.args, *(Kw(k, v) for k, v in self.kwargs)]


@dataclass
class Kw:
    name: str
    value: object


@dataclass
class Seq:
    """A bracketed literal: ``[a, b]``, ``(a, b)`` or ``{k: v}`` (items are source strings
    or ``(key, value)`` pairs for dicts)."""

    open: str
    close: str
    items: list
    explode: bool = False


def flat(value) -> str:
    """One-line source of a value."""
    if isinstance(value, str):
        return value
    if isinstance(value, Kw):
        return f"{value.name}={flat(value.value)}"
    if isinstance(value, Call):
        return f"{value.func}({', '.join(flat(v) for v in value.items())}){value.subscript}"
    if isinstance(value, Seq):
        parts = [f"{flat(it[0])}: {flat(it[1])}" if isinstance(it, tuple) else flat(it) for it in value.items]
        if value.open == "(" and len(parts) == 1:
            return f"({parts[0]},)"
        return f"{value.open}{', '.join(parts)}{value.close}"
    raise TypeError(value)


def _items(value) -> list:
    if isinstance(value, Call):
        return value.items()
    return list(value.items)


def _item_lines(item, indent: str, suffix: str) -> list[str]:
    if isinstance(item, Kw):
        return lines(item.value, indent, prefix=f"{item.name}=", suffix=suffix)
    if isinstance(item, tuple):
        return lines(item[1], indent, prefix=f"{flat(item[0])}: ", suffix=suffix)
    return lines(item, indent, suffix=suffix)


def lines(value, indent: str, prefix: str = "", suffix: str = "") -> list[str]:
    """``indent + prefix + value + suffix``, split over lines where it does not fit."""
    one = f"{indent}{prefix}{flat(value)}{suffix}"
    exploded = isinstance(value, (Call, Seq)) and value.explode and _items(value)
    if not exploded and (len(one) <= LIMIT or not isinstance(value, (Call, Seq)) or not _items(value)):
        return [one]
    head = f"{value.func}(" if isinstance(value, Call) else value.open
    close = f"){value.subscript}" if isinstance(value, Call) else value.close
    out = [f"{indent}{prefix}{head}"]
    for item in _items(value):
        out += _item_lines(item, indent + INDENT, ",")
    out.append(f"{indent}{close}{suffix}")
    return out


def statement(target: str, value, indent: str, comment: str = "") -> list[str]:
    """``target = value  # comment``; the comment moves above when the line is too long."""
    prefix = f"{target} = " if target else ""
    body = lines(value, indent, prefix=prefix)
    if not comment:
        return body
    if len(body) == 1 and len(body[0]) + 2 + len(comment) + 2 <= LIMIT:
        return [f"{body[0]}  # {comment}"]
    return [f"{indent}# {comment}", *body]


def signature(name: str, params: list[str], returns: str, indent: str) -> list[str]:
    one = f"{indent}def {name}({', '.join(params)}) -> {returns}:"
    if len(one) <= LIMIT:
        return [one]
    return [f"{indent}def {name}(", *(f"{indent}{INDENT}{p}," for p in params), f"{indent}) -> {returns}:"]


def py_str(text: str) -> str:
    """A double-quoted string literal (ruff's preferred quotes)."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    out = "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 256 else ch.encode("unicode_escape").decode()
        for ch in out
    )
    return f'"{out}"'


def py_value(value) -> str:
    """Source for a literal argument value (ints, floats, bools, None, strings, tuples)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float) and value in (math.inf, -math.inf):
        return f'float("{value}")'  # repr is `inf`, a name Python does not define
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return py_str(value)
    if isinstance(value, tuple):
        inner = ", ".join(py_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return repr(value)
