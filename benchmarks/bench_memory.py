"""The report's peak live activation memory (static, with liveness: a U-Net's skips stay
alive until their decoder step) against what PyTorch allocates, measured side by side.

The measured figure is the CPU analogue of `torch.cuda.max_memory_allocated`: with the torch
profiler's `profile_memory=True`, each op's own allocations minus its own frees during one
forward in inference mode, summed in the order the ops ran; its peak above the level before
the forward. Printed as a ratio (measured / static) per network and batch. The static
figure counts each value's tensor while some later layer still reads it, the output being
written included; it does not model what kernels allocate besides their outputs, nor
in-place ReLUs. Measured here (2-core VM, torch 2.14 CPU): GoogLeNet 1.00 at batch 1 and
4; ResNet-50 and the guide's U-Net 1.70-1.75 (oneDNN's temporaries around its convs and
batch norms, which the static count leaves out). The ratio is flat in the batch: the
estimate scales as the allocations do.

    python benchmarks/bench_memory.py [--batch 1 4]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import archlang
from archlang.analysis import run_passes

ROOT = Path(__file__).resolve().parents[1]


def guide_unet(base: int) -> str:
    text = (ROOT / "docs" / "language.md").read_text()
    start = text.index("network UNet(num_classes: int = 2")
    block_start = text.rfind("```text\n", 0, start) + len("```text\n")
    return text[block_start : text.index("```", start)].replace("base: int = 64", f"base: int = {base}")


def measured_peak(model, x) -> int:
    """Peak bytes allocated on the CPU during one forward, above the level before it."""
    with (
        torch.inference_mode(),
        torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof,
    ):
        model(x)
    # each op's own allocations minus its own frees (a tensor is freed inside the op that
    # drops its last reference), children excluded, in the order the ops ran
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start)
    level = peak = 0
    for e in events:
        level += e.self_cpu_memory_usage
        peak = max(peak, level)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="*", default=[1, 4])
    args = parser.parse_args()
    torch.set_num_threads(2)
    cases = {
        "unet (guide, base 16, 1×128×128)": (guide_unet(16), None),
        "resnet50 (3×224×224)": ("resnet50", None),
        "googlenet (3×224×224)": ("googlenet", None),
    }
    print(f"{'network':>34} {'batch':>5} {'static MiB':>11} {'measured MiB':>13} {'measured/static':>16}")
    for label, (spec, shape) in cases.items():
        compiled = archlang.compile_spec(spec, input_shape=shape)
        model = archlang.build(compiled).eval()
        for batch in args.batch:
            static = run_passes(compiled.graph, batch=batch).peak_activation_bytes
            x = torch.randn(batch, *compiled.graph.input_shape)
            measured = measured_peak(model, x)
            print(
                f"{label:>34} {batch:>5} {static / 2**20:>11.1f} {measured / 2**20:>13.1f} {measured / static:>16.2f}"
            )


if __name__ == "__main__":
    main()
