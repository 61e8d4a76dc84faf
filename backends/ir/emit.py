"""``--emit ir``: the parsed IR of the main file (and its imports) as JSON."""

from __future__ import annotations

import dataclasses
import json

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from archlang.compiler import Compiled


def emit_ir(compiled: Compiled, fmt: str, options: dict) -> str:
    modules = [m for m in compiled.program.modules if m.file != "<prelude>"]
    docs = [_dump(m) for m in modules]
    return json.dumps({"main": docs[0], "imports": docs[1:]}, indent=2) + "\n"


def _dump(module) -> dict:
    try:
        return json.loads(module.model_dump_json())
    except PydanticSerializationError:
        # pydantic-core stops at ~255 nested values ("circular reference"), which legal
        # specs reach near the nesting limit (84 nested `{ }`): walk the tree in Python.
        return _plain(module)


def _plain(value):
    """What ``json.loads(model.model_dump_json())`` gives: every field, in field order."""
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # diagnostics.Span
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None  # as pydantic writes NaN and infinities by default
    return value
