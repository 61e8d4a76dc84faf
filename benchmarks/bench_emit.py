"""How `archc FILE --emit torch [--optimize]` scales with the number of statements (prints
figures, asserts nothing). Each run is a whole `archc` process (wall time and peak RSS).

A sequential spec, one line per layer (conv, relu, conv, ...): the shape of the issue's
`_spine` that was quadratic (16 s at 10,000 and 68 s at 20,000 layers). Linear means the
time per layer at 20,000 is about that at 10,000.

Then, in one process, the time to emit a bundled spec's compiled graph against the time to
compile it (best of --repeat), and the compiles the emit makes: one, with parameters kept
symbolic through lowering (numeric ones as expressions, the flags that choose structure as
both sides of their `if`, inside blocks too: U-Net's).

    python benchmarks/bench_emit.py [--layers 5000 10000 20000] [--specs googlenet resnet50]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_spec(layers: int) -> str:
    lines = ["network N {", "  input 4x4x4"]
    lines += [f"  r{i}: relu" if i % 2 else f"  c{i}: conv(4, 1)" for i in range(layers)]
    return "\n".join([*lines, "}"]) + "\n"


def run(spec: Path, flags: list[str]) -> tuple[float, float]:
    """(seconds, peak MiB of the child) for one `archc` process."""
    out = spec.with_suffix(".py")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    archc = [sys.executable, "-m", "archlang.cli.main"]
    subprocess.run([*archc, str(spec), "--emit", "torch", *flags, "-o", str(out)], check=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def ratios(specs: list[str], repeat: int) -> None:
    """emit / compile for bundled specs, in this process (plain and --optimize)."""
    from archlang.backends.torch import optimize, source

    from archlang import compiler

    real = compiler.lower
    calls = []

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    print(f"\n{'spec':>14} {'compile ms':>10} {'emit ms':>8} {'ratio':>6} {'opt ms':>7} {'ratio':>6} {'compiles':>8}")
    for name in specs:
        compile_s = _best(lambda: compiler.compile_spec(name), repeat)  # noqa: B023
        compiled = compiler.compile_spec(name)
        emit_s = _best(lambda: source.generate(compiled), repeat)  # noqa: B023
        opt_s = _best(lambda: optimize.emit(compiled), repeat)  # noqa: B023
        compiler.lower = counting
        try:
            calls.clear()
            source.generate(compiled)
            extra = len(calls)
        finally:
            compiler.lower = real
        print(
            f"{name:>14} {compile_s * 1e3:>10.1f} {emit_s * 1e3:>8.1f} {emit_s / compile_s:>6.1f} "
            f"{opt_s * 1e3:>7.1f} {opt_s / compile_s:>6.1f} {1 + extra:>8}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="*", default=[5000, 10000, 20000])
    parser.add_argument("--specs", nargs="*", default=["googlenet", "inception_v3", "resnet50", "vgg16_bn", "alexnet"])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'layers':>8} {'mode':>10} {'seconds':>8} {'µs/layer':>9} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for layers in args.layers:
            spec = Path(tmp) / f"seq{layers}.arch"
            spec.write_text(make_spec(layers))
            for mode, flags in (("plain", []), ("optimize", ["--optimize"])):
                seconds, peak = run(spec, flags)
                print(f"{layers:>8} {mode:>10} {seconds:>8.2f} {seconds / layers * 1e6:>9.0f} {peak:>9.0f}")
    ratios(args.specs, args.repeat)


if __name__ == "__main__":
    main()
