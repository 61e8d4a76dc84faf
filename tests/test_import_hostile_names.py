"""``archlang.from_module`` on odd module names and module state: names keep their
state_dict keys or are refused with a located E724; module state imports or is refused by
name. Same two outcomes as tests/test_import_hostile.py."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torchvision
from hostile_models import Net as _Net
from hostile_models import conv as _conv
from hostile_models import refused as _refused
from hostile_models import roundtrip as _roundtrip
from torch import nn

# ---- names --------------------------------------------------------------------------------

NAMES = [
    "class", "if", "for", "in", "as", "else", "import", "def", "lambda",  # Python keywords
    "network", "block", "concat", "add", "mul", "repeat", "true", "false", "none", "const", "unit",
    "init", "aux", "at", "outputs", "then", "elif", "and", "or", "not",  # archlang keywords
    "conv2d", "relu", "linear", "identity", "layer_scale",  # op names
    "0", "7", "ü", "名前", "__x", "__", "_", "a-b", "a b", 'q"uote', "back\\slash", "x" * 256,
]  # fmt: skip


@pytest.mark.parametrize("name", NAMES, ids=lambda n: n if len(n) < 20 else "long")
def test_odd_module_names_keep_their_keys(name):
    seq = nn.Sequential(OrderedDict([(name, _conv()), ("bn", nn.BatchNorm2d(4)), ("tail", _conv(4, 4))]))
    _roundtrip(seq)
    inner = nn.Sequential(OrderedDict([(name, _conv()), ("bn", nn.BatchNorm2d(4))]))
    _roundtrip(nn.Sequential(OrderedDict([(name, inner), ("relu", nn.ReLU())])))
    _roundtrip(_Net(lambda s, x: getattr(s, name)(x), **{name: _conv()}))


@pytest.mark.parametrize("name", ["class", "input", "0", "ü", "if"])
def test_odd_names_in_inline_containers(name):
    """ModuleDict / ModuleList children called inline (`self.d[name][0](x)`)."""
    d = nn.ModuleDict({name: nn.ModuleList([_conv(), nn.BatchNorm2d(4)])})
    _roundtrip(_Net(lambda s, x: s.d[name][1](s.d[name][0](x)), d=d))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("input", "the name of the network's input"),
        ("x" * 257, "a name of 257 characters (the limit is 256)"),
        ("a/b", "'/' or a control character"),
        ("a\nb", "'/' or a control character"),
    ],
    ids=["input", "long", "slash", "newline"],
)
def test_names_the_spec_cannot_hold_are_refused(name, reason):
    model = nn.Sequential(OrderedDict([(name, _conv())]))
    diag = _refused(model, "E724", "cannot be a spec layer name", reason)
    assert "\n" not in diag.message


def test_name_clashing_with_an_unlabelled_op_is_renamed():
    """`self.flatten` is a Linear and `torch.flatten` (unlabelled, so it would be named
    `flatten`) runs in the same scope: the parameter-free op gets a free name of its own
    (the compiler finds the clash: importer/text.py), the Linear keeps its key."""
    model = _Net(lambda s, x: s.flatten(torch.flatten(x, 1)), flatten=nn.Linear(768, 4))
    _roundtrip(model)


def test_positional_names_out_of_order():
    _roundtrip(nn.Sequential(OrderedDict([("1", _conv()), ("0", nn.ReLU()), ("c", _conv(4, 4))])))


# ---- module state --------------------------------------------------------------------------


def _small(channels=3, bn=None):
    bn = bn or nn.BatchNorm2d(8)
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1), bn, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)
    )


def test_eval_mode_model_is_left_in_eval_mode():
    model = _small().eval()
    _roundtrip(model)
    assert not any(m.training for m in model.modules())


def test_float64_and_frozen_parameters():
    _roundtrip(_small().double())
    frozen = _small()
    frozen.requires_grad_(False)
    _roundtrip(frozen)
    assert not any(p.requires_grad for p in frozen.parameters())


def test_batchnorm_without_affine_round_trips():
    assert "batchnorm(affine=false)" in _roundtrip(_small(bn=nn.BatchNorm2d(8, affine=False)))


@pytest.mark.parametrize(
    ("bn", "fragment"),
    [
        (nn.BatchNorm2d(8, track_running_stats=False), "track_running_stats=False"),
        (nn.BatchNorm2d(8, momentum=None), "momentum=None"),
    ],
)
def test_batchnorm_archlang_cannot_say(bn, fragment):
    _refused(_small(bn=bn), "E722", "`1` (torch.nn.BatchNorm2d): " + fragment)


@pytest.mark.parametrize(
    "module",
    [
        nn.AlphaDropout(0.2),
        nn.BatchNorm3d(8),
        nn.SELU(),
        nn.RReLU(),
        nn.ReflectionPad2d(1),
        nn.Softsign(),
        nn.FractionalMaxPool2d(2, output_size=3),
        nn.Conv1d(8, 8, 3),
    ],
    ids=lambda m: type(m).__name__,
)
def test_torch_leaves_without_an_op_are_refused_by_name(module):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), module)
    _refused(model, "E720", f"`1` (torch.nn.{type(module).__name__}): no archlang op for this module")


@pytest.mark.parametrize(
    ("module", "fragment"),
    [
        (nn.Conv2d(8, 8, 4, padding="same"), "padding='same' with an even kernel"),
        (nn.Softmax(dim=-1), "softmax over dim=-1 of a 4-d tensor"),
        (nn.AdaptiveAvgPool2d((None, 3)), "output_size=(None, 3)"),
        (nn.Flatten(2), "start_dim=2"),
        (nn.LayerNorm((14, 14)), "normalized_shape=(14, 14)"),
        (nn.BatchNorm2d(8, eps=float("inf")), "the value inf has no spec literal"),
    ],
    ids=["same_even", "softmax_last", "adaptive_none", "flatten2", "layernorm2d_shape", "inf"],
)
def test_supported_leaves_with_arguments_archlang_cannot_say(module, fragment):
    _refused(nn.Sequential(nn.Conv2d(3, 8, 3), module), "E722", f"`1` (torch.nn.{type(module).__name__})", fragment,
             help=False)  # fmt: skip


def test_unused_state_is_refused_not_dropped():
    """A spec without the layer would not load the state_dict strictly."""
    model = nn.Sequential(_conv())
    model.register_buffer("step", torch.zeros(()))
    _refused(model, "E724", "the state_dict key `step` is not used by the forward")
    _refused(_Net(lambda s, x: s.a(x), a=_conv(), b=_conv()), "E724", "`b.weight` is not used")
    transient = nn.Sequential(_conv())
    transient.register_buffer("cache", torch.zeros(3), persistent=False)  # not in the state_dict
    _roundtrip(transient)


@pytest.mark.parametrize(
    ("model", "shape"),
    [
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10)), (1, 28, 28)),
        (nn.Sequential(nn.Conv2d(3, 4, (3, 5), stride=(1, 2), padding=(1, 2)), nn.MaxPool2d((3, 2), ceil_mode=True),
                       nn.AdaptiveAvgPool2d((2, 3)), nn.Flatten(), nn.Linear(24, 2)), (3, 17, 40)),
        (torchvision.models.resnet18(num_classes=3), (1 + 2, 40, 24)),
    ],
    ids=["mnist", "non_square", "resnet18_non_square"],
)  # fmt: skip
def test_one_channel_and_non_square_inputs(model, shape):
    _roundtrip(model, shape)


@pytest.mark.parametrize(
    ("model", "shape", "fragment"),
    [
        (nn.Sequential(nn.Conv2d(3, 4, 7), nn.MaxPool2d(4), nn.Conv2d(4, 4, 5)), (3, 8, 8), "1x3x8x8 input at `1`"),
        (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(100, 3)), (3, 8, 8), "at `2`: mat1 and mat2"),
        (nn.Sequential(nn.Conv2d(3, 4, 3)), (1, 8, 8), "to have 3 channels"),
    ],
    ids=["too_small", "wrong_flat_size", "wrong_channels"],
)
def test_input_the_model_cannot_take(model, shape, fragment, capfd):
    diag = _refused(model, "E727", fragment, shape=shape)
    assert "--input" in diag.help
    assert "Traceback" not in capfd.readouterr().err


def test_inception_on_a_small_input_names_the_failing_layer():
    model = torchvision.models.inception_v3(init_weights=False, aux_logits=False)
    _refused(model, "E727", "1x3x64x64 input at `Mixed_7a.", shape=(3, 64, 64))


@pytest.mark.parametrize(
    "cls", ["concat", "block", "relu", "input", "network", "Ünï", "Imported", "x" * 300], ids=lambda c: c[:12]
)
def test_odd_class_names_make_valid_block_names(cls):
    """A class that occurs more than once becomes a `block` named after it: keywords, op
    names and non-ASCII class names get a name the language takes."""

    def init(self, c):
        nn.Module.__init__(self)
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)

    block = type(cls, (nn.Module,), {"__init__": init, "forward": lambda self, x: torch.relu(self.bn(self.conv(x)))})
    model = nn.Sequential(nn.Conv2d(3, 4, 1), block(4), block(4), nn.Conv2d(4, 8, 1), block(8))
    text = _roundtrip(model)
    assert text.count("block ") == 1
