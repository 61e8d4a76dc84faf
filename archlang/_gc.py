"""Deferring full garbage collections around graph-sized work.

Compiling, analysing and reporting a big graph allocate many objects that live until the
work ends and form no cycles. Each full collection rescans everything the process holds
(about 0.6 s at 30,000 nodes) and frees nothing: at 10,000 conv layers (bench_scale.py's
spec) lowering takes 0.62 s of CPU with the default thresholds and 0.33 s with full
collections deferred, the text report 3.8 s and 1.9 s. Young collections go on as usual,
in every thread, so cyclic garbage made meanwhile is still freed; only the oldest
generation waits.

CPython has one collector per process, so the deferral is process-wide while it lasts:
it is reference-counted over threads, and the thresholds in force before the first
deferral come back when the last one ends (unless someone else changed them meanwhile).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_DEFERRED = 1 << 30  # a generation-2 threshold that is never reached
_lock = threading.Lock()
_users = 0
_saved: tuple[int, ...] = ()


@contextmanager
def full_collections_deferred() -> Iterator[None]:
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*_saved[:2], _DEFERRED)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and gc.get_threshold()[2:] == (_DEFERRED,):
                gc.set_threshold(*_saved)
