"""Write tests/data/torchvision_models.json: torchvision's and fvcore's figures for the
torchvision models the bundled specs reproduce (run by hand; tests read the file).

Every number comes from torchvision or fvcore, never from archlang: params and buffers
from the module, fvcore's FlopCountAnalysis total and per operator (eval, batch 1), MACs as
fvcore's conv + linear counts, and torchvision's published GFLOPS (``meta["_ops"]``).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/torchvision_reference.py
    OMP_NUM_THREADS=1 .venv/bin/python scripts/torchvision_reference.py mobilenet_v2  # one entry
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torchvision
from fvcore.nn import FlopCountAnalysis

MODELS = [
    "alexnet",
    *(f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
    *(f"resnet{d}" for d in (18, 34, 50, 101, 152)),
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "mobilenet_v2",
    *(f"densenet{d}" for d in (121, 161, 169, 201)),
]
OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "torchvision_models.json"


def figures(name: str) -> dict:
    model = getattr(torchvision.models, name)(weights=None).eval()
    weights = torchvision.models.get_model_weights(name)
    meta = next(iter(weights)).meta
    flops = FlopCountAnalysis(model, torch.zeros(1, 3, 224, 224))
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    by_op = dict(flops.by_operator())
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "buffers": sum(b.numel() for b in model.buffers()),
        "fvcore_flops": flops.total(),
        "fvcore_by_operator": by_op,
        "macs": by_op.get("conv", 0) + by_op.get("linear", 0),
        "torchvision_gflops": meta.get("_ops"),
        "torchvision_num_params": meta.get("num_params"),
    }


def main() -> None:
    torch.set_num_threads(1)
    # Named models update their entries in the existing file; no names rewrites it whole.
    data = json.loads(OUT.read_text()) if sys.argv[1:] and OUT.exists() else {}
    data["source"] = f"torchvision {torchvision.__version__}, torch {torch.__version__}, fvcore 0.1.5"
    for name in sys.argv[1:] or MODELS:
        data[name] = figures(name)
        print(name, data[name]["params"], data[name]["fvcore_flops"], flush=True)
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
