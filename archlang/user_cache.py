"""The per-user folder where archlang keeps its caches (Lark's grammar, parsed spec files)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir() -> Path | None:
    """A folder only this user can write, or ``None`` (no cache) where there is none.

    The cache holds pickles: load them only from a folder that no one else can write
    (another user could plant one in a shared /tmp)."""
    if os.environ.get("ARCHLANG_NO_CACHE"):
        return None
    try:
        base = Path(tempfile.gettempdir()) / f"archlang-cache-{os.getuid()}"
        base.mkdir(mode=0o700, exist_ok=True)
        st = base.lstat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022 or not base.is_dir() or base.is_symlink():
            return None
        return base
    except (OSError, AttributeError):  # AttributeError: no os.getuid (Windows)
        return None


def package_stamp(package: Path) -> str:
    """Changes whenever any file of the package (code, grammar, prelude, in any subpackage)
    does: the sizes and modification times of its files."""
    entries = []
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".lark", ".arch")):
                st = os.stat(os.path.join(folder, name))
                entries.append(f"{os.path.relpath(os.path.join(folder, name), package)}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(entries)


def store_entry(path: Path, payload: bytes, prefix: str, max_entries: int) -> None:
    """Write one cache entry atomically, then keep the ``max_entries`` newest entries whose
    names start with ``prefix``. A cache that cannot be written is only slower: no error."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, path)  # readers see the old entry or the whole new one
        except BaseException:
            os.unlink(tmp)
            raise
        entries = [e for e in os.scandir(path.parent) if e.name.startswith(prefix) and e.name.endswith(".pickle")]
        if len(entries) > max_entries:
            entries.sort(key=lambda e: e.stat().st_mtime_ns)
            for e in entries[: len(entries) - max_entries]:
                try:
                    os.unlink(e.path)
                except OSError:
                    pass
    except OSError:
        pass
