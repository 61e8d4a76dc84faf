"""How compile + analyze + report scale with network size (prints figures, asserts nothing).

Generates specs of 1,000 and 10,000 conv layers (conv + BN + ReLU units in small Inception-
style blocks: two branches and a concat every few layers), then times each stage in process.
Goal: 10k layers in <= 3 s in all, and time per layer at 10k within 1.5x of that at 1k.

    python benchmarks/bench_scale.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from archlang.backends.report.tables import lint_summary, report_cli

from archlang.analysis import run_passes
from archlang.compiler import compile_spec

# The lint summary (archlang.lint, another stage) is timed on its own line, not in the report.
OPTIONS = {"fmt": "text", "depth": None, "table": "layers", "batch": 1, "dtype": "float32", "lint": False}


def make_spec(layers: int) -> str:
    """``layers`` conv layers: blocks of 4 (a 1x1 stem, then [3x3 | 1x1, 1x1] concatenated)."""
    lines = [
        "block Small(c: int) {",
        "  conv(c, 1)",
        "  concat { a: conv(c, 3, padding=1)",
        "           b: { conv(c, 1); conv(c, 1) } }",
        "}",
        "network Scale() {",
        "  input 16x16x16",
        "  unit conv = conv_bn_relu",
    ]
    lines += [f"  s{i}: Small(16)" for i in range(layers // 4)]
    lines += ["  global_avgpool", "  flatten", "  fc: linear(10)", "}"]
    return "\n".join(lines) + "\n"


def timed(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def measure(layers: int, repeat: int) -> dict:
    text = make_spec(layers)
    t_compile, compiled = timed(lambda: compile_spec(text, max_nodes=10_000_000), repeat)
    t_analyze, analysis = timed(lambda: run_passes(compiled.graph), repeat)
    t_text, report = timed(lambda: report_cli(compiled, OPTIONS), repeat)
    t_json, _ = timed(lambda: report_cli(compiled, {**OPTIONS, "fmt": "json"}), repeat)
    t_depth1, _ = timed(lambda: report_cli(compiled, {**OPTIONS, "depth": 1}), repeat)
    t_lint, _ = timed(lambda: lint_summary(compiled), 1)
    conv = sum(1 for c in analysis.nodes.values() if c.op.value == "conv2d")
    return {
        "layers": conv,
        "nodes": len(analysis.nodes),
        "compile": t_compile,
        "analyze": t_analyze,
        "report_text": t_text,
        "report_json": t_json,
        "report_depth1": t_depth1,
        "lint_summary": t_lint,
        # what `archc FILE --report` does in process: report_cli runs the analysis itself
        "total": t_compile + t_text,
        "report_lines": report.count("\n"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results = [measure(n, args.repeat) for n in (1_000, 10_000)]
    stages = ("compile", "analyze", "report_text", "report_json", "report_depth1", "total", "lint_summary")
    print(f"{'stage':15s}" + "".join(f"{r['layers']:>8,} layers" for r in results) + "   per-layer ratio 10k/1k")
    for stage in stages:
        per = [r[stage] / r["layers"] for r in results]
        print(f"{stage:15s}" + "".join(f"{r[stage]:>13.3f} s " for r in results) + f"   {per[1] / per[0]:6.2f}")
    for r in results:
        print(
            f"{r['layers']:,} conv layers, {r['nodes']:,} nodes: compile + text report (analysis included) {r['total']:.2f} s "
            f"({r['total'] / r['layers'] * 1e6:.0f} µs/layer), report {r['report_lines']:,} lines"
        )
    print("goal: 10k total <= 3 s, per-layer ratio <= 1.5")


if __name__ == "__main__":
    main()
