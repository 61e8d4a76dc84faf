"""A seeded fuzzing campaign against the archlang front end.

    python fuzz/campaign.py [--cases 10000] [--seed 0] [--save DIR]
    python fuzz/campaign.py --valid [--cases 10000] [--workers 2]   # back ends, see valid_campaign.py
    python fuzz/campaign.py --valid --import [--cases 1000]         # the importer's law, import_campaign.py

Each case is drawn from its own seed (``seed * 1_000_003 + index``), so any case can be
replayed alone (``--only INDEX``). Eight kinds, in turn: a grammar-aware random spec, a
valid spec with token mutations, a bundled spec with token mutations, a bundled spec with
byte mutations (compiled from a file, so decoding is exercised), and a valid spec with
byte mutations; value swaps (numbers, names, strings) in valid and bundled specs; and a valid
network whose layer names are hostile (dunders, backslashes, DOT/HTML syntax, control
characters, lone surrogates: `generate.gen_hostile_names`). Prints counts per outcome; the
goals are 0 tracebacks and 0 rejections without a located diagnostic.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import generate  # noqa: E402
import mutate  # noqa: E402
import valid_campaign  # noqa: E402

KINDS = (
    "grammar",
    "valid+tokens",
    "valid+values",
    "spec+tokens",
    "spec+values",
    "spec+bytes",
    "valid+bytes",
    "hostile-names",
)


def make_case(index: int, seed: int, seeds: list[bytes]) -> tuple[str, str | bytes]:
    rng = random.Random(seed * 1_000_003 + index)
    kind = KINDS[index % len(KINDS)]
    if kind == "grammar":
        return kind, generate.gen_spec(rng)
    if kind == "valid+tokens":
        return kind, mutate.mutate_tokens(rng, generate.gen_valid(rng))
    if kind == "valid+values":
        return kind, mutate.mutate_values(rng, generate.gen_valid(rng))
    if kind == "spec+values":
        return kind, mutate.mutate_values(rng, rng.choice(seeds).decode())
    if kind == "spec+tokens":
        return kind, mutate.mutate_tokens(rng, rng.choice(seeds).decode(), rounds=5)
    if kind == "hostile-names":
        return kind, generate.gen_hostile_names(rng)
    if kind == "spec+bytes":
        return kind, mutate.mutate_bytes(rng, rng.choice(seeds))
    return kind, mutate.mutate_bytes(rng, generate.gen_valid(rng).encode())


BACKENDS = (["--emit", "ir"], ["--emit", "torch"], ["--emit", "dot"], ["--report"], ["--report", "--format", "json"])


def run_case(case, workdir: Path, backends: bool = False) -> mutate.Outcome:
    kind, data = case
    path = workdir / "case.arch"
    if isinstance(data, bytes):
        path.write_bytes(data)
        outcome = mutate.check(str(path))
    else:
        outcome = mutate.check(data)
    if backends and outcome.kind == "ok":
        outcome = run_backends(data if isinstance(data, bytes) else data.encode(), path)
    return outcome


def run_backends(data: bytes, path: Path) -> mutate.Outcome:
    """archc's emitters and report on a spec that compiled: exit 0 or 1, no traceback."""
    import traceback

    from click.testing import CliRunner

    from archlang.cli.main import main as archc

    path.write_bytes(data)
    for extra in BACKENDS:
        result = CliRunner().invoke(archc, [str(path), "--max-nodes", "20000", *extra], env={"NO_COLOR": "1"})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            tb = "".join(traceback.format_exception(result.exception))
            return mutate.Outcome("crash", f"archc {' '.join(extra)}:\n{tb}")
        if result.exit_code not in (0, 1):
            return mutate.Outcome("crash", f"archc {' '.join(extra)} exited {result.exit_code}: {result.output}")
    return mutate.Outcome("ok")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", type=int, default=None, help="replay one case by index and print it")
    ap.add_argument("--save", type=Path, default=None, help="write failing inputs here")
    ap.add_argument(
        "--backends",
        action="store_true",
        help="also run archc --emit ir/torch/dot and --report on every spec that compiles",
    )
    ap.add_argument(
        "--valid",
        action="store_true",
        help="mostly-valid typed specs (fuzz/typed.py) through every back end (fuzz/oracle.py)",
    )
    ap.add_argument(
        "--tame",
        action="store_true",
        help="--valid without hostile labels, parameter and field names (the known back-end bugs)",
    )
    ap.add_argument(
        "--import",
        dest="import_",
        action="store_true",
        help="with --valid: import each spec's build back (archc import) and check the law (fuzz/import_law.py)",
    )
    ap.add_argument("--workers", type=int, default=2, help="processes for --valid (default 2)")
    args = ap.parse_args(argv)
    if args.import_ and args.valid:
        import import_campaign

        valid_campaign.HOSTILE = not args.tame  # set before the workers fork
        return import_campaign.run(args.cases, args.seed, args.workers, args.only, args.save)
    if args.import_:
        ap.error("--import goes with --valid")
    if args.valid:
        return valid_campaign.run(args.cases, args.seed, args.workers, args.only, args.save, not args.tame)

    seeds = [p.read_bytes() for p in mutate.SEED_FILES]
    counts: collections.Counter = collections.Counter()
    by_kind: collections.Counter = collections.Counter()
    failures = []
    slowest: list[tuple[float, int, str]] = []
    indices = [args.only] if args.only is not None else range(args.cases)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # imports in byte-mutated bundled specs resolve next to the case file
        (workdir / "lib").symlink_to(mutate.ROOT / "specs" / "lib")
        for i in indices:
            case = make_case(i, args.seed, seeds)
            t0 = time.perf_counter()
            outcome = run_case(case, workdir, args.backends)
            dt = time.perf_counter() - t0
            slowest = sorted(slowest + [(dt, i, case[0])], reverse=True)[:5]
            counts[outcome.kind] += 1
            by_kind[(case[0], outcome.kind)] += 1
            if args.only is not None:
                print(case[1] if isinstance(case[1], str) else case[1].decode("utf-8", "replace"))
                print("---", outcome.kind, outcome.detail)
            if outcome.kind in ("crash", "unlocated"):
                failures.append((i, case, outcome))
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    data = case[1] if isinstance(case[1], bytes) else case[1].encode()
                    (args.save / f"case_{args.seed}_{i}.arch").write_bytes(data)
    elapsed = time.perf_counter() - start

    total = sum(counts.values())
    print(f"cases: {total} (seed {args.seed}) in {elapsed:.1f} s ({1000 * elapsed / max(total, 1):.1f} ms/case)")
    print(f"tracebacks: {counts['crash']}")
    print(f"rejected without a located diagnostic: {counts['unlocated']}")
    print(f"rejected with diagnostics: {counts['rejected']}; compiled: {counts['ok']}")
    for kind in KINDS:
        row = {k: by_kind[(kind, k)] for k in ("ok", "rejected", "unlocated", "crash")}
        print(f"  {kind:13s} " + "  ".join(f"{k}={v}" for k, v in row.items()))
    print("slowest cases: " + ", ".join(f"#{i} {kind} {dt:.2f}s" for dt, i, kind in slowest))
    seen = set()
    for i, case, outcome in failures:
        key = outcome.detail.strip().splitlines()[-1] if outcome.detail.strip() else outcome.kind
        if key in seen:
            continue
        seen.add(key)
        print(f"\n== case {i} ({case[0]}): {outcome.kind}\n{outcome.detail[-1500:]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
