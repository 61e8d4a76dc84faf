"""``archc SPEC --emit plot -o costs.svg|pdf|png``: where a network spends its compute and
how fast its receptive field grows, per top-level block (see :mod:`.costs`); and
``archc bench SPEC --plot roofline.svg``: the measured roofline per layer (:mod:`.roofline`).

Needs matplotlib (``pip install archlang[plot]``); without it the command reports E114.
"""

from __future__ import annotations

from archlang.diagnostics import Diagnostic, SpecError

FORMATS = ("svg", "pdf", "png")


def plot_format(output: str | None) -> str:
    """The format named by ``-o``'s suffix (SVG on stdout or without one)."""
    if not output or output == "-":
        return "svg"
    suffix = output.rsplit(".", 1)[-1].lower() if "." in output else ""
    if suffix not in FORMATS:
        raise SpecError(
            Diagnostic(
                code="E110",
                message=f"cannot write a plot to `{output}`: the file name must end in .svg, .pdf or .png",
            )
        )
    return suffix


def _plotter(module: str):
    """``plot_bytes`` of the plot module named, E114 when matplotlib is not installed."""
    import importlib

    try:
        return importlib.import_module(f"{__name__}.{module}").plot_bytes
    except ImportError as err:
        if "matplotlib" not in str(err):
            raise
        raise SpecError(
            Diagnostic(
                code="E114",
                message="cannot plot: matplotlib is not installed",
                help="pip install 'archlang[plot]' (or pip install matplotlib)",
            )
        ) from None


def emit_cli(compiled, fmt: str, options: dict) -> str | bytes:
    out_format = plot_format(options.get("output"))
    data = _plotter("costs")(compiled, out_format, options.get("notes"), options.get("dpi"))
    return data.decode("utf-8") if out_format == "svg" else data


def roofline_plotter(output: str):
    """For ``archc bench --plot FILE``: a function from a bench result (layers measured) to
    the roofline in the format ``output``'s suffix names. Checked before anything is
    measured: a bad suffix is E110, no matplotlib E114."""
    out_format = plot_format(output)
    plot_bytes = _plotter("roofline")

    def draw(result: dict, dpi: int | None = None) -> str | bytes:
        data = plot_bytes(result, out_format, dpi)
        return data.decode("utf-8") if out_format == "svg" else data

    return draw
