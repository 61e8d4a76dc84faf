"""``--emit ir``: the parsed IR of the main file (and its imports) as JSON."""

from __future__ import annotations

import json

from .compiler import Compiled


def emit_ir(compiled: Compiled, fmt: str, options: dict) -> str:
    modules = [m for m in compiled.program.modules if m.file != "<prelude>"]
    docs = [json.loads(m.model_dump_json()) for m in modules]
    return json.dumps({"main": docs[0], "imports": docs[1:]}, indent=2) + "\n"
