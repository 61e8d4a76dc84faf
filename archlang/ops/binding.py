"""Binding a call's arguments to an op's signature (:data:`archlang.ops.SIGNATURES`): checked,
defaults filled in, normalised (a padding pair, a kernel pair) before lowering uses them.
"""

from __future__ import annotations

from archlang.ops import SIGNATURES, ArgError, Op


def bind_args(op: Op, positional: list, keyword: dict) -> dict:
    """Check and normalise a call's arguments against the op's signature.

    Raises ``ArgError`` (with ``.arg`` naming the offending argument, if any). Returns a
    fresh dict (callers may complete it); the checking itself is memoised, since a network
    repeats the same calls many times over (every instance of a block).
    """
    # Types are part of the key: 1, 1.0 and True are equal and hash alike in Python.
    key = (op, _typed(tuple(positional)), _typed(tuple(keyword.items())))
    try:
        return dict(_bind_args_cached(key, tuple(positional), tuple(keyword.items())))
    except TypeError:  # an unhashable value: check without the memo
        return _bind_args(op, positional, keyword)


def _typed(value):
    if isinstance(value, tuple):
        return tuple(_typed(v) for v in value)
    return (type(value), value)


_BIND_MEMO: dict = {}


def _bind_args_cached(key, positional: tuple, keyword: tuple) -> dict:
    hit = _BIND_MEMO.get(key)
    if hit is None:
        hit = _bind_args(key[0], list(positional), dict(keyword))
        if len(_BIND_MEMO) > 4096:
            _BIND_MEMO.clear()
        _BIND_MEMO[key] = hit
    return hit


def _bind_args(op: Op, positional: list, keyword: dict) -> dict:
    sig = SIGNATURES[op]
    if len(positional) > len(sig.args):
        raise ArgError(
            f"{op.value} takes at most {len(sig.args)} positional argument"
            f"{'s' if len(sig.args) != 1 else ''}, got {len(positional)}",
            help=_usage(op),
            code="E203",
            arg=len(sig.args),
        )
    values = {}
    for spec, value in zip(sig.args, positional):
        values[spec.name] = value
    known = {a.name for a in sig.args}
    for name, value in keyword.items():
        if name not in known:
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            raise ArgError(
                f"{op.value} has no argument `{name}`",
                help=(f"did you mean `{close[0]}`? " if close else "") + _usage(op),
                code="E202",
                arg=name,
            )
        if name in values:
            raise ArgError(f"argument `{name}` given twice", help=_usage(op), code="E206", arg=name)
        values[name] = value
    out = {}
    for spec in sig.args:
        if spec.name not in values:
            if spec.required:
                raise ArgError(f"{op.value} is missing its argument `{spec.name}`", help=_usage(op), code="E204")
            out[spec.name] = spec.check(spec.default, spec.name)
            continue
        try:
            out[spec.name] = spec.check(values[spec.name], spec.name)
        except ArgError as err:
            # a positional argument is located by its index, a keyword one by its name
            arg = spec.name if spec.name in keyword else sig.args.index(spec)
            raise ArgError(err.message, err.help, code=err.code, arg=arg) from None
    return out


def _usage(op: Op) -> str:
    parts = []
    for a in SIGNATURES[op].args:
        parts.append(a.name if a.required else f"{a.name}={_show_default(a.default)}")
    return f"usage: {op.value}({', '.join(parts)})"


def _show_default(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if v is None:
        return "none"
    return repr(v)
