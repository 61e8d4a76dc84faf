"""Atomic file writes: a temporary file in the target's folder, then a rename.

Only regular files (or new names) are replaced that way. A special file — ``/dev/null``,
``/dev/stdout``, a FIFO, a terminal — is opened and written in place: renaming over it
would replace the device node itself (as root, ``-o /dev/null`` would swap the system's
/dev/null for a regular file).
"""

from __future__ import annotations

import errno
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
    old = _replaceable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        if old is not None and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
            _keep_owner(tmp, old)
        os.chmod(tmp, old.st_mode & 0o777 if old is not None else 0o644)  # after chown, which may clear bits
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _replaceable(path: Path) -> os.stat_result | None:
    """The stat of the regular file ``path`` is about to replace (None: a new name), or a
    ``PermissionError`` when it may not be written. A rename needs only the folder's write
    permission, so without this a read-only (0444) file, or one its user may not write, would
    be replaced anyway; root too leaves a file nobody may write (0444) alone."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not st.st_mode & 0o222:
        raise PermissionError(errno.EACCES, f"the file is read-only (mode {st.st_mode & 0o777:04o})", str(path))
    if not os.access(path, os.W_OK):
        raise PermissionError(errno.EACCES, "permission denied", str(path))
    return st


def _keep_owner(tmp: str, old: os.stat_result) -> None:
    """Give the new file the old one's owner and group, as ``sed -i`` does: root formatting
    another user's 0640 file must not leave it owned by root (its owner could no longer read
    it). Without the privilege (only root may give a file away), the group alone, if ours."""
    try:
        os.chown(tmp, old.st_uid, old.st_gid)
    except PermissionError:
        try:
            os.chown(tmp, -1, old.st_gid)
        except PermissionError:
            pass
