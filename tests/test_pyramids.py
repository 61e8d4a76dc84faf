"""The bundled `unet` and `resnet50_fpn`, proven against PyTorch.

* `unet` (Ronneberger et al. 2015) against a U-Net written here in plain PyTorch, in the
  layout of milesial/Pytorch-UNet (`inc`, `down1..4`, `up1..4`, `outc`): strict load with no
  key mapping, equal outputs, params = numel, FLOPs = fvcore; padded (default), the paper's
  unpadded form with cropped skips (572×572 -> 388×388, Figure 1), and with batch norm.
* `resnet50_fpn` against torchvision's `resnet_fpn_backbone(backbone_name="resnet50",
  weights=None, norm_layer=nn.BatchNorm2d, trainable_layers=5)`: the same state_dict keys, a
  strict load, float64-equal outputs for every level of the OrderedDict, params = numel,
  FLOPs = fvcore, torchvision's FPN init, `archc check --against`, RF and peak memory in
  the report.
* `outputs dict("0" = fpn.layer_blocks.0)`: a returned value named inside a scope.

The fast tests run small inputs (3×64×64, base 8); the full sizes are `slow`.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import archlang.specs
import pytest
import torch
from bn_stats import randomize_bn
from test_torch_differential import check_emitted_equals_built, fvcore_flops, ruff_clean
from torch import nn

import archlang
from archlang.analysis import analyze


def _archc(*args, stdin: str | None = None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "archlang.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        cwd=cwd,
    )


# ---- U-Net ---------------------------------------------------------------------------------


class DoubleConv(nn.Module):
    def __init__(self, cin: int, c: int, padding: bool, batch_norm: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for n in (cin, c):
            layers.append(nn.Conv2d(n, c, 3, padding=1 if padding else 0, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.ReLU(inplace=True))
        self.double_conv = nn.Sequential(*layers)

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin: int, c: int, padding: bool, batch_norm: bool) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, c, padding, batch_norm))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, c: int, padding: bool, batch_norm: bool) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.conv = DoubleConv(2 * c, c, padding, batch_norm)

    def forward(self, x, skip):
        x = self.up(x)
        # the paper's "cropping is necessary due to the loss of border pixels": the centre
        top, left = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
        skip = skip[:, :, top : top + x.shape[2], left : left + x.shape[3]]
        return self.conv(torch.cat([skip, x], dim=1))


class HandUNet(nn.Module):
    """Ronneberger et al.'s U-Net in plain PyTorch, milesial/Pytorch-UNet's module names."""

    def __init__(self, in_channels=1, num_classes=2, base=64, depth=4, padding=True, batch_norm=False) -> None:
        super().__init__()
        self.depth = depth
        self.inc = DoubleConv(in_channels, base, padding, batch_norm)
        for i in range(1, depth + 1):
            setattr(self, f"down{i}", Down(base * 2 ** (i - 1), base * 2**i, padding, batch_norm))
        for i in range(1, depth + 1):
            setattr(self, f"up{i}", Up(base * 2 ** (depth - i), padding, batch_norm))
        self.outc = nn.Module()
        self.outc.conv = nn.Conv2d(base, num_classes, 1)

    def forward(self, x):
        levels = [self.inc(x)]
        for i in range(1, self.depth + 1):
            levels.append(getattr(self, f"down{i}")(levels[-1]))
        y = levels.pop()
        for i in range(1, self.depth + 1):
            y = getattr(self, f"up{i}")(y, levels.pop())
        return self.outc.conv(y)


def _unet_case(params: dict, input_shape: tuple, hand_kw: dict, flops: bool = True):
    compiled = archlang.compile_spec("unet", params, input_shape=input_shape)
    torch.manual_seed(0)
    model = archlang.build(compiled).double()
    hand = HandUNet(**hand_kw).double()
    assert list(model.state_dict()) == list(hand.state_dict())  # same names, no mapping
    if hand_kw.get("batch_norm"):
        randomize_bn(model, seed=3, affine=True)
    hand.load_state_dict(model.state_dict(), strict=True)
    model.eval(), hand.eval()
    x = torch.randn(2, *input_shape, dtype=torch.float64)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(out, hand(x), rtol=1e-12, atol=1e-12)
    assert out.shape[1:] == compiled.graph.nodes[compiled.graph.output].shape
    params = sum(p.numel() for p in hand.parameters())
    result = analyze(compiled)
    assert result.totals.params == params
    if flops:
        assert result.totals.flops == fvcore_flops(hand.float(), input_shape)
    return compiled, out


SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    ("params", "shape", "flops", "out_hw"),
    [
        # padded: the output has the input's size
        ({"base": 4}, (1, 32, 32), True, (32, 32)),
        ({"base": 4, "batch_norm": True}, (1, 32, 32), False, (32, 32)),
        # unpadded, the smallest tile that gives 4×4: 188 -> 184 -> 92 -> 88 -> 44 -> 40 ->
        # 20 -> 16 -> 8 -> 4 (bottom), then up 8 -> 4, 8 -> 4, 8 -> 4, 8 -> 4
        ({"base": 2, "padding": False}, (1, 188, 188), False, (4, 4)),
        pytest.param({"base": 2, "padding": False}, (1, 188, 188), True, (4, 4), marks=SLOW),
        pytest.param({"base": 8, "batch_norm": True}, (1, 64, 64), True, (64, 64), marks=SLOW),
        pytest.param(
            {"base": 4, "in_channels": 3, "num_classes": 5, "depth": 3}, (3, 32, 32), True, (32, 32), marks=SLOW
        ),
    ],
)
def test_unet_equals_a_unet_written_in_pytorch(params, shape, flops, out_hw):
    _, out = _unet_case(params, shape, params, flops)
    assert out.shape[-2:] == out_hw


def test_the_unpadded_unet_has_the_papers_figure_1_sizes():
    # Ronneberger et al. 2015, Figure 1: a 572×572 tile, 64 channels at the first level,
    # 1024×28×28 at the bottom, skips cropped (64 -> 56, 136 -> 104, 280 -> 200, 568 -> 392),
    # a 2×388×388 segmentation map
    g = archlang.compile_spec("unet", {"padding": False}).graph
    assert g.input_shape == (1, 572, 572)
    assert g.nodes["inc/double_conv/0"].shape == (64, 570, 570)
    assert g.nodes["inc/double_conv/2"].shape == (64, 568, 568)
    assert g.nodes["down4/maxpool_conv/1/double_conv/3"].shape == (1024, 28, 28)
    assert [g.nodes[f"up{i}/up"].shape for i in range(1, 5)] == [(512, 56, 56), (256, 104, 104), (128, 200, 200),
                                                                  (64, 392, 392)]  # fmt: skip
    assert [g.nodes[f"up{i}/cropped"].shape[1:] for i in range(1, 5)] == [(56, 56), (104, 104), (200, 200), (392, 392)]
    assert [g.nodes[f"up{i}/cropped"].inputs[0] for i in range(1, 5)] == [
        "down3/maxpool_conv/1/double_conv/3",
        "down2/maxpool_conv/1/double_conv/3",
        "down1/maxpool_conv/1/double_conv/3",
        "inc/double_conv/3",
    ]
    assert g.nodes[g.output].shape == (2, 388, 388)
    # padded (the default), the same network keeps every level's size: 512 -> 512
    padded = archlang.compile_spec("unet").graph
    assert padded.input_shape == (1, 512, 512) and padded.nodes[padded.output].shape == (2, 512, 512)
    assert not any(n.op.value == "crop" for n in padded.nodes.values())


def test_the_full_size_unet_has_the_parameters_torch_counts():
    # 1 channel in, 2 classes, 64 base, depth 4; torch's count, padded and unpadded alike
    hand = sum(p.numel() for p in HandUNet().parameters())
    for padding in (True, False):
        compiled = archlang.compile_spec("unet", {"padding": padding})
        assert analyze(compiled).totals.params == hand == 31_030_658
    with_bn = sum(p.numel() for p in HandUNet(batch_norm=True).parameters())
    assert analyze(archlang.compile_spec("unet", {"batch_norm": True})).totals.params == with_bn


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "shape"),
    # the paper's 572×572 tile at a quarter of the width (float64 convs at full width and
    # size take minutes on a CPU); the full width at smaller sizes
    [({"padding": False, "base": 16}, (1, 572, 572)), ({}, (1, 64, 64)), ({"batch_norm": True}, (1, 32, 32))],
)
def test_the_full_width_unet_equals_pytorch(params, shape):
    _, out = _unet_case(params, shape, params)
    assert out.shape[-2:] == ((388, 388) if params.get("padding") is False else shape[1:])


def test_the_unpadded_unet_file_is_ruff_clean(tmp_path):
    from archlang.backends.torch.codegen import emit

    source = emit(archlang.compile_spec("unet", {"padding": False}))
    assert "cropped = center_crop(skip, x.shape[-2:])" in source
    (tmp_path / "unet.py").write_text(source)
    ruff_clean(tmp_path)  # the crop helper's lines too


@pytest.mark.slow
def test_the_unet_file_equals_the_built_model(tmp_path):
    for params, shape in (
        ({"base": 4}, (1, 32, 32)),
        ({"base": 4, "padding": False, "batch_norm": True}, (1, 188, 188)),
    ):
        compiled = archlang.compile_spec("unet", params, input_shape=shape)
        check_emitted_equals_built(compiled, tmp_path)
    ruff_clean(tmp_path)


# ---- ResNet-50 FPN ---------------------------------------------------------------------------


def _torchvision_fpn():
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    return resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=nn.BatchNorm2d, trainable_layers=5)


def _fpn_case(shape, batch=2):
    compiled = archlang.compile_spec("resnet50_fpn", input_shape=shape)
    model = archlang.build(compiled).double()
    theirs = _torchvision_fpn().double()
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (k, v.shape) for k, v in theirs.state_dict().items()
    ]
    randomize_bn(theirs, seed=7, affine=True)
    model.load_state_dict(theirs.state_dict(), strict=True)
    model.eval(), theirs.eval()
    x = torch.randn(batch, *shape, dtype=torch.float64)
    with torch.no_grad():
        mine, expected = model(x), theirs(x)
    assert isinstance(mine, OrderedDict) and list(mine) == list(expected) == ["0", "1", "2", "3", "pool"]
    for key in expected:
        torch.testing.assert_close(mine[key], expected[key], rtol=1e-12, atol=1e-12)
    # the analysis' shape of every level is torch's
    for key, nid in compiled.graph.returns:
        assert tuple(mine[key].shape[1:]) == compiled.graph.nodes[nid].shape, key
    return compiled, theirs


def test_resnet50_fpn_equals_torchvisions_backbone():
    # float64 convs are slow on a CPU: one 32×32 image here, larger ones in the slow tests
    compiled, theirs = _fpn_case((3, 32, 32), batch=1)
    # strides 4, 8, 16, 32 and 64 ("pool": max_pool2d(x, 1, 2, 0) keeps a 1×1 map 1×1)
    assert [compiled.graph.nodes[nid].shape for _, nid in compiled.graph.returns] == [
        (256, 8, 8),
        (256, 4, 4),
        (256, 2, 2),
        (256, 1, 1),
        (256, 1, 1),
    ]
    params = sum(p.numel() for p in theirs.parameters())
    assert analyze(compiled).totals.params == params == 26_852_416


@pytest.mark.slow
def test_resnet50_fpn_flops_are_fvcores():
    theirs = _torchvision_fpn()
    for shape in ((3, 64, 64), (3, 90, 70)):
        compiled = archlang.compile_spec("resnet50_fpn", input_shape=shape)
        assert analyze(compiled).totals.flops == fvcore_flops(theirs, shape)


@pytest.mark.slow
def test_resnet50_fpn_equals_torchvision_at_full_size():
    _fpn_case((3, 224, 224))
    # Faster R-CNN's 800×800: strides 4 .. 64 give 200, 100, 50, 25 and 13 ("pool")
    compiled = archlang.compile_spec("resnet50_fpn", input_shape=(3, 800, 800))
    assert [compiled.graph.nodes[nid].shape[1] for _, nid in compiled.graph.returns] == [200, 100, 50, 25, 13]
    assert analyze(compiled).totals.flops == fvcore_flops(_torchvision_fpn(), (3, 800, 800))


@pytest.mark.slow
def test_resnet50_fpn_with_an_odd_input_upsamples_to_each_laterals_size():
    # 3×90×70: layer sizes 23×18, 12×9, 6×5, 3×3 — not doublings; `upsample from a, b`
    # takes b's size as torchvision's F.interpolate(size=lateral.shape[-2:]) does
    _fpn_case((3, 90, 70))


def test_resnet50_fpn_at_an_odd_size_analyses_each_level():
    # by hand, 90×70: conv1 7/2 -> 45×35, max-pool 3/2 -> 23×18, then each stage's stride 2:
    # 12×9, 6×5, 3×3; "pool" (1/2) 2×2. Upsampling 6×5 -> 12×9 is not a factor of 2: the
    # receptive-field centres go fractional, and the report prints them
    compiled = archlang.compile_spec("resnet50_fpn", input_shape=(3, 90, 70))
    levels = [compiled.graph.nodes[nid].shape[1:] for _, nid in compiled.graph.returns]
    assert levels == [(23, 18), (12, 9), (6, 5), (3, 3), (2, 2)]
    result = analyze(compiled)
    assert result.totals.params == 26_852_416
    assert result.nodes["fpn/merged1"].rf.misaligned


def test_resnet50_fpn_init_is_torchvisions():
    compiled = archlang.compile_spec("resnet50_fpn", input_shape=(3, 64, 64))
    nodes = compiled.graph.nodes
    for i in range(4):
        for part in ("inner_blocks", "layer_blocks"):
            assert nodes[f"fpn/{part}/{i}/0"].init == {"scheme": "kaiming_uniform", "mode": "fan_in",
                                                       "nonlinearity": "leaky_relu", "a": 1, "bias": 0}  # fmt: skip
    torch.manual_seed(0)
    model = archlang.build(compiled)
    for i, cin in enumerate((256, 512, 1024, 2048)):
        conv = model.get_submodule(f"fpn.inner_blocks.{i}.0")
        # kaiming_uniform_(a=1): gain sqrt(2 / (1 + 1)) = 1, bound sqrt(3 / fan_in)
        bound = math.sqrt(3 / cin)
        assert conv.bias.abs().max() == 0
        assert bound * 0.95 < conv.weight.abs().max() <= bound
    # the body: Kaiming normal, fan_out, relu: std sqrt(2 / (64 · 7 · 7))
    conv1 = model.get_submodule("body.conv1").weight
    assert abs(conv1.std().item() / math.sqrt(2 / (64 * 49)) - 1) < 0.05
    bn = model.get_submodule("body.layer1.0.bn1")
    assert bn.weight.eq(1).all() and bn.bias.eq(0).all()


def test_resnet50_fpn_file_is_ruff_clean(tmp_path):
    from archlang.backends.torch.codegen import emit

    source = emit(archlang.compile_spec("resnet50_fpn"))
    assert "F.interpolate(fpn_inner_blocks_3, size=fpn_inner_blocks_2.shape[-2:])" in source
    assert '                ("pool", fpn_pool),\n' in source  # one pair a line, as ruff splits it
    (tmp_path / "fpn.py").write_text(source)
    ruff_clean(tmp_path)


@pytest.mark.slow
def test_resnet50_fpn_file_equals_the_built_model(tmp_path):
    check_emitted_equals_built(archlang.compile_spec("resnet50_fpn", input_shape=(3, 64, 64)), tmp_path)


@pytest.mark.slow  # two CLI runs that build torchvision's and the spec's ResNet-50
def test_archc_check_against_torchvisions_backbone(tmp_path):
    # resnet_fpn_backbone's norm_layer is a class, which --kw cannot spell: a factory file
    factory = tmp_path / "tv.py"
    factory.write_text(
        "from torch import nn\n"
        "from torchvision.models.detection.backbone_utils import resnet_fpn_backbone\n\n\n"
        "def make():\n"
        '    return resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=nn.BatchNorm2d,'
        " trainable_layers=5)\n"
    )
    ok = _archc("check", "resnet50_fpn", "--against", f"{factory}:make", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "ok: the 334 state_dict entries match" in ok.stdout
    specs = Path(archlang.specs.__file__).parent
    (tmp_path / "resnet.arch").write_text((specs / "resnet.arch").read_text())
    text = (specs / "resnet50_fpn.arch").read_text()
    # a key slip: the 3×3 of each level one place down its sequence (`layer_blocks.0.1`)
    layer = "{ conv2d(out_channels, 3, padding=1) }"
    (tmp_path / "slip.arch").write_text(text.replace(layer, "{ identity; conv2d(out_channels, 3, padding=1) }"))
    bad = _archc("check", "slip.arch", "--against", f"{factory}:make", cwd=tmp_path)
    assert bad.returncode == 1 and "E730" in bad.stderr and "fpn.layer_blocks.0.1.weight" in bad.stderr, bad.stderr


def test_resnet50_fpn_report_has_rf_and_peak_memory():
    proc = _archc("resnet50_fpn", "--report")
    assert proc.returncode == 0, proc.stderr
    assert "RF (h×w)" in proc.stdout and "peak live activations at inference:" in proc.stdout
    nodes = archlang.analyze("resnet50_fpn").nodes
    # by hand, the stride-4 lateral sees conv1 (7), the 3×3/2 max-pool at jump 2 (+4) and
    # layer1's three 3×3 convs at jump 4 (+8 each): 35
    assert nodes["fpn/inner_blocks/0/0"].rf.h.size == 7 + 2 * 2 + 3 * 2 * 4 == 35
    # the top level is ResNet-50's layer4 plus a 3×3 at jump 32; a lower level's 3×3 reads
    # the sum of its lateral and the level above: the larger field, + 2 × its jump
    layer4 = archlang.analyze("resnet50").nodes["layer4/2/relu_3"].rf.h.size
    assert nodes["fpn/layer_blocks/3/0"].rf.h == archlang.analysis.AxisRF(
        layer4 + 2 * 32, 32, nodes["fpn/layer_blocks/3/0"].rf.h.padding
    )
    assert nodes["fpn/layer_blocks/0/0"].rf.h.size == layer4 + 2 * 4
    assert "fpn/layer_blocks/3/0" in proc.stdout and f"{layer4 + 64}×{layer4 + 64}" in proc.stdout


# ---- a returned value inside a scope -----------------------------------------------------------


def test_outputs_name_a_value_inside_a_scope():
    spec = """
    network P { input 3x8x8
      s: { conv2d(4, 1); mid: relu; conv2d(2, 1) }
      outputs dict(out, "mid" = s.mid, "first" = s.0)
    }
    """
    compiled = archlang.compile_spec(spec)
    assert compiled.graph.returns == (("out", "s/2"), ("mid", "s/mid"), ("first", "s/0"))
    model = archlang.build(compiled).eval()
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        out = model(x)
        first = model.get_submodule("s.0")(x)
        torch.testing.assert_close(out["first"], first)
        torch.testing.assert_close(out["mid"], first.relu())
        torch.testing.assert_close(out["out"], model.get_submodule("s.2")(first.relu()))
    bad = _archc("check", "-", stdin=spec.replace("s.mid,", "s.midd,"))
    assert bad.returncode == 1 and "error[E208]: no value named `s.midd`" in bad.stderr
    assert "did you mean `s.mid`?" in bad.stderr and "<stdin>:4:" in bad.stderr
    formatted = _archc("fmt", "-", stdin=spec)
    assert '"mid" = s.mid, "first" = s.0)' in formatted.stdout


def test_unet_report_has_rf_and_the_peak_with_its_skip_alive():
    proc = _archc("unet", "--report")
    assert proc.returncode == 0, proc.stderr
    assert "RF (h×w)" in proc.stdout
    # by hand, float32, batch 1, 512×512: at the last concat, inc's 64-channel map (the skip,
    # 64 MiB) and up4's 64-channel up-convolution (64 MiB) are alive beside the 128-channel
    # concatenation (128 MiB): 256 MiB
    skip = up = 64 * 512 * 512 * 4
    assert f"peak live activations at inference: {skip + up + 2 * skip:,} bytes (at up4/cat)" in proc.stdout
