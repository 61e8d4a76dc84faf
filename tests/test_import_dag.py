"""Dataflow that is not series-parallel imports as named values (`from`, bare merges)
instead of E724: hand-written modules (top level, a block, an inline submodule) and the law
on random DAG specs (``strategies.dag_specs``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from conftest import examples
from hostile_models import Net as _Net
from hypothesis import HealthCheck, given, settings
from strategies import dag_specs
from torch import nn

import archlang

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import import_law  # noqa: E402


class _NBlock(nn.Module):
    """c = a(x) + b(x), then cat(c, relu(b(x)), x): `b` feeds two merges, not a nesting."""

    def __init__(self, c):
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        b = self.b(x)
        return torch.cat([self.a(x) + b, torch.relu(b), x], 1)


def _exact(model, shape):
    model = model.double().eval()
    text = archlang.from_module(model, shape)
    built = archlang.build(text).double().eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *shape, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(model(x), built(x))
    return text, built


def _body(text):
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_top_level_dag_is_named_values():
    def forward(s, x):
        a = s.a(x)
        return s.c(a) + (a + s.b(x))

    model = _Net(forward, a=nn.Conv2d(3, 3, 1), b=nn.Conv2d(3, 3, 1), c=nn.Conv2d(3, 3, 1))
    text, built = _exact(model, (3, 8, 8))
    assert "b: conv2d(3, 1) from input" in text and "add from c, sum" in text, text
    assert _body(archlang.from_module(built, (3, 8, 8))) == _body(text)  # a fixed point


def test_dag_inside_a_block_is_wired_from_its_input():
    def forward(s, x):
        return s.b2(s.mid(s.b1(s.stem(x))))

    model = _Net(forward, stem=nn.Conv2d(3, 4, 1), b1=_NBlock(4), mid=nn.Conv2d(12, 4, 1), b2=_NBlock(4))
    text, built = _exact(model, (3, 8, 8))
    assert "block _NBlock from x {" in text and "a: conv2d(4, 3, padding=1) from x" in text, text
    assert "concat from sum, relu, x" in text, text
    assert _body(archlang.from_module(built, (3, 8, 8))) == _body(text)


def test_dag_inside_a_submodule_used_once_is_a_block_and_a_fixed_point():
    """An inline sequence that is no chain would be built as an `nn.ModuleDict` run by the
    network (its merges would come back outside it): a wired module is a block even alone."""

    def forward(s, x):
        return s.mid(s.b1(s.stem(x)))

    model = _Net(forward, stem=nn.Conv2d(3, 4, 1), b1=_NBlock(4), mid=nn.Conv2d(12, 4, 1))
    text, built = _exact(model, (3, 8, 8))
    assert "b1: _NBlock\n" in text and "block _NBlock from x {" in text, text
    assert _body(archlang.from_module(built, (3, 8, 8))) == _body(text)


_FOUND = [  # minimal specs hypothesis found (kept as fast cases)
    # three `relu from input` were folded into `repeat 3 as i { "relu_{i + 2}": ... }`
    "network Dag {\n  input 1x6x6\n  v0: conv2d(1, 1, padding=0) from input\n  v1: relu from input\n"
    "  v2: relu from input\n  v3: relu from v0\n  v4: relu from v0\n  v5: concat from v1, v2, v3, v4\n}\n",
    # the block's last `relu` moved out of the inline `v3: { ... }` that `concat` reads by name
    "block B0(c: int) {\n  a: conv2d(c, 3, padding=1)\n  b: conv2d(c, 1) from input\n  s: add from a, b\n"
    "  relu\n}\nnetwork Dag {\n  input 1x6x6\n  v0: relu from input\n  v1: relu from input\n"
    "  v2: add from input, v0\n  v3: B0(1) from v0\n  v4: concat from v1, v2, v3\n}\n",
    # `outputs dict` read `v0` while its last `relu` moved out of it (a wrong output)
    "block B0(c: int) {\n  a: conv2d(c, 3, padding=1)\n  b: conv2d(c, 1) from input\n  s: add from a, b\n"
    "  relu\n}\nnetwork Dag {\n  input 4x9x9\n  v0: B0(5) from input\n  v1: sigmoid from v0\n"
    '  outputs dict(out, "side" = v0)\n}\n',
    # a block of two inputs whose own value nothing reads, only its inner `a` (was E724)
    "block Fuse(c: int) from x, skip {\n  a: conv2d(c, 1)\n  b: conv2d(c, 3, padding=1) from skip\n"
    "  cat: concat from a, b, skip\n  relu\n}\nnetwork Dag {\n  input 3x11x11\n  v0: relu from input\n"
    "  v1: Fuse(1) from input, v0\n  v2: relu from v1.a\n  v3: concat from v0, v2\n}\n",
    # a group branch that is one inline sequence: its last `relu` leaves it as a re-import's does
    "block B0(c: int) {\n  a: conv2d(c, 3, padding=1)\n  b: conv2d(c, 1) from input\n  s: add from a, b\n"
    "  relu\n}\nnetwork Dag {\n  input 1x8x8\n  v0: sigmoid from input\n  v2: B0(4) from input\n"
    "  v3: concat { relu from input; conv2d(4, 1) } from input\n  v4: concat from v0, v2, v3\n}\n",
]


@pytest.mark.parametrize("text", _FOUND)
def test_law_on_found_dag_specs(text):
    outcome = import_law.check(text, fixed_point=True)
    assert outcome.kind == "ok", f"{outcome.kind}: {outcome.detail}"
    assert outcome.fixed_point, outcome.detail


@pytest.mark.slow
@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag_specs())  # with blocks of two inputs (`Fuse from a, b`, `from v3.a`) and `outputs dict`
def test_law_on_dag_specs(text):
    """build(S) -> import -> T compiles, loads strictly, equal outputs and analyses."""
    outcome = import_law.check(text)
    assert outcome.kind == "ok", f"{outcome.kind}: {outcome.detail}\n--- spec:\n{text}"


class _Unit(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x))


class _Aggregate(nn.Module):
    """hgnet's block: every output of a chain of units is concatenated (`outs.append(x)`);
    without ``first`` the input is concatenated too (selecsls: instances wired apart)."""

    def __init__(self, c, first=False):
        super().__init__()
        self.layers = nn.ModuleList([_Unit(c) for _ in range(3)])
        self.agg = nn.Conv2d((3 if first else 4) * c, c, 1)
        self.first = first

    def forward(self, x):
        outs = [] if self.first else [x]
        y = x
        for layer in self.layers:
            y = layer(y)
            outs.append(y)
        return self.agg(torch.cat(outs, 1))


def test_a_block_reads_its_children_by_position_and_instances_wired_apart_stay_apart():
    def forward(s, x):
        return s.c(s.b(s.a(s.stem(x))))

    model = _Net(forward, stem=nn.Conv2d(3, 4, 1), a=_Aggregate(4, first=True), b=_Aggregate(4), c=_Aggregate(4))
    text, built = _exact(model, (3, 8, 8))
    assert 'layers."0"' in text and "block _Aggregate" in text, text
    assert _body(archlang.from_module(built, (3, 8, 8))) == _body(text)
