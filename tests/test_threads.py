"""compile_spec, analyze and build from several threads at once give the same, independent
results as one after another.

Shared state checked here: the Lark parser (one instance, ``parser.parser()``, whose
``parse`` keeps its state per call: lexer and parser states are created for each parse),
the parse memo (immutable IR shared between compilations), and the evaluation-step budget
(a ContextVar, so one thread's runaway loop does not spend another's budget).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import archlang
from archlang import compile_spec
from archlang.diagnostics import SpecError
from archlang.frontend import parser

THREADS = 8


def in_threads(fn, args):
    """Run fn over args in THREADS threads, all released at once by a barrier."""
    barrier = threading.Barrier(len(args))

    def task(arg):
        barrier.wait()
        return fn(arg)

    with ThreadPoolExecutor(max_workers=len(args)) as pool:
        return list(pool.map(task, args))


def spec_text(i: int) -> str:
    # distinct texts (the parse memo would otherwise hand every thread the same IR)
    return (
        f"# variant {i}\nnetwork N{i}(width: int = {4 + i}) {{\n  input 3x{16 + i}x{16 + i}\n"
        + "  conv(width, 3, padding=1)\n  relu\n" * (20 + i)
        + "  concat { conv(2, 1); maxpool(3, stride=1, padding=1) }\n}\n"
    )


def test_the_parser_is_reentrant():
    from archlang.frontend.ir import as_data as _plain  # the whole IR, spans included

    texts = [spec_text(i) for i in range(THREADS * 3)]
    parser._parse_cached.cache_clear()
    sequential = [_plain(parser.parse(t, f"f{i}")) for i, t in enumerate(texts)]
    parser._parse_cached.cache_clear()
    chunks = [list(range(i, len(texts), THREADS)) for i in range(THREADS)]
    concurrent = in_threads(lambda chunk: [_plain(parser.parse(texts[i], f"f{i}")) for i in chunk], chunks)
    for chunk, modules in zip(chunks, concurrent):
        assert modules == [sequential[i] for i in chunk]


def _summary(compiled):
    g = compiled.graph
    return list(g.nodes), {n: g.nodes[n].shape for n in g}, g.params


def test_compile_spec_in_threads_with_different_params():
    args = [(spec_text(i), {"width": 10 + i}) for i in range(THREADS)]
    sequential = [_summary(compile_spec(t, p)) for t, p in args]
    concurrent = in_threads(lambda a: _summary(compile_spec(*a)), args)
    assert concurrent == sequential
    for i, (_, shapes, params) in enumerate(concurrent):
        assert params == {"width": 10 + i}
        # 20 + i convs keep (10 + i) channels; the concat adds 2 + (10 + i)
        assert shapes[list(shapes)[-1]] == (2 + 10 + i, 16 + i, 16 + i)


def test_googlenet_in_threads():
    args = [{"num_classes": 10 + i, "aux_logits": i % 2 == 0} for i in range(THREADS)]
    sequential = [_summary(compile_spec("googlenet", p)) for p in args]
    concurrent = in_threads(lambda p: _summary(compile_spec("googlenet", p)), args)
    assert concurrent == sequential
    for i, (nodes, shapes, _) in enumerate(concurrent):
        assert shapes["fc"] == (10 + i,)
        assert ("aux1/fc2" in nodes) == (i % 2 == 0)


def test_one_threads_runaway_loop_does_not_spend_anothers_budget():
    runaway = "network R {\n  input 3x8x8\n  for i in range(1000000) { for j in range(1000000) { const k = j } }\n}\n"

    def run(i):
        try:
            compile_spec(runaway if i % 2 else spec_text(i), max_nodes=1000)
        except SpecError as err:
            return err.diagnostics[0].code
        return "ok"

    assert in_threads(run, list(range(THREADS))) == ["ok", "E605"] * (THREADS // 2)


def test_errors_in_threads_are_independent():
    def run(i):
        text = spec_text(i).replace("relu", "relu(bogus=1)" if i % 2 else "relu")
        try:
            compile_spec(text)
        except SpecError as err:
            return sorted({(d.code, d.span.line) for d in err.diagnostics})
        return []

    results = in_threads(run, list(range(THREADS)))
    for i, res in enumerate(results):
        # relu(...) is on lines 5, 7, ...: an error per line for odd variants, up to the cap of 20
        assert (res == []) == (i % 2 == 0)
        assert all(code == "E202" for code, _ in res)


def test_analyze_in_threads():
    args = [10 + i for i in range(THREADS)]
    sequential = [archlang.analyze("googlenet", num_classes=n, aux_logits=False).totals for n in args]
    concurrent = in_threads(lambda n: archlang.analyze("googlenet", num_classes=n, aux_logits=False).totals, args)
    assert concurrent == sequential
    # the classifier is the only part that depends on num_classes: 1024 * n weights + n biases
    assert concurrent[1].params - concurrent[0].params == 1024 + 1


def test_build_in_threads():
    args = list(range(4))

    def build(i):
        model = archlang.build(spec_text(i), width=10 + i)
        return {k: tuple(v.shape) for k, v in model.state_dict().items()}

    sequential = [build(i) for i in args]
    concurrent = in_threads(build, args)
    assert concurrent == sequential
    for i, shapes in zip(args, concurrent):
        conv_weights = [shape for shape in shapes.values() if len(shape) == 4]
        # 20 + i convs of width 10 + i (3x3; the first sees 3 channels), then the 1x1 conv to 2
        assert conv_weights[0] == (10 + i, 3, 3, 3)
        assert conv_weights[1:-1] == [(10 + i, 10 + i, 3, 3)] * (19 + i)
        assert conv_weights[-1] == (2, 10 + i, 1, 1)
