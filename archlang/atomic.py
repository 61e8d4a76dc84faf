"""Atomic file writes: a temporary file in the target's folder, then a rename.

Only regular files (or new names) are replaced that way. A special file — ``/dev/null``,
``/dev/stdout``, a FIFO, a terminal — is opened and written in place: renaming over it
would replace the device node itself (as root, ``-o /dev/null`` would swap the system's
/dev/null for a regular file).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def _is_special(path: Path) -> bool:
    """Not a regular file, or a stream reached through /dev or /proc (``/dev/stdout`` is a
    link to ``/proc/self/fd/1``, which may be a regular file the shell redirected to)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return True
    except (FileNotFoundError, NotADirectoryError):
        return False
    real = os.path.realpath(path)
    return real.startswith(("/proc/", "/dev/")) or not os.path.exists(real)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    A directory is an ``IsADirectoryError``; any other non-regular file is written in place."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    if _is_special(path):
        # O_APPEND: /dev/stdout redirected to a file keeps what is already there.
        with open(path, "ab", buffering=0) as f:
            view = memoryview(payload)
            while view:
                view = view[f.write(view) :]
        return
    # A link to a regular file: replace the file it points to and keep the link.
    path = Path(os.path.realpath(path)) if path.is_symlink() else path
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
