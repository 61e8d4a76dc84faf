"""What a new user trips over (issue 22, items 3-5; items 1, 2 and 6: test_newcomer.py), each
run as a user runs it: ``archc`` in a subprocess, its output read as a person reads it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def archc(*args: str, columns: int = 80, cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": str(columns), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "archlang.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        input=stdin,
    )


def check_text(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    spec = tmp_path / "net.arch"
    spec.write_text(text)
    return archc("check", spec.name, cwd=tmp_path)


def help_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.lstrip().startswith("= help:"))


# ---- item 4: help and messages --------------------------------------------------------------


def test_help_synopsis_lists_every_command_and_cuts_no_summary():
    proc = archc("--help")
    assert proc.returncode == 0, proc.stderr
    synopsis = proc.stdout.split("Options of archc FILE")[0]
    commands = proc.stdout.split("\nCommands:\n")[1]
    for name in ("check", "lint", "fmt", "diff", "train", "eval", "export", "import", "bench"):
        assert f"archc {name} " in synopsis, name
        assert re.search(rf"^  {name} ", commands, re.M), name
    # every summary is whole: each command's text ends a sentence, nothing ends in "..."
    entries = re.split(r"\n(?=  \w)", commands.strip("\n"))
    assert len(entries) == 9
    for entry in entries:
        assert entry.rstrip().endswith("."), entry
        assert "..." not in entry, entry
    assert "`path/to/file.py:make_model`." in " ".join(commands.split())
    assert max(map(len, proc.stdout.splitlines())) <= 80


def test_malformed_input_dims_are_named_as_such(tmp_path):
    proc = check_text(tmp_path, "network N {\n  input 3x32x32x\n  conv(8, 3)\n}\n")
    assert proc.returncode == 1
    assert "malformed input dimensions `3x32x32x`" in proc.stderr
    assert "unknown layer" not in proc.stderr
    assert "--> net.arch:2:9" in proc.stderr or "net.arch:2:9" in proc.stderr
    assert "3x32x32" in help_line(proc.stderr)
    # a layer after a well-formed input on the next line is still a layer
    assert check_text(tmp_path, "network N {\n  input 3x32x32\n  xconv(8, 3)\n}\n").stderr.count("unknown layer") == 1


def test_block_usage_shows_default_values(tmp_path):
    proc = check_text(tmp_path, "network N {\n  input 3x32x32\n  stacked3x3(8, strid=2)\n}\n")
    assert proc.returncode == 1
    assert "usage: stacked3x3(out: int, mid: int = out, stride: int = 1)" in proc.stderr
    assert "= ..." not in proc.stderr
    proc = check_text(
        tmp_path,
        'block B(c: int, s: str = "a", t = (1,), e = if c > 1 then -c * (2 + 3) else 2) { conv(c, 1) }\n'
        "network N {\n  input 3x32x32\n  B(3, 1, 2, 3, 4)\n}\n",
    )
    assert 'usage: B(c: int, s: str = "a", t = (1,), e = if (c > 1) then (-c * (2 + 3)) else 2)' in proc.stderr


def test_concat_note_points_at_the_users_line_not_the_prelude(tmp_path):
    proc = check_text(tmp_path, "network N {\n  input 3x32x32\n  concat { stacked3x3(8); conv(8, 1, stride=2) }\n}\n")
    assert proc.returncode == 1 and "error[E401]" in proc.stderr
    assert "<prelude>" not in proc.stderr
    notes = proc.stderr.split("note: ")[1:]
    assert len(notes) == 2
    assert "stacked3x3/conv_2" in notes[0] and "net.arch:3:12" in notes[0], notes[0]
    assert "net.arch:3:27" in notes[1], notes[1]


def test_if_in_a_group_gets_the_braces_hint(tmp_path):
    body = "network N(flag: bool = true) {\n  input 8x32x32\n  add { conv(8, 1); if flag { %s } }\n}\n"
    proc = check_text(tmp_path, body % "conv(16, 1); conv(8, 1)")
    assert proc.returncode == 1 and "error[E402]" in proc.stderr
    assert "`if ... { { a; b } }`" in help_line(proc.stderr)
    # the hinted form is one branch, and compiles
    assert check_text(tmp_path, body % "{ conv(16, 1); conv(8, 1) }").returncode == 0
    # a merge error without an `if` among the branches gets no such hint
    proc = check_text(tmp_path, "network N {\n  input 8x32x32\n  add { conv(8, 1); conv(16, 1) }\n}\n")
    assert "error[E402]" in proc.stderr and "{ {" not in proc.stderr


def test_missing_brace_is_reported_at_the_unclosed_brace(tmp_path):
    # the `}` of A is missing: the parser only notices at the next block
    text = (
        "block A(c: int) {\n  conv(c, 3, padding=1)\n\nblock B(c: int) {\n  conv(c, 1)\n}\n\n"
        "network N {\n  input 3x8x8\n  A(4)\n}\n"
    )
    proc = check_text(tmp_path, text)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "error[E101]: unclosed `{`"
    assert lines[1].strip() == "--> net.arch:1:17"
    assert "^ this `{` is never closed" in proc.stderr
    assert "note: the parser stopped here" in proc.stderr and "net.arch:4:" in proc.stderr
    # inside a network, the layout says which `{` is open: concat's, not the network's
    proc = check_text(tmp_path, "network N {\n  input 3x8x8\n  concat {\n    conv(4, 1)\n    conv(4, 1)\n\n  relu\n}\n")
    assert "--> net.arch:3:10" in proc.stderr.splitlines()[1]
    # an unclosed `(` is not blamed on a brace
    proc = check_text(tmp_path, "network N {\n  input 3x8x8\n  conv(4, 1,\n}\n")
    assert "unclosed `{`" not in proc.stderr and "error[E101]: unexpected '}'" in proc.stderr


# ---- item 5: inits, as a user writing torchvision's models by hand needs them ----------------

TINY_DENSENET = """
# torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16,
# bn_size=2, num_classes=10), written by hand with torchvision's init.
block DenseLayer() {
  norm1: batchnorm
  relu
  conv1: conv2d(16, 1, bias=false)
  norm2: batchnorm
  relu
  conv2: conv2d(8, 3, padding=1, bias=false)
}

block DenseBlock(count: int) {
  repeat count as i {
    concat {
      identity
      "denselayer{i + 1}": DenseLayer
    }
  }
}

network TinyDenseNet(num_classes: int = 10) {
  input 3x32x32
  init kaiming_normal
  features: {
    conv0: conv2d(16, 7, stride=2, padding=3, bias=false)
    norm0: batchnorm
    relu
    pool0: maxpool(3, stride=2, padding=1)
    denseblock1: DenseBlock(2)
    transition1: { norm: batchnorm; relu; conv: conv2d(16, 1, bias=false); avgpool(2) }
    denseblock2: DenseBlock(2)
    norm5: batchnorm
  }
  relu
  adaptive_avgpool
  flatten
  init default(bias=0)
  classifier: linear(num_classes)
}
"""


def _emitted_model(tmp_path: Path, text: str):
    """The spec's ``--emit torch`` module, written by archc in a subprocess, instantiated."""
    import importlib.util

    spec = tmp_path / "net.arch"
    spec.write_text(text)
    proc = archc(str(spec), "--emit", "torch", "-o", str(tmp_path / "net_model.py"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    loaded = importlib.util.spec_from_file_location("net_model", tmp_path / "net_model.py")
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


def test_init_default_takes_bias_and_gives_torchvisions_densenet_init(tmp_path):
    import torch
    import torchvision

    module = _emitted_model(tmp_path, TINY_DENSENET)
    torch.manual_seed(0)
    ours = module.TinyDenseNet().state_dict()
    torch.manual_seed(0)
    theirs = torchvision.models.DenseNet(
        growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=2, num_classes=10
    ).state_dict()
    assert list(ours) == list(theirs)
    assert [k for k in theirs if not torch.equal(ours[k], theirs[k])] == []
    assert float(theirs["classifier.bias"].abs().sum()) == 0 and float(theirs["classifier.weight"].std()) > 0


def test_init_std_under_kaiming_keeps_the_schemes_bias(tmp_path):
    import torch

    text = (
        "network Sq {\n  input 3x16x16\n  init kaiming_uniform(bias=0)\n  conv2d(8, 3, padding=1)\n  relu\n"
        "  final_conv: conv2d(10, 1, init_std=0.01)\n}\n"
    )
    module = _emitted_model(tmp_path, text)
    source = (tmp_path / "net_model.py").read_text()
    torch.manual_seed(0)
    model = module.Sq()
    assert float(model.conv2d.bias.abs().sum()) == 0
    assert float(model.final_conv.bias.abs().sum()) == 0  # was PyTorch's uniform bias
    assert 0.005 < float(model.final_conv.weight.std()) < 0.02  # std 0.01, not Kaiming's ~0.45
    assert '"trunc_normal_"' in source
    # the generated code says so where it happens
    assert "# init_std= under kaiming_uniform: trunc_normal_ weights, the bias of that init\n" in source
    assert "        # (final_conv).\n" in source


# ---- item 3: output for people ------------------------------------------------------------


def _diff_lines(columns: int | None) -> list[str]:
    args = ("diff", "resnet", "resnet", "--set-b", "depth=34")
    if columns is None:  # a pipe, no COLUMNS: the whole table, for grep and files
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        proc = subprocess.run(
            [sys.executable, "-m", "archlang.cli", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, "NO_COLOR": "1", "PYTHONPATH": str(ROOT)},
        )
    else:
        proc = archc(*args, columns=columns)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_diff_fits_the_terminal_width():
    titles = ["A vs B", "output A", "params A", "Δ% params", "MACs B", "Δ FLOPs", "RF B"]
    for columns in (60, 80, 100):
        lines = _diff_lines(columns)
        assert max(map(len, lines)) <= columns, columns
        headers = [line for line in lines if line.startswith("  name ")]
        assert len(headers) >= 2, columns  # cut into panels, each headed by the names
        text = "\n".join(headers)
        for title in titles:
            assert title in text, (columns, title)
        # each panel lists every block, the totals included
        assert sum(line.startswith("  layer4 ") for line in lines) == len(headers)
        assert sum(line.startswith("  total (inference) ") for line in lines) == len(headers)
    # the params panel reads as before: A, B, Δ and Δ% side by side for layer4
    layer4 = [line.split() for line in _diff_lines(80) if line.startswith("  layer4 ")]
    assert ["layer4", "14,964,736", "13,114,368", "-1,850,368", "-12.4%"] in layer4
    whole = _diff_lines(None)
    assert sum(line.startswith("  name ") for line in whole) == 1 and max(map(len, whole)) > 200


def test_resnet_stages_are_named_by_their_blocks():
    # torchvision's ResNet-50 stages hold 3, 4, 6, 3 Bottlenecks; ResNet-18's 2 BasicBlocks each
    for depth, expected in ((50, [3, 4, 6, 3]), (18, [2, 2, 2, 2])):
        block = "Bottleneck" if depth == 50 else "BasicBlock"
        proc = archc("resnet", "--set", f"depth={depth}", "--report", "--depth", "1", columns=200)
        assert proc.returncode == 0, proc.stderr
        rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("  layer")}
        for i, count in enumerate(expected, 1):
            assert re.match(rf"  layer{i}\s+{count} × {block}\s+\d", rows[f"layer{i}"]), rows[f"layer{i}"]
        assert "branch" not in proc.stdout
    dot = archc("resnet", "--emit", "dot").stdout
    for i, count in enumerate([3, 4, 6, 3], 1):
        assert f"<b>layer{i}</b></td></tr><tr><td>{count} × Bottleneck<" in dot
    assert ">branch<" not in dot


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_png_diagrams_take_a_dpi(tmp_path):
    import shutil

    import pytest

    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    sizes = {}
    for dpi in (None, 192):
        out = tmp_path / f"resnet{dpi}.png"
        proc = archc("resnet", "--emit", "png", *(["--dpi", str(dpi)] if dpi else []), "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        sizes[dpi] = _png_size(out)
    # twice Graphviz's default 96 dpi: twice the pixels each way (within rounding)
    for default, doubled in zip(sizes[None], sizes[192]):
        assert abs(doubled - 2 * default) <= 2, sizes
    proc = archc("resnet", "--emit", "svg", "--dpi", "192")
    assert proc.returncode == 2 and "--dpi sizes PNG images" in proc.stderr


def test_plot_label_inside_and_axis_in_thousands(tmp_path):
    out = tmp_path / "lenet.png"
    proc = archc("lenet5", "--emit", "plot", "--dpi", "75", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    width, height = _png_size(out)
    # LeNet-5's 13 blocks: a figure 0.32 × 13 + 2.5 = 6.66 inches by 6, at 75 dpi
    assert abs(width - 6.66 * 75) <= 1 and height == 6 * 75, (width, height)

    from archlang.backends.plot.costs import build_figure

    from archlang.analysis import run_passes
    from archlang.compiler import compile_spec

    fig = build_figure(run_passes(compile_spec("lenet5").graph))
    fig.canvas.draw()
    top, bottom = fig.axes[:2]
    # LeNet-5: 61,706 parameters, 416,520 MACs (FACTS: the per-layer sums) -> thousands
    assert bottom.get_ylabel() == "parameters (thousands)" and top.get_ylabel() == "MACs (thousands)"
    assert 40 < bottom.get_ylim()[1] < 60
    label = next(t for ax in fig.axes for t in ax.texts if t.get_text() == "input 32 px")
    inside = next(ax for ax in fig.axes if label in ax.texts).get_window_extent()
    box = label.get_window_extent()
    assert inside.y0 <= box.y0 and box.y1 <= inside.y1 and inside.x0 <= box.x0 and box.x1 <= inside.x1


def test_variant_classes_are_named_for_what_they_are(tmp_path):
    spec = ROOT / "tests" / "data" / "mobilenet_like.arch"
    first = archc(str(spec), "--emit", "torch")
    assert first.returncode == 0, first.stderr
    classes = re.findall(r"^class (\w+)\(nn\.Module\):", first.stdout, re.M)
    assert classes == [
        "ConvBNReLU6Strided",  # 3×3, stride 2
        "ConvBNReLU6Depthwise",  # groups = channels = 32
        "ConvBNReLU6Pointwise",  # 1×1
        "ConvBNReLU6DepthwiseStrided",
        "ConvBNReLU6Depthwise_2",  # groups = 144
        "InvertedResidual",
        "InvertedResidual_2",
        "InvertedResidual_3",
        "MB",
    ]
    assert not [c for c in classes if re.search(r"(K|Groups|Stride|Inp|Out|Expand)\d", c)]
    assert '"""Block `ConvBNReLU6` (mobilenet_like.arch:3) for k=3, stride=1, groups=144.' in first.stdout
    # the 1×1 class's stride of 1 is no `stride=k` (k is 1 too in every instance of it)
    assert "stride=k" not in first.stdout and "k=stride" not in first.stdout
    assert archc(str(spec), "--emit", "torch").stdout == first.stdout  # deterministic


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_the_report_fits_the_terminal(columns):
    proc = subprocess.run(
        [sys.executable, "-m", "archlang.cli", "resnet50", "--report"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": str(columns)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= columns
    text = proc.stdout
    for title in ("name", "op", "output", "params", "MACs", "FLOPs", "RF (h×w)", "memory"):
        assert title in text, title
    assert sum("layer4/2/conv3" in line for line in lines) >= 2 or columns >= 120  # each panel names the row
