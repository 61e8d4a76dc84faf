"""Reading spec files and resolving ``import`` into one :class:`Program`.

Files are decoded strictly as UTF-8 (a BOM is dropped, CRLF kept as line ends); every
problem with a file — missing, a directory, unreadable, not UTF-8, an import cycle — is a
located diagnostic.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from archlang.diagnostics import Diagnostic, Note, SourceMap, Span, SpecError
from archlang.frontend import ir
from archlang.frontend.parser import parse

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_IMPORTS = 1000
PRELUDE = Path(__file__).with_name("prelude.arch")


@dataclass
class Program:
    """Every module of a compilation: the main one first, then its imports."""

    main: ir.Module
    modules: list[ir.Module]
    sources: SourceMap = field(default_factory=SourceMap)
    # Imports must resolve (symlinks followed) inside this folder: the main spec's. None: anywhere.
    import_root: Path | None = None
    # Every spec file read, resolved (the main file first): outputs must never overwrite one.
    files: list[Path] = field(default_factory=list)


def decode(data: bytes, name: str) -> str:
    """Strict UTF-8 with a located diagnostic for the first bad byte."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start].decode("utf-8")  # valid up to the first bad byte
        raise SpecError(
            Diagnostic(
                code="E103",
                message=f"file is not valid UTF-8 (byte 0x{data[err.start]:02x})",
                span=Span.at_offset(name, before, len(before)),
                help="save the spec as UTF-8",
            )
        ) from None
    if "\x00" in text:
        raise SpecError(
            Diagnostic(
                code="E103",
                message="file contains a NUL byte",
                span=Span.at_offset(name, text, text.index("\x00")),
                help="is this a binary file?",
            )
        )
    if "\r" in text:
        # Old Mac line ends (a lone CR): make them LF, as the lexer counts lines by LF only.
        # Same length, so every offset stays put; CRLF is kept.
        text = re.sub(r"\r(?!\n)", "\n", text)
    return text


def read_source(path: Path, shown: str, at: Span | None = None) -> str:
    """Read a spec file, turning every OS-level problem into a diagnostic."""

    def fail(message, help=None, code="E104"):
        return SpecError(Diagnostic(code=code, message=message, span=at, help=help))

    try:
        if path.is_dir():
            raise fail(f"`{shown}` is a directory, not a spec file", "give the path of an .arch file")
        if not path.exists():
            raise fail(f"file `{shown}` not found", None, "E105" if at else "E104")
        if not path.is_file():  # a FIFO would block, /dev/zero never ends
            raise fail(f"`{shown}` is not a regular file", "give the path of an .arch file")
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # the size in stat may lie (/proc) or change
        if len(data) > MAX_FILE_BYTES:
            raise fail(
                f"`{shown}` is larger than the limit of {MAX_FILE_BYTES:,} bytes",
                code="E603",
                help="from Python, raise archlang.frontend.loader.MAX_FILE_BYTES",
            )
    except SpecError:
        raise
    except ValueError:  # an embedded NUL in the path
        raise fail(f"cannot read `{shown!r}`: the path contains a NUL character") from None
    except OSError as err:
        reason = err.strerror or type(err).__name__
        if isinstance(err, PermissionError):
            reason = "permission denied"
        raise fail(f"cannot read `{shown}`: {reason.lower()}") from None
    return decode(data, shown)


def _shown(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("..") else str(path)
    except (ValueError, OSError):  # OSError: the working directory was deleted
        return str(path)


def load_text(
    text: str,
    name: str = "<string>",
    base_dir: Path | None = None,
    key: str | None = None,
    allow_outside_imports: bool = False,
) -> Program:
    """Parse ``text`` (already decoded) and everything it imports.

    Imports resolve relative to ``base_dir`` (default: the working directory) and, unless
    ``allow_outside_imports``, must stay inside it once symlinks are followed (E108): a
    cloned repository could otherwise carry ``lib.arch -> /etc/passwd``."""
    sources = SourceMap()
    sources.add(name, text)
    try:
        main = parse(text, name)
    except SpecError as err:
        raise SpecError(err.diagnostics, sources) from None
    base = base_dir if base_dir is not None else _cwd()
    root = None if allow_outside_imports or base is None else _resolve_dir(base)
    program = Program(main=main, modules=[main], sources=sources, import_root=root)
    _load_imports(program, main, base, [key or name], {key or name})
    _add_prelude(program)
    return program


def _cwd() -> Path | None:
    """The working directory, or None when it was deleted (imports of text then fail, E104)."""
    try:
        return Path.cwd()
    except OSError:
        return None


def _resolve_dir(base: Path) -> Path | None:
    try:
        return base.resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def load_file(path: str | Path, allow_outside_imports: bool = False) -> Program:
    path = Path(path)
    shown = str(path)
    sources = SourceMap()
    try:
        text = read_source(path, shown)
    except SpecError as err:
        if err.diagnostics[0].code == "E103":  # quote the bad line, undecodable bytes as U+FFFD
            sources.add(shown, path.read_bytes().decode("utf-8", "replace"))
        raise SpecError(err.diagnostics, sources) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    resolved = path.resolve()
    program = load_text(text, shown, resolved.parent, key=str(resolved), allow_outside_imports=allow_outside_imports)
    program.files.insert(0, resolved)
    return program


def _add_prelude(program: Program) -> None:
    text = PRELUDE.read_text(encoding="utf-8")
    program.sources.add("<prelude>", text)
    program.modules.append(parse(text, "<prelude>"))


def _load_imports(program, module, base: Path | None, chain: list[str], seen: set[str]) -> None:
    """Load what ``module`` imports, depth first, with an explicit stack: a chain of
    MAX_IMPORTS files, each importing the next, must not hit Python's recursion limit."""
    stack = [(_imports(module), base, chain)]
    while stack:
        pending, base, chain = stack[-1]
        item = next(pending, None)
        if item is None:
            stack.pop()
            continue
        loaded = _load_import(program, item, base, chain, seen)
        if loaded is not None:
            sub, target, resolved = loaded
            stack.append((_imports(sub), target.parent, chain + [resolved]))


def _imports(module):
    return (item for item in module.items if isinstance(item, ir.Import))


def _load_import(program, item, base: Path | None, chain: list[str], seen: set[str]):
    """Read and parse one import; None if it was loaded already."""
    if base is None:  # spec text (stdin, -e) run from a deleted working directory
        raise _located(
            program,
            Diagnostic(
                code="E104",
                message=f"cannot resolve `{item.path}`: the working directory no longer exists",
                span=item.span,
                help="run archc from an existing folder, or give the spec as a file",
            ),
        )
    target = base / item.path
    shown = _shown(target)
    if any(ord(ch) < 32 for ch in item.path):  # NUL would crash os calls; others are typos
        raise _located(
            program,
            Diagnostic(
                code="E106",
                message=f"cannot import {item.path!r}: the path contains a control character",
                span=item.span,
            ),
        )
    if not item.path.endswith(".arch"):
        raise _located(
            program,
            Diagnostic(
                code="E106",
                message=f"cannot import `{item.path}`: not an .arch file",
                span=item.span,
                help='imports name block libraries, e.g. import "lib/inception.arch"',
            ),
        )
    try:
        resolved = str(target.resolve(strict=False))
    except (OSError, RuntimeError, ValueError):
        raise _located(
            program,
            Diagnostic(code="E104", message=f"cannot resolve `{item.path}` (symlink loop?)", span=item.span),
        ) from None
    if program.import_root is not None and not Path(resolved).is_relative_to(program.import_root):
        raise _located(
            program,
            Diagnostic(
                code="E108",
                message=f"cannot import `{item.path}`: it resolves outside the spec's folder "
                f"(to `{resolved}`, not under `{program.import_root}`)",
                span=item.span,
                help="copy the library next to the spec, or pass --allow-outside-imports if you trust it",
            ),
        )
    if resolved in chain:
        cycle = " -> ".join(_shown(Path(c)) for c in chain[chain.index(resolved) :] + [resolved])
        raise _located(
            program,
            Diagnostic(
                code="E107",
                message="import cycle",
                span=item.span,
                notes=(Note(f"cycle: {cycle}"),),
                help="move the shared blocks into a library that neither file imports back",
            ),
        )
    if resolved in seen:
        return None  # the same file reached again (maybe by another path): load once
    seen.add(resolved)
    if len(seen) > MAX_IMPORTS:
        raise _located(
            program, Diagnostic(code="E603", message=f"more than {MAX_IMPORTS} imported files", span=item.span)
        )
    try:
        text = read_source(target, shown, at=item.span)
        sub = parse(text, shown)
    except SpecError as err:
        # Quote the failing file only if it really is a spec file: `lib.arch` linking to
        # /etc/passwd (allowed with allow_outside_imports) is not echoed line by line.
        text = locals().get("text") if resolved.endswith(".arch") else None
        raise _located(program, *err.diagnostics, extra=(shown, text)) from None
    program.sources.add(shown, text)
    program.files.append(Path(resolved))
    program.modules.append(sub)
    return sub, target, resolved


def _located(program, *diags, extra=None) -> SpecError:
    if extra and extra[1] is not None:
        program.sources.add(extra[0], extra[1])
    return SpecError(list(diags), program.sources)
