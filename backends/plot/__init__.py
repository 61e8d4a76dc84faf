"""``archc SPEC --emit plot -o costs.svg|pdf|png``: where a network spends its compute and
how fast its receptive field grows, per top-level block (see :mod:`.costs`).

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


def emit_cli(compiled, fmt: str, options: dict) -> str | bytes:
    out_format = plot_format(options.get("output"))
    try:
        from .costs import plot_bytes
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
    data = plot_bytes(compiled, out_format, options.get("notes"), options.get("dpi"))
    return data.decode("utf-8") if out_format == "svg" else data
