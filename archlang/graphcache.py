"""Compiled graphs cached on disk between processes, for `archc FILE --report`.

A report needs only the lowered, shape-checked graph and the source texts (to quote lint
findings). Compiling it again costs the import of the parser and the pydantic IR (about a
quarter of a whole `--report` process) plus lowering and shape inference; loading the
pickled graph costs neither: nothing in it is a pydantic model (spans are plain
dataclasses; the IR block templates, which only the torch back end reads, are on
``Compiled``, not on the graph).

An entry is found by what the compile was asked for: the archlang code, the working folder
(file names in spans are relative to it), the file argument, ``--set``, ``--input`` and
``--max-nodes``. It is valid while every file the compile read (the spec, its imports,
the prelude) still has the bytes it had, as ninja's and ccache's dependency files work:
editing an imported library recompiles. A damaged entry is ignored; entries live in the
user's own cache folder (:mod:`archlang.user_cache`), ``ARCHLANG_NO_CACHE=1`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx

from .diagnostics import SourceMap
from .user_cache import cache_dir, package_stamp, store_entry
from .version import __version__

if TYPE_CHECKING:
    from .graph.model import Graph

PACKAGE = Path(__file__).resolve().parent
PRELUDE = PACKAGE / "frontend" / "prelude.arch"
FORMAT = 1  # bump when the layout of an entry changes
MAX_ENTRIES = 64  # beyond this, the least recently written entries are removed
MAX_BYTES = 64 << 20  # bigger graphs are compiled each time rather than stored

_code_stamp: str | None = None


@dataclass
class CachedCompile:
    """A compiled spec loaded from the cache: what a report reads of
    :class:`archlang.compiler.Compiled` (it has no block templates)."""

    graph: Graph
    sources: SourceMap
    files: list[Path]  # every file the compile read, resolved (an output must not overwrite one)


def code_stamp() -> str:
    global _code_stamp
    if _code_stamp is None:
        _code_stamp = f"{__version__}|{sys.version}|{nx.__version__}|{package_stamp(PACKAGE)}"
    return _code_stamp


def _key(file: str, params: dict, input_shape, max_nodes: int) -> bytes:
    request = repr((FORMAT, code_stamp(), os.getcwd(), file, sorted(params.items()), input_shape, max_nodes))
    return hashlib.sha256(request.encode("utf-8", "surrogatepass")).digest()


def _entry(key: bytes) -> Path | None:
    folder = cache_dir()
    return None if folder is None else folder / f"graph-{key.hex()[:32]}.pickle"


def _source_path(name: str) -> Path | None:
    if name == "<prelude>":
        return PRELUDE
    return None if name.startswith("<") else Path(name)


def _digest(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def load(file: str, params: dict, input_shape, max_nodes: int) -> CachedCompile | None:
    """The cached compile of spec file ``file``, or ``None`` (not cached, stale, damaged)."""
    if not os.path.isfile(file):
        return None  # bundled names and spec text are compiled each time
    key = _key(file, params, input_shape, max_nodes)
    path = _entry(key)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            stored_key, depends = pickle.load(f)
            if stored_key != key:
                return None
            for name, digest in depends:
                if _digest(Path(name)) != digest:
                    return None
            graph, texts = pickle.load(f)
        return CachedCompile(graph, SourceMap(texts), [Path(name).resolve() for name, _ in depends])
    except Exception:  # missing, truncated, edited, from another version: compile again
        return None


def store(file: str, params: dict, input_shape, max_nodes: int, compiled) -> None:
    """Keep ``compiled`` (an :class:`archlang.compiler.Compiled` of ``file``) for :func:`load`."""
    if not os.path.isfile(file):
        return
    key = _key(file, params, input_shape, max_nodes)
    path = _entry(key)
    if path is None:
        return
    depends = []
    for name, text in compiled.sources.texts.items():
        source = _source_path(name)
        try:
            data = source.read_bytes() if source is not None else None
        except OSError:
            return
        # The bytes must be those the compile read: a file edited meanwhile is not stored.
        if data is None or _decoded(data) not in (text, "\ufeff" + text):
            return
        depends.append((str(source), hashlib.sha256(data).digest()))
    try:
        payload = pickle.dumps((key, depends), pickle.HIGHEST_PROTOCOL) + pickle.dumps(
            (compiled.graph, compiled.sources.texts), pickle.HIGHEST_PROTOCOL
        )
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return
    if len(payload) <= MAX_BYTES:
        _write(path, payload)


def _decoded(data: bytes) -> str | None:
    """The text archlang.frontend.loader makes of a file's bytes (without its diagnostics)."""
    try:
        text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        return None
    return re.sub(r"\r(?!\n)", "\n", text) if "\r" in text else text


def _write(path: Path, payload: bytes) -> None:
    store_entry(path, payload, "graph-", MAX_ENTRIES)
