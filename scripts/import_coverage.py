"""Write the coverage table of docs/import.md: `archc import` over torchvision's CNN zoo.

For every classification CNN of torchvision (and timm's inception_v4 and
inception_resnet_v2 where timm is installed) it imports the model (weights=None), builds
the spec, and checks what the issue asks, against torch and fvcore — never against archlang:

* the built model loads the original state_dict with ``strict=True``;
* eval outputs agree in float64 (BN statistics randomised first), max relative error;
* params (analysis, aux heads included) equal ``sum(p.numel())`` of the original;
* FLOPs (analysis, fvcore convention) equal fvcore's ``FlopCountAnalysis`` on the original;
* re-importing the built model gives the same text (header comments aside), and so does
  re-importing the model built from that.

The checks run at ``--size`` (default 128: the figures do not depend on the resolution and
the run stays short; inception_v3 keeps 299). Run it from the repository root:

    OMP_NUM_THREADS=2 python scripts/import_coverage.py            # all models, rewrites the table
    python scripts/import_coverage.py resnet18 densenet121 --dry   # some models, print only
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

import torch
import torchvision
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import conv_flop_count, get_shape

import archlang
from archlang.diagnostics import SpecError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "import.md"
sys.path.insert(0, str(ROOT / "tests"))  # bn_stats: the BN randomiser the tests use
START = "<!-- BEGIN GENERATED COVERAGE TABLE (written by a script; do not edit by hand) -->"
END = "<!-- END GENERATED COVERAGE TABLE -->"
FAMILIES = re.compile(
    r"^(alexnet|vgg|resnet|resnext|wide_resnet|googlenet|inception_v3|densenet|squeezenet|mobilenet_v2|"
    r"mobilenet_v3|mnasnet|shufflenet_v2|efficientnet|regnet|convnext)"
)
NATIVE_SIZE = {"inception_v3": 299}
TOLERANCE = 1e-9


def convolution_mode_flop_jit(inputs, outputs):
    """fvcore's count for ``aten::_convolution_mode``, which ``nn.Conv2d(padding="same")``
    traces to and fvcore has no handle for (it would count such a conv as 0): the formula of
    fvcore's own ``conv_flop_jit``. The arguments are (input, weight, bias, stride, padding,
    dilation, groups): no ``transposed`` flag, a padding mode is never a transposed conv."""
    x, w = inputs[:2]
    return Counter({"conv": conv_flop_count(get_shape(x), get_shape(w), get_shape(outputs[0]))})


def fvcore_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """fvcore's FLOPs of ``model`` on ``x``, with the ``padding="same"`` conv counted too."""
    flops = FlopCountAnalysis(model, x).set_op_handle("aten::_convolution_mode", convolution_mode_flop_jit)
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return flops.total()


def zoo() -> list[str]:
    return sorted(m for m in torchvision.models.list_models(module=torchvision.models) if FAMILIES.match(m))


def _timm_models() -> list[str]:
    try:
        import timm  # noqa: F401
    except ImportError:
        return []
    return ["timm:inception_v4", "timm:inception_resnet_v2"]


def make(name: str) -> torch.nn.Module:
    if name.startswith("timm:"):
        import timm

        return timm.create_model(name[5:], pretrained=False)
    return torchvision.models.get_model(name, weights=None)


def _body(text: str) -> str:
    """The spec without its leading comment lines (the header names the import's source)."""
    lines = text.splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines)


def check(name: str, size: int, shape: tuple[int, int, int] | None = None) -> dict:
    row = {"model": name, "imported": False}
    shape = shape or (3, NATIVE_SIZE.get(name, size), NATIVE_SIZE.get(name, size))
    torch.manual_seed(0)
    original = make(name)
    start = time.perf_counter()
    try:
        text = archlang.from_module(original, shape)
    except SpecError as err:
        row["why"] = _first_line(str(err))
        return row
    row["import_s"] = time.perf_counter() - start
    row["imported"] = True
    row["blocks"] = len(re.findall(r"^block ", text, re.M))
    row["lines"] = text.count("\n")
    try:
        ours = archlang.build(text)
    except SpecError as err:
        row["why"] = "the imported spec does not compile: " + _first_line(str(err))
        return row
    from bn_stats import randomize_bn

    randomize_bn(original)
    ours.load_state_dict(original.state_dict(), strict=True)
    row["strict_load"] = True
    original.double().eval()
    ours.double().eval()
    x = torch.randn(2, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = original(x), ours(x)
    row["rel_err"] = float((got - want).abs().max() / want.abs().max())
    analysis = archlang.analyze(text)
    params = analysis.totals.params + sum(t.params for t in analysis.aux_totals.values())
    row["params"] = sum(p.numel() for p in original.parameters())
    row["params_equal"] = params == row["params"]
    row["flops"] = fvcore_flops(original.float(), torch.zeros(1, *shape))
    row["flops_equal"] = analysis.totals.flops == row["flops"]
    try:
        again = archlang.from_module(ours.float().train(), shape)
    except SpecError as err:
        row["round_trip"] = False
        row["why"] = "re-import: " + _first_line(str(err))
        return row
    row["round_trip"] = _body(again) == _body(text)
    if not row["round_trip"]:
        row["why"] = "re-import gives another text"
        return row
    try:  # and once more: the spec of the re-import is a fixed point too
        third = archlang.from_module(archlang.build(again), shape)
    except SpecError as err:
        row["round_trip"] = False
        row["why"] = "second re-import: " + _first_line(str(err))
        return row
    row["round_trip"] = _body(third) == _body(again)
    if not row["round_trip"]:
        row["why"] = "second re-import gives another text"
    return row


def _first_line(message: str) -> str:
    return next((ln.strip() for ln in message.splitlines() if ln.strip()), message).replace("|", "\\|")


def supported(row: dict) -> bool:
    """What the issue's acceptance asks of a supported model (round-trip is reported apart)."""
    return bool(
        row.get("strict_load")
        and row.get("rel_err", 1.0) <= TOLERANCE
        and row.get("params_equal")
        and row.get("flops_equal")
    )


def _yes(flag) -> str:
    return "yes" if flag else "**no**"


def table(rows: list[dict], size: int) -> str:
    ok = sum(supported(r) for r in rows)
    out = [
        f"{ok} of {len(rows)} models supported (torchvision {torchvision.__version__}, torch {torch.__version__};"
        f" checks at 3×{size}×{size}, inception_v3 at 3×299×299; `python scripts/import_coverage.py`).",
        "",
        "| model | imported | strict load | max rel. error (f64) | params | params = numel | FLOPs = fvcore "
        "| round-trips | blocks | import s | why not |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        err = f"{r['rel_err']:.1e}" if "rel_err" in r else "–"
        params = f"{r['params']:,}" if "params" in r else "–"
        secs = f"{r['import_s']:.2f}" if "import_s" in r else "–"
        cells = [
            f"`{r['model']}`",
            _yes(r["imported"]),
            _yes(r.get("strict_load")),
            err,
            params,
            _yes(r.get("params_equal")),
            _yes(r.get("flops_equal")),
            _yes(r.get("round_trip")),
            str(r.get("blocks", "–")),
            secs,
            r.get("why", ""),
        ]
        out.append("| " + " | ".join(cells) + " |")
    if not _timm_models():
        out += ["", "timm is not installed here, so timm's inception_v4 and inception_resnet_v2 are not listed."]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model names (default: the whole zoo)")
    parser.add_argument("--size", type=int, default=128, help="input height and width for the checks")
    parser.add_argument("--dry", action="store_true", help="print the table, do not rewrite docs/import.md")
    args = parser.parse_args()
    names = args.models or [*zoo(), *_timm_models()]
    rows = []
    for name in names:
        try:
            row = check(name, args.size)
        except Exception as err:  # a bug in the importer: recorded, the run goes on
            traceback.print_exc()
            row = {"model": name, "imported": False, "why": f"internal error: {type(err).__name__}: {err}"}
        rows.append(row)
        print(name, "ok" if supported(row) else f"NOT SUPPORTED: {row.get('why', row)}", flush=True)
    text = table(rows, args.size)
    if args.dry or args.models:
        print(text)
        return 0
    doc = DOC.read_text()
    head, _, rest = doc.partition(START)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
