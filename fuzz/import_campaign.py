"""``campaign.py --valid --import``: the importer's law (``import_law.check``) on the typed
generator's specs (``valid_campaign.case_text``: case ``i`` of seed ``s`` is the spec that
``--valid --only i`` checks), in worker processes. Counts the specs generated, those that
compile, those the torch back end refuses to build (hostile labels), the imports for which
the law holds (and of those, the fixed points), the importer's refusals by class (a known
gap of ``import_law.KNOWN_GAPS``, or not) and the failures (tracebacks, law violations),
grouped; each group names a case to replay with ``--valid --import --only I``."""

from __future__ import annotations

import collections
import re
import signal
import time
from pathlib import Path

import import_law
import valid_campaign

FAILURES = ("fail", "timeout", "refused-unknown")


def _one(job: tuple[int, int]) -> tuple[int, str, str, float, bool | None]:
    index, seed = job
    t0 = time.perf_counter()
    signal.alarm(valid_campaign.CASE_TIMEOUT_S)
    fixed = None
    try:
        text = valid_campaign.case_text(index, seed)
        try:
            import archlang

            archlang.compile_spec(text)
        except archlang.SpecError:
            kind, detail = "rejected", ""
        else:
            outcome = import_law.check(text, fixed_point=True)
            kind, detail, fixed = outcome.kind, outcome.detail, outcome.fixed_point
            if kind == "refused":
                kind = f"refused:{outcome.gap}" if outcome.gap else "refused-unknown"
    except valid_campaign._Timeout:
        kind, detail = "timeout", f"over {valid_campaign.CASE_TIMEOUT_S} s"
    finally:
        signal.alarm(0)
    return index, kind, detail, time.perf_counter() - t0, fixed


def _key(kind: str, detail: str) -> str:
    lines = [line for line in detail.strip().splitlines() if line.strip()]
    text = lines[-1] if kind == "fail" and "Traceback" in detail else (lines[0] if lines else "")
    if kind == "fail" and lines and not lines[0].startswith("Traceback"):
        text = lines[0] + " | " + text if text != lines[0] else text
    text = re.sub(r"archlang_generated_\d+", "G", text)
    return f"{kind}: " + re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"|\d+", "…", text)[:160]


def run(cases: int, seed: int, workers: int, only: int | None, save: Path | None) -> int:
    if only is not None:
        valid_campaign._init()
        print(valid_campaign.case_text(only, seed))
        index, kind, detail, dt, fixed = _one((only, seed))
        print("---", kind, f"{dt:.2f}s", f"fixed point: {fixed}", detail)
        return 1 if kind in FAILURES else 0
    import multiprocessing

    start = time.perf_counter()
    counts: collections.Counter = collections.Counter()
    fixed_counts: collections.Counter = collections.Counter()
    groups: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    with multiprocessing.get_context("fork").Pool(workers, initializer=valid_campaign._init) as pool:
        jobs = ((i, seed) for i in range(cases))
        for index, kind, detail, _dt, fixed in pool.imap_unordered(_one, jobs, chunksize=8):
            counts[kind] += 1
            if kind == "ok":
                fixed_counts[fixed] += 1
                if not fixed:
                    groups[_key("fixed-point", detail)].append((index, detail))
            elif kind in FAILURES or kind.startswith("refused") or kind == "broken-build":
                groups[_key(kind, detail)].append((index, detail))
                if save and kind in FAILURES:
                    save.mkdir(parents=True, exist_ok=True)
                    text = valid_campaign.case_text(index, seed)
                    (save / f"import_{seed}_{index}.arch").write_text(text, encoding="utf-8")
            done = sum(counts.values())
            if done % 500 == 0:
                print(f"  {done} cases, {time.perf_counter() - start:.0f} s", flush=True)
    elapsed = time.perf_counter() - start
    total = sum(counts.values())
    compiled = total - counts["rejected"]
    refused = {k: v for k, v in counts.items() if k.startswith("refused")}
    print(f"cases: {total} (seed {seed}, {workers} workers) in {elapsed:.0f} s ({1000 * elapsed / total:.0f} ms/case)")
    print(f"compiled (archc check accepts): {compiled}; rejected by check: {counts['rejected']}")
    print(f"  the torch back end refuses to build (E7xx, e.g. a hostile label): {counts['unbuildable']}")
    print(f"  the build fails in training mode itself (a back-end bug; import refused): {counts['broken-build']}")
    print(f"  imported and the law holds: {counts['ok']} (of which the fixed point holds: {fixed_counts[True]})")
    print(f"  refused by the importer with an E72x: {sum(refused.values())} {refused}")
    print(f"failures: {sum(counts[k] for k in FAILURES)} " + str({k: counts[k] for k in FAILURES}))
    for key, hits in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        index, detail = hits[0]
        print(f"\n== {len(hits)} x {key}\n   cases {[i for i, _ in hits[:8]]}; replay: --valid --import --only {index}")
        if not key.startswith(("refused:", "fixed-point", "broken-build")):
            print(detail[-1500:])
    return 1 if any(counts[k] for k in FAILURES) else 0
