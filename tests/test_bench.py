"""``archc bench``: the columns, the agreement check and the JSON schema, on a tiny spec
(examples/tiny_inception.arch: conv units, concat blocks, an aux head that eval mode skips).

No timing is asserted: the figures are whatever this machine measured. The static figures
are checked against ``archlang.analyze`` and the layers against the eager module's own
leaf modules; the agreement check is proven to fail by a backend that is off by 0.01. The
roofline (``--plot``) is read back from its SVG; its roof is checked on layers made by hand.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
import torch
from archlang.backends.plot import roofline
from archlang.backends.torch import bench
from conftest import ROOT

import archlang

SPEC = ROOT / "examples" / "tiny_inception.arch"
QUICK = ["--batch", "2", "--rounds", "1", "--warmup", "1"]
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
BACKEND_KEYS = {
    "backend",
    "latency_ms",
    "latency_ratio",
    "throughput",
    "throughput_ratio",
    "page_faults",
    "max_diff",
    "agrees",
}
LAYER_KEYS = {"name", "op", "ms", "share", "macs", "bytes", "gmacs", "intensity", "flag"}
CONTEXT_KEYS = {"network", "input_shape", "batch", "dtype", "threads", "rounds", "warmup", "torch", "cpu", "backends"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def result(workdir) -> dict:
    """``archc bench --freeze --format json --plot roofline.svg`` on the tiny spec, as a
    user runs it (--plot implies --layers)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "archlang.cli", "bench", str(SPEC), *QUICK, "--threads", "1", "--freeze"]
        + ["--format", "json", "--plot", "roofline.svg"],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
        timeout=600,  # about 5 s of CPU; minutes of wall time on a machine busy with other suites
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_json_schema(result):
    assert result["schema_version"] == 2
    context = result["context"]
    assert CONTEXT_KEYS <= set(context)
    assert (context["network"], context["input_shape"], context["batch"]) == ("TinyInception", [1, 16, 16], 2)
    assert (context["threads"], context["dtype"], context["torch"]) == (1, "float32", torch.__version__)
    names = [r["backend"] for r in result["backends"]]
    assert names == context["backends"]
    assert names[:4] == ["eager", "--optimize", "--optimize, frozen", "--optimize + jit.freeze"]
    assert ("onnxruntime" in names) == HAS_ORT
    assert "torch.compile" not in names and any("give --compile" in n for n in result["notes"])
    for row in result["backends"]:
        assert set(row) == BACKEND_KEYS
        assert row["agrees"] is True and 0 <= row["max_diff"] <= bench.TOLERANCE
        assert row["latency_ms"] > 0 and row["throughput"] > 0
        assert isinstance(row["page_faults"], int) and row["page_faults"] >= 0
    eager = result["backends"][0]
    assert (eager["max_diff"], eager["latency_ratio"], eager["throughput_ratio"]) == (0.0, 1.0, 1.0)


def test_memory_and_layers_match_the_static_analysis(result):
    analysis = archlang.analyze(SPEC, batch=2)
    memory = result["memory"]
    assert memory["static_bytes"] == analysis.peak_activation_bytes
    assert memory["eager_bytes"] > 0 and memory["optimize_bytes"] > 0 and "profile_memory" in memory["how"]

    model = archlang.build(SPEC)
    leaves = [n for n, m in model.named_modules() if n and not any(m.children()) and not n.startswith("aux1.")]
    rows = result["layers"]
    assert [r["name"] for r in rows] == leaves  # forward order, aux head left out
    assert all(set(r) == LAYER_KEYS for r in rows)
    # every MAC of the inference path sits in a conv or linear module, at the batch measured
    assert sum(r["macs"] for r in rows) == 2 * analysis.totals.macs
    stem = next(r for r in rows if r["name"] == "stem.conv")
    # batch 2 of 1×16×16 in and 16×16×16 out, 16·1·3·3 weights (a conv unit's conv has no bias)
    assert stem["bytes"] == 4 * (2 * (256 + 16 * 256) + 16 * 9)
    assert stem["intensity"] == pytest.approx(stem["macs"] / stem["bytes"])
    assert result["layers_summary"]["forward_ms"] > 0
    assert result["layers_summary"]["profiled"] == 1  # --rounds 1 caps the profiled forwards


def test_phase_times_add_up_to_the_total(result):
    seconds = result["context"]["seconds"]
    assert list(seconds) == ["setup", "batch 1", "batch", "layers", "total"]
    assert all(t >= 0 for t in seconds.values())
    assert sum(t for k, t in seconds.items() if k != "total") == pytest.approx(seconds["total"], abs=0.1)
    assert "wall time: setup (build, --optimize, ONNX export) " in bench.render(result, "text")


def test_the_roofline_has_one_marker_per_layer_with_macs(result, workdir):
    svg = ET.parse(workdir / "roofline.svg").getroot()
    ids = [el.get("id") for el in svg.iter() if el.get("id")]
    measured = [r["name"] for r in result["layers"] if r["macs"] and r["ms"]]
    assert measured and [i.removeprefix("layer-") for i in ids if i.startswith("layer-")] == measured
    assert "roof" in ids  # the measured ceiling and slope
    labels = [i for i in ids if i.startswith("label-")]
    assert 0 < len(labels) <= roofline.LABELLED and all(i.replace("label-", "layer-") in ids for i in labels)
    assert sorted(os.listdir(workdir)) == ["roofline.svg"]  # nothing else written


def test_page_faults_count_memory_mapped_in_again():
    """A backend that takes 64 MiB fresh each call (over glibc's mmap ceiling: mapped on
    malloc, unmapped on free) faults at least once per 2 MiB page, however the kernel backs
    it; one that allocates nothing faults (almost) never."""
    fresh = bench.Backend("fresh", lambda x: [torch.empty(16 << 20).fill_(1.0)[:1]])
    kept = torch.zeros(1)
    idle = bench.Backend("idle", lambda x: [kept])
    _, _, _, faults = bench.interleaved([fresh, idle], torch.zeros(1), 5, 1, float("inf"))
    assert len(faults["fresh"]) == len(faults["idle"]) == 5
    heavy = min(faults["fresh"])
    assert heavy >= (64 << 20) // (2 << 20) and max(faults["idle"]) < heavy / 10


def test_roof_by_hand():
    layers = [  # 2 GMAC in 10 ms; 1 GMAC over 4 GB in 100 ms; a BN moving 8 GB in 200 ms
        {"name": "a", "macs": 2e9, "bytes": 1e8, "ms": 10.0, "gmacs": 200.0, "intensity": 20.0, "flag": ""},
        {"name": "b", "macs": 1e9, "bytes": 4e9, "ms": 100.0, "gmacs": 10.0, "intensity": 0.25, "flag": "◀"},
        {"name": "bn", "macs": 0, "bytes": 8e9, "ms": 200.0, "gmacs": None, "intensity": None, "flag": ""},
    ]
    assert roofline.roof(layers) == (200.0, 40.0)  # GB/s: b's 4 GB in 0.1 s
    shown = roofline.points(layers)
    assert [p["name"] for p in shown] == ["a", "b"]
    assert shown[0]["of_roof"] == 1.0 and shown[1]["of_roof"] == pytest.approx(10.0 / (40.0 * 0.25))


def test_labels_of_points_close_together_stack():
    def layer(name, intensity, gmacs):
        return {"name": name, "intensity": intensity, "gmacs": gmacs}

    # layers of one shape measure alike: their labels go one under the other, top first
    points = [layer("low", 50.0, 10.0), layer("top", 50.0, 10.5), layer("far", 5.0, 10.0)]
    assert roofline.label_drops(points) == {"top": 0, "low": 1, "far": 0}


def test_a_plot_with_a_bad_suffix_fails_before_measuring(run, tmp_path):
    result = run("bench", str(SPEC), "--plot", str(tmp_path / "roof.txt"))
    assert result.exit_code == 1 and "error[E110]" in result.stderr and ".svg, .pdf or .png" in result.stderr
    assert result.stdout == "" and list(tmp_path.iterdir()) == []
    result = run("bench", str(SPEC), "--plot", "-")
    assert result.exit_code == 2 and "--plot needs a file name" in result.stderr


def test_a_plot_without_matplotlib_is_e114(monkeypatch):
    from archlang.backends.plot import roofline_plotter

    from archlang.diagnostics import SpecError

    monkeypatch.delitem(sys.modules, "archlang.backends.plot.roofline", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(SpecError) as err:
        roofline_plotter("roofline.svg")
    assert err.value.diagnostics[0].code == "E114" and "archlang[plot]" in err.value.diagnostics[0].help


@pytest.mark.parametrize("fmt", ["text", "md", "csv"])
def test_formats_show_every_column(result, fmt):
    out = bench.render(result, fmt)
    keys = [key for key, _, _ in bench.BACKEND_COLUMNS + bench.LAYER_COLUMNS]
    titles = [title for _, title, _ in bench.BACKEND_COLUMNS + bench.LAYER_COLUMNS if title]
    for word in keys if fmt == "csv" else titles:
        assert word in out, word
    for row in result["backends"] + result["layers"]:
        assert (row.get("backend") or row["name"]) in out
    if fmt != "csv":  # the context a paper's latency column needs
        assert "1 threads, batch 1 and 2, float32, torch " + torch.__version__ in out
        assert bench.cpu_model() in out


def test_a_backend_that_disagrees_fails_with_e740(run, monkeypatch):
    class OffByAHundredth(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x) + 0.01

    real = bench.optimized_model
    monkeypatch.setattr(bench, "optimized_model", lambda compiled, eager: OffByAHundredth(real(compiled, eager)))
    threads = torch.get_num_threads()
    result = run("bench", str(SPEC), *QUICK, "--threads", "1")
    assert result.exit_code == 1, result.output
    assert "error[E740]: `--optimize`'s outputs differ from eager's by 1.00e-02" in result.stderr
    assert "onnxruntime" not in result.stderr  # the others agree
    table = [line.split() for line in result.stdout.splitlines()]
    assert next(cells for cells in table if cells[:1] == ["--optimize"])[-1] == "NO"
    assert next(cells for cells in table if cells[:1] == ["eager"])[-1] == "yes"
    assert torch.get_num_threads() == threads  # --threads is put back


def test_without_torch_bench_is_one_e114(tmp_path):
    from test_newcomer import BLOCKED_RUNNER

    run = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUNNER, "torch", "bench", str(SPEC), "-o", "out.txt"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("error[E114]: `archc bench` needs torch, which is not installed")
    assert list(tmp_path.iterdir()) == []


def test_bench_without_a_spec_is_a_usage_error(run):
    result = run("bench")
    assert result.exit_code == 2 and "bench needs a SPEC" in result.stderr
