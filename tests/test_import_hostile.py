"""``archc import`` / ``archlang.from_module`` on hostile and unusual inputs: each gives
either a correct spec (it builds, loads the module's state_dict strictly and computes the
same eval function in float64, BN statistics randomised) or one located diagnostic (E720-
E727 naming the module path and the op, with a help line), never a traceback and never a
spec that does not build or computes something else. The oracle is the torch module itself.
"""

from __future__ import annotations

import textwrap
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from bn_stats import randomize_bn
from torch import nn

import archlang
from archlang import SpecError

SHAPE = (3, 16, 16)


class _Net(nn.Module):
    """A tiny net whose forward is ``fn(self, x)``; ``modules`` added by name (any name
    ``add_module`` takes, keywords included)."""

    def __init__(self, fn, **modules):
        super().__init__()
        for name, m in modules.items():
            self.add_module(name, m)
        self._fn = fn

    def forward(self, x):
        return self._fn(self, x)


def _conv(cin=3, cout=4):
    return nn.Conv2d(cin, cout, 3, padding=1)


def _roundtrip(model: nn.Module, shape=SHAPE, call=None) -> str:
    """The spec of ``model``: it builds, loads the state_dict strictly, and equals the model
    in float64 eval mode (BN statistics and affine parameters randomised first)."""
    torch.manual_seed(0)
    text = archlang.from_module(model, shape)
    model = model.double().eval()
    randomize_bn(model, affine=True)
    built = archlang.build(text).double().eval()
    built.load_state_dict(model.state_dict(), strict=True)
    assert list(built.state_dict()) == list(model.state_dict()) or set(built.state_dict()) == set(model.state_dict())
    x = torch.randn(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        expected = call(model, x) if call else model(x)
        torch.testing.assert_close(built(x), expected, rtol=1e-9, atol=1e-12)
    return text


def _refused(model: nn.Module, code: str, *fragments: str, shape=SHAPE, help: bool = True):
    """``from_module`` raises one diagnostic ``code`` whose message holds ``fragments``."""
    with pytest.raises(SpecError) as info:
        archlang.from_module(model, shape)
    (diag,) = info.value.diagnostics
    assert diag.code == code, diag.message
    for fragment in fragments:
        assert fragment in diag.message, diag.message
    if help:
        assert diag.help, diag.message
    return diag


# ---- weight sharing ---------------------------------------------------------------------


def test_conv_called_twice_is_refused_naming_it():
    diag = _refused(_Net(lambda s, x: s.conv(s.conv(x)), conv=_conv(3, 3)), "E724", "conv (torch.nn.Conv2d)")
    assert "called 2 times" in diag.message and "cannot share weights" in diag.message


def test_linear_called_in_two_modules_names_both_uses():
    shared = nn.Linear(8, 8)
    a = _Net(lambda s, x: s.fc(x), fc=shared)
    b = _Net(lambda s, x: s.fc(x), fc=shared)
    model = _Net(lambda s, x: s.b(s.a(torch.flatten(F.adaptive_avg_pool2d(s.c(x), 1), 1))), c=_conv(3, 8), a=a, b=b)
    diag = _refused(model, "E724", "called 2 times", "from `a`", "from `b`")
    assert diag.message.startswith("a.fc (torch.nn.Linear)")


def test_same_conv_in_two_branches_is_refused():
    _refused(_Net(lambda s, x: torch.cat([s.conv(x), s.conv(x)], 1), conv=_conv()), "E724", "called 2 times")


def test_block_with_weights_called_twice_is_refused():
    block = _Net(lambda s, x: s.conv(x), conv=_conv(4, 4))
    _refused(_Net(lambda s, x: s.block(s.block(s.stem(x))), stem=_conv(), block=block), "E724", "block.conv")


def test_parameter_free_module_reused_is_fine():
    """ResNet's one `self.relu` called after every conv."""
    model = _Net(lambda s, x: s.relu(s.c2(s.relu(s.c1(x)))), c1=_conv(), c2=_conv(4, 4), relu=nn.ReLU(inplace=True))
    text = _roundtrip(model)
    assert text.count("relu") == 2 and "relu:" not in text


# ---- forwards archlang cannot follow ----------------------------------------------------


def _tensor_branch(s, x):
    x = s.conv(x)
    return x if x.sum() > 0 else -x


class _Double(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        return grad * 2


@pytest.mark.parametrize(
    ("forward", "code", "fragment"),
    [
        (_tensor_branch, "E723", "torch.fx cannot trace"),
        (lambda s, x: s.fc(s.conv(x).view(x.size(0), -1)), "E723", "reads a tensor's size (`Tensor.size`)"),
        (lambda s, x: s.fc(s.conv(x).reshape(x.shape[0], -1)), "E723", "reads a tensor's size (`Tensor.shape`)"),
        (lambda s, x: s.fc(s.conv(x).flatten(x.dim() - 3)), "E723", "(`Tensor.dim`)"),
        (lambda s, x: _Double.apply(s.conv(x)), "E721", "`*` of a tensor and a constant"),
        (lambda s, x: s.conv(x) * 0.5, "E721", "`*` of a tensor and a constant"),
        (lambda s, x: 1 + s.conv(x), "E721", "`+` of a tensor and a constant"),
        (lambda s, x: s.conv(x) - s.conv2(x), "E721", "_operator.sub"),
        (lambda s, x: s.conv(x).view(1, -1), "E721", "`Tensor.view`"),
        (lambda s, x: torch.add(s.conv(x), s.conv2(x), alpha=2), "E721", "`torch.add` with these arguments"),
        (lambda s, x: s.conv(x).mean(), "E722", "mean over dim=None"),
        (lambda s, x: F.softmax(s.conv(x), -1), "E722", "softmax over dim=-1"),
    ],
    ids=[
        "branch",
        "size",
        "shape",
        "dim",
        "autograd_fn",
        "times_const",
        "plus_const",
        "sub",
        "view",
        "alpha",
        "mean",
        "softmax",
    ],
)
def test_forward_archlang_cannot_follow(forward, code, fragment):
    model = _Net(forward, conv=_conv(), conv2=_conv(), fc=nn.Linear(4 * 256, 2))
    diag = _refused(model, code, fragment, help=code != "E722")
    assert diag.message.startswith(("the top-level module", "torch.fx cannot trace the top-level module"))


def test_refusal_inside_a_submodule_names_its_path():
    inner = _Net(lambda s, x: s.conv(x).view(x.size(0), -1), conv=_conv())
    _refused(_Net(lambda s, x: s.body(x), body=inner), "E723", "`body` (", "Tensor.size")


def test_in_place_ops_round_trip():
    def forward(s, x):
        y = s.a(x).relu_()
        y += s.b(x)
        y *= s.gate(x).sigmoid()
        return F.relu(y, inplace=True)

    _roundtrip(_Net(forward, a=_conv(), b=_conv(), gate=_conv()))


class _BareConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3))

    def forward(self, x):
        return F.conv2d(x, self.weight, padding=1)


class _Buffered(nn.Module):
    def __init__(self, shape, op):
        super().__init__()
        self.conv = _conv()
        self.register_buffer("scale", torch.randn(shape))
        self.op = op

    def forward(self, x):
        return self.op(self.conv(x), self.scale)


@pytest.mark.parametrize(
    ("model", "code", "fragment"),
    [
        (_BareConv(), "E721", "no archlang op for function `torch.conv2d`"),
        (_Buffered((1, 4, 1, 1), lambda y, b: y * b), "E721", "multiplying by `scale`"),
        (_Buffered((4, 1, 1), lambda y, b: b * y), "E721", "multiplying by `scale`"),  # a buffer, not a parameter
        (_Buffered((1, 4, 1, 1), lambda y, b: y + b), "E721", "`+` of a tensor and a constant, buffer or parameter"),
    ],
    ids=["f_conv2d_bare_weight", "buffer_times", "buffer_layer_scale_shape", "buffer_plus"],
)
def test_bare_parameters_and_buffers_in_forward(model, code, fragment):
    _refused(model, code, fragment)


class _Scaled(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.conv = _conv()
        self.gamma = nn.Parameter(torch.rand(shape) + 0.5)

    def forward(self, x):
        return self.gamma * self.conv(x)


def test_layer_scale_parameter_round_trips():
    assert "gamma: layer_scale(" in _roundtrip(_Scaled((4, 1, 1)))


@pytest.mark.parametrize("shape", [(1, 1, 1), (16,), (1, 4, 1, 1), (4, 16, 16)])
def test_parameter_of_another_shape_is_not_a_layer_scale(shape):
    """A (1, 1, 1) parameter broadcasts over 4 channels, a (16,) one over the width;
    archlang's layer_scale has one value per channel: refused, not mis-imported."""
    _refused(_Scaled(shape), "E721", "multiplying by `gamma`")


@pytest.mark.parametrize("lazy", [nn.LazyConv2d(4, 3), nn.LazyLinear(4)])
def test_uninitialised_lazy_modules_are_refused(lazy):
    model = nn.Sequential(nn.Flatten(), lazy) if isinstance(lazy, nn.LazyLinear) else nn.Sequential(lazy)
    diag = _refused(model, "E720", "an uninitialised lazy module", f"({'torch.nn.' + type(lazy).__name__})")
    assert "run the model once" in diag.help


def test_initialised_lazy_module_round_trips():
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.ReLU())
    model(torch.randn(1, *SHAPE))  # now a Conv2d
    _roundtrip(model)


# ---- inputs and outputs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("forward", "what"),
    [
        (lambda s, x: {"out": s.a(x)}, "returns a dict"),
        (lambda s, x: (s.a(x), s.b(x)), "returns a tuple"),
        (lambda s, x: [s.a(x)], "returns a list"),
        (lambda s, x: x, "something other than a layer's output"),
    ],
)
def test_outputs_other_than_one_tensor(forward, what):
    _refused(_Net(forward, a=_conv(), b=_conv()), "E725", what, help="layer's" not in what)


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = _conv()

    def forward(self, x, y):
        return self.conv(x) + self.conv(y)


class _KeywordOnly(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = _conv()

    def forward(self, *, x):
        return self.conv(x)


class _OptionalArgument(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = _conv()

    def forward(self, x, scale: float = 1.0):
        return self.conv(x)


def test_several_inputs_are_refused():
    _refused(_TwoInputs(), "E725", "several tensors (x, y)", help=False)


def test_keyword_only_input_and_unused_optional_argument():
    """The spec takes the one tensor positionally; it computes what ``forward(x=...)`` does."""
    _roundtrip(_KeywordOnly(), call=lambda m, x: m(x=x))
    _roundtrip(_OptionalArgument())


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


def test_name_clashing_with_an_unlabelled_op_is_refused():
    """`self.flatten` is a Linear and `torch.flatten` (unlabelled, so named `flatten`) runs
    in the same scope: the spec cannot hold both."""
    model = _Net(lambda s, x: s.flatten(torch.flatten(x, 1)), flatten=nn.Linear(768, 4))
    _refused(model, "E724", "the name `flatten` is used twice", "flatten: linear(4)")


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
    _refused(_small(bn=bn), "E722", "1 (torch.nn.BatchNorm2d): " + fragment)


@pytest.mark.parametrize(
    "module",
    [
        nn.Dropout2d(0.2),
        nn.BatchNorm1d(8),
        nn.LeakyReLU(),
        nn.PReLU(),
        nn.GroupNorm(2, 8),
        nn.InstanceNorm2d(8),
        nn.Upsample(scale_factor=2),
        nn.AdaptiveMaxPool2d(1),
        nn.ConvTranspose2d(8, 8, 3),
        nn.Conv1d(8, 8, 3),
    ],
    ids=lambda m: type(m).__name__,
)
def test_torch_leaves_without_an_op_are_refused_by_name(module):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), module)
    _refused(model, "E720", f"1 (torch.nn.{type(module).__name__}): no archlang op for this module")


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
    _refused(nn.Sequential(nn.Conv2d(3, 8, 3), module), "E722", f"1 (torch.nn.{type(module).__name__})", fragment,
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


# ---- the CLI --------------------------------------------------------------------------------

_FACTORIES = """
import sys
from torch import nn


def ok(width=4):
    return nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU())


def boom():
    raise RuntimeError("factory failed")


def number():
    return 42


def leaves():
    sys.exit(0)


VALUE = 3
"""


@pytest.fixture
def factories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.py").write_text(textwrap.dedent(_FACTORIES))
    (tmp_path / "syntax.py").write_text("def f(:\n")
    (tmp_path / "exits.py").write_text("raise SystemExit(0)\n")
    (tmp_path / "notes.txt").write_text("not python\n")
    (tmp_path / "adir").mkdir()
    return tmp_path


def _no_traceback(result):
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_package_xyz.make", "cannot load `no_such_package_xyz.make`: No module named"),
        ("f.py:missing", "`f.py` has no `missing`"),
        ("f.py:boom", "calling `f.py:boom` raised RuntimeError: factory failed"),
        ("f.py:number", "returned a value of type `int`, not a torch.nn.Module"),
        ("f.py:VALUE", "`f.py:VALUE` is not callable"),
        ("f.py:leaves", "calling `f.py:leaves` raised SystemExit: 0"),
        ("missing.py:f", "cannot load `missing.py:f`: no file `missing.py`"),
        ("adir.py:f", "no file `adir.py`"),
        ("notes.txt:f", "`notes.txt` is not a Python file"),
        ("syntax.py:f", "importing it raised SyntaxError"),
        ("exits.py:f", "importing it raised SystemExit: 0"),
    ],
)
def test_targets_that_give_no_module_exit_1(run, factories, target, message):
    result = run("import", target, "--input", "3x8x8")
    _no_traceback(result)
    assert result.exit_code == 1, result.output
    assert "error[E726]" in result.output and message in result.output
    assert result.output.count("error[") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["f.py"], "TARGET is"),
        (["f.py:"], "TARGET is"),
        ([":ok"], "TARGET is"),
        (["f.py:ok", "--kw", "width"], "--kw wants KEY=VALUE"),
        (["f.py:ok", "--kw", "=4"], "--kw wants KEY=VALUE"),
        (["f.py:ok", "--kw", "wi dth=4"], "--kw wants KEY=VALUE"),
        (["f.py:ok", "--input", "0x1"], "positive sizes"),
        (["f.py:ok", "--input", "3x"], "--input wants dimensions"),
        (["f.py:ok", "--input", "-1"], "positive sizes"),
        (["f.py:ok", "--input", "3x8x8x8"], "C×H×W"),
        (["f.py:ok", "--input", "axbxc"], "--input wants dimensions"),
        (["f.py:ok", "--name", "1bad"], "--name wants a name"),
        (["f.py:ok", "-o", "f.py"], "it is the model's source file"),
        (["f.py:ok", "-o", "./sub/../f.py"], "it is the model's source file"),
    ],
)
def test_usage_errors_exit_2(run, factories, args, message):
    (factories / "sub").mkdir()
    before = (factories / "f.py").read_text()
    result = run("import", *args)
    _no_traceback(result)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert (factories / "f.py").read_text() == before


def test_output_over_the_target_module_file_is_refused(run, factories, monkeypatch):
    """`pkg.mod:make` with `-o pkg/mod.py`: the module's own file, found after importing it."""
    (factories / "pkg").mkdir()
    (factories / "pkg" / "mod.py").write_text(textwrap.dedent(_FACTORIES))
    monkeypatch.syspath_prepend(str(factories))
    result = run("import", "pkg.mod:ok", "--input", "3x8x8", "-o", "pkg/mod.py")
    assert result.exit_code == 2 and "source file" in result.output
    assert (factories / "pkg" / "mod.py").read_text() == textwrap.dedent(_FACTORIES)


@pytest.mark.parametrize(
    ("output", "reason"), [("nodir/x.arch", "no such file or directory"), ("adir", "is a directory")]
)
def test_output_that_cannot_be_written(run, factories, output, reason):
    result = run("import", "f.py:ok", "--input", "3x8x8", "-o", output)
    _no_traceback(result)
    assert result.exit_code == 1 and f"cannot write `{output}`: {reason}" in result.output


def test_output_is_atomic(run, factories):
    """A failed import leaves an existing output untouched and creates no new file."""
    out = factories / "out.arch"
    out.write_text("previous\n")
    assert run("import", "f.py:boom", "-o", "out.arch").exit_code == 1
    assert out.read_text() == "previous\n"
    assert run("import", "f.py:boom", "-o", "new.arch").exit_code == 1
    assert sorted(p.name for p in factories.iterdir() if "arch" in p.name) == ["out.arch"]
    result = run("import", "f.py:ok", "--kw", "width=5", "--input", "1x8x8", "-o", "out.arch")
    assert result.exit_code == 1 and "error[E727]" in result.output and out.read_text() == "previous\n"
    result = run("import", "f.py:ok", "--kw", "width=5", "--input", "3x8x8", "-o", "out.arch")
    assert result.exit_code == 0, result.output
    assert "conv2d(5, 3)" in out.read_text()
    assert sorted(p.name for p in factories.iterdir() if "arch" in p.name) == ["out.arch"]


def test_model_errors_exit_1_with_one_located_diagnostic(run, factories):
    (factories / "m.py").write_text(
        "from torch import nn\n\ndef shared():\n    c = nn.Conv2d(3, 3, 1)\n    return nn.Sequential(c, c)\n"
    )
    result = run("import", "m.py:shared", "--input", "3x8x8")
    _no_traceback(result)
    assert result.exit_code == 1
    assert "error[E724]" in result.output and "called 2 times" in result.output and "help:" in result.output
