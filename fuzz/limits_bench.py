"""Time and peak memory of hostile inputs, each in a fresh ``archc check`` process.

    python fuzz/limits_bench.py [--only NAME ...]

Prints, per case: exit status, the first diagnostic code, wall time and peak RSS of the
child (os.wait4's rusage of that one process), the same for a trivial spec (start-up:
interpreter + imports), and compile_spec's time in this process (no start-up). The
goal for the refused cases: under 1 s and 200 MiB including start-up. tests/test_hostile_*.py
checks the diagnostics; this script only measures.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAD = "network N {\n  input 3x32x32\n"


def _block_chain(count=60, depth=90):
    return (
        "".join(
            f"block B{i}() {{ " + "{ " * depth + (f"B{i + 1}()" if i < count else "relu") + " }" * depth + " }\n"
            for i in range(count + 1)
        )
        + HEAD
        + "  B0()\n}\n"
    )


CASES = {
    "trivial (baseline)": HEAD + "  relu\n}\n",
    "repeat 1000000000 { conv(8,3) }": HEAD + "  repeat 1000000000 { conv(8, 3) }\n}\n",
    "block instantiating itself": "block B() { B() }\n" + HEAD + "  B()\n}\n",
    "mutual recursion A->B->C->A": "block A() { B() }\nblock B() { C() }\nblock C() { A() }\n" + HEAD + "  A()\n}\n",
    "10,000 nested concat": HEAD + "  " + "concat { " * 10_000 + "relu" + " }" * 10_000 + "\n}\n",
    "10,000 sibling branches": HEAD + "  concat { " + "relu " * 10_000 + "}\n}\n",
    "conv(1000000000000, 3)": HEAD + "  conv(1000000000000, 3)\n}\n",
    "2 ** 10 ** 10": "const x = 2 ** 10 ** 10\n" + HEAD + "  const y = x\n  relu\n}\n",
    "nested for 10^6 x 10^6": HEAD
    + "  for i in range(1000000) { for j in range(1000000) { const k = j } }\n  relu\n}\n",
    "10,000 nested { }": HEAD + "  " + "{ " * 10_000 + "relu" + " }" * 10_000 + "\n}\n",
    "10,000 unary minus": "const x = " + "- " * 10_000 + "1\n" + HEAD + "  relu\n}\n",
    "61 blocks x 90 nested { }": _block_chain(),
    "250,000 tokens": HEAD + "  relu\n" * 250_000 + "}\n",
    "100,000 lines of layers": HEAD + "  relu\n" * 100_000 + "}\n",
}


def run(text: str, workdir: Path) -> tuple[int, str, float, float]:
    path = workdir / "case.arch"
    path.write_text(text)
    with open(workdir / "stderr", "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "archlang.cli", "check", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "NO_COLOR": "1"},
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    code = re.search(rb"error\[(E\d+)\]", (workdir / "stderr").read_bytes())
    return proc.returncode, code.group(1).decode() if code else "-", wall, usage.ru_maxrss / 1024


def in_process(text: str) -> float:
    """compile_spec alone, archlang already imported and the parser built (no start-up)."""
    from archlang import compile_spec
    from archlang.diagnostics import SpecError

    compile_spec(HEAD + "  relu\n}\n")  # warm: parser built, prelude parsed
    start = time.perf_counter()
    try:
        compile_spec(text)
    except SpecError:
        pass
    return time.perf_counter() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="case names containing these words")
    args = ap.parse_args(argv)
    names = [n for n in CASES if not args.only or any(w in n for w in args.only)]
    if "trivial (baseline)" not in names:
        names.insert(0, "trivial (baseline)")
    print(f"{'case':34s} {'exit':>4s} {'code':>5s} {'wall s':>7s} {'peak RSS MiB':>13s} {'in-process s':>13s}")
    # All child processes first: Linux keeps a forked child's peak RSS across exec, so the
    # parent must stay small until they are measured.
    with tempfile.TemporaryDirectory() as tmp:
        children = {name: run(CASES[name], Path(tmp)) for name in names}
    for name in names:
        rc, code, wall, rss = children[name]
        print(f"{name:34s} {rc:4d} {code:>5s} {wall:7.2f} {rss:13.0f} {in_process(CASES[name]):13.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
