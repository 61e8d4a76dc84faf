"""PyTorch speed of archlang's Inception v3 against torchvision's, on the CPU (issue #4).

    python benchmarks/bench_torch.py            # about 3 minutes
    python benchmarks/bench_torch.py --quick    # a short smoke run (batch 2, few rounds)
    python benchmarks/bench_torch.py --variants # also the single rewrites, one by one

Measured side by side in one process, with the candidates interleaved in rounds (the order
rotates every round) so that load from other processes hits them alike; each figure is the
median over rounds, and each ratio the median of the per-round ratios against torchvision.

(a) eval forward: ``archlang.build("inception_v3")`` vs torchvision's ``inception_v3``;
    goal: ratio <= 1.05.
(b) train step: forward in training mode, loss = CE(logits) + 0.3 CE(aux_logits) for both,
    backward, SGD step; goal: ratio <= 1.05.
(c) eval forward of the ``--optimize`` model (BatchNorm folded, sibling 1×1 convs fused,
    channels_last) vs torchvision's; goal: torchvision / optimized >= 1.2.
With ``--variants``, (c) also measures each rewrite alone: BN folding only, folding +
fusion in NCHW, and torchvision itself converted to channels_last (how much of the gain is
the memory format alone), and both models with ``torch.backends.mkldnn.enabled = False``.

All models hold the same weights (torchvision's random init, BN affine parameters random,
running statistics measured on random images, so folding is not trivial). Threads: all
cores by default (``--threads``); on a machine shared with other busy processes OpenMP
threads wait on each other and 2-thread timings swing a lot, which the interleaving and
per-round ratios are there to absorb. Prints figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import torch
import torchvision
from archlang.backends.torch import optimize as torch_optimize

import archlang


def torchvision_model() -> torch.nn.Module:
    """torchvision's inception_v3 with its random init, BN affine parameters randomised and
    running statistics measured on random images (so folding changes every weight and the
    logits stay O(1))."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    g = torch.Generator().manual_seed(1)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.reset_running_stats()
            m.momentum = None  # cumulative average: the statistics of the calibration batch
        model.train()
        model(torch.randn(4, 3, 299, 299, generator=g))
        for m in bns:
            m.momentum = 0.1
    return model


def plain_model(state_dict: dict) -> torch.nn.Module:
    model = archlang.build("inception_v3")
    model.load_state_dict(state_dict)
    return model


def run_rounds(candidates: dict, rounds: int, budget: float, label: str) -> dict[str, list[float]]:
    """Time every candidate once per round, the order rotating; stop after ``rounds`` or
    when ``budget`` seconds are spent (at least 3 rounds)."""
    names = list(candidates)
    times: dict[str, list[float]] = {n: [] for n in names}
    for fn in candidates.values():  # warm-up: oneDNN primitive caches, allocator
        fn()
    start = time.perf_counter()
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for n in order:
            t = time.perf_counter()
            candidates[n]()
            times[n].append(time.perf_counter() - t)
        spent = time.perf_counter() - start
        print(f"  {label} round {r + 1}: " + ", ".join(f"{n} {times[n][-1]:.3f}s" for n in names), flush=True)
        if r + 1 >= min(3, rounds) and spent > budget:
            break
    return times


def report(title: str, times: dict[str, list[float]], reference: str, goals: dict[str, str], batch: int) -> None:
    rounds = len(times[reference])
    print(
        f"\n{title}: {rounds} rounds, seconds per call (median and min over rounds) and images/s "
        f"(batch over the median: `archc bench`'s throughput column); ratio = "
        f"median over rounds of time / {reference}'s time in the same round (min ratio = ratio of the mins)"
    )
    for name, ts in times.items():
        ratio = statistics.median(t / r for t, r in zip(ts, times[reference]))
        best = min(ts) / min(times[reference])
        print(
            f"  {name:<26} median {statistics.median(ts):7.3f}  min {min(ts):7.3f}  "
            f"{batch / statistics.median(ts):7.2f} img/s   ratio {ratio:5.3f} "
            f"(min ratio {best:5.3f}) = {1 / ratio:4.2f}x as fast  {goals.get(name, '')}"
        )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="batch 2, 2 rounds: a smoke run")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    ap.add_argument("--variants", action="store_true", help="also time each rewrite on its own")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None, help="rounds per section (default: by time budget)")
    ap.add_argument("--budget", type=float, default=None, help="seconds per section after warm-up")
    args = ap.parse_args(argv)
    batch = args.batch or (2 if args.quick else 8)
    budget = args.budget if args.budget is not None else (0.0 if args.quick else 60.0)
    rounds = args.rounds or (2 if args.quick else 1000)
    threads = args.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, {threads} threads "
        f"(cores: {os.cpu_count()}), batch {batch}, 3x299x299, mkldnn enabled={torch.backends.mkldnn.enabled}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )

    tv = torchvision_model()
    sd = tv.state_dict()
    plain = plain_model(sd)
    optimized = torch_optimize.optimize("inception_v3", sd)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(batch, 3, 299, 299, generator=g)
    target = torch.randint(0, 1000, (batch,), generator=g)

    # ---- (a) and (c): eval forward ------------------------------------------------------------
    tv.eval()
    plain.eval()
    with torch.no_grad():
        ref = tv(x)
        err_plain = (plain(x) - ref).abs().max().item()
        err_opt = (optimized(x) - ref).abs().max().item()
    print(
        f"max |difference| of logits vs torchvision: plain {err_plain:.2e}, optimized {err_opt:.2e} "
        f"(logits up to {ref.abs().max().item():.2e})"
    )

    def infer(model):
        def call():
            with torch.inference_mode():
                model(x)

        return call

    candidates = {"torchvision": infer(tv), "archlang": infer(plain), "archlang --optimize": infer(optimized)}
    if args.variants:
        import copy

        tv_cl = copy.deepcopy(tv).to(memory_format=torch.channels_last)
        x_cl = x.contiguous(memory_format=torch.channels_last)

        def infer_cl():
            with torch.inference_mode():
                tv_cl(x_cl)

        candidates["torchvision channels_last"] = infer_cl
        candidates["fold only, NCHW"] = infer(
            torch_optimize.optimize("inception_v3", sd, channels_last=False, fuse=False)
        )
        candidates["fold+fuse, NCHW"] = infer(torch_optimize.optimize("inception_v3", sd, channels_last=False))
        candidates["fold only, channels_last"] = infer(torch_optimize.optimize("inception_v3", sd, fuse=False))

        def without_mkldnn(call):
            def run():
                torch.backends.mkldnn.enabled = False
                try:
                    call()
                finally:
                    torch.backends.mkldnn.enabled = True

            return run

        candidates["torchvision, mkldnn off"] = without_mkldnn(infer(tv))
        candidates["--optimize, mkldnn off"] = without_mkldnn(infer(optimized))
    print(f"\n(a)/(c) eval forward (load average {os.getloadavg()[0]:.2f})")
    times = run_rounds(candidates, rounds, budget, "eval")
    report(
        "(a)/(c) eval forward, torch.inference_mode",
        times,
        "torchvision",
        {"archlang": "goal (a): ratio <= 1.05", "archlang --optimize": "goal (c): speed-up >= 1.2"},
        batch,
    )

    # ---- (b): train step ------------------------------------------------------------------
    def trainer(model):
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            out = model(x)
            loss = loss_fn(out.logits, target) + 0.3 * loss_fn(out.aux_logits, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    print(f"\n(b) train step (load average {os.getloadavg()[0]:.2f})")
    times = run_rounds({"torchvision": trainer(tv), "archlang": trainer(plain)}, rounds, budget, "train")
    report(
        "(b) train step: forward (aux on), CE + 0.3 CE(aux), backward, SGD",
        times,
        "torchvision",
        {"archlang": "goal (b): ratio <= 1.05"},
        batch,
    )
    print(
        f"\nload average at the end {os.getloadavg()[0]:.2f} (other processes share these cores: "
        "compare the ratios, not the absolute times)"
    )


if __name__ == "__main__":
    main()
