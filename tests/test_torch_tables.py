"""The torch back end's per-op table, identifier sanitizing, the no-torch guarantee of
`archc check` / `--emit torch`, and diagnostics for specs PyTorch cannot express."""

from __future__ import annotations

import keyword
import subprocess
import sys

import pytest
from archlang.backends.torch.naming import Namespace, docstring_text, sanitize
from archlang.backends.torch.ops import TORCH_OPS

import archlang
from archlang.diagnostics import SpecError
from archlang.ops import SIGNATURES, Op


def test_every_op_has_a_torch_row():
    assert set(TORCH_OPS) == set(Op) == set(SIGNATURES)


def test_module_names_resolve_in_torch():
    import torch
    import torch.nn.functional as F
    from archlang.backends.torch.texts import HELPERS
    from torch import nn

    def resolve(name: str):
        head, _, rest = name.partition(".")
        obj = {"torch": torch, "nn": nn, "F": F}[head]
        for part in rest.split("."):
            obj = getattr(obj, part)
        return obj

    for op, row in TORCH_OPS.items():
        if op is Op.EXTERNAL:  # its class is each node's own (`extern`), imported by the file
            continue
        for name in (row.module, row.functional):
            if name in HELPERS:  # defined by the generated file
                continue
            if name and name not in ("add", "mul"):
                assert callable(resolve(name)), (op, name)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("class", "class_"),
        ("3x3", "_3x3"),
        ("mixed-5b", "mixed_5b"),
        ("len", "len_"),
        ("self", "self_2"),
        ("F", "F_2"),
        ("torch", "torch_2"),
        ("branch1", "branch1"),
        ("match", "match_"),
        ("x", "x_2"),
    ],
)
def test_namespace_gives_readable_valid_identifiers(name, expected):
    got = Namespace().name(name)
    assert got == expected
    assert got.isidentifier() and not keyword.iskeyword(got)


def test_namespace_is_unique_and_stable():
    ns = Namespace()
    a, b, c = ns.name("a-b", key=1), ns.name("a_b", key=2), ns.name("a-b", key=1)
    assert a == c == "a_b" and b == "a_b_2"
    assert sanitize("") == "_"


def test_docstring_text_cannot_close_the_docstring():
    text = docstring_text('evil """ \\ quote"')
    assert '"""' not in text and "\n" not in text


def test_check_and_emit_torch_do_not_import_torch():
    code = (
        "import sys; import archlang; from archlang.cli.main import main; "
        "from archlang.analysis.summary import summary_line; from archlang.backends.torch.codegen import emit; "
        "c = archlang.compile_spec('googlenet'); summary_line(c); emit(c); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["forward", "training", "a.b"])
def test_names_torch_cannot_take_are_diagnosed(name):
    text = f'network N {{ input 3x8x8\n "{name}": conv2d(4, 3)\n}}'
    from archlang.backends.torch.codegen import emit

    with pytest.raises(SpecError) as err:
        emit(archlang.compile_spec(text))
    assert err.value.diagnostics[0].code == "E701"
    assert err.value.diagnostics[0].span is not None


def test_cli_reports_e701_without_traceback():
    from click.testing import CliRunner

    from archlang.cli.main import main

    runner = CliRunner()
    with runner.isolated_filesystem():
        with open("n.arch", "w") as f:
            f.write('network N { input 3x8x8\n "forward": conv2d(4, 3)\n}\n')
        result = runner.invoke(main, ["n.arch", "--emit", "torch"])
    assert result.exit_code == 1
    assert "E701" in result.output and "Traceback" not in result.output
