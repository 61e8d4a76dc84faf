"""The parsed-IR disk cache (archlang/frontend/ircache.py): a hit gives the IR a fresh parse gives,
without parsing; anything doubtful (other text, other code, a damaged or foreign entry, a
folder others can write) falls back to parsing."""

import os
import tempfile

import pytest

from archlang import ircache, syntax
from archlang.compiler import compile_spec

TEXT = "network N() {\n  input 3x8x8\n  conv(4, 3)\n}\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("ARCHLANG_NO_CACHE", raising=False)
    ircache.parse.cache_clear()  # the in-process memo in front of the disk
    yield tmp_path / f"archlang-cache-{os.getuid()}"
    ircache.parse.cache_clear()


def _no_parsing(monkeypatch):
    def refuse(text, file):
        raise AssertionError("parsed although the entry was on disk")

    monkeypatch.setattr(ircache, "parse_text", refuse)


def test_hit_equals_fresh_parse_without_parsing(cache, monkeypatch):
    first = ircache.parse(TEXT, "n.arch")
    assert len(list(cache.glob("ir-*.pickle"))) == 1
    ircache.parse.cache_clear()
    _no_parsing(monkeypatch)
    again = ircache.parse(TEXT, "n.arch")
    assert again == first == syntax.parse(TEXT, "n.arch")
    assert again.items[0].body[1].span.line == 3  # spans survive: diagnostics still point right


def test_changed_text_or_code_is_parsed_again(cache, monkeypatch):
    first = ircache.parse(TEXT, "n.arch")
    ircache.parse.cache_clear()
    text = TEXT.replace("conv(4, 3)", "conv(5, 3)")
    changed = ircache.parse(text, "n.arch")
    assert changed == syntax.parse(text, "n.arch") != first
    ircache.parse.cache_clear()
    monkeypatch.setattr(ircache, "_code_stamp", "another archlang")
    calls = []
    real = ircache.parse_text
    monkeypatch.setattr(ircache, "parse_text", lambda t, f: calls.append(f) or real(t, f))
    ircache.parse(TEXT, "n.arch")
    assert calls == ["n.arch"]


def test_damaged_entry_is_ignored(cache):
    ircache.parse(TEXT, "n.arch")
    (entry,) = cache.glob("ir-*.pickle")
    entry.write_bytes(b"\x80\x05not a pickle")
    ircache.parse.cache_clear()
    assert ircache.parse(TEXT, "n.arch") == syntax.parse(TEXT, "n.arch")


def test_folder_others_can_write_is_not_used(cache, monkeypatch):
    cache.mkdir(mode=0o777)
    os.chmod(cache, 0o777)
    assert ircache.cache_dir() is None
    ircache.parse(TEXT, "n.arch")
    assert not list(cache.iterdir())


def test_switched_off_by_environment(cache, monkeypatch):
    monkeypatch.setenv("ARCHLANG_NO_CACHE", "1")
    ircache.parse(TEXT, "n.arch")
    assert not cache.exists() or not list(cache.iterdir())


def test_spec_text_and_errors_are_not_stored(cache, tmp_path):
    compile_spec(TEXT)  # text given directly: nothing to key a file on; the prelude is a file
    assert len(list(cache.glob("ir-*.pickle"))) == 1
    bad = tmp_path / "bad.arch"
    bad.write_text("network N() {\n  input 3x8x8\n  conv(4 3)\n}\n")
    for _ in range(2):
        with pytest.raises(syntax.SpecError) as err:
            compile_spec(str(bad))
        assert err.value.diagnostics[0].span.line == 3
    assert len(list(cache.glob("ir-*.pickle"))) == 1


def test_huge_files_are_not_stored(cache, monkeypatch):
    monkeypatch.setattr(ircache, "MAX_TEXT", len(TEXT) - 1)
    ircache.parse(TEXT, "n.arch")
    assert not cache.exists() or not list(cache.glob("ir-*.pickle"))


def test_old_entries_are_pruned(cache, monkeypatch):
    monkeypatch.setattr(ircache, "MAX_ENTRIES", 3)
    for i in range(5):
        ircache.parse(TEXT, f"n{i}.arch")
    assert len(list(cache.glob("ir-*.pickle"))) == 3


def test_code_stamp_covers_subpackages(tmp_path, monkeypatch):
    (tmp_path / "front").mkdir()
    source = tmp_path / "front" / "syntax.py"
    source.write_text("x = 1\n")
    monkeypatch.setattr(ircache, "PACKAGE", tmp_path)
    monkeypatch.setattr(ircache, "_code_stamp", None)
    before = ircache.code_stamp()
    source.write_text("x = 22\n")
    monkeypatch.setattr(ircache, "_code_stamp", None)
    assert ircache.code_stamp() != before and "syntax.py" in before
