"""The layout keeps its promises: no import cycle among the project's modules, no module
over the size limit.

Which imports count: every one. Module-level imports, imports inside functions (lazy
imports), imports under ``if TYPE_CHECKING:``, and the dynamic imports the package uses
for its lazy entry points (``importlib.import_module("archlang.lint")`` and tables of
``"archlang.compiler:compile_spec"`` targets). A lazy import only moves a cycle from import
time to call time: the two modules still cannot be understood, tested or split apart
one without the other. The implicit import of a parent package (``import a.b.c`` runs
``a/__init__.py`` first) is not an edge; an explicit ``from archlang import x`` is.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parent.parent
# folder -> the dotted package it is installed as (pyproject.toml's package-dir)
PACKAGES = {"archlang": "archlang", "backends": "archlang.backends", "specs": "archlang.specs"}
MAX_LINES = 420  # "no module over ~400 lines"
MODULE_STRING = re.compile(r"archlang(\.\w+)*(:\w+)?")


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py of the installed packages."""
    modules = {}
    for folder, dotted in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([dotted, *parts])] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module a dotted name refers to: itself, or its longest module prefix
    (``archlang.ops.Op`` -> ``archlang.ops``); None outside the project."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported project module, line) for every import in the file, at any depth."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import sub` imports the submodule `pkg.sub`; `from mod import name` imports mod
            targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in modules else stem for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.fullmatch(node.value):
            targets = [node.value.partition(":")[0]]  # importlib.import_module / "module:attr" tables
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != module:
                found.append((resolved, node.lineno))
    return found


def import_graph() -> nx.DiGraph:
    modules = project_modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for target, line in imports_of(module, path, modules):
            if not graph.has_edge(module, target):
                graph.add_edge(module, target, where=f"{path.relative_to(ROOT)}:{line}")
    return graph


def _file_line(where: str) -> tuple[str, int]:
    path, _, line = where.rpartition(":")
    return path, int(line)


def _explain(graph: nx.DiGraph, component: set[str]) -> str:
    """One cycle of a strongly connected component, then every import that ties it."""
    cycle = [a for a, _ in nx.find_cycle(graph.subgraph(component))]
    lines = [f"{len(component)} modules import each other, e.g.:"]
    lines += [f"  {a} -> {b}  ({graph.edges[a, b]['where']})" for a, b in zip(cycle, cycle[1:] + cycle[:1])]
    lines.append("  every import among them:")
    edges = sorted(graph.subgraph(component).edges, key=lambda e: _file_line(graph.edges[e]["where"]))
    lines += [f"    {graph.edges[a, b]['where']}: {a} -> {b}" for a, b in edges]
    if "archlang" in component:
        lines.append(
            "  (archlang/__init__.py lazily imports the public API, so a module that imports from the"
            " package itself, `from archlang import __version__`, closes a cycle: import from the"
            " defining module instead)"
        )
    return "\n".join(lines)


# ---- the checker itself --------------------------------------------------------------------


def test_the_import_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert len(graph) > 30  # archlang/, backends/ and specs/ are all there
    assert graph.has_edge("archlang.analysis.compute", "archlang.ops")  # from ..ops import Op
    assert graph.has_edge("archlang.analysis.compute", "archlang.analysis.params")  # from .params import
    assert graph.has_edge("archlang", "archlang.compiler")  # "archlang.compiler:compile_spec" (lazy table)
    assert graph.has_edge("archlang.cli", "archlang")  # from . import __version__
    # the mapping of backends/ to archlang.backends
    assert "archlang.backends.torch" in graph and "archlang.backends.report.tables" in graph


def test_a_cycle_is_found_and_named(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from . import b\n")
    (tmp_path / "pkg" / "b.py").write_text("def f():\n    from .c import g  # lazy\n")
    (tmp_path / "pkg" / "c.py").write_text("from pkg.a import x\n")
    modules = {f"pkg.{n}": tmp_path / "pkg" / f"{n}.py" for n in "abc"} | {"pkg": tmp_path / "pkg" / "__init__.py"}
    graph = nx.DiGraph()
    for module, path in modules.items():
        graph.add_edges_from((module, target) for target, _ in imports_of(module, path, modules))
    assert [sorted(cycle) for cycle in nx.simple_cycles(graph)] == [["pkg.a", "pkg.b", "pkg.c"]]


# ---- the rules ------------------------------------------------------------------------------


def test_no_import_cycle_among_the_project_modules():
    graph = import_graph()
    tangles = [c for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not tangles, "import cycles:\n" + "\n".join(_explain(graph, c) for c in tangles)


def test_no_module_over_the_size_limit():
    over = []
    for module, path in project_modules().items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            over.append(f"{path.relative_to(ROOT)}: {lines} lines ({module})")
    assert not over, f"modules over {MAX_LINES} lines:\n" + "\n".join(sorted(over))
