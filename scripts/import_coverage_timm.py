"""Write the timm coverage table of docs/import.md: `archc import` on one model of every
convolutional family of timm's registry.

A family is a module of timm's registry (``timm.list_modules()``) that builds CNNs (the
transformer, MLP and hybrid modules are left out: :data:`CONVOLUTIONAL`). Its model is a
small base model (:data:`BASE`, else the one with the shortest name), at the smallest input its pretrained config allows (``min_input_size``, a
fixed ``input_size``, else 3×``--size``×``--size``). Each row runs the checks of
``scripts/import_coverage.py`` (strict load, float64 outputs, params = numel, FLOPs =
fvcore, round trip twice over), against torch and fvcore, never archlang.

    OMP_NUM_THREADS=2 python scripts/import_coverage_timm.py          # rewrites the table
    python scripts/import_coverage_timm.py resnet selecsls --dry      # some families, print only
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

import timm
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import import_coverage  # noqa: E402

DOC = import_coverage.DOC
START = "<!-- BEGIN GENERATED TIMM COVERAGE TABLE (written by a script; do not edit by hand) -->"
END = "<!-- END GENERATED TIMM COVERAGE TABLE -->"
# timm's registry modules whose models are convolutional networks: every module of
# ``timm.list_modules()`` but the transformer, MLP, state-space and hybrid (conv + attention)
# ones (beit, byoanet, cait, coat, convit, cpubone, crossvit, csatv2, davit, deit, edgenext,
# efficientformer(_v2), efficientvim, efficientvit_*, eva, fastvit, focalnet, gcvit, hiera,
# iformer, levit, lowformer, maxxvit, mlp_mixer, mobilenetv5, mobilevit, mvitv2, nest, nextvit,
# pit, pvt_v2, sequencer, shvit, swiftformer, swin_*, tiny_vit, tnt, twins, visformer, vit*,
# volo, xcit and the other ViTs). ``metaformer`` holds conv (PoolFormer, ConvFormer) and
# attention (CAFormer) models: its row is a conv one. CPUBone's blocks hold self-attention, so
# ``cpubone`` is a hybrid, left out here; it imports exactly all the same
# (tests/test_import_metaformer_ops.py).
CONVOLUTIONAL = (
    "byobnet convmixer convnext cspnet cspnext densenet dla dpn efficientnet fasternet ghostnet "
    "hardcorenas hgnet hrnet inception_next inception_resnet_v2 inception_v3 inception_v4 lcnetv2 mambaout "
    "metaformer mobilenetv3 nasnet nfnet pnasnet rdnet regnet repghost repvit res2net resnest resnet resnetv2 "
    "rexnet selecsls senet sknet starnet tresnet vgg vovnet xception xception_aligned"
).split()


# The family's small base model where the shortest name is not it (the picks).
BASE = {
    "byobnet": "repvgg_a0",
    "cspnet": "cspresnet50",
    "efficientnet": "efficientnet_b0",
    "mobilenetv3": "mobilenetv3_large_100",
    "regnet": "regnety_002",
    "res2net": "res2net50_26w_4s",
    "hrnet": "hrnet_w18_small",
    "hgnet": "hgnet_tiny",
    "senet": "legacy_seresnet18",
    "tresnet": "tresnet_m",
    "resnet": "resnet50d",
    "selecsls": "selecsls42b",
    "cspnext": "cspnext_tiny",
    "fasternet": "fasternet_t0",
    "lcnetv2": "lcnetv2_small",
    "mambaout": "mambaout_femto",
    "metaformer": "poolformer_s12",
    "nfnet": "nf_resnet26",
    "rdnet": "rdnet_tiny",
    "starnet": "starnet_s050",
}


def families() -> dict[str, str]:
    """Family (registry module) -> its base model: :data:`BASE`, else the shortest name."""
    out = {}
    for module in CONVOLUTIONAL:
        names = timm.list_models(module=module)
        if names:
            out[module] = BASE[module] if BASE.get(module) in names else min(names, key=lambda n: (len(n), n))
    return out


def input_shape(name: str, size: int) -> tuple[int, int, int]:
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return (3, size, size)
    if getattr(cfg, "fixed_input_size", False):
        return tuple(cfg.input_size)
    return tuple(cfg.min_input_size or (3, size, size))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", help="registry modules (default: every convolutional one)")
    parser.add_argument("--size", type=int, default=128, help="input size where the config gives no minimum")
    parser.add_argument("--dry", action="store_true", help="print the table, do not rewrite docs/import.md")
    args = parser.parse_args()
    picked = families()
    if args.families:
        picked = {f: picked[f] for f in args.families}
    rows = []
    for family, name in picked.items():
        shape = input_shape(name, args.size)
        try:
            row = import_coverage.check("timm:" + name, args.size, shape)
        except Exception as err:  # a bug in the importer: recorded, the run goes on
            traceback.print_exc()
            row = {"model": "timm:" + name, "imported": False, "why": f"internal error: {type(err).__name__}: {err}"}
        row["model"], row["family"], row["shape"] = name, family, shape
        rows.append(row)
        ok = import_coverage.supported(row)
        print(family, name, "ok" if ok else f"NOT SUPPORTED: {row.get('why', row)}", flush=True)
    text = table(rows)
    if args.dry or args.families:
        print(text)
        return 0
    doc = DOC.read_text()
    if START not in doc:
        doc = doc.replace(import_coverage.END, f"{import_coverage.END}\n\n{START}\n{END}")
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    return 0


def table(rows: list[dict]) -> str:
    ok = sum(import_coverage.supported(r) for r in rows)
    pct = 100 * ok / len(rows) if rows else 0
    yes = import_coverage._yes
    out = [
        f"{ok} of {len(rows)} convolutional families import exactly ({pct:.0f} %; timm {timm.__version__}, torch "
        f"{torch.__version__}; `python scripts/import_coverage_timm.py`).",
        "",
        "| family | model | input | imported | strict load | max rel. error (f64) | params | params = numel "
        "| FLOPs = fvcore | round-trips | why not |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [
            r["family"],
            f"`{r['model']}`",
            "×".join(str(d) for d in r["shape"]),
            yes(r["imported"]),
            yes(r.get("strict_load")),
            f"{r['rel_err']:.1e}" if "rel_err" in r else "–",
            f"{r['params']:,}" if "params" in r else "–",
            yes(r.get("params_equal")),
            yes(r.get("flops_equal")),
            yes(r.get("round_trip")),
            r.get("why", ""),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
