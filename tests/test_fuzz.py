"""Fuzzing under hypothesis (~650 cases, well under a minute): whatever the input, compiling
either succeeds or raises SpecError whose diagnostics all have a code, a message and (but
for file-level ones) a span; ``archc check`` exits 0 or 1, never with a traceback.

Inputs: grammar-aware random specs (fuzz/mutate.py), valid specs from tests/strategies.py
and the bundled specs, each mutated at the token level (deletion, duplication, swaps,
random names and numbers, truncation) or the byte level (bit flips, stray bytes such as
NUL, BOM, CR, invalid UTF-8, splices of other specs). The long seeded campaign is
``python fuzz/campaign.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import valid_specs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fuzz"))
import generate  # noqa: E402
import mutate  # noqa: E402

from archlang.cli.main import main  # noqa: E402


def fuzz(ci_budget: int):
    return settings(max_examples=examples(ci_budget))


SEEDS = [p.read_bytes() for p in mutate.SEED_FILES]
_TMP = tempfile.TemporaryDirectory(prefix="archlang-fuzz-")
WORKDIR = Path(_TMP.name)
(WORKDIR / "lib").symlink_to(mutate.ROOT / "specs" / "lib")  # byte-mutated specs keep their imports


def assert_sound(source):
    outcome = mutate.check(source)
    assert outcome.kind in ("ok", "rejected"), outcome.detail


def test_the_oracle_can_fail():
    # a diagnostic without a span, or an exception that is not SpecError, is reported
    assert mutate.check("network N { input 3x8x8\n relu }").kind == "ok"
    assert mutate.check("network N { input 3x8x8\n relu(").kind == "rejected"
    assert mutate.check(12345).kind == "crash"  # not a str/Path: a TypeError inside


@fuzz(200)
@given(st.randoms(use_true_random=False), st.booleans())
def test_grammar_aware_specs(rng, mutated):
    text = generate.gen_spec(rng)
    assert_sound(mutate.mutate_tokens(rng, text) if mutated else text)


@fuzz(150)
@given(valid_specs(), st.randoms(use_true_random=False), st.sampled_from(["tokens", "values"]))
def test_mutated_valid_specs(text, rng, how):
    assert_sound(mutate.mutate_tokens(rng, text) if how == "tokens" else mutate.mutate_values(rng, text))


@fuzz(150)
@given(st.sampled_from(range(len(SEEDS))), st.randoms(use_true_random=False))
def test_byte_mutations_of_the_real_specs(index, rng):
    path = WORKDIR / "case.arch"
    path.write_bytes(mutate.mutate_bytes(rng, SEEDS[index]))
    assert_sound(str(path))


@fuzz(100)
@given(st.sampled_from(range(len(SEEDS))), st.randoms(use_true_random=False))
def test_value_mutations_of_the_real_specs(index, rng):
    assert_sound(mutate.mutate_values(rng, SEEDS[index].decode(), rounds=3))


@fuzz(50)
@given(st.randoms(use_true_random=False), st.sampled_from(["tokens", "bytes"]))
def test_archc_check_exits_0_or_1(rng, how):
    base = generate.gen_valid(rng).encode()
    data = mutate.mutate_bytes(rng, base) if how == "bytes" else mutate.mutate_tokens(rng, base.decode()).encode()
    path = WORKDIR / "cli_case.arch"
    path.write_bytes(data)
    result = CliRunner().invoke(main, ["check", str(path), "--max-nodes", "20000"], env={"NO_COLOR": "1"})
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        assert "error[E" in result.output


@pytest.mark.parametrize("seed", range(3))
def test_generated_valid_specs_compile(seed):
    # the unmutated base of the campaign compiles, so its mutations start from valid code
    import random

    for i in range(20):
        assert mutate.check(generate.gen_valid(random.Random(seed * 100 + i))).kind == "ok"
