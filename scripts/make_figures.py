"""Regenerate the diagrams in docs/figures/ (needs Graphviz's `dot`).

    python scripts/make_figures.py [--out docs/figures]

* inception_v3_blocks.svg: the block view of Inception v3 (repeated blocks collapsed);
* inception_module.svg: GoogLeNet's Inception module as in Figure 2(b) of the paper
  (paper variant: true 5x5 convolutions), drawn from inception (3a);
* inception_v3_fig5/6/7.svg: InceptionA, InceptionC, InceptionE as in Figures 5, 6, 7 of
  "Rethinking the Inception Architecture" (from Mixed_5b, Mixed_6b, Mixed_7b).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archlang.backends.diagrams.render import emit_cli

from archlang.atomic import write_atomic
from archlang.compiler import compile_spec
from archlang.diagnostics import SpecError, render_all

ROOT = Path(__file__).resolve().parent.parent

# (file name, spec, spec parameters, diagram options)
FIGURES = [
    ("inception_v3_blocks.svg", "inception_v3", {}, {"view": "blocks"}),
    ("inception_module.svg", "googlenet", {"variant": "paper"}, {"block_name": "Inception"}),
    (
        "inception_v3_fig5.svg",
        "inception_v3",
        {},
        {"block_name": "InceptionA", "base_label": "Base", "concat_label": "Filter Concat"},
    ),
    (
        "inception_v3_fig6.svg",
        "inception_v3",
        {},
        {"block_name": "InceptionC", "base_label": "Base", "concat_label": "Filter Concat"},
    ),
    (
        "inception_v3_fig7.svg",
        "inception_v3",
        {},
        {"block_name": "InceptionE", "base_label": "Base", "concat_label": "Filter Concat"},
    ),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures", help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, spec, params, options in FIGURES:
        try:
            svg = emit_cli(compile_spec(spec, params), "svg", options)
        except SpecError as err:
            print(render_all(err.diagnostics), file=sys.stderr)
            return 1
        write_atomic(args.out / name, svg)
        print(f"{args.out / name}: {len(svg):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
