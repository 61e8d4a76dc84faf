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


def _laughs(use: str) -> str:
    """Seven lines of ten-fold shared references: a 10**9-item value (issue 14)."""
    lines = ["const f0 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    lines += [f"const f{i} = [{', '.join([f'f{i - 1}'] * 10)}]" for i in range(1, 8)]
    return "\n".join(lines) + "\n" + HEAD + f"  {use}\n}}\n"


def _doubling_blocks(depth=40):
    calls = "".join(f"block B{i}() {{ B{i + 1}() B{i + 1}() }}\n" for i in range(depth))
    return calls + f"block B{depth}() {{ relu }}\n" + HEAD + "  B0()\n}\n"


def _const_chain(count=3000):
    chain = "".join(f"const c{i} = c{i - 1}\n" if i else "const c0 = 1\n" for i in range(count))
    return chain + HEAD + f"  conv(c{count - 1}, 3)\n}}\n"


def _deep_list(depth=6000):
    consts = "".join(f"  const l{i} = [l{i - 1}]\n" for i in range(1, depth))
    return HEAD + "  const l0 = [1]\n" + consts + f"  conv(l{depth - 1}, 3)\n}}\n"


def _import_chain(count=995):
    """Files: case.arch imports f1.arch, which imports f2.arch, ... (legal: under 1,000)."""
    files = {"case.arch": 'import "f1.arch"\n' + HEAD + "  B1()\n}\n"}
    for i in range(1, count + 1):
        files[f"f{i}.arch"] = (f'import "f{i + 1}.arch"\n' if i < count else "") + f"block B{i}() {{ relu }}\n"
    return files


MIB_STRING = '"' + "a" * (1 << 20) + '"'

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
    # issue 14, section 2: expansion bombs inside the limits
    "laughs: repeat g": _laughs("repeat f7 { relu }"),
    'laughs: "x{g}"': _laughs('"x{f7}": relu'),
    "laughs: conv(g, 3)": _laughs("conv(f7, 3)"),
    "laughs: h == h2": _laughs("if f7 == f6 { relu }"),
    "30 nested repeat 2": HEAD + "  " + "repeat 2 { " * 30 + "relu" + " }" * 30 + "\n}\n",
    "blocks calling 2x, 40 deep": _doubling_blocks(),
    "3 nested for over range(1024)": HEAD
    + "  for i in range(1024) { for j in range(1024) { for k in range(1024) { relu } } }\n}\n",
    "repeat 1000000 { convv(8, 3) }": HEAD + "  repeat 1000000 { convv(8, 3) }\n}\n",
    "repeat 150000 { convv(8, 3) }": HEAD + "  repeat 150000 { convv(8, 3) }\n}\n",
    "concat of 500k mismatched": HEAD + "  concat { conv(8, 3) repeat 500000 { conv(4, 1) } }\n}\n",
    "1 MiB string in 3,000 labels": f"const s = {MIB_STRING}\n" + HEAD + '  repeat 3000 as i { "{s}{i}": relu }\n}\n',
    "99k string in 3,000 labels": f'const s = "{"a" * 99_000}"\n' + HEAD + '  repeat 3000 as i { "{s}{i}": relu }\n}\n',
    "999k nodes (over the default)": HEAD + "  repeat 999000 { relu }\n}\n",
    "199k nodes (legal, default)": HEAD + "  repeat 199000 { relu }\n}\n",
    "nested for, step budget": HEAD + "  for i in range(1000) { for j in range(1000) { const k = j } }\n  relu\n}\n",
    # issue 14, finding 6: E601 located
    "3000-const lazy chain": _const_chain(),
    "6000-deep list as conv arg": _deep_list(),
    "995-file import chain (legal)": _import_chain(),
}


def _write(case, workdir: Path) -> Path:
    """The case's main file (a case is spec text, or {file name: text} with case.arch)."""
    files = case if isinstance(case, dict) else {"case.arch": case}
    for name, text in files.items():
        (workdir / name).write_text(text)
    return workdir / "case.arch"


def run(case, workdir: Path) -> tuple[int, str, float, float]:
    path = _write(case, workdir)
    with open(workdir / "stderr", "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "archlang.cli.main", "check", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "NO_COLOR": "1"},
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = (workdir / "stderr").read_bytes()
    code = re.search(rb"error\[(E\d+)\]", stderr)
    where = re.search(rb"--> .*?:(\d+:\d+)", stderr)
    shown = (code.group(1).decode() + ("@" + where.group(1).decode() if where else "")) if code else "-"
    return proc.returncode, shown, wall, usage.ru_maxrss / 1024


def in_process(case) -> float:
    """compile_spec alone, archlang already imported and the parser built (no start-up)."""
    from archlang import compile_spec
    from archlang.diagnostics import SpecError

    compile_spec(HEAD + "  relu\n}\n")  # warm: parser built, prelude parsed
    with tempfile.TemporaryDirectory() as tmp:
        source = str(_write(case, Path(tmp))) if isinstance(case, dict) else case
        start = time.perf_counter()
        try:
            compile_spec(source)
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
    print(
        f"{'case':34s} {'exit':>4s} {'code@line:col':>14s} {'wall s':>7s} {'peak RSS MiB':>13s} {'in-process s':>13s}"
    )
    # All child processes first: Linux keeps a forked child's peak RSS across exec, so the
    # parent must stay small until they are measured.
    with tempfile.TemporaryDirectory() as tmp:
        children = {}
        for i, name in enumerate(names):
            workdir = Path(tmp) / str(i)
            workdir.mkdir()
            children[name] = run(CASES[name], workdir)
    for name in names:
        rc, code, wall, rss = children[name]
        print(f"{name:34s} {rc:4d} {code:>14s} {wall:7.2f} {rss:13.0f} {in_process(CASES[name]):13.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
