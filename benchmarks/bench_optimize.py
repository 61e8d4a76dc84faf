"""``--optimize`` against onnxruntime on the CPU (issue #23, item 2), side by side.

    python benchmarks/bench_optimize.py                       # resnet50, inception_v3, googlenet; 2 threads
    python benchmarks/bench_optimize.py resnet50 --threads 1 --batch 1 8 --rounds 15
    python benchmarks/bench_optimize.py googlenet --only onnxruntime,inductor  # a subset
    python benchmarks/bench_optimize.py --quick               # smoke run: tiny rounds, batch 1

For each network and batch size, in one process, interleaved in rounds (a round starts one
candidate later each time, so load from other processes hits them alike):

* ``eager``: ``archlang.build(NET)`` in eval mode;
* ``optimize``: the ``archc NET --emit torch --optimize`` module (BatchNorm folded, sibling
  1×1 convs fused, channels_last), eager PyTorch;
* ``onednn-graph``: :class:`archlang.backends.torch.optimize.Frozen` of that module: traced,
  ``torch.jit.freeze``, run with TorchScript's oneDNN Graph fuser (conv + bias + ReLU and
  conv + add + ReLU as one oneDNN partition each, activations in oneDNN's blocked layout);
* ``jit.freeze``: that module traced, ``torch.jit.freeze`` + ``optimize_for_inference``
  (oneDNN's blocked layout, conv + ReLU / add fused);
* ``inductor``: that module through ``torch.compile(options={"freezing": True})`` (the
  option scoped to this compile): weights frozen and packed for
  oneDNN, conv + bias + ReLU and conv + add + ReLU as oneDNN post-ops, the rest generated C++;
* ``inductor(eager)``: the same compile of the eager build (inductor folds BN itself);
* ``onnxruntime``: the ONNX ``archc export`` writes, onnxruntime's CPU provider with the same
  number of intra-op threads (``inter_op_num_threads=1``).

Every candidate holds the same weights: the spec's init with BatchNorm affine parameters
random and running statistics measured on random images (so folding changes every weight
and the logits stay of order 1). Its outputs are compared with eager's on the same input (max abs diff; the goal is
≤ 1e-3) and with eager's in float64 (how far float32 rounding takes each, eager included). Figures: the median seconds per call over rounds; "share of ort" = onnxruntime's
median / the candidate's median (≥ 0.97 counts as equal within noise; above 1: faster than
onnxruntime). Compile times are for that batch size (inductor specialises on shapes).

The load average (``os.getloadavg``) is printed before and after each table: on a machine
shared with other busy processes, torch's OpenMP threads wait on each other at every
barrier, and 2-thread figures swing far more than 1-thread ones. Prints figures only.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
import warnings

import torch
from archlang.backends.torch import optimize as torch_optimize
from archlang.backends.torch.onnx_export import to_onnx

import archlang
from archlang.compiler import ensure_compiled

NETWORKS = ("resnet50", "inception_v3", "googlenet")
CANDIDATES = ("eager", "optimize", "onednn-graph", "jit.freeze", "inductor", "inductor(eager)", "onnxruntime")


def eager_model(compiled) -> torch.nn.Module:
    """The eager build in eval mode, BatchNorm affine parameters random and running
    statistics measured on random images (seeded): folding changes every weight, and the
    logits stay of order 1, so an absolute tolerance means something (with drawn statistics
    that match no activation, Inception v3's logits reach 1e12)."""
    torch.manual_seed(0)
    model = archlang.build(compiled)
    g = torch.Generator().manual_seed(1)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in bns:
            if m.affine:
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: the statistics of the calibration batch
        model.train()
        model(torch.randn(4, *compiled.graph.input_shape, generator=g))
        for m in bns:
            m.momentum = 0.1
    return model.eval()


def logits(y) -> torch.Tensor:
    return y if isinstance(y, torch.Tensor) else y[0]


def candidates(compiled, names: list[str], x, threads: int) -> tuple[dict, dict, dict]:
    """(name -> callable on a batch, name -> setup seconds, eager's output on ``x``, eager's
    output in float64: what float32 rounding is measured against)."""
    eager = eager_model(compiled)
    optimized = torch_optimize.optimize(compiled, eager.state_dict())
    runs, setup = {}, {}
    for name in names:
        started = time.perf_counter()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if name == "eager":
                runs[name] = eager
            elif name == "optimize":
                runs[name] = optimized
            elif name == "onednn-graph":
                runs[name] = torch_optimize.Frozen(optimized, x)
            elif name == "jit.freeze":
                traced = torch.jit.trace(optimized, x, check_trace=False)
                runs[name] = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            elif name in ("inductor", "inductor(eager)"):
                model = optimized if name == "inductor" else eager
                runs[name] = torch.compile(model, dynamic=False, options={"freezing": True})
            elif name == "onnxruntime":
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                session = ort.InferenceSession(
                    to_onnx(eager, x[:1].repeat(2, 1, 1, 1)), options, providers=["CPUExecutionProvider"]
                )
                runs[name] = lambda b, s=session: torch.from_numpy(s.run(None, {"input": b.numpy()})[0])
            else:
                raise SystemExit(f"unknown candidate {name!r}: one of {', '.join(CANDIDATES)}")
            runs[name](x)  # the first call: inductor compiles, oneDNN builds its primitives
        setup[name] = time.perf_counter() - started
    with torch.no_grad():
        expected = logits(eager(x))
        exact = logits(copy.deepcopy(eager).double()(x.double()))
    return runs, setup, expected, exact


def interleaved(runs: dict, x, rounds: int, budget: float, clock=time.perf_counter) -> tuple[dict, dict]:
    names = list(runs)
    times = {n: [] for n in names}
    outputs = {}
    with torch.inference_mode():
        for n in names:
            outputs[n] = logits(runs[n](x))  # warm-up, and the outputs compared
        started = time.perf_counter()
        for r in range(rounds):
            for n in names[r % len(names) :] + names[: r % len(names)]:
                t = clock()
                runs[n](x)
                times[n].append(clock() - t)
            if r + 1 >= 3 and time.perf_counter() - started > budget:
                break
    return times, outputs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="*", default=list(NETWORKS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--budget", type=float, default=120.0, help="seconds of timed rounds per table (3 rounds at least)")
    ap.add_argument("--only", default=",".join(CANDIDATES), help="comma-separated candidates")
    ap.add_argument(
        "--cpu-time",
        action="store_true",
        help="time by the process's CPU time, not the wall clock: with --threads 1 (torch and "
        "onnxruntime then both compute on the calling thread) a busy neighbour barely moves it",
    )
    ap.add_argument("--quick", action="store_true", help="3 rounds, batch 1: a smoke run")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.batch = 3, [1]
    names = [n for n in args.only.split(",") if n]
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads ({os.cpu_count()} cores), candidates: {', '.join(names)}")
    for network in args.networks:
        compiled = ensure_compiled(network, {}, None)
        for batch in args.batch:
            x = torch.randn(batch, *compiled.graph.input_shape, generator=torch.Generator().manual_seed(2))
            runs, setup, expected, exact = candidates(compiled, names, x, args.threads)
            load = os.getloadavg()[0]
            clock = time.process_time if args.cpu_time else time.perf_counter
            times, outputs = interleaved(runs, x, args.rounds, args.budget, clock)
            medians = {n: statistics.median(t) for n, t in times.items()}
            reference = medians.get("onnxruntime")
            print(
                f"\n{network} batch {batch}, {args.threads} threads: {len(times[names[0]])} rounds, "
                f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}; logits up to {float(exact.abs().max()):.1f}, "
                f"eager float32 off its float64 by {float((expected.double() - exact).abs().max()):.1e}"
            )
            for n in names:
                share = f"{reference / medians[n]:5.2f}" if reference else "  -  "
                diff = float((outputs[n] - expected).abs().max())
                off = float((outputs[n].double() - exact).abs().max())
                print(
                    f"  {n:<16} median {medians[n] * 1e3:8.1f} ms  min {min(times[n]) * 1e3:8.1f} ms  "
                    f"share of ort {share}  max|diff| {diff:.1e} (float64: {off:.1e})  setup {setup[n]:5.1f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
