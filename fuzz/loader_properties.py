"""Cache-invalidation properties of the loader (issue 21, item 4), checked on fresh `archc
check` processes: whatever a run before it saw, a run gives the result a first compile of
the files as they are now gives. There is no disk cache any more (the house issue deleted
it); these properties keep any that comes back honest.

Each case builds a spec reached through a symlinked folder (``cur -> dirA``) that imports a
chain of libraries (``lib0.arch`` imports ``sub/lib1.arch`` imports ``lib2.arch`` ...), each
block a 1×1 conv of a random width, runs ``archc check``, changes one thing, and runs again:

* ``edit``: one file the compile read gets another width, same size and same mtime;
* ``repoint``: ``cur`` is re-pointed to ``dirB`` (other widths);
* ``outside``: an import becomes a symlink to a copy outside the spec's folder -> E108;
* ``fifo``: an import becomes a FIFO -> E104 (and no hang);
* ``zero``: an import becomes a symlink to /dev/zero -> E108, and E104 with
  ``--allow-outside-imports`` (and no memory blow-up);
* ``delete``: an import is deleted -> E105.

The expected parameter count comes from the widths (a 1×1 conv of c_in -> c_out has
c_in·c_out + c_out parameters), not from archlang.

    python fuzz/loader_properties.py --cases 20 --seed 0
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ["edit", "repoint", "outside", "fifo", "zero", "delete"]


def archc(*args, cwd=None, timeout=60) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "archlang.cli.main", *map(str, args)],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def _lib_path(i: int) -> str:
    return "lib0.arch" if i == 0 else f"sub/lib{i}.arch"


def write_tree(folder: Path, widths: list[int]) -> None:
    """net.arch and its import chain in ``folder``; widths are two digits (edits keep sizes)."""
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    calls = "".join(f"  B{i}()\n" for i in range(len(widths)))
    (folder / "net.arch").write_text(f'import "lib0.arch"\nnetwork N {{\n  input 3x8x8\n{calls}}}\n')
    for i, width in enumerate(widths):
        nxt = "" if i + 1 == len(widths) else f'import "{"sub/" if i == 0 else ""}lib{i + 1}.arch"\n'
        (folder / _lib_path(i)).write_text(f"{nxt}block B{i} {{\n  conv({width}, 1)\n}}\n")


def expected_params(widths: list[int]) -> int:
    total, c_in = 0, 3
    for c in widths:
        total, c_in = total + c_in * c + c, c
    return total


def params_of(proc) -> int | None:
    match = re.search(r"([\d,]+) parameters", proc.stdout)
    return int(match.group(1).replace(",", "")) if match else None


def run_case(rng: random.Random, tmp: Path, kind: str | None = None) -> list[str]:
    kind = kind or rng.choice(KINDS)
    n = rng.randint(1, 4)
    widths_a = [rng.randint(10, 99) for _ in range(n)]
    widths_b = [rng.randint(10, 99) for _ in range(n)]
    real = tmp / "real"
    write_tree(real / "dirA", widths_a)
    write_tree(real / "dirB", widths_b)
    (real / "cur").symlink_to("dirA")
    spec = real / "cur" / "net.arch"
    failures = []

    def expect(proc, what: str, params=None, code=None):
        if "Traceback" in proc.stderr:
            failures.append(f"{kind}: {what}: traceback")
        elif params is not None and params_of(proc) != params:
            failures.append(f"{kind}: {what}: {params_of(proc)} parameters, expected {params}: {proc.stderr[-300:]}")
        elif code is not None and (proc.returncode != 1 or f"error[{code}]" not in proc.stderr):
            failures.append(f"{kind}: {what}: expected {code}, got exit {proc.returncode}: {proc.stderr[-300:]}")

    expect(archc("check", spec), "first run", params=expected_params(widths_a))
    i = rng.randrange(n)
    target = real / "dirA" / _lib_path(i)
    if kind == "edit":
        where = rng.choice([real / "dirA" / "net.arch", target])
        if where.name == "net.arch":  # the main file: another input size, same file size
            text = where.read_text()
            stat = where.stat()
            where.write_text(text.replace("  input 3x8x8\n", "  input 3x9x8\n"))  # same size, other input
            os.utime(where, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            proc = archc("check", spec)
            expect(proc, "main edited (same size and mtime)", params=expected_params(widths_a))
            if "3×9×8" not in proc.stdout:
                failures.append(f"edit: the main file's new input is not seen: {proc.stdout}")
        else:
            stat = target.stat()
            new = widths_a.copy()
            new[i] = 10 + (widths_a[i] - 10 + rng.randint(1, 88)) % 90
            target.write_text(target.read_text().replace(f"conv({widths_a[i]}, 1)", f"conv({new[i]}, 1)"))
            os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            expect(archc("check", spec), f"lib{i} edited (same size and mtime)", params=expected_params(new))
    elif kind == "repoint":
        (real / "cur").unlink()
        (real / "cur").symlink_to("dirB")
        expect(archc("check", spec), "cur re-pointed", params=expected_params(widths_b))
    elif kind == "outside":
        outside = tmp / "elsewhere" / target.name
        outside.parent.mkdir(exist_ok=True)
        shutil.copy(target, outside)
        target.unlink()
        target.symlink_to(outside)
        expect(archc("check", spec), f"lib{i} now outside", code="E108")
        expect(archc("check", spec, "--allow-outside-imports"), "allowed", params=expected_params(widths_a))
    elif kind == "fifo":
        target.unlink()
        os.mkfifo(target)
        expect(archc("check", spec, timeout=30), f"lib{i} a FIFO", code="E104")
    elif kind == "zero":
        target.unlink()
        target.symlink_to("/dev/zero")
        expect(archc("check", spec, timeout=30), f"lib{i} -> /dev/zero", code="E108")
        expect(archc("check", spec, "--allow-outside-imports", timeout=30), "allowed", code="E104")
    elif kind == "delete":
        target.unlink()
        expect(archc("check", spec), f"lib{i} deleted", code="E105")
    return failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start, failed = time.perf_counter(), 0
    for case in range(args.cases):
        rng = random.Random(f"{args.seed}:{case}")
        with tempfile.TemporaryDirectory(prefix="archlang-loader-") as tmp:
            failures = run_case(rng, Path(tmp))
        if failures:
            failed += 1
            print(f"case {case}:\n  " + "\n  ".join(failures))
    print(f"{args.cases} cases, {failed} failed, {time.perf_counter() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
