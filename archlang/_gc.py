"""Pausing the cyclic garbage collector around graph-sized work."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_gc_lock = threading.Lock()
_gc_pausers = 0  # how many gc_paused() blocks are open, over all threads
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector.

    Lowering and the passes allocate many small objects and no garbage cycles; on a big
    graph each full collection rescans the whole graph (a quarter of the analysis time at
    30,000 nodes) and frees nothing. Re-entrant and thread-safe: the collector comes back,
    if it was on, when the last block closes."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()
