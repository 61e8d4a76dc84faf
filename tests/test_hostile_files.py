"""Odd files are diagnostics, not tracebacks: encodings, line ends, tabs, empty files, NUL
bytes, directories, devices, unreadable files, and bad, cyclic or duplicated imports."""

from __future__ import annotations

import os
import re

import pytest
from hostile import HEAD, archc, at, one_error

from archlang import compile_spec
from archlang.diagnostics import SpecError, render_all
from archlang.frontend import loader

# ---- text edge cases -------------------------------------------------------------------

BAD_ARG = "network N {\n\tinput 3x8x8\n\t\tconv(8, 3, bogus=1)\n}\n"  # `bogus` at 3:14


def _caret_under(rendered: str, word: str) -> bool:
    lines = rendered.split("\n")
    for i, line in enumerate(lines[:-1]):
        if word in line and "^" in lines[i + 1]:
            return line.index(word) == lines[i + 1].index("^")
    return False


@pytest.mark.parametrize(
    "name, data",
    [
        ("tabs", BAD_ARG.encode()),
        ("crlf", BAD_ARG.replace("\n", "\r\n").encode()),
        ("bom", b"\xef\xbb\xbf" + BAD_ARG.encode()),
        ("bom_crlf", b"\xef\xbb\xbf" + BAD_ARG.replace("\n", "\r\n").encode()),
        ("lone_cr", BAD_ARG.replace("\n", "\r").encode()),
    ],
)
def test_columns_count_characters_and_the_caret_lines_up(tmp_path, name, data):
    spec = tmp_path / f"{name}.arch"
    spec.write_bytes(data)
    with pytest.raises(SpecError) as info:
        compile_spec(str(spec))
    (d,) = info.value.diagnostics
    assert d.code == "E202" and at(d) == (3, 14)  # tab = one column
    rendered = render_all([d], info.value.sources)
    assert "\r" not in rendered and "\t" not in rendered
    assert _caret_under(rendered, "bogus"), rendered


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n", b"# only a comment\n", b"\xef\xbb\xbf"])
def test_empty_files(tmp_path, data):
    spec = tmp_path / "empty.arch"
    spec.write_bytes(data)
    d = one_error(str(spec))
    assert d.code == "E501" and at(d) == (1, 1)


def test_nul_byte(tmp_path):
    spec = tmp_path / "nul.arch"
    spec.write_bytes(b"network N {\n input 3x8x8\n re\x00lu }")
    d = one_error(str(spec))
    assert d.code == "E103" and at(d) == (3, 4)


def test_not_utf8(tmp_path):
    spec = tmp_path / "latin1.arch"
    spec.write_bytes("network N {\n input 3x8x8\n # café\n relu }".encode("latin-1"))
    d = one_error(str(spec))
    assert d.code == "E103" and at(d) == (3, 7) and "0xe9" in d.message


def test_lookalike_letters_are_named():
    d = one_error(HEAD + "  c\u043env(8, 3)\n}")  # Cyrillic о
    assert d.code == "E102" and at(d) == (3, 4) and "CYRILLIC SMALL LETTER O" in d.help
    assert "ZERO WIDTH NO-BREAK SPACE" in one_error(HEAD + "  \ufeffrelu\n}").help


# File-level diagnostics (no span: the problem is the main file itself) are E104/E105.
def test_a_directory(tmp_path):
    folder = tmp_path / "dir.arch"
    folder.mkdir()
    d = one_error(str(folder))
    assert d.code == "E104" and "is a directory" in d.message and d.span is None
    assert archc("check", folder).exit_code == 1


def test_missing_file(tmp_path):
    d = one_error(str(tmp_path / "nope.arch"))
    assert d.code == "E104" and "not found" in d.message
    result = archc("check", tmp_path / "nope.arch")
    assert result.exit_code == 1 and "error[E104]" in result.output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.arch"
    os.mkfifo(fifo)
    d = one_error(str(fifo))
    assert d.code == "E104" and "not a regular file" in d.message


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_an_endless_device_is_refused():
    d = one_error("/dev/zero")
    assert d.code == "E104" and "not a regular file" in d.message


def test_unreadable_file_simulated(tmp_path, monkeypatch):
    spec = tmp_path / "secret.arch"
    spec.write_text(HEAD + "  relu\n}")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(loader, "open", denied, raising=False)
    d = one_error(str(spec))
    assert d.code == "E104" and "permission denied" in d.message


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads chmod 000 files")
def test_unreadable_file_for_real(tmp_path):
    spec = tmp_path / "secret.arch"
    spec.write_text(HEAD + "  relu\n}")
    spec.chmod(0)
    try:
        d = one_error(str(spec))
    finally:
        spec.chmod(0o644)
    assert d.code == "E104" and "permission denied" in d.message


# ---- imports ---------------------------------------------------------------------------

NET = "\nnetwork N {\n  input 3x8x8\n  relu\n}\n"


@pytest.fixture
def lib(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "x.arch").write_text("block X() { relu }\n")
    return tmp_path


def _main(root, text):
    path = root / "main.arch"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "target, code, words",
    [
        ("lib/nope.arch", "E105", "not found"),
        ("lib", "E106", "not an .arch file"),
        ("lib/x.txt", "E106", "not an .arch file"),
        ("lib/folder.arch", "E104", "is a directory"),
        ("a\\x00b.arch", "E106", "control character"),  # was a ValueError traceback
    ],
)
def test_bad_imports_are_located(lib, target, code, words):
    (lib / "lib" / "folder.arch").mkdir()
    d = one_error(_main(lib, f'import "{target}"' + NET))
    assert d.code == code and words in d.message and at(d) == (1, 1)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlink_loop(lib):
    os.symlink("loop2.arch", lib / "lib" / "loop1.arch")
    os.symlink("loop1.arch", lib / "lib" / "loop2.arch")
    d = one_error(_main(lib, 'import "lib/loop1.arch"' + NET))
    assert d.code in ("E104", "E105") and at(d) == (1, 1)


def test_import_cycle_shows_the_cycle(lib):
    (lib / "a.arch").write_text('import "b.arch"\nblock A() { relu }\n')
    (lib / "b.arch").write_text('\nimport "a.arch"\nblock B() { relu }\n')
    d = one_error(_main(lib, 'import "a.arch"' + NET))
    assert d.code == "E107" and at(d) == (2, 1) and d.span.file.endswith("b.arch")
    (note,) = d.notes
    assert re.fullmatch(r"cycle: \S*a\.arch -> \S*b\.arch -> \S*a\.arch", note.message), note.message


def test_the_same_file_by_two_paths_is_loaded_once(lib):
    compiled = compile_spec(_main(lib, 'import "lib/x.arch"\nimport "lib/../lib/x.arch"' + NET))
    assert sum(m.file.endswith("x.arch") for m in compiled.program.modules) == 1


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_the_same_file_through_a_symlink_is_loaded_once(lib):
    os.symlink("x.arch", lib / "lib" / "link.arch")
    main_text = 'import "lib/x.arch"\nimport "lib/link.arch"\nnetwork N {\n  input 3x8x8\n  X()\n}\n'
    compiled = compile_spec(_main(lib, main_text))
    assert sum(m.file.endswith(("x.arch", "link.arch")) for m in compiled.program.modules) == 1
    assert "X/relu" in compiled.graph
