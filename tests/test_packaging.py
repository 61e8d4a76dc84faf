"""The wheel carries every package and the bundled specs (a plain `pip install .` works).

`backends/` and `specs/` are installed as `archlang.backends` / `archlang.specs` through
setuptools' package-dir; a package missing from pyproject.toml's list would only show up
in a non-editable install, so build the wheel and look inside it.
"""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _expected_members() -> set[str]:
    members = set()
    for src, dest in (("archlang", "archlang"), ("backends", "archlang/backends"), ("specs", "archlang/specs")):
        for path in (ROOT / src).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in (".py", ".arch", ".lark", ".toml"):
                members.add(f"{dest}/{path.relative_to(ROOT / src).as_posix()}")
    return members


@pytest.mark.slow
def test_wheel_contains_every_module_and_spec(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {result.stderr.strip()[-300:]}")
    (wheel,) = tmp_path.glob("archlang-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_expected_members() - names)
    assert not missing, f"not in the wheel: {missing}"
    assert "archlang/specs/googlenet.arch" in names
    assert "archlang/train/recipes/inception_v3.toml" in names
    assert any(n.endswith("entry_points.txt") for n in names)
