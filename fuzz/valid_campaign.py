"""``campaign.py --valid``: mostly-valid typed specs (``typed.gen_case``) through every back
end (``oracle.check_all``), in worker processes. Case ``i`` of seed ``s`` is drawn from
``random.Random(s * 1_000_003 + i)`` and replays alone with ``--only i``. Prints the share of
specs that compiled, outcomes, failures by kind (goal 0) and time."""

from __future__ import annotations

import collections
import multiprocessing
import os
import random
import re
import signal
import tempfile
import time
import traceback
from pathlib import Path

import oracle
import typed

CASE_TIMEOUT_S = 60
FAILURES = ("crash", "unlocated", "timeout")


HOSTILE = True  # False: leave out what reaches the known back-end bugs (--tame)


def case_text(index: int, seed: int) -> str:
    return typed.gen_case(random.Random(seed * 1_000_003 + index), HOSTILE)


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


_folder: Path | None = None


def _init() -> None:
    global _folder
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch  # noqa: F401 - once per worker, not per case

    torch.set_num_threads(1)
    _folder = Path(tempfile.mkdtemp(prefix="archfuzz-"))
    signal.signal(signal.SIGALRM, _alarm)


def _one(job: tuple[int, int]) -> tuple[int, str, str, float]:
    index, seed = job
    t0 = time.perf_counter()
    signal.alarm(CASE_TIMEOUT_S)
    try:
        outcome = oracle.check_all(case_text(index, seed), _folder)
        kind, detail = outcome.kind, outcome.detail
    except _Timeout:
        kind, detail = "timeout", f"over {CASE_TIMEOUT_S} s"
    except Exception:  # noqa: BLE001 - the oracle itself failing is a failure too
        kind, detail = "crash", traceback.format_exc()
    finally:
        signal.alarm(0)
    return index, kind, detail, time.perf_counter() - t0


def _key(detail: str) -> str:
    """Failures grouped by back end and error, quoted names left out."""
    lines = [line for line in detail.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return (lines[0].split(":")[0] + " | " + re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", lines[-1]))[:200]


def run(cases: int, seed: int, workers: int, only: int | None, save: Path | None, hostile: bool = True) -> int:
    global HOSTILE
    HOSTILE = hostile  # set before the workers fork
    if only is not None:
        _init()
        print(case_text(only, seed))
        index, kind, detail, dt = _one((only, seed))
        print("---", kind, f"{dt:.2f}s", detail)
        return 1 if kind in FAILURES else 0
    start = time.perf_counter()
    counts: collections.Counter = collections.Counter()
    failures: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    slowest: list[tuple[float, int]] = []
    with multiprocessing.get_context("fork").Pool(workers, initializer=_init) as pool:
        for index, kind, detail, dt in pool.imap_unordered(_one, ((i, seed) for i in range(cases)), chunksize=8):
            counts[kind] += 1
            slowest = sorted([*slowest, (dt, index)], reverse=True)[:5]
            if kind in FAILURES:
                failures[f"{kind}: {_key(detail)}"].append((index, detail))
                if save:
                    save.mkdir(parents=True, exist_ok=True)
                    (save / f"valid_{seed}_{index}.arch").write_text(case_text(index, seed), encoding="utf-8")
            done = sum(counts.values())
            if done % 1000 == 0:
                print(f"  {done} cases, {time.perf_counter() - start:.0f} s, {dict(counts)}", flush=True)
    elapsed = time.perf_counter() - start
    total = sum(counts.values())
    compiled = counts["ok"] + counts["refused-backend"] + sum(1 for v in failures.values() for _ in v)
    print(f"cases: {total} (seed {seed}, {workers} workers) in {elapsed:.0f} s ({1000 * elapsed / total:.0f} ms/case)")
    print(f"compiled (archc check accepts): {compiled} = {100 * compiled / total:.1f} %")
    print(
        f"  every back end passed: {counts['ok']}; refused by a back end with a located diagnostic: "
        f"{counts['refused-backend']}"
    )
    print(f"rejected by check with located diagnostics: {counts['rejected']}")
    print(f"failures: {sum(counts[k] for k in FAILURES)} " + str({k: counts[k] for k in FAILURES}))
    for key, hits in sorted(failures.items(), key=lambda kv: -len(kv[1])):
        index, detail = hits[0]
        print(f"\n== {len(hits)} x {key}\n   cases {[i for i, _ in hits[:10]]}; replay: --valid --only {index}")
        print(detail[-1200:])
    print("slowest cases: " + ", ".join(f"#{i} {dt:.2f}s" for dt, i in slowest))
    return 1 if failures else 0
