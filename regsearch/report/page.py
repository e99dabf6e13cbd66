"""What every regsearch HTML page shares: embedded figures and the Jinja2 environment.

The sweep report (:mod:`regsearch.report.html`) and the suite report
(:mod:`regsearch.suite.report`) are self-contained pages: each figure is written as a PNG
beside the page and embedded in it as a data URI, so the page opens offline and alone.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
from matplotlib.figure import Figure

__all__ = ["DPI", "FigureView", "environment", "save_figure"]

#: Resolution of the embedded PNGs: sharp on a laptop screen, small enough to embed.
DPI = 110


@dataclass(frozen=True)
class FigureView:
    """One drawn figure as a page shows it."""

    name: str
    title: str
    caption: str
    data_uri: str


def save_figure(
    fig_dir: Path, name: str, title: str, caption: str, make: Callable[[], Figure]
) -> FigureView:
    """Draw ``make()``, write it to ``fig_dir/<name>.png`` and return it ready to embed."""
    buffer = io.BytesIO()
    make().savefig(buffer, format="png", dpi=DPI)
    png = buffer.getvalue()
    (fig_dir / f"{name}.png").write_bytes(png)
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return FigureView(name=name, title=title, caption=caption, data_uri=uri)


def environment(folder: Path) -> jinja2.Environment:
    """The Jinja2 environment of templates in ``folder`` (escaping on, strict undefined)."""
    # A file-system loader next to the module works the same from a checkout and a wheel.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
