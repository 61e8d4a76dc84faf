"""The README's table of bundled specs: params, MACs, fvcore FLOPs and receptive field.

    .venv/bin/python scripts/spec_table.py           # print the table
    .venv/bin/python scripts/spec_table.py --write   # rewrite it in README.md

Figures come from archlang's static analysis (no torch); tests/test_spec_table.py checks
the README's table against this script and against torchvision / fvcore.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import archlang
from archlang.compiler import bundled_specs, bundled_variants
from archlang.ops import Op

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- spec-table: start (scripts/spec_table.py --write) -->", "<!-- spec-table: end -->"
HEADER = (
    "| name | spec | input | params (inference) | MACs | fvcore FLOPs | RF at last conv |\n"
    "|---|---|---|--:|--:|--:|--:|"
)


def _sets(params: dict) -> str:
    return " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items())


def rows() -> list[tuple[str, str, dict]]:
    """(bundled name, spec file name, parameters it sets), files first, then variants."""
    out = [(name, path.name, {}) for name, path in bundled_specs().items()]
    out += [(name, path.name, params) for name, (path, params) in bundled_variants().items()]
    return sorted(out, key=lambda row: _natural(row[0]))


def _natural(name: str) -> list:
    """resnet18 < resnet50 < resnet101: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def last_conv_rf(analysis) -> str:
    convs = [c for c in analysis.nodes.values() if c.op is Op.CONV2D and c.aux is None]
    return convs[-1].rf.text()


def table() -> str:
    lines = [HEADER]
    for name, file, params in rows():
        a = archlang.analyze(name)
        spec = f"`{file}`" + (f" `{_sets(params)}`" if params else "")
        shape = "×".join(map(str, a.input_shape))
        t = a.totals
        lines.append(f"| `{name}` | {spec} | {shape} | {t.params:,} | {t.macs:,} | {t.flops:,} | {last_conv_rf(a)} |")
    return "\n".join(lines)


def readme_with_table(text: str, new_table: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{new_table}\n{END}{tail}"


def main(argv: list[str]) -> int:
    current = table()
    if "--write" in argv:
        README.write_text(readme_with_table(README.read_text(), current))
    else:
        print(current)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
