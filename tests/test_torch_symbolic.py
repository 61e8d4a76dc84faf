"""Network parameters kept symbolic through lowering: the emitter reads which constructor
value is which parameter from the expressions lowering keeps, instead of compiling the
spec again with each parameter changed. Expected values come from ``archlang.build`` with
the parameter set (an independent compile), never from the emitter."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from archlang.backends.torch import source as torch_source
from archlang.backends.torch.codegen import emit
from generated import import_source

import archlang
from archlang import compiler


def _count_lowerings(monkeypatch) -> list:
    calls = []
    real = compiler.lower

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(compiler, "lower", spy)
    return calls


def _network(source: str, tmp_path, compiled):
    module = import_source(source, tmp_path, "net")
    return getattr(module, compiled.graph.network)


def _agree(mine: torch.nn.Module, spec, params: dict, shape) -> None:
    """Same state_dict keys and shapes as archlang.build(spec, **params), and with its
    weights the same eval outputs."""
    built = archlang.build(spec, **params).double().eval()
    mine = mine.double().eval()
    assert [(k, v.shape) for k, v in mine.state_dict().items()] == [(k, v.shape) for k, v in built.state_dict().items()]
    mine.load_state_dict(built.state_dict(), strict=True)
    x = torch.randn(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), built(x), rtol=1e-9, atol=0)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "alexnet", "lenet5"])
def test_one_compile_per_emit(name, monkeypatch):
    """Numeric parameters and zero_init_residual come from the one lowering: emitting the
    compiled spec lowers nothing again (before: 9 more compiles for resnet50)."""
    calls = _count_lowerings(monkeypatch)
    compiled = archlang.compile_spec(name)
    source, _ = torch_source.generate(compiled)
    assert len(calls) == 1
    params = compiled.graph.params
    assert f"num_classes: int = {params['num_classes']}" in source
    if "zero_init_residual" in params:
        assert "self._initialize_weights(zero_init_residual)" in source


SPEC = textwrap.dedent(
    """
    block Head(n: int, rate: float = 0.5) {
      adaptive_avgpool(1)
      flatten
      dropout(rate)
      fc: linear(n)
    }
    network Net(width: int = 8, extra: int = 3, num_classes: int = 10, rate: float = 0.25) {
      input 3x16x16
      conv1: conv2d(width * 2, 3, padding=1)
      relu
      conv2: conv2d(width + extra, 1)
      relu
      head: Head(num_classes, rate=rate / 2)
    }
    """
)


def test_a_parameter_inside_an_expression_is_a_constructor_argument(tmp_path, monkeypatch):
    calls = _count_lowerings(monkeypatch)
    compiled = archlang.compile_spec(SPEC)
    source = emit(compiled)
    assert len(calls) == 1
    assert "nn.Conv2d(3, width * 2, kernel_size=3, padding=1)" in source
    assert "nn.Conv2d(width * 2, width + extra, kernel_size=1)" in source
    assert "Head(width + extra, num_classes, rate=rate / 2)" in source  # threaded into the block
    assert "nn.Linear(in_channels, n)" in source and "nn.Dropout(p=rate)" in source
    network = _network(source, tmp_path, compiled)
    for params in ({}, {"width": 5, "extra": 1}, {"num_classes": 7, "rate": 0.5}, {"width": 3, "num_classes": 2}):
        torch.manual_seed(0)
        _agree(network(**params), SPEC, params, (3, 16, 16))


@pytest.mark.parametrize(
    "body",
    [
        # the block's output width: a literal where the next layer reads it
        "stage: Stage(width)\n  linear(10)",
        # a block class that holds the width as a literal (one instance: no evidence that
        # it is `c * 3`)
        "linear(width)\n  tail: Tail(width)",
        # a loop count and an `if` test choose structure
        "repeat width { linear(4) }",
        "if width > 4 { linear(4) } else { linear(5) }",
        # an attribute that is not a width or a rate; a split (exact at one width only)
        "linear(4, init_std=width / 100)",
        "linear(width * 2)\n  split(2, 0)",
    ],
    ids=["block-output-width", "block-literal", "repeat", "if", "init-std", "split"],
)
def test_a_parameter_that_shapes_more_than_values_stays_fixed(body, tmp_path):
    spec = textwrap.dedent(
        """
        block Stage(c: int) { linear(c); relu }
        block Tail(c: int) { linear(c * 3) }
        network Net(width: int = 8) {
          input 3x4x4
          conv2d(8, 1)
          adaptive_avgpool(1)
          flatten
          BODY
        }
        """
    ).replace("BODY", body)
    compiled = archlang.compile_spec(spec)
    source = emit(compiled)
    assert "width: int" not in source.split("class Net(")[1]
    assert "compiled with width=8" in source
    torch.manual_seed(0)
    _agree(_network(source, tmp_path, compiled)(), spec, {}, (3, 4, 4))


FLAGS = textwrap.dedent(
    """
    network Net(deep: bool = false, norm: bool = true, width: int = 6) {
      input 3x8x8
      conv1: conv2d(width, 3, padding=1)
      if norm { bn1: batchnorm }
      relu
      if deep {
        conv2: conv2d(width, 3, padding=1)
        relu
      }
      adaptive_avgpool(1)
      flatten
      fc: linear(10)
    }
    """
)


@pytest.mark.parametrize("deep", [True, False])
@pytest.mark.parametrize("norm", [True, False])
def test_a_flag_that_chooses_structure_is_an_if_in_the_class(deep, norm, tmp_path):
    compiled = archlang.compile_spec(FLAGS)
    source = emit(compiled)
    init = source.split("def __init__")[1].split("def forward")[0]
    forward = source.split("def forward")[1]
    assert "if deep:" in init and "if norm:" in init
    assert "if self.deep:" in forward and "if self.norm:" in forward
    network = _network(source, tmp_path, compiled)
    params = {"deep": deep, "norm": norm, "width": 4}
    torch.manual_seed(0)
    _agree(network(**params), FLAGS, params, (3, 8, 8))


INDEPENDENT = textwrap.dedent(
    """
    network Net(a: bool = false, b: bool = true, c: bool = false, d: bool = true, e: bool = false) {
      input 3x8x8
      if a { transform_input }
      conv1: conv2d(8, 3, padding=1)
      if b { bn1: batchnorm }
      relu
      conv2: conv2d(8, 3, padding=1)
      if c { extra: conv2d(8, 1) }
      relu
      adaptive_avgpool(1)
      flatten
      if d { dropout: dropout(0.5) }
      fc: linear(10)
      if e { relu }
    }
    """
)


def test_independent_flags_take_no_further_compile(tmp_path, monkeypatch):
    """Five flags (before: one compile more with each flipped): lowering keeps both sides
    of each `if`, and every one of the 32 combinations builds what archlang.build builds."""
    compiled = archlang.compile_spec(INDEPENDENT)
    calls = _count_lowerings(monkeypatch)
    source, _ = torch_source.generate(compiled)
    assert not calls
    monkeypatch.undo()
    for flag in "abcde":
        assert f"if self.{flag}:" in source
    network = _network(source, tmp_path, compiled)
    for values in itertools.product((True, False), repeat=5):
        params = dict(zip("abcde", values))
        torch.manual_seed(0)
        _agree(network(**params), INDEPENDENT, params, (3, 8, 8))


DEPENDENT = textwrap.dedent(
    """
    network Net(wide: bool = false, drop: bool = false) {
      input 3x8x8
      if wide { conv1: conv2d(16, 1) } else { conv1: conv2d(8, 1) }
      relu
      if drop { dropout: dropout(0.5) }
      conv2: conv2d(4, 1)
      adaptive_avgpool(1)
      flatten
      fc: linear(10)
    }
    """
)


def test_flags_that_change_shapes_are_merged_from_every_combination(tmp_path, monkeypatch):
    """`wide` changes the shapes after it: the combinations are compiled, not assumed."""
    compiled = archlang.compile_spec(DEPENDENT)
    calls = _count_lowerings(monkeypatch)
    source, _ = torch_source.generate(compiled)
    assert len(calls) == 3  # two flips, then the one combination they do not give
    monkeypatch.undo()
    network = _network(source, tmp_path, compiled)
    for wide, drop in itertools.product((True, False), repeat=2):
        params = {"wide": wide, "drop": drop}
        torch.manual_seed(0)
        _agree(network(**params), DEPENDENT, params, (3, 8, 8))


def test_lowerings_in_threads_keep_their_own_records():
    """The parameters an evaluation reads are noted per thread (a ContextVar): lowerings
    running at once record what each records alone."""

    def records(name):
        graph = archlang.compile_spec(name).graph
        exprs = [(n, sorted(d.exprs.items())) for n, d in graph.nodes.items() if d.exprs]
        return graph.structural_params, exprs

    names = ["googlenet", "resnet18", "vgg11_bn", "alexnet"] * 3
    alone = {name: records(name) for name in set(names)}
    assert alone["googlenet"][0] == {"aux_logits", "transform_input", "variant"}
    assert alone["resnet18"][0] == {"depth"}
    with ThreadPoolExecutor(6) as pool:
        for name, got in zip(names, pool.map(records, names)):
            assert got == alone[name]


def test_rechecking_a_binding_at_other_values_is_bounded(tmp_path):
    """The back end evaluates a block argument's expression again at other values of the
    parameter (k = 2 and 5 here): 5 ** 5 ** 5 has 2,185 digits, and 2 to that power would
    never finish. Past the front end's bounds the binding is not taken, so `k` stays fixed
    at its value, as any parameter whose binding cannot be checked."""
    spec = textwrap.dedent(
        """\
        block B(c: int) {
          conv(c, 1)
        }

        network N(k: int = 1) {
          input 3x8x8
          B(2 ** (k ** k ** k) + 1)
          B(2 ** (k ** k ** k) + 2)
        }
        """
    )
    path = tmp_path / "bomb.arch"
    path.write_text(spec)
    proc = subprocess.run(
        [sys.executable, "-m", "archlang.cli", str(path), "--emit", "torch"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "self.B = B(3, 3)" in proc.stdout and "k: int" not in proc.stdout
