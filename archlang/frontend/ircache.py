"""Parsed spec files cached on disk between processes.

Lark's LALR parser with positions costs tens of milliseconds per spec file; every `archc` run
parses the prelude and the block library again although they never change. The parsed IR
module of each file is kept in the user's cache folder (the one Lark's grammar cache uses),
keyed by the text, the file name and the archlang code that made it, and loaded back with
pickle in a fraction of the time. In-process results stay memoised by :func:`syntax.parse`.

``ARCHLANG_NO_CACHE=1`` turns the disk cache off.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
from pathlib import Path

from archlang.frontend.parser import parse as parse_text
from archlang.user_cache import cache_dir, package_stamp, store_entry
from archlang.version import __version__

PACKAGE = Path(__file__).resolve().parent.parent  # the whole archlang package
MAX_ENTRIES = 256  # beyond this, the least recently written entries are removed
MAX_TEXT = 1 << 20  # bigger files (real specs have a few KiB) are parsed each time, not stored


_code_stamp: str | None = None


def code_stamp() -> str:
    """Changes whenever any file of the archlang package (grammar, IR, transformer, in any
    subpackage) does."""
    global _code_stamp
    if _code_stamp is None:
        _code_stamp = __version__ + "|" + package_stamp(PACKAGE)
    return _code_stamp


def _entry(text: str, file: str) -> tuple[Path | None, bytes]:
    folder = cache_dir()
    key = hashlib.sha256(f"{code_stamp()}\0{file}\0{text}".encode("utf-8", "surrogatepass")).digest()
    if folder is None:
        return None, key
    # One entry per file name: editing a spec replaces its entry instead of adding one.
    name = hashlib.sha256(file.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return folder / f"ir-{name}.pickle", key


@functools.lru_cache(maxsize=64)
def parse(text: str, file: str = "<string>"):
    """:func:`archlang.frontend.parser.parse`, with the result kept on disk for the next process.

    Only files are kept (spec text given directly, ``<string>``, and files over ``MAX_TEXT``
    characters are parsed each time)."""
    if (file.startswith("<") and file != "<prelude>") or len(text) > MAX_TEXT:
        return parse_text(text, file)
    path, key = _entry(text, file)
    if path is not None:
        try:
            stored_key, module = pickle.loads(path.read_bytes())
            if stored_key == key:
                return module
        except Exception:  # missing, truncated or from another version: parse again
            pass
    module = parse_text(text, file)  # a SpecError propagates: errors are not cached
    if path is not None:
        _store(path, key, module)
    return module


def _store(path: Path, key: bytes, module) -> None:
    try:
        payload = pickle.dumps((key, module), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, RecursionError):
        return
    store_entry(path, payload, "ir-", MAX_ENTRIES)
