"""``--emit ir``: the parsed IR of the main file (and its imports) as JSON."""

from __future__ import annotations

import json

from archlang.compiler import Compiled
from archlang.frontend.ir import as_data


def emit_ir(compiled: Compiled, fmt: str, options: dict) -> str:
    modules = [m for m in compiled.program.modules if m.file != "<prelude>"]
    docs = [as_data(m) for m in modules]
    return json.dumps({"main": docs[0], "imports": docs[1:]}, indent=2) + "\n"
