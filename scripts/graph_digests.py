"""Prints a digest of the lowered graph of every bundled spec and variant, as JSON: the
golden that tests/test_named_values.py holds every language change to (a change of the
language that is sugar must leave these graphs as they were).

    python scripts/graph_digests.py > tests/golden/graph_digests.json
"""

from __future__ import annotations

import hashlib
import json

from archlang.specs.catalog import VARIANTS

from archlang.compiler import compile_spec

FILES = ["alexnet", "densenet", "googlenet", "inception_v3", "lenet5", "mobilenet_v2", "resnet", "vgg"]
EXTRA = {
    "googlenet_paper": ("googlenet", {"variant": "paper"}),
    "googlenet_plain": ("googlenet", {"aux_logits": False}),
}


def digest(name: str, params: dict | None = None) -> dict:
    g = compile_spec(name, params).graph
    lines = [
        f"{nid} {n.op.value} {sorted((k, repr(v)) for k, v in n.attrs.items())} {n.inputs} {n.shape} {n.aux}"
        for nid, n in g.nodes.items()
    ]
    lines.append(f"output {g.output} aux {sorted(g.aux_outputs.items())}")
    return {"nodes": len(g.nodes), "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest()}


def main() -> None:
    out = {name: digest(name) for name in [*FILES, *VARIANTS]}
    out.update({key: digest(name, params) for key, (name, params) in EXTRA.items()})
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
