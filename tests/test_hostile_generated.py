"""Generated PyTorch code always imports, builds and runs, or the spec is refused with a
located diagnostic (issue 14, finding 3). Each test uses the emitted file: it imports it,
builds the network and runs a forward; the refusals are checked for code and line:col.
The spec-level refusals (outputs names, init arguments, parameter-tensor size) are in
tests/bad/ (outputs_*, init_trunc_normal_*, *_weight_too_large)."""

from __future__ import annotations

import ast
import collections

import pytest
import torch
from archlang.backends.torch import source
from archlang.backends.torch.texts import docstring
from click.testing import CliRunner
from generated import import_file
from graph_reference import evaluate

import archlang
from archlang import compile_spec
from archlang.cli.main import main
from archlang.diagnostics import SpecError

MODES = [pytest.param([], id="plain"), pytest.param(["--optimize"], id="optimize")]


def _emit(tmp_path, text: str, flags=(), stem="net"):
    spec = tmp_path / f"{stem}.arch"
    spec.write_text(text, encoding="utf-8")
    out = tmp_path / f"{stem}_model.py"
    result = CliRunner().invoke(main, [str(spec), "--emit", "torch", *flags, "-o", str(out)], env={"NO_COLOR": "1"})
    return spec, out, result


def _network(module, name="N"):
    return getattr(module, name)


# ---- docstrings never split an escape ---------------------------------------------------


@pytest.mark.parametrize("indent", ["", "    ", "        "])
def test_docstring_lines_never_split_an_escape(indent):
    """Fails on 8fb8b40 (main before this fix): ``textwrap`` broke the
    escaped ``\\\\N`` after its first backslash at some widths, leaving ``\\N`` at the start
    of the next line (``SyntaxError: malformed \\N character escape``)."""
    for n in range(120):
        text = "a " + "x" * n + "\\N" + "y" * n + ' \\N "q"' + "\\"
        lines = docstring([text], indent)
        # the docstring of a module, a function, a method: as deep as ``indent``
        heads = ["", "def f():\n", "class C:\n    def f(self):\n"][len(indent) // 4]
        tree = ast.parse(heads + "\n".join(lines) + "\n")  # raises on a malformed escape
        for _ in range(len(indent) // 4):
            tree = tree.body[0]
        doc = ast.get_docstring(tree, clean=False)
        # the text survives (long words are broken across lines), escapes undone by Python
        assert "".join(doc.split()) == "".join(text.split()), n


@pytest.mark.parametrize("flags", MODES)
@pytest.mark.parametrize("length", [70, 74, 78, 82])
def test_long_names_and_string_defaults_ending_in_backslash_n(tmp_path, flags, length):
    """Proof on the current emitter (labels are strings, not docstring text): a layer label
    and a ``str`` parameter default ending in ``\\N`` give a file that imports and runs."""
    long = "x" * length
    text = (
        f'network N(s: str = "{long}\\\\N{long}\\\\N") {{\n  input 3x8x8\n'
        f'  "{long}\\\\N": conv(4, 1)\n  "{long}y\\\\N": batchnorm\n  relu\n}}\n'
    )
    _, out, result = _emit(tmp_path, text, flags)
    assert result.exit_code == 0, result.output
    model = _network(import_file(out))().eval()
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 8, 8)


def test_a_generator_bug_becomes_a_located_internal_error(monkeypatch):
    """Never a broken file: source that Python cannot read is refused (E900) at a layer."""
    from archlang.backends.torch.emit import Emitter

    real = Emitter.generate

    def broken(self, *args, **kwargs):
        text, name = real(self, *args, **kwargs)
        return text.replace("super().__init__()", 'super().__init__("\\N")', 1), name

    monkeypatch.setattr(Emitter, "generate", broken)
    compiled = compile_spec("network N {\n  input 3x8x8\n  c: conv(4, 1)\n}\n")
    with pytest.raises(SpecError) as info:
        source.generate(compiled)
    (d,) = info.value.diagnostics
    assert d.code == "E900" and d.span is not None and d.span.line == 2  # no name on the line: the first


# ---- outputs types --------------------------------------------------------------------


def test_outputs_named_ordered_dict_does_not_shadow_collections(tmp_path):
    """An outputs type may be called ``OrderedDict``: the file keeps ``collections.OrderedDict``
    for its ``nn.Sequential(OrderedDict(...))`` and still returns a namedtuple of that name."""
    text = (
        "network N {\n  input 3x8x8\n  h: conv(4, 1)\n"
        "  aux side at h: { flatten; linear(2) }\n"
        "  outputs OrderedDict(logits, side_logits = side)\n"
        "  seq: { c1: conv(4, 1); r1: relu }\n  flatten\n  logits: linear(3)\n}\n"
    )
    _, out, result = _emit(tmp_path, text)
    assert result.exit_code == 0, result.output
    module = import_file(out)
    assert module.OrderedDict is collections.OrderedDict
    model = _network(module)().train()
    result = model(torch.zeros(2, 3, 8, 8))
    assert type(result).__name__ == "OrderedDict" and result._fields == ("logits", "side_logits")
    assert result.logits.shape == (2, 3) and result.side_logits.shape == (2, 2)


# ---- layer names Python reserves ---------------------------------------------------------


@pytest.mark.parametrize("label", ["__call__", "__class__", "__dict__", "__init__", "__setattr__"])
def test_dunder_labels_are_located_E701(tmp_path, label):
    """Fails on 8fb8b40 (main before this fix): these passed E701 and building or forward
    then failed."""
    _, _, result = _emit(tmp_path, f'network N {{\n  input 3x8x8\n  "{label}": conv(4, 1)\n}}\n')
    assert result.exit_code == 1, result.output
    assert "error[E701]" in result.output and "net.arch:3:" in result.output
    assert label in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("flags", MODES)
def test_double_underscore_label_keeps_its_spec_name_as_the_key(tmp_path, flags):
    """Fails on 8fb8b40: ``self.__w`` in the class body was name-mangled to ``_N__w``. The
    state_dict key is the spec name, in the file and in :func:`archlang.build` alike."""
    text = 'network N {\n  input 3x8x8\n  "__w": conv(4, 1)\n  __b: batchnorm\n  relu\n}\n'
    spec, out, result = _emit(tmp_path, text, flags)
    assert result.exit_code == 0, result.output
    model = _network(import_file(out))().eval()
    expected = {"__w.weight", "__w.bias"} | (
        set()
        if flags
        else {f"__b.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    )
    assert set(model.state_dict()) == expected
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 8, 8)
    if not flags:
        built = archlang.build(str(spec))
        assert set(built.state_dict()) == expected
        model.load_state_dict(built.state_dict())  # strict: the two agree
        # and the file computes the spec (the graph evaluated op by op, not by the generator)
        x = torch.randn(1, 3, 8, 8)
        graph = archlang.compile_spec(str(spec)).graph
        torch.testing.assert_close(model(x), evaluate(graph, built.state_dict(), x))


# ---- identifiers the emitter writes --------------------------------------------------------


@pytest.mark.parametrize("flags", MODES)
@pytest.mark.parametrize("param", ["self", "lambda", "super", "class", "__p", "torch", "x"])
def test_block_and_network_parameters_named_like_python(tmp_path, flags, param):
    """``self``/``lambda``/``super`` failed with --optimize at 1917b74 (issue 14) and pass on
    the rewritten emitter (a proof); ``__p`` fails on 8fb8b40 (a mangled keyword argument).
    Every emitted identifier goes through the namespace in both modes; the numbers 4/8/5
    show the arguments reach the right layers."""
    text = (
        f"block B({param}: int = 4) {{\n  c: conv({param}, 1)\n  bn: batchnorm\n  relu\n}}\n"
        f"network N({param}: int = 5) {{\n  input 3x8x8\n  b: B(4)\n  b2: B(8)\n  b3: B({param})\n}}\n"
    )
    _, out, result = _emit(tmp_path, text, flags)
    assert result.exit_code == 0, result.output
    model = _network(import_file(out))().eval()
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 5, 8, 8)
    weights = {k: v.shape for k, v in model.state_dict().items() if k.endswith("c.weight")}
    assert weights == {"b.c.weight": (4, 3, 1, 1), "b2.c.weight": (8, 4, 1, 1), "b3.c.weight": (5, 8, 1, 1)}
    if not flags:  # --optimize folds the BNs: its keys are not the graph's
        x = torch.randn(1, 3, 8, 8)
        torch.testing.assert_close(model(x), evaluate(compile_spec(text).graph, model.state_dict(), x))


def test_double_underscore_names_inside_blocks_and_groups(tmp_path):
    """Fails on 8fb8b40 the same way, one level down (``self.__w`` inside class ``B``)."""
    text = 'block B {\n  "__w": conv(4, 1)\n  __q: relu\n}\nnetwork N {\n  input 3x8x8\n  b: B()\n  s: { "__z": conv(4, 1); relu }\n}\n'
    spec, out, result = _emit(tmp_path, text)
    assert result.exit_code == 0, result.output
    model = _network(import_file(out))()
    expected = {f"{m}.{p}" for m in ("b.__w", "s.__z") for p in ("weight", "bias")}
    assert set(model.state_dict()) == expected == set(archlang.build(str(spec)).state_dict())
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 4, 8, 8)
    x = torch.randn(1, 3, 8, 8)
    graph = archlang.compile_spec(str(spec)).graph
    torch.testing.assert_close(model(x), evaluate(graph, model.state_dict(), x))
