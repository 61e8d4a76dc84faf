"""The layout keeps its promises: no import cycle among the project's modules, and no test
that turns a broken import of an installed dependency into a skip.

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
import os
import re
import sys
from pathlib import Path

import networkx as nx

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
# folder -> the dotted package it is installed as (pyproject.toml's package-dir)


def _packages() -> dict[str, str]:
    """Top-level folder -> the dotted package it is installed as, from pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        package_dir = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    top = {folder: dotted for dotted, folder in package_dir.items() if "/" not in folder}
    return {"archlang": "archlang", **top}


PACKAGES = _packages()
# "archlang.lint" or "archlang.compiler:compile_spec" (a bare "archlang" is more likely a name than an import)
MODULE_STRING = re.compile(r"archlang((\.\w+)+(:\w+)?|:\w+)")


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
    assert graph.has_edge("archlang.cli.main", "archlang.version")  # from .version import __version__
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


def _installed_for_tests() -> set[str]:
    """Import names of what `pip install -e .[test]` installs: the project, its
    dependencies and the test extra (their import names match their distribution names)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    names = {"archlang"}
    for block in re.findall(r"^(?:dependencies|test) = \[(.*?)^\]", text, flags=re.S | re.M):
        names |= {re.split(r"[<>=!~\[; ]", item)[0].replace("-", "_") for item in re.findall(r'"([^"]+)"', block)}
    return names


def _skips_on_import(tree: ast.AST) -> list[tuple[str, int]]:
    """(module, line) for each `pytest.importorskip("module")` and each `try: import module`
    whose `except ImportError` handler skips."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "importorskip"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.append((node.args[0].value, node.lineno))
        elif isinstance(node, ast.Try):
            skips = any(
                isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "skip"
                for handler in node.handlers
                for call in ast.walk(handler)
            )
            if skips:
                for stmt in node.body:
                    if isinstance(stmt, ast.Import):
                        found += [(alias.name, stmt.lineno) for alias in stmt.names]
                    elif isinstance(stmt, ast.ImportFrom) and stmt.module:
                        found.append((stmt.module, stmt.lineno))
    return found


def _which_calls(tree: ast.AST) -> list[tuple[str, int]]:
    """(program, line) for each `shutil.which("program")`: a test that asks whether a program
    is on PATH usually skips (or quietly does less) when it is not."""
    return [
        (node.args[0].value, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "which"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


def test_the_skip_finder_sees_both_forms():
    tree = ast.parse(
        "import pytest\ntorch = pytest.importorskip('torch')\n"
        "try:\n    import onnx\nexcept ImportError:\n    pytest.skip('no onnx')\n"
    )
    assert sorted(_skips_on_import(tree)) == [("onnx", 4), ("torch", 2)]
    tree = ast.parse("@pytest.mark.skipif(shutil.which('ruff') is None, reason='')\ndef test(): pass\n")
    assert _which_calls(tree) == [("ruff", 1)]
    assert {"torch", "torchvision", "fvcore", "onnx", "onnxruntime", "hypothesis", "lark"} <= _installed_for_tests()


def test_no_test_skips_when_an_installed_dependency_fails_to_import():
    """A broken import of the project or of anything the [test] extra installs must fail CI,
    not turn into a skip."""
    installed = _installed_for_tests()
    hiding = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for module, line in _skips_on_import(ast.parse(path.read_text(encoding="utf-8"))):
            if module.split(".")[0] in installed:
                hiding.append(f"{path.relative_to(ROOT)}:{line}: skips if `{module}` does not import")
        # A program the test extra installs (ruff) is run as `python -m program`, never
        # looked up on PATH with a way out when it is missing. System programs (dot,
        # chromium) that .ci/run installs may be looked up.
        for program, line in _which_calls(ast.parse(path.read_text(encoding="utf-8"))):
            if program.replace("-", "_") in installed:
                hiding.append(f"{path.relative_to(ROOT)}:{line}: looks `{program}` up on PATH; use python -m")
    assert not hiding, "skips that would hide a broken install:\n" + "\n".join(hiding)


def test_a_stray_spec_in_the_checkout_is_not_a_test_case():
    from conftest import tracked

    stray = ROOT / "specs" / f"tmp_junk_{os.getpid()}.arch"
    stray.write_text("network Junk() {\n  input 3x8x8\n}\n")
    try:
        assert stray in ROOT.glob("specs/*.arch")
        assert stray not in tracked.__wrapped__("specs/*.arch")
        assert ROOT / "specs" / "googlenet.arch" in tracked.__wrapped__("specs/*.arch")
    finally:
        stray.unlink()
