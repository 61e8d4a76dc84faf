"""`--block NAME` when the template's instances differ: a note says which one is drawn, and
`--block NAME@PATH` draws the instance at that scope path (docs/diagrams.md)."""

from pathlib import Path

import pytest
from archlang.backends.diagrams.render import to_dot
from click.testing import CliRunner

from archlang.cli.main import main
from archlang.compiler import compile_spec
from archlang.diagnostics import SpecError

SPEC = str(Path(__file__).parent / "diagrams" / "basic_blocks.arch")
DOWNSAMPLE = "1x1 conv, 32, /2"  # layer2/b0's shortcut, as the module figure labels it


def archc(*args):
    return CliRunner().invoke(main, [SPEC, "--emit", "dot", *args], prog_name="archc")


def test_differing_instances_say_which_is_drawn():
    result = archc("--block", "BasicBlock")
    assert result.exit_code == 0, result.output
    assert "note: the 4 instances of `BasicBlock` differ; drawing the first, `layer1/b0`" in result.stderr
    assert "--block BasicBlock@PATH; instances: layer1/b0, layer1/b1, layer2/b0, layer2/b1" in result.stderr
    assert "3x3 conv, 16" in result.stdout and DOWNSAMPLE not in result.stdout
    assert "note:" not in result.stdout


def test_an_instance_chosen_by_path():
    result = archc("--block", "BasicBlock@layer2/b0")
    assert result.exit_code == 0, result.output
    assert DOWNSAMPLE in result.stdout and "3x3 conv, 32, /2" in result.stdout
    assert "note:" not in result.stderr
    dot = to_dot(compile_spec(SPEC), {"block_name": "BasicBlock@layer2/b1"})
    assert "3x3 conv, 32" in dot and DOWNSAMPLE not in dot


def test_unknown_instance_lists_the_instances():
    result = archc("--block", "BasicBlock@layer2/b9")
    assert result.exit_code == 1
    assert "error[E113]: block `BasicBlock` has no instance `layer2/b9`" in result.stderr
    assert "did you mean `layer2/b1`? instances: layer1/b0, layer1/b1, layer2/b0, layer2/b1" in result.stderr
    with pytest.raises(SpecError):
        to_dot(compile_spec(SPEC), {"block_name": "Nope@layer1/b0"})


def test_instances_drawn_alike_need_no_note():
    # Only layer1: its two instances have equal arguments, so equal drawings.
    text = Path(SPEC).read_text().replace("  layer2: { b0: BasicBlock(32, 2, true); b1: BasicBlock(32) }\n", "")
    notes: list[str] = []
    dot = to_dot(compile_spec(text), {"block_name": "BasicBlock", "notes": notes})
    assert notes == [] and "3x3 conv, 16" in dot
    notes_v3: list[str] = []
    to_dot(compile_spec("inception_v3"), {"block_name": "InceptionB", "notes": notes_v3})
    assert notes_v3 == []  # Mixed_6a is InceptionB's only instance
