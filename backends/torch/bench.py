"""``archc bench SPEC``: the spec's model measured on this machine, next to its static cost.

Every backend the machine has runs the same inputs, interleaved round by round in one
process (a busy neighbour slows them all alike, and a round starts with a different backend
each time):

* ``eager``: :func:`archlang.build`, eval mode;
* ``--optimize``: :mod:`.optimize` with the eager build's weights (BatchNorm folded);
* ``torch.compile``: inductor on the eager build, with ``--compile`` (compiling ResNet-50
  takes 15-90 s on 2 cores; a time cap by SIGALRM left inductor's compile workers hung, so
  it is opt-in rather than capped), left out with a note when it fails;
* ``--optimize, frozen``: :class:`.optimize.Frozen` on the ``--optimize`` module (traced,
  frozen, run by TorchScript's oneDNN Graph fuser: conv + bias + ReLU and conv + add + ReLU
  fused, activations kept in oneDNN's blocked layout), the fastest route to CPU inference
  in PyTorch that we found; left out with a note when TorchScript cannot trace the model;
* ``--optimize + jit.freeze``: with ``--freeze``, the ``--optimize`` module traced, frozen
  and passed through ``torch.jit.optimize_for_inference`` (oneDNN's blocked layout, conv +
  ReLU / add fused);
* ``onnxruntime``: the ONNX that ``archc export`` writes (the TorchScript exporter), run by
  onnxruntime's CPU provider with the same number of threads;
* ``eager (cuda)`` and ``--optimize (cuda)`` where CUDA is present (host transfers included).

Figures are medians over rounds; a ratio is eager's median over the backend's (above 1:
faster than eager). Each backend's outputs are compared with eager's on the same input
(max abs diff; past :data:`TOLERANCE` of the output's scale the command fails with E740).
The eager weights are PyTorch's default initialisation with BatchNorm running statistics
drawn at random (seeded), so that folding them is exercised.

``--layers``: the time of each layer of the eager build from torch.profiler (each leaf
module runs in a ``record_function`` range put there by forward hooks), next to the report's
MACs and the bytes the layer moves (inputs, output, parameters and buffers at float32):
achieved GMAC/s, arithmetic intensity (MAC per byte), and the layers far below the best rate
any layer reached (the machine's peak as this network sees it). Functional ops (ReLU, add,
concat written in ``forward``) are not modules: their time is the ``other`` row.

Memory: the peak of bytes allocated through torch's CPU allocator during one forward (the
last warm-up call at the batch size; the profiler's ``profile_memory`` events summed in time
order; weights and the input, allocated before, are not counted), next to the report's
static estimate of peak live activations.

``--max-time`` budgets the whole measurement, setup (the ONNX export is the slow part)
included: the rounds get what is left, 3 of them whatever it says; the wall time of each
phase is in the notes.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from archlang.analysis import run_passes
from archlang.diagnostics import Diagnostic, SpecError

from .onnx_export import to_onnx
from .plan import module_outputs, plan

TOLERANCE = 1e-3  # max |backend - eager| relative to the output's scale (when above 1)
SLOW_FRACTION = 0.25  # a layer below this share of the best achieved GMAC/s is flagged
DTYPE = "float32"
SCHEMA_VERSION = 2  # 2: backends' page_faults
MIN_ROUNDS = 3  # rounds run whatever --max-time says


@dataclass
class Backend:
    name: str
    run: Callable  # a CPU input batch -> list of CPU output tensors


@dataclass
class Settings:
    batch: int = 8
    rounds: int = 10
    warmup: int = 2
    threads: int | None = None
    layers: bool = False
    compile: bool = False
    freeze: bool = False
    # seconds for the whole measurement: building the backends (the ONNX export included),
    # warm-up (the memory profile is one of its calls), rounds; the rounds get what is left
    max_time: float = 75.0
    rounds_done: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each phase


def _tensors(y) -> list:
    if isinstance(y, torch.Tensor):
        return [y]
    if isinstance(y, dict):
        y = list(y.values())
    return [t for item in y for t in _tensors(item)]


def _failure(err: Exception) -> str:
    """``Type: first line of the message`` (at most 200 characters), for a backend's note."""
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return f"{type(err).__name__}: {reason}"


def _module_runner(model: nn.Module, device: str = "cpu") -> Callable:
    if device == "cpu":
        return lambda x: _tensors(model(x))
    return lambda x: [t.cpu() for t in _tensors(model(x.to(device)))]


# ---- the backends ----------------------------------------------------------------------


def eager_model(compiled) -> nn.Module:
    """The eager build in eval mode, BatchNorm statistics drawn from a seeded generator."""
    import archlang

    model = archlang.build(compiled).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=generator))
    return model


def optimized_model(compiled, eager: nn.Module) -> nn.Module:
    from . import optimize

    return optimize.optimize(compiled, eager.state_dict())


def compiled_runner(eager: nn.Module, inputs: list, notes: list[str]) -> Callable | None:
    """torch.compile (inductor) of the eager build, compiled for each input's shape up front;
    None (and a note) when it fails."""
    started = time.perf_counter()
    fn = torch.compile(eager, dynamic=False)
    try:
        with warnings.catch_warnings(), _quiet_stderr():
            warnings.simplefilter("ignore")
            with torch.inference_mode():
                for x in inputs:
                    fn(x)
    except Exception as err:  # noqa: BLE001 - any compiler failure leaves this backend out
        torch._dynamo.reset()
        notes.append(f"torch.compile left out: it failed ({_failure(err)})")
        return None
    notes.append(f"torch.compile (inductor, dynamic=False) compiled in {time.perf_counter() - started:.1f} s")
    return _module_runner(fn)


def frozen_runner(model: nn.Module, x, notes: list[str]) -> Callable | None:
    """``model`` traced on ``x``, then ``torch.jit.freeze`` and ``optimize_for_inference``
    (constants folded, convs with their ReLU / add on oneDNN's blocked layout); None (and a
    note) when TorchScript cannot take it."""
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, x, check_trace=False)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    except Exception as err:  # noqa: BLE001 - any TorchScript failure leaves this backend out
        notes.append(f"--optimize + jit.freeze left out: {_failure(err)}")
        return None
    return _module_runner(frozen)


def fused_runner(model: nn.Module, x, notes: list[str]) -> Callable | None:
    """:class:`.optimize.Frozen` of ``model`` traced on ``x``; None (and a note) when
    TorchScript cannot take it."""
    from .optimize import Frozen

    try:
        frozen = Frozen(model, x)
    except Exception as err:  # noqa: BLE001 - any TorchScript failure leaves this backend out
        notes.append(f"--optimize, frozen left out: {_failure(err)}")
        return None
    parts = frozen.sub_batches(len(x))
    if parts > 1:
        notes.append(
            f"--optimize, frozen runs a batch of {len(x)} as {parts} sub-batches: each activation stays under "
            f"glibc's mmap ceiling ({frozen.chunk} images at most), not page-faulted in again on every call"
        )
    return lambda x: _tensors(frozen(x))


def onnx_runner(eager: nn.Module, shape: tuple, threads: int, notes: list[str]) -> Callable | None:
    """onnxruntime on the ONNX ``archc export`` writes; None (and a note) without it."""
    try:
        import onnxruntime as ort
    except ModuleNotFoundError as err:
        notes.append(f"onnxruntime left out: {err.name} is not installed (pip install 'archlang[train]')")
        return None
    try:
        with warnings.catch_warnings(), _quiet_stderr():
            warnings.simplefilter("ignore")
            payload = to_onnx(eager, torch.randn(2, *shape))
    except Exception as err:  # noqa: BLE001 - an export failure leaves this backend out
        notes.append(f"onnxruntime left out: the ONNX export failed ({_failure(err)})")
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
    return lambda x: [torch.from_numpy(a) for a in session.run(None, {"input": x.numpy()})]


def make_backends(compiled, eager: nn.Module, inputs: list, s: Settings) -> list[Backend]:
    """Every backend this machine has, eager first."""
    backends = [Backend("eager", _module_runner(eager))]
    optimized = optimized_model(compiled, eager)
    backends.append(Backend("--optimize", _module_runner(optimized)))
    run = fused_runner(optimized, inputs[-1], s.notes)
    if run is not None:
        backends.append(Backend("--optimize, frozen", run))
    if s.freeze:
        run = frozen_runner(optimized, inputs[-1], s.notes)
        if run is not None:
            backends.append(Backend("--optimize + jit.freeze", run))
    if s.compile:
        run = compiled_runner(eager, inputs, s.notes)
        if run is not None:
            backends.append(Backend("torch.compile", run))
    else:
        s.notes.append("torch.compile left out: give --compile (inductor compiles for about a minute on 2 cores)")
    run = onnx_runner(eager, compiled.graph.input_shape, torch.get_num_threads(), s.notes)
    if run is not None:
        backends.append(Backend("onnxruntime", run))
    if torch.cuda.is_available():
        import copy

        backends.append(Backend("eager (cuda)", _module_runner(copy.deepcopy(eager).cuda(), "cuda")))
        backends.append(Backend("--optimize (cuda)", _module_runner(optimized_model(compiled, eager).cuda(), "cuda")))
        s.notes.append("cuda figures include the copies to and from the GPU")
    return backends


# ---- measuring --------------------------------------------------------------------------


def _minor_faults() -> Callable[[], int] | None:
    """The process's minor page faults so far (all threads), where ``getrusage`` exists."""
    try:
        import resource
    except ModuleNotFoundError:  # Windows
        return None
    return lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleaved(
    backends: list[Backend], x, rounds: int, warmup: int, deadline: float, profile: tuple[str, ...] = ()
) -> tuple[dict, dict, dict, dict]:
    """(seconds per call, outputs, peak bytes, minor page faults per call, the lists empty
    without ``getrusage``) of each backend: ``warmup`` untimed calls
    each (one at least: its outputs are the ones compared; the last one of the backends
    named in ``profile`` runs under :func:`measured_peak`), then ``rounds`` rounds of one
    call per backend, each round starting one backend later; fewer rounds (MIN_ROUNDS at
    least) when the next one would end past ``deadline`` (a ``time.perf_counter()`` value)."""
    times: dict[str, list[float]] = {b.name: [] for b in backends}
    faults: dict[str, list[int]] = {b.name: [] for b in backends}
    count = _minor_faults()
    outputs, peaks = {}, {}
    with torch.inference_mode():
        for b in backends:
            calls = [b.run] * warmup
            if b.name in profile:  # a warm-up call anyway: the profile costs no extra forward
                calls[-1] = lambda x, run=b.run, name=b.name: measured_peak(run, x, peaks, name)
            outputs[b.name] = calls[0](x)
            for call in calls[1:]:
                call(x)
        for r in range(rounds):
            # a round costs about what the last one did: stop if it would overrun
            last = sum(t[-1] for t in times.values()) if r else 0.0
            if r >= MIN_ROUNDS and time.perf_counter() + last > deadline:
                break
            k = r % len(backends)
            for b in backends[k:] + backends[:k]:
                before = count() if count else 0
                t = time.perf_counter()
                b.run(x)
                times[b.name].append(time.perf_counter() - t)
                if count:
                    faults[b.name].append(count() - before)
    return times, outputs, peaks, faults


def difference(got: list, expected: list) -> float:
    """Max abs difference over the outputs, divided by the expected outputs' scale when above 1."""
    if len(got) != len(expected) or any(g.shape != e.shape for g, e in zip(got, expected)):
        return float("inf")
    diff = max((float((g.float() - e.float()).abs().max()) for g, e in zip(got, expected)), default=0.0)
    scale = max((float(e.abs().max()) for e in expected), default=0.0)
    return diff / max(1.0, scale)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence what C++ libraries print on fd 2 (kineto's profiler start/stop lines, the
    exporter's), restoring the stream after."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _profile(**kwargs):
    from torch.profiler import ProfilerActivity, profile

    return profile(activities=[ProfilerActivity.CPU], **kwargs)


def measured_peak(run: Callable, x, peaks: dict, name: str) -> list:
    """``run(x)``, recording in ``peaks[name]`` the peak bytes allocated through torch's CPU
    allocator during the call (profile_memory)."""
    with torch.inference_mode(), _quiet_stderr():
        with _profile(profile_memory=True) as prof:
            out = run(x)
    events = [(e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for _, nbytes in sorted(events):
        current += nbytes
        peak = max(peak, current)
    peaks[name] = peak
    return out


def layer_times(eager: nn.Module, leaves: dict[str, str], x, rounds: int) -> tuple[dict[str, float], float]:
    """Median seconds per call of each leaf module named in ``leaves`` and of the whole
    forward, from torch.profiler: forward hooks open and close a ``record_function`` range
    per module. A module called several times per forward counts each call."""
    from torch.profiler import record_function

    open_ranges: list = []

    def enter(name):
        def hook(module, args):
            r = record_function(f"archc::{name}")
            r.__enter__()
            open_ranges.append(r)

        return hook

    def leave(module, args, output):
        open_ranges.pop().__exit__(None, None, None)

    handles = []
    modules = dict(eager.named_modules())
    for name in leaves:
        handles.append(modules[name].register_forward_pre_hook(enter(name)))
        handles.append(modules[name].register_forward_hook(leave))
    try:
        from torch.profiler import schedule

        with torch.inference_mode(), _quiet_stderr():
            eager(x)
            # the first profiled call pays for the profiler's start-up: a warm-up step, discarded
            with _profile(schedule=schedule(wait=0, warmup=1, active=rounds, repeat=1)) as prof:
                for _ in range(1 + rounds):
                    with record_function("archc::forward"):
                        eager(x)
                    prof.step()
    finally:
        for h in handles:
            h.remove()
    # the median call of each range: one call stalled by a busy neighbour does not move it
    calls: dict[str, list[float]] = {}
    for e in prof.events():
        if e.name.startswith("archc::"):
            calls.setdefault(e.name, []).append(e.cpu_time_total / 1e6)
    per_call = {name: statistics.median(times) for name, times in calls.items()}
    return {name: per_call.get(f"archc::{name}", 0.0) for name in leaves}, per_call.get("archc::forward", 0.0)


# ---- the report -------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _context(compiled, s: Settings, backends: list[Backend]) -> dict:
    context = {
        "network": compiled.graph.network,
        "input_shape": list(compiled.graph.input_shape),
        "batch": s.batch,
        "dtype": DTYPE,
        "threads": torch.get_num_threads(),
        "rounds": s.rounds,
        "rounds_done": {"batch 1": s.rounds_done[0], "batch": s.rounds_done[1]},
        "max_time": s.max_time,
        "warmup": s.warmup,
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "backends": [b.name for b in backends],
    }
    if any(b.name == "onnxruntime" for b in backends):
        import onnxruntime

        context["onnxruntime"] = onnxruntime.__version__
    if torch.cuda.is_available():
        context["cuda_device"] = torch.cuda.get_device_name()
    return context


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _layer_rows(compiled, eager, x, s: Settings, profiled: int) -> tuple[list[dict], dict]:
    graph = compiled.graph
    analysis = run_passes(graph, dtype=DTYPE, batch=s.batch)
    outputs = module_outputs(plan(graph))
    modules = dict(eager.named_modules())
    leaves = {
        name: node
        for name, node in outputs.items()
        if name in modules
        and not any(True for _ in modules[name].children())
        and node in analysis.nodes
        and analysis.nodes[node].aux is None  # aux heads do not run in eval mode
    }
    per_layer, total = layer_times(eager, leaves, x, profiled)
    width = 4  # float32
    rows = []
    for name, node in leaves.items():
        cost = analysis.nodes[node]
        inputs = sum(analysis.nodes[i].out_elements for i in graph.nodes[node].inputs if i in analysis.nodes)
        moved = width * (s.batch * (inputs + cost.out_elements) + cost.params + cost.buffers)
        macs = cost.macs * s.batch
        seconds = per_layer[name]
        rows.append(
            {
                "name": name,
                "op": cost.op.value,
                "ms": seconds * 1e3,
                "share": 100 * seconds / total if total else None,
                "macs": macs,
                "bytes": moved,
                "gmacs": macs / seconds / 1e9 if macs and seconds else None,
                "intensity": macs / moved if macs and moved else None,
                "flag": "",
            }
        )
    best = max((r["gmacs"] for r in rows if r["gmacs"]), default=None)
    for r in rows:
        if best and r["gmacs"] and r["gmacs"] < SLOW_FRACTION * best:
            r["flag"] = f"◀ {100 * r['gmacs'] / best:.0f}% of best"
    other = max(0.0, total - sum(per_layer.values()))
    summary = {"forward_ms": total * 1e3, "other_ms": other * 1e3, "best_gmacs": best, "profiled": profiled}
    return rows, summary


def run_bench(compiled, s: Settings) -> dict:
    """Measure the spec's model on every backend; the result as JSON-ready data."""
    saved_threads = torch.get_num_threads()
    if s.threads:
        torch.set_num_threads(s.threads)
    try:
        return _run(compiled, s)
    finally:
        torch.set_num_threads(saved_threads)


# Of the time setup leaves for the rounds, the share of batch 1's (the rest goes to
# --batch, whose calls cost several batch-1 calls each); with --layers, the share of the
# whole budget kept back for the layers' profile (up to 6 forwards at --batch).
LATENCY_SHARE = 0.3
LAYERS_SHARE = 0.15


def _run(compiled, s: Settings) -> dict:
    started = clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        s.seconds[name] = round(now - clock, 2)
        clock = now

    shape = tuple(compiled.graph.input_shape)
    generator = torch.Generator().manual_seed(1)
    x1 = torch.randn(1, *shape, generator=generator)
    xn = torch.randn(s.batch, *shape, generator=generator) if s.batch > 1 else x1
    eager = eager_model(compiled)
    inputs = [x1] if s.batch == 1 else [x1, xn]
    backends = make_backends(compiled, eager, inputs, s)
    phase("setup")

    # the rounds end by `end`, the layers' share of the whole budget kept back
    end = started + s.max_time * (1 - (LAYERS_SHARE if s.layers else 0))
    profiled = ("eager", "--optimize")  # measured peak memory at --batch, in a warm-up call
    if s.batch > 1:
        latency, out1, _, _ = interleaved(backends, x1, s.rounds, s.warmup, clock + (end - clock) * LATENCY_SHARE)
        phase("batch 1")
        batched, outn, peaks, faults = interleaved(backends, xn, s.rounds, s.warmup, end, profiled)
        phase("batch")
    else:
        latency, out1, peaks, faults = interleaved(backends, x1, s.rounds, s.warmup, end, profiled)
        batched, outn = latency, out1
        phase("batch 1")
    diffs = {
        b.name: max(difference(out1[b.name], out1["eager"]), difference(outn[b.name], outn["eager"])) for b in backends
    }
    s.rounds_done = (len(latency["eager"]), len(batched["eager"]))
    eager_latency, eager_batched = _median(latency["eager"]), _median(batched["eager"])
    rows = []
    for b in backends:
        lat, per_batch = _median(latency[b.name]), _median(batched[b.name])
        rows.append(
            {
                "backend": b.name,
                "latency_ms": lat * 1e3,
                "latency_ratio": eager_latency / lat,
                "throughput": s.batch / per_batch,
                "throughput_ratio": eager_batched / per_batch,
                "max_diff": diffs[b.name] if math.isfinite(diffs[b.name]) else None,  # None: shapes differ, or NaN
                "agrees": diffs[b.name] <= TOLERANCE,
                # None without getrusage (Windows)
                "page_faults": round(_median(faults[b.name])) if faults[b.name] else None,
            }
        )

    analysis = run_passes(compiled.graph, dtype=DTYPE, batch=s.batch)
    memory = {
        "static_bytes": analysis.peak_activation_bytes,
        "eager_bytes": peaks["eager"],
        "optimize_bytes": peaks["--optimize"],
        "how": "torch.profiler profile_memory: peak of bytes allocated through torch's CPU allocator "
        "during the last warm-up forward (weights and input excluded)",
    }
    result = {
        "schema_version": SCHEMA_VERSION,
        "context": _context(compiled, s, backends),
        "backends": rows,
        "memory": memory,
        "layers": None,
        "layers_summary": None,
        "tolerance": TOLERANCE,
        "notes": list(s.notes),
    }
    if s.layers:
        # up to 5 profiled forwards, as many as the budget's rest holds after the plain one and
        # the profiler's warm-up step (hooks and records cost about half a forward more)
        left = started + s.max_time - time.perf_counter()
        profiled = max(1, min(s.rounds, 5, int(left / (1.5 * eager_batched)) - 2))
        result["layers"], result["layers_summary"] = _layer_rows(compiled, eager, xn, s, profiled)
        phase("layers")
    result["context"]["seconds"] = {**s.seconds, "total": round(time.perf_counter() - started, 2)}
    return result


def disagreements(result: dict) -> SpecError | None:
    bad = [r for r in result["backends"] if not r["agrees"]]
    if not bad:
        return None
    return SpecError(
        [
            Diagnostic(
                code="E740",
                message=f"`{r['backend']}`'s outputs differ from eager's "
                + (
                    f"by {r['max_diff']:.2e} (relative to the output's scale; tolerance {result['tolerance']:.0e})"
                    if r["max_diff"] is not None
                    else "in shape, or are not numbers"
                ),
                help="a bug in that backend's lowering of this spec: please report it with the spec",
            )
            for r in bad
        ]
    )


BACKEND_COLUMNS = [
    ("backend", "backend", "text"),
    ("latency_ms", "latency (ms, batch 1)", "ms"),
    ("latency_ratio", "× eager", "ratio"),
    ("throughput", "throughput (/s)", "rate"),
    ("throughput_ratio", "× eager", "ratio"),
    ("page_faults", "faults/call", "int"),
    ("max_diff", "max diff", "sci"),
    ("agrees", "agrees", "text"),
]
LAYER_COLUMNS = [
    ("name", "layer", "text"),
    ("op", "op", "text"),
    ("ms", "ms", "ms"),
    ("share", "% time", "rate"),
    ("macs", "MACs", "mega"),
    ("bytes", "bytes moved", "bytes"),
    ("gmacs", "GMAC/s", "rate"),
    ("intensity", "MAC/B", "rate"),
    ("flag", "", "text"),
]


def _table(title: str, columns, rows: list[dict], notes=(), total: dict | None = None):
    from archlang.backends.report.formats import Column, ReportTable, Section

    return ReportTable(title, [Column(*c) for c in columns], [Section(None, rows, total)], list(notes))


def _context_line(c: dict) -> str:
    versions = f"torch {c['torch']}" + (f", onnxruntime {c['onnxruntime']}" if "onnxruntime" in c else "")
    return (
        f"{c['threads']} threads, batch 1 and {c['batch']}, {c['dtype']}, {versions}, "
        f"{c['cpu']} ({c['cpu_count']} CPUs)" + (f", {c['cuda_device']}" if "cuda_device" in c else "")
    )


def _rounds(c: dict) -> str:
    done = c["rounds_done"]
    if done["batch 1"] == done["batch"] == c["rounds"]:
        return str(c["rounds"])
    return f"{done['batch 1']} (batch 1) and {done['batch']} (batch {c['batch']}) of {c['rounds']} (--max-time {c['max_time']:g} s)"


PHASES = {
    "setup": "setup (build, --optimize, ONNX export)",
    "batch 1": "batch 1",
    "batch": "batch {batch}",
    "layers": "layers",
}


def _phases(c: dict) -> str:
    t = c["seconds"]
    parts = [
        f"{PHASES[k].format(batch=c['batch'])} {t[k]:.1f} s"
        for k in PHASES
        if k in t and (k, c["batch"]) != ("batch", 1)
    ]
    return f"wall time: {', '.join(parts)}; {t['total']:.1f} s in all (--max-time {c['max_time']:g} s)."


def _profiled(n: int | None) -> str:
    if n is None:  # results saved before the count was kept
        return "medians of up to 5 profiled forwards"
    return "one profiled forward" if n == 1 else f"medians of {n} profiled forwards"


def tables(result: dict) -> list:
    """The result as report tables: backends (with memory), then layers (``--layers``)."""
    c = result["context"]
    # page_faults: None in results saved before schema 2
    shown_rows = [{"page_faults": None, **r, "agrees": "yes" if r["agrees"] else "NO"} for r in result["backends"]]
    m = result["memory"]
    mib = 1 << 20
    notes = [
        f"context: {_context_line(c)}.",
        f"medians of {_rounds(c)} interleaved rounds after {c['warmup']} warm-up calls; "
        f"throughput at batch {c['batch']}; × eager = eager's time over the backend's (above 1: faster).",
        f"max diff: largest |backend - eager| over the outputs, relative to their scale above 1 "
        f"(tolerance {result['tolerance']:.0e}).",
        f"faults/call: the process's minor page faults per call at batch {c['batch']} (getrusage): memory "
        "the allocator gave back to the OS and the kernel maps in again; each costs time in the call.",
        f"activation memory at batch {c['batch']}: static estimate {m['static_bytes'] / mib:.1f} MiB "
        f"(archc --report); measured {m['eager_bytes'] / mib:.1f} MiB eager, "
        f"{m['optimize_bytes'] / mib:.1f} MiB --optimize ({m['how']}).",
        *result["notes"],
    ]
    if "seconds" in c:  # results saved before it had no phase times
        notes.append(_phases(c))
    title = f"archc bench: {c['network']} ({'×'.join(map(str, c['input_shape']))} input)"
    out = [_table(title, BACKEND_COLUMNS, shown_rows, notes)]
    if result["layers"] is not None:
        summary = result["layers_summary"]
        other = {"name": "other (functional ops)", "ms": summary["other_ms"]}
        if summary["forward_ms"]:
            other["share"] = 100 * summary["other_ms"] / summary["forward_ms"]
        layer_notes = [
            f"eager, batch {c['batch']}, torch.profiler (a record_function range per leaf module); "
            f"{_profiled(summary.get('profiled'))}; "
            f"forward {summary['forward_ms']:.2f} ms per call.",
            "MACs and bytes moved (inputs + output + weights, float32) from the static analysis; "
            f"◀ marks layers below {SLOW_FRACTION:.0%} of the best GMAC/s any layer reached.",
        ]
        out.append(_table(f"per layer: {c['network']}", LAYER_COLUMNS, result["layers"], layer_notes, other))
    return out


def render(result: dict, fmt: str) -> str:
    """text, md or csv (one table after another, a blank line between), or json (the result)."""
    if fmt == "json":
        import json

        return json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    from archlang.backends.report.formats import RENDERERS

    return "\n".join(RENDERERS[fmt](t) for t in tables(result))


def bench_cli(compiled, s: Settings, fmt: str, draw: Callable | None = None) -> tuple[str, SpecError | None, object]:
    """The rendered report, the E740 error when a backend disagrees with eager, and the
    roofline ``draw`` makes of the result (None without it)."""
    result = run_bench(compiled, s)
    return render(result, fmt), disagreements(result), draw(result) if draw else None
