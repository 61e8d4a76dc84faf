"""A plain `pip install .` works: the wheel carries every package and the bundled specs, and
the installed `archc` runs from a directory outside the repository.

`backends/` and `specs/` are installed as `archlang.backends` / `archlang.specs` through
setuptools' package-dir; a package missing from pyproject.toml's list would only show up
in a non-editable install, so build the wheel, install it into a fresh virtual
environment and use it there. Any failure on the way fails the test.

The wheel goes into the fresh venv; the dependencies (lark, pydantic, ...) are borrowed
from the running interpreter's site-packages without its import hooks, so an editable
install of archlang there is neither used nor touched; the test checks that every archlang
module the venv imports is the wheel's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Builds a wheel and pip-installs it into a fresh target: a minute and more on 2 cores.
pytestmark = pytest.mark.slow


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result


def _expected_members() -> set[str]:
    members = set()
    for src, dest in (("archlang", "archlang"), ("backends", "archlang/backends"), ("specs", "archlang/specs")):
        for path in (ROOT / src).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in (".py", ".arch", ".lark", ".toml"):
                members.add(f"{dest}/{path.relative_to(ROOT / src).as_posix()}")
    return members


def _clean_copy(dest: Path) -> None:
    """Copy the repository as a fresh clone has it (plus files not yet committed): setuptools
    builds in-tree, and a stale build/ or *.egg-info in the checkout would put modules into
    the wheel that pyproject.toml no longer lists."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True
        )
    except OSError:  # no git
        listed = None
    if (
        listed is None or listed.returncode != 0
    ):  # not a git checkout (an unpacked sdist): the packages and their metadata
        skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")
        for folder in ("archlang", "backends", "specs"):
            shutil.copytree(ROOT / folder, dest / folder, ignore=skip)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, dest / name)
        return
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():  # a deleted but not yet committed file is still listed
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("source")
    _clean_copy(source)
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, source])
    (built,) = out.glob("archlang-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed; returns its bin/ (Scripts\\ on Windows)."""
    venv = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--ignore-installed"]
    _run([*pip, "--no-warn-script-location", wheel])
    # The dependencies come from this interpreter's site-packages, listed as plain paths: a
    # path line in a .pth does not run the .pth files of that folder, so an editable archlang
    # installed there (its import hook would quietly supply modules the wheel lacks) stays off.
    site_packages = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    deps = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    (Path(site_packages) / "_test_dependencies.pth").write_text("\n".join(deps) + "\n")
    return bindir


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    return env | {"PYTHONNOUSERSITE": "1", "NO_COLOR": "1", "COLUMNS": "200"}


def test_wheel_contains_every_module_and_spec(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_expected_members() - names)
    assert not missing, f"not in the wheel: {missing}"
    assert "archlang/specs/googlenet.arch" in names
    assert "archlang/train/recipes/inception_v3.toml" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_the_venv_imports_the_installed_wheel(installed, tmp_path):
    code = (
        "import sys, archlang.cli.main, archlang.analysis, archlang.lint, archlang.specs, archlang.backends.report.tables,"
        " archlang.backends.diagrams.render\n"
        "for name, module in sorted(sys.modules.items()):\n"
        "    if name.split('.')[0] == 'archlang': print(name, getattr(module, '__file__', None))"
    )
    out = _run([installed / "python", "-c", code], cwd=tmp_path, env=_clean_env()).stdout.splitlines()
    venv = installed.parent.resolve()
    assert len(out) > 20
    for line in out:
        name, _, path = line.partition(" ")
        assert Path(path).resolve().is_relative_to(venv), f"{name} comes from {path}, not the wheel in {venv}"


def test_installed_archc_checks_a_bundled_spec_outside_the_repo(installed, tmp_path):
    result = _run([installed / "archc", "check", "googlenet"], cwd=tmp_path, env=_clean_env())
    # the headline parameter count with aux heads (torchvision googlenet(aux_logits=True): 13,004,888)
    assert "13,004,888" in result.stdout + result.stderr
    assert str(ROOT) not in result.stdout + result.stderr, "the installed archc read the repository's spec"


def test_installed_archc_reports_a_bundled_spec_outside_the_repo(installed, tmp_path):
    result = _run([installed / "archc", "googlenet", "--report"], cwd=tmp_path, env=_clean_env())
    # fvcore's FLOPs of torchvision's googlenet in eval mode (aux heads do not run)
    assert "1,504,878,688" in result.stdout
    assert "inception5b" in result.stdout
    assert str(ROOT) not in result.stdout + result.stderr
    assert not list(tmp_path.iterdir()), "the report wrote files into the working directory"
