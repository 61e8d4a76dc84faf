"""Properties of the analyses on random valid specs (tests/strategies.py): invariants that
must hold whatever the network, checked without torch."""

from conftest import examples
from hypothesis import given, settings
from strategies import valid_specs

import archlang
from archlang.analysis.summary import count_params
from archlang.ops import Op

# torch.flatten / Tensor.permute / torch.chunk are views; dropout, stochastic depth and
# identity return their input in eval mode (torch docs)
VIEWS_IN_EVAL = (Op.FLATTEN, Op.DROPOUT, Op.IDENTITY, Op.STOCHASTIC_DEPTH, Op.SPLIT, Op.PERMUTE)

COUNTS = ("params", "buffers", "macs", "flops", "all_ops", "out_elements", "out_bytes")


@settings(max_examples=examples(40))
@given(valid_specs())
def test_analysis_invariants(text):
    compiled = archlang.compile_spec(text)
    a = archlang.analyze(compiled)
    g = compiled.graph
    main = [c for c in a.nodes.values() if c.aux is None]

    # counts are exact non-negative integers, and totals are their sums
    for c in a.nodes.values():
        for name in COUNTS:
            value = getattr(c, name)
            assert type(value) is int and value >= 0, (c.id, name)
        assert c.flops >= c.macs  # fvcore's extras (BN, adaptive pooling) only add to the MACs
        assert c.all_ops >= c.macs
    for name in COUNTS:
        assert getattr(a.totals, name) == sum(getattr(c, name) for c in main)
    # params agree with the independent counter `archc check` uses
    assert a.totals.params + sum(t.params for t in a.aux_totals.values()) == count_params(g)

    # receptive fields never shrink along an edge; a merge takes its largest input
    for c in a.nodes.values():
        srcs = [a.nodes[s].rf for s in g.nodes[c.id].inputs]
        for axis in ("h", "w"):
            mine = getattr(c.rf, axis)
            theirs = [getattr(rf, axis) for rf in srcs]
            if mine.whole or not theirs:
                continue
            assert all(not t.whole and t.size <= mine.size for t in theirs), c.id
            assert all(t.stride <= mine.stride for t in theirs), c.id
            if c.op in (Op.CONCAT, Op.ADD):
                assert mine.size == max(t.size for t in theirs)

    # the peak holds at least the largest single step, at most everything at once; a step
    # that makes a view (torch returns its input, or a view of it, in eval mode) allocates
    # nothing, so its output is not counted as a new tensor
    biggest_step = max(
        c.out_bytes + sum(a.nodes[s].out_bytes for s in set(g.nodes[c.id].inputs))
        for c in main
        if c.op not in VIEWS_IN_EVAL
    )
    assert biggest_step <= a.peak_activation_bytes <= sum(c.out_bytes for c in main)
