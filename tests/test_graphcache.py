"""The compiled-graph cache behind `archc FILE --report` (archlang/graphcache.py): a hit is
the graph a fresh compile makes, holds no pydantic model, and anything doubtful (an edited
import, other --set/--input, a damaged entry, a folder others can write) compiles again."""

import ast
import io
import os
import pickle
import subprocess
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from archlang import graphcache
from archlang.cli.main import main
from archlang.compiler import bundled_specs, compile_spec
from archlang.frontend import ircache
from archlang.limits import DEFAULT_MAX_NODES

ROOT = Path(__file__).resolve().parent.parent
LIB = "block Stem(c) {\n  conv(c, 3)\n  relu\n}\n"
SPEC = 'import "lib/stem.arch"\n\nnetwork N(width = 4) {\n  input 3x8x8\n  Stem(width)\n  conv(8, 1)\n}\n'


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.delenv("ARCHLANG_NO_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "stem.arch").write_text(LIB)
    Path("n.arch").write_text(SPEC)
    ircache.parse.cache_clear()
    yield tmp_path / "tmp" / f"archlang-cache-{os.getuid()}"
    ircache.parse.cache_clear()


def _same_graph(a, b) -> None:
    assert list(a.nodes.items()) == list(b.nodes.items())  # op, attrs, shapes, spans, ...
    assert [a.successors(n) for n in a.nodes] == [b.successors(n) for n in b.nodes]
    assert a == b  # and the graph's own fields: input, output, scopes, ...


def _round_trip(file, params=None, shape=None, max_nodes=1_000_000):
    compiled = compile_spec(file, params, shape, max_nodes)
    graphcache.store(str(file), params or {}, shape, max_nodes, compiled)
    return compiled, graphcache.load(str(file), params or {}, shape, max_nodes)


class _Recording(pickle.Unpickler):
    def __init__(self, data):
        super().__init__(io.BytesIO(data))
        self.classes = set()

    def find_class(self, module, name):
        self.classes.add(module)
        return super().find_class(module, name)


@pytest.mark.parametrize("name", sorted(bundled_specs()))
def test_cached_graph_equals_a_fresh_compile_and_holds_no_pydantic_model(cache, name):
    compiled, hit = _round_trip(bundled_specs()[name])
    assert hit is not None
    _same_graph(compiled.graph, hit.graph)
    assert hit.sources.texts == compiled.sources.texts
    (entry,) = cache.glob("graph-*.pickle")
    with open(entry, "rb") as f:
        pickle.load(f)
        recording = _Recording(f.read())
    recording.load()
    assert not {m for m in recording.classes if m.startswith(("pydantic", "archlang.frontend.ir", "lark"))}


def test_editing_an_imported_file_invalidates(cache):
    compiled, hit = _round_trip(Path("n.arch"))
    _same_graph(compiled.graph, hit.graph)
    Path("lib/stem.arch").write_text(LIB.replace("conv(c, 3)", "conv(c, 5)"))
    assert graphcache.load("n.arch", {}, None, DEFAULT_MAX_NODES) is None
    fresh, hit = _round_trip(Path("n.arch"))
    assert hit.graph.nodes["Stem/conv"].attrs["kernel_size"] == (5, 5)
    Path("n.arch").write_text(SPEC.replace("conv(8, 1)", "conv(9, 1)"))  # and the main file
    assert graphcache.load("n.arch", {}, None, DEFAULT_MAX_NODES) is None


def test_other_sets_inputs_and_limits_are_other_entries(cache):
    _round_trip(Path("n.arch"), {"width": "6"})
    assert graphcache.load("n.arch", {}, None, DEFAULT_MAX_NODES) is None
    assert graphcache.load("n.arch", {"width": "6"}, (3, 16, 16), 1_000_000) is None
    assert graphcache.load("n.arch", {"width": "6"}, None, 50) is None
    _, hit = _round_trip(Path("n.arch"), {"width": "6"}, (3, 16, 16))
    assert hit.graph.nodes["Stem/conv"].shape == (6, 14, 14)
    assert graphcache.load("n.arch", {"width": "6"}, None, 1_000_000).graph.nodes["Stem/conv"].shape == (6, 6, 6)
    assert len(list(cache.glob("graph-*.pickle"))) == 2


def _report(*args) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        try:
            main(["n.arch", "--report", *args], standalone_mode=False)
        except SystemExit as stop:
            assert not stop.code
    return out.getvalue()


def test_damaged_entry_is_compiled_again_silently(cache, monkeypatch):
    first = _report()
    (entry,) = cache.glob("graph-*.pickle")
    for damage in (b"", b"\x80\x05not a pickle", entry.read_bytes()[:-40]):
        entry.write_bytes(damage)
        assert graphcache.load("n.arch", {}, None, DEFAULT_MAX_NODES) is None
        assert _report() == first
    assert graphcache.load("n.arch", {}, None, DEFAULT_MAX_NODES) is not None  # stored again


def test_report_from_the_cache_does_not_compile(cache, monkeypatch):
    first = _report("--set", "width=6")
    import archlang.compiler

    monkeypatch.setattr(archlang.compiler, "compile_spec", lambda *a, **k: pytest.fail("compiled again"))
    assert _report("--set", "width=6") == first


def test_folder_others_can_write_is_not_used(cache):
    cache.mkdir(mode=0o777)
    os.chmod(cache, 0o777)
    _round_trip(Path("n.arch"))
    assert not list(cache.iterdir())
    assert graphcache.load("n.arch", {}, None, DEFAULT_MAX_NODES) is None


def test_switched_off_by_environment(cache, monkeypatch):
    monkeypatch.setenv("ARCHLANG_NO_CACHE", "1")
    assert _round_trip(Path("n.arch"))[1] is None
    assert not cache.exists() or not list(cache.glob("graph-*"))


def test_a_repeated_report_imports_neither_pydantic_nor_lark(tmp_path):
    # The point of the cache: the whole process of a second `--report` (bench_startup.py).
    env = {**os.environ, "TMPDIR": str(tmp_path), "NO_COLOR": "1"}
    env.pop("ARCHLANG_NO_CACHE", None)
    probe = (
        "import sys\nfrom archlang.cli.main import main\n"
        "try:\n    main(['specs/inception_v3.arch', '--report'], standalone_mode=False)\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'lark', 'archlang')))"
    )
    runs = [
        subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True) for _ in "12"
    ]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    first, second = (r.stdout.rsplit("\n", 2)[0] for r in runs)
    assert first == second  # the same report
    modules = ast.literal_eval(runs[1].stdout.splitlines()[-1])
    assert "archlang.graphcache" in modules
    assert not [
        m for m in modules if m.startswith(("pydantic", "lark", "archlang.frontend.ir", "archlang.frontend.parser"))
    ]
    assert "lark" in runs[0].stdout.splitlines()[-1]  # the first run did compile
