"""``archc import`` on hostile command lines: targets that give no module exit 1 (E726),
usage errors exit 2, unwritable outputs exit 1 (E110); one diagnostic each, never a
traceback; the output is written atomically and never over the model's own source.
(The modules themselves: tests/test_import_hostile.py.)"""

from __future__ import annotations

import textwrap

import pytest

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


def test_what_the_model_prints_does_not_mix_with_the_spec(factories):
    """A model file that prints (at import, in its factory) and imports a sibling module:
    stdout holds only the spec, and the spec parses. Run as a process: stdout is the file."""
    import subprocess
    import sys

    (factories / "helper.py").write_text("from torch import nn\nprint('helper loaded')\nWIDTH = 6\n")
    (factories / "chatty.py").write_text(
        "import helper\nfrom torch import nn\nprint('importing chatty')\n\n"
        "def make():\n    print('making')\n    return nn.Sequential(nn.Conv2d(3, helper.WIDTH, 3))\n"
    )
    code = "from archlang.cli.main import main; main()"
    args = [sys.executable, "-c", code, "import", str(factories / "chatty.py") + ":make", "--input", "3x8x8"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=factories / "adir", timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# Sequential, imported from "), out.stdout[:200]
    assert "conv2d(6, 3)" in out.stdout and "making" not in out.stdout and "making" in out.stderr
    import archlang

    archlang.compile_spec(out.stdout)


@pytest.mark.parametrize("name", ["network", "if", "none"])
def test_name_that_is_a_keyword_is_a_usage_error(run, factories, name):
    result = run("import", "f.py:ok", "--name", name)
    assert result.exit_code == 2 and "--name wants a name" in result.output


def test_a_refused_op_is_shown_at_its_python_line(run, factories):
    (factories / "net.py").write_text(
        "import torch.nn.functional as F\nfrom torch import nn\n\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3)\n\n"
        "    def forward(self, x):\n"
        "        return F.selu(self.conv(x))\n"
    )
    result = run("import", "net.py:Net", "--input", "3x8x8")
    _no_traceback(result)
    assert result.exit_code == 1, result.output
    assert "error[E721]" in result.output and "net.py:11:9" in result.output, result.output
    assert "11 |         return F.selu(self.conv(x))" in result.output and "^^^^" in result.output
