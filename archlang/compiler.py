"""The front end as one call: source -> program -> graph with shapes.

Each stage is a function from one representation to the next; this module only chains
them and resolves what the user passed (a path, a bundled spec name, or spec text).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from functools import cached_property
from importlib import resources
from pathlib import Path

from archlang.frontend import ir
from archlang.frontend.loader import Program, load_file, load_text
from archlang.graph.model import Graph
from archlang.graph.shape_pass import infer_shapes
from archlang.graph.verify import verify

from .diagnostics import SourceMap, SpecError
from .lower import DEFAULT_MAX_NODES, lower
from .lower.program import collect_blocks


@dataclass
class Compiled:
    program: Program
    graph: Graph

    @property
    def sources(self) -> SourceMap:
        return self.program.sources

    @cached_property
    def templates(self) -> dict:
        """Block name -> its IR definition (:class:`archlang.frontend.ir.BlockDef`): what a
        back end that writes one class per block reads besides the graph."""
        return collect_blocks(self.program)


def bundled_specs() -> dict[str, Path]:
    """Specs shipped with archlang, by name (``googlenet`` -> .../specs/googlenet.arch)."""
    root = resources.files("archlang.specs")
    return {p.name[:-5]: Path(str(p)) for p in root.iterdir() if p.name.endswith(".arch")}


def bundled_variants() -> dict[str, tuple[Path, dict]]:
    """Bundled names that are a spec file with parameters set (``vgg16_bn`` -> vgg.arch,
    ``{"depth": 16, "batch_norm": True}``), from ``archlang/specs/catalog.py``."""
    from archlang.specs.catalog import VARIANTS

    files = bundled_specs()
    return {name: (files[file[:-5]], dict(params)) for name, (file, params) in VARIANTS.items()}


def _variant(source) -> tuple[Path, dict] | None:
    if not isinstance(source, str) or "\n" in source or "/" in source or source.endswith(".arch"):
        return None
    if _is_file(source):
        return None
    return bundled_variants().get(source)


def _is_file(source: str) -> bool:
    try:
        return Path(source).exists()
    except (OSError, ValueError):  # a name too long for the OS, an embedded NUL: not a file
        return False


def resolve_source(source: str | Path) -> Path | None:
    """A path for ``source`` if it names a file or a bundled spec; ``None`` if it is spec text.

    A string that names an existing file is always that file, whatever it contains
    (``x{1}.arch``, a newline); otherwise a string with a newline or ``{`` is spec text
    (every spec has a ``network NAME { ... }``). Pass a :class:`~pathlib.Path` to force a
    path, or :func:`archlang.frontend.loader.load_text` / ``archc -e TEXT`` to force text."""
    if isinstance(source, Path):
        return source
    if _is_file(source):
        return Path(source)
    if "\n" in source or "{" in source:
        return None
    path = Path(source)
    if source.endswith(".arch") or "/" in source:
        return path
    specs = bundled_specs()
    if source in specs:
        return specs[source]
    return path


def load(source: str | Path, allow_outside_imports: bool = False) -> Program:
    path = resolve_source(source)
    if path is not None:
        return load_file(path, allow_outside_imports)
    return load_text(str(source), allow_outside_imports=allow_outside_imports)


def compile_spec(
    source: str | Path | Program,
    params: dict | None = None,
    input_shape: tuple[int, ...] | None = None,
    max_nodes: int = DEFAULT_MAX_NODES,
    allow_outside_imports: bool = False,
) -> Compiled:
    """Parse, lower, verify and shape-check a spec. Raises :class:`SpecError` on any error:
    ``str(err)`` is the rendered diagnostics, as ``archc`` prints them.

    ``source`` is a path, a bundled spec name, spec text (see :func:`resolve_source` for
    how a string is told apart) or a loaded :class:`Program`."""
    return _compile(source, params, input_shape, max_nodes, allow_outside_imports)


def _compile(source, params, input_shape, max_nodes, allow_outside_imports=False) -> Compiled:
    variant = _variant(source)
    if variant is not None:
        source, preset = variant
        params = {**preset, **(params or {})}
    program = source if isinstance(source, Program) else load(source, allow_outside_imports)
    try:
        graph = lower(program, params, max_nodes, input_shape)
        problems = verify(graph) + infer_shapes(graph)
    except SpecError as err:
        raise SpecError(err.diagnostics, err.sources or program.sources) from None
    if problems:
        raise SpecError(_with_group_hints(problems, program), program.sources)
    return Compiled(program, graph)


MERGE_CODES = ("E401", "E402")
CONTROL_KINDS = {"if": "an `if`", "for": "a `for`", "repeat": "a `repeat`"}


def _with_group_hints(problems: list, program: Program) -> list:
    """A merge error at a group one of whose branches is an ``if``/``for``/``repeat`` with
    several statements gets a hint: inside a group each of those statements is a branch of
    its own (as documented), which is seldom what was meant when the shapes disagree."""
    wanted = {d.span: d for d in problems if d.code in MERGE_CODES and d.span is not None}
    if not wanted:
        return problems
    hints = {}
    for group in _groups(program):
        control = next(
            (b for b in group.branches if b.kind in CONTROL_KINDS and _multi_statement(b)),
            None,
        )
        if group.span in wanted and control is not None:
            hints[group.span] = (
                f"{CONTROL_KINDS[control.kind]} inside `{group.mode} {{ }}` makes each statement of its body "
                "a branch of its own; to make the body one branch, wrap it in braces: "
                f"`{control.kind} ... {{ {{ a; b }} }}`"
            )
    return [
        replace(d, help=f"{d.help}; {hints[d.span]}" if d.help else hints[d.span]) if d.span in hints else d
        for d in problems
    ]


def _multi_statement(stmt) -> bool:
    bodies = [b.body for b in stmt.branches] + [stmt.orelse or ()] if stmt.kind == "if" else [stmt.body]
    return any(len(body) > 1 for body in bodies)


def _groups(program: Program):
    """Every ``concat``/``add``/``mul`` group of the program's modules."""
    stack: list = [m for m in program.modules]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple | list):
            stack.extend(node)
            continue
        if not is_dataclass(node):
            continue
        if isinstance(node, ir.Group):
            yield node
        stack.extend(getattr(node, f.name) for f in fields(node) if f.name != "span")


def ensure_compiled(
    source: str | Path | Program | Compiled,
    params: dict | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> Compiled:
    """``source`` compiled with ``params`` and ``input_shape`` — the one rule every entry
    point (``analyze``, ``build``, the optimizer) follows: a :class:`Compiled` spec is used as
    it is, so giving it parameters or an input shape is a ``ValueError`` (they would be
    silently ignored otherwise); anything else is compiled with them."""
    if isinstance(source, Compiled):
        if params or input_shape is not None:
            given = ", ".join([*(params or {}), *(["input_shape"] if input_shape is not None else [])])
            raise ValueError(
                f"the spec is already compiled, so {given} cannot be applied: pass them to "
                "compile_spec(source, params, input_shape), or pass the spec's path or text instead"
            )
        return source
    return compile_spec(source, params or None, tuple(input_shape) if input_shape is not None else None)
