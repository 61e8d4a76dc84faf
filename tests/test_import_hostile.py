"""``archc import`` / ``archlang.from_module`` on hostile and unusual inputs: each gives
either a correct spec (it builds, loads the module's state_dict strictly and computes the
same eval function in float64, BN statistics randomised) or one located diagnostic (E720-
E727 naming the module path and the op, with a help line), never a traceback and never a
spec that does not build or computes something else. The oracle is the torch module itself.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from hostile_models import SHAPE
from hostile_models import Net as _Net
from hostile_models import conv as _conv
from hostile_models import refused as _refused
from hostile_models import roundtrip as _roundtrip
from torch import nn

import archlang

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
        return x + 2

    @staticmethod
    def backward(ctx, grad):
        return grad


@pytest.mark.parametrize(
    ("forward", "code", "fragment"),
    [
        (_tensor_branch, "E723", "torch.fx cannot trace"),
        (lambda s, x: s.fc(s.conv(x).view(-1, 4 * 256)), "E722", "a reshape to (-1, 1024)"),
        (lambda s, x: s.conv(x).reshape(x.shape[0], 4, -1), "E722", "a reshape to (B, 4, -1)"),
        (lambda s, x: s.conv(x).flatten(x.dim() - 2), "E722", "flatten(start_dim=2"),
        (lambda s, x: _Double.apply(s.conv(x)), "E721", "`+` of a tensor and a constant"),
        # a constant factor is `scale` (tests/test_import_timm_ops.py); a tensor's sum is not
        (lambda s, x: s.conv(x) * s.conv(x).sum(), "E721", "`Tensor.sum`"),
        (lambda s, x: 1 + s.conv(x), "E721", "`+` of a tensor and a constant"),
        (lambda s, x: s.conv(x) - 1.0, "E721", "`-` of a tensor and a constant"),
        (lambda s, x: s.conv(x).view(1, -1), "E722", "`Tensor.view`: a reshape to (1, -1)"),
        (lambda s, x: torch.add(s.conv(x), s.conv2(x), alpha=2), "E721", "`torch.add` with these arguments"),
        (lambda s, x: s.conv(x).mean(), "E722", "mean over dim=None"),
        (lambda s, x: F.softmax(s.conv(x), -1), "E722", "softmax over dim=-1"),
    ],
    ids=[
        "branch",
        "view_batch_folded",
        "reshape_3d",
        "flatten_at_dim",
        "autograd_fn",
        "times_tensor_sum",
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
    inner = _Net(lambda s, x: s.conv(x).view(1, -1), conv=_conv())
    _refused(_Net(lambda s, x: s.body(x), body=inner), "E722", "`body` (", "Tensor.view", help=False)


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
        (_BareConv(), "E721", "`torch.conv2d` reads tensors besides its input (weight)"),
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
        (lambda s, x: {0: s.a(x)}, "returns a dict with the key 0"),
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


# ---- what a trace does not see ---------------------------------------------------------------


def _hooked(kind):
    model = nn.Sequential(_conv(), nn.ReLU())
    if kind == "forward":
        model[0].register_forward_hook(lambda module, args, out: out * 2)
    elif kind == "pre":
        model[0].register_forward_pre_hook(lambda module, args: (args[0] * 2,))
    else:
        import torch.nn.utils.prune as prune

        prune.l1_unstructured(model[0], "weight", 0.5)
    return model


@pytest.mark.parametrize(("kind", "fragment"), [("forward", "forward hooks"), ("pre", "forward pre hooks"),
                                                ("prune", "forward pre hooks")])  # fmt: skip
def test_layer_hooks_are_refused(kind, fragment):
    """fx records a leaf's call without its hooks: the spec would drop what they do."""
    _refused(_hooked(kind), "E724", f"0 (torch.nn.Conv2d) has {fragment}")


class _ModeDependent(nn.Module):
    def __init__(self, eval_softmax):
        super().__init__()
        self.fc = nn.Linear(768, 5)
        self.eval_softmax = eval_softmax

    def forward(self, x):
        x = self.fc(torch.flatten(x, 1))
        if self.eval_softmax and not self.training:
            return F.softmax(x, 1)
        if not self.eval_softmax and self.training:
            return F.relu(x)
        return F.dropout(x, 0.1, self.training)


@pytest.mark.parametrize(("eval_softmax", "fragment"), [(True, "softmax` in eval mode only"),
                                                        (False, "relu` in training mode only")])  # fmt: skip
def test_forward_that_differs_in_eval_mode_is_refused(eval_softmax, fragment):
    """The spec is read off the training-mode trace; its eval function must be the model's."""
    _refused(_ModeDependent(eval_softmax), "E723", fragment)


def test_dropout_only_in_training_mode_is_fine():
    def forward(s, x):
        x = s.conv(x)
        if s.training:
            x = F.dropout(x, 0.2)
        return x

    _roundtrip(_Net(forward, conv=_conv()))


def test_namedtuple_returned_in_eval_mode_is_refused():
    """archlang's `outputs` namedtuple exists in training mode only (aux heads); a model that
    returns one in eval mode too would get a spec whose eval output is a bare tensor."""
    from collections import namedtuple

    out = namedtuple("Out", ["logits"])
    _refused(_Net(lambda s, x: out(s.conv(x)), conv=_conv()), "E725", "returns a `Out` in eval mode too")


@pytest.mark.parametrize("shape", [(3, 0, 5), (3, 16), (), (3, -1, 4), (3.0, 16, 16), (3, True, 4), (3, 1 << 21, 4)])
def test_input_shape_the_api_refuses(shape):
    _refused(nn.Sequential(_conv()), "E727", "input_shape wants (C, H, W)", shape=shape)


@pytest.mark.parametrize("value", [42, None, nn.Module, lambda x: x])
def test_from_module_of_something_else(value):
    _refused(value, "E726", "from_module wants a torch.nn.Module", help=False)


def test_large_input_needs_no_memory():
    """Shapes are found on fake tensors: a 3x4096x4096 input allocates nothing."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    text = archlang.from_module(model, (3, 4096, 4096))
    assert "input 3x4096x4096" in text


# ---- in-place ops whose effect a functional spec would lose ---------------------------------


def _relu_method_alias(s, x):
    a = s.a(x)
    b = a.relu_()
    return a + b  # 2 * relu(a) in PyTorch


def _relu_module_alias(s, x):
    a = s.a(x)
    return s.relu(a) + a


def _iadd_alias(s, x):
    a = s.a(x)
    kept = a
    a += s.b(x)  # `kept` is changed too
    return torch.cat([a, kept], 1)


def _chunk_view_alias(s, x):
    a = s.a(x)
    first, second = a.chunk(2, 1)
    first.relu_()  # changes `a`
    return torch.cat([a, second], 1)


@pytest.mark.parametrize(
    ("forward", "what"),
    [(_relu_method_alias, "relu_"), (_relu_module_alias, "relu"), (_iadd_alias, "iadd"), (_chunk_view_alias, "relu_")],
    ids=["relu_", "ReLU_inplace", "iadd", "chunk_view"],
)
def test_in_place_op_read_afterwards_is_refused(forward, what):
    model = _Net(forward, a=_conv(), b=_conv(), relu=nn.ReLU(inplace=True))
    _refused(model, "E724", f"`{what}` changes a tensor in place that")


def test_in_place_op_read_before_is_fine():
    """`y += s.b(y)`: the conv reads y before the add changes it (ResNet's `out += identity`)."""

    def forward(s, x):
        y = s.a(x)
        y += s.b(y)
        y *= torch.sigmoid(s.gate(y))
        return F.relu(y, inplace=True)

    _roundtrip(_Net(forward, a=_conv(), b=_conv(4, 4), gate=_conv(4, 4)))


def test_leaf_with_a_patched_forward_is_refused():
    model = nn.Sequential(_conv(), nn.ReLU())
    model[1].forward = lambda x: x * 3
    _refused(model, "E724", "1 (torch.nn.ReLU) has its own `forward` set on the instance")


@pytest.mark.parametrize(
    ("forward", "fragment"),
    [
        (lambda s, x: s.c(x) * torch.sigmoid(s.a(s.c2(x))), "mul inputs disagree in shape"),  # spatial attention
        (lambda s, x: s.c(x) + s.p(s.c2(x)), "add inputs disagree in shape"),
    ],
    ids=["mul_1xHxW", "add_Cx1x1"],
)
def test_broadcast_archlang_cannot_say_is_refused_by_the_compile_check(forward, fragment):
    """torch broadcasts (1, H, W) * (C, H, W); archlang's `mul` only (C, 1, 1): the emitted
    spec would not check, so the import is refused quoting the spec line."""
    last = nn.Conv2d(4, 1, 1) if "mul" in fragment else nn.AdaptiveAvgPool2d(1)
    model = _Net(forward, c=_conv(), c2=_conv(), **{"a" if "mul" in fragment else "p": last})
    _refused(model, "E724", "archlang cannot write this model as a spec", fragment, "(spec line `")
