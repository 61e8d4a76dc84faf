"""The back-end oracle (issue 14, finding 10): what must hold for every spec that compiles.

For a spec that ``archc check`` accepts: the emitted Python (``--emit torch``, plain and
``--optimize``) imports from a file, builds on the meta device and runs forward there, and
the output's shape is the analysis' output shape (aux heads' too, in training mode); the DOT
(``--emit dot``) renders with Graphviz (``dot -Tsvg``) and its SVG links nowhere
(``javascript:``); ``--report --format json`` gives JSON. A back end may still refuse the spec
with a located diagnostic. Anything else (a traceback, an unlocated refusal, a wrong shape,
a ``dot`` error) is a failure, returned as an :class:`mutate.Outcome` with kind ``crash``.

In process (archlang's own APIs) for speed; ``dot`` is the one subprocess.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from mutate import ROOT, Outcome, judge

_counter = itertools.count()
_HREF = re.compile(r"href\s*=\s*\"\s*javascript:", re.IGNORECASE)


def compile_case(text: str, max_nodes: int = 20_000):
    """(Outcome, compiled or None): ``mutate.check``'s judgement, keeping the compiled spec."""
    from archlang import compile_spec
    from archlang.diagnostics import SpecError
    from archlang.frontend.loader import load_text

    try:
        return Outcome("ok"), compile_spec(load_text(text, "<fuzz>", base_dir=ROOT / "specs"), max_nodes=max_nodes)
    except SpecError as err:
        return judge(err), None
    except Exception:  # noqa: BLE001 - any other exception is the bug we look for
        return Outcome("crash", traceback.format_exc()), None


def _import(source: str, folder: Path):
    """Import generated source from a file, as a user would."""
    name = f"fuzz_model_{next(_counter)}"
    path = folder / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        path.unlink()
    return module


def _network_class(module, name: str):
    import torch

    cls = getattr(module, name, None)
    if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
        return cls
    defined = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__]
    return [v for v in defined if issubclass(v, torch.nn.Module)][-1]


def _run_torch(compiled, source: str, folder: Path, what: str) -> str | None:
    """Import, build on meta, forward in eval and train mode; a problem as text, or None."""
    import torch

    graph = compiled.graph
    nodes = graph.nodes
    want = tuple(nodes[graph.output].shape)
    aux_want = {name: tuple(nodes[node].shape) for name, node in graph.aux_outputs.items()}
    module = _import(source, folder)
    cls = _network_class(module, graph.network)
    with torch.device("meta"):
        model = cls()
        x = torch.empty(2, *graph.input_shape)
    modes = ("eval", "train") if aux_want and what == "torch" else ("eval",)
    for mode in modes:
        getattr(model, mode)()
        with torch.no_grad():
            out = model(x)
        outs = list(out) if isinstance(out, tuple) else [out]
        if outs[0].device.type != "meta" or tuple(outs[0].shape) != (2, *want):
            return f"{what} ({mode}): output {tuple(outs[0].shape)}, the analysis says (2, {want})"
        if mode == "train" and sorted(tuple(t.shape[1:]) for t in outs[1:]) != sorted(aux_want.values()):
            return f"{what} (train): aux outputs {[tuple(t.shape) for t in outs[1:]]}, expected {aux_want}"
    return None


def render_dot(dot_source: str) -> str | None:
    """``dot -Tsvg``: a problem as text, or None."""
    proc = subprocess.run(["dot", "-Tsvg"], input=dot_source.encode("utf-8"), capture_output=True, timeout=60)
    if proc.returncode != 0:
        return f"dot -Tsvg exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-800:]}"
    if _HREF.search(proc.stdout.decode("utf-8", "replace")):
        return "the SVG links to javascript:"
    return None


def backends(compiled, folder: Path) -> Outcome:
    """Every back end on a compiled spec: emitted Python runs, DOT renders, JSON report parses."""
    from archlang.backends.diagrams.render import to_dot
    from archlang.backends.report.tables import report_cli
    from archlang.backends.torch import optimize
    from archlang.backends.torch.codegen import emit

    from archlang.diagnostics import SpecError

    steps = (
        ("torch", lambda: _run_torch(compiled, emit(compiled), folder, "torch")),
        ("torch --optimize", lambda: _run_torch(compiled, optimize.emit(compiled), folder, "torch --optimize")),
        ("dot", lambda: render_dot(to_dot(compiled, {}))),
        ("report json", lambda: json.loads(report_cli(compiled, {"fmt": "json"})) and None),
    )
    for what, step in steps:
        try:
            problem = step()
        except SpecError as err:
            if getattr(err, "sources", None) is None:
                err.sources = compiled.sources
            judged = judge(err)
            if judged.kind != "rejected":
                return Outcome(judged.kind, f"{what}: {judged.detail}")
            return Outcome("refused-backend", f"{what}: {judged.detail}")
        except Exception:  # noqa: BLE001 - the failure we look for
            return Outcome("crash", f"{what}:\n{traceback.format_exc()}")
        if problem:
            return Outcome("crash", f"{what}: {problem}")
    return Outcome("ok")


def check_all(text: str, folder: Path | None = None) -> Outcome:
    """The whole oracle on spec text: compile, then every back end if it compiled."""
    outcome, compiled = compile_case(text)
    if compiled is None:
        return outcome
    if folder is not None:
        return backends(compiled, folder)
    with tempfile.TemporaryDirectory() as tmp:
        return backends(compiled, Path(tmp))


if __name__ == "__main__":  # python fuzz/oracle.py SPEC.arch: the oracle on one file
    result = check_all(Path(sys.argv[1]).read_text(encoding="utf-8"))
    print(result.kind, result.detail)
