"""What every report figure is drawn on: a grid of panels, and the placeholder for missing data.

Figures are built on an Agg canvas directly instead of through pyplot, so drawing one from a
notebook neither changes the notebook's backend nor leaves figures in pyplot's registry, and a
headless server needs no display.

Example:
    >>> fig = note_figure("no complete trials")
    >>> placeholder_reason(fig)
    'no complete trials'
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "NO_TRIALS",
    "PANEL_H",
    "PANEL_W",
    "PLACEHOLDER",
    "box_strip",
    "category_label",
    "note",
    "note_figure",
    "panels",
    "placeholder_reason",
]

#: Size of one panel in inches.
PANEL_W = 4.2
PANEL_H = 3.4
_MAX_COLS = 3
#: The placeholder text of a figure whose trials all failed or are missing.
NO_TRIALS = "no complete trials"
#: The label (``Figure.get_label()``) of a placeholder figure: a note instead of the data.
PLACEHOLDER = "regsearch.placeholder"


def placeholder_reason(fig: Figure) -> str | None:
    """Why a figure function drew a placeholder instead of its data; None for a drawn figure.

    Example:
        >>> placeholder_reason(Figure()) is None
        True
    """
    if fig.get_label() != PLACEHOLDER:
        return None
    return "; ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def panels(
    n: int, width: float = PANEL_W, height: float = PANEL_H, sharey: bool = False
) -> tuple[Figure, list[Axes]]:
    """A figure with ``n`` panels, at most three a row; unused grid cells are left to hide.

    Example:
        >>> fig, axes = panels(4)
        >>> len(axes), fig.get_size_inches().tolist()
        (6, [12.600000000000001, 6.8])
    """
    ncols = min(n, _MAX_COLS)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, list(axes.ravel())


def note(ax: Axes, text: str) -> None:
    """Write ``text`` in the middle of an empty panel, with no ticks."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def note_figure(text: str) -> Figure:
    """A placeholder: ``text`` says why the data is not drawn (see :func:`placeholder_reason`)."""
    fig, (ax,) = panels(1, width=6.0)
    fig.set_label(PLACEHOLDER)
    note(ax, text)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig


def box_strip(ax: Axes, data: pd.DataFrame, x: str, y: str, order: list[str]) -> None:
    """A box per category of ``x`` with its members as dots on top."""
    # seaborn 0.13.2 passes matplotlib's deprecated `vert=`; the warning is theirs to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
        sns.boxplot(data=data, x=x, y=y, order=order, ax=ax, color="0.9", fliersize=0)
    sns.stripplot(data=data, x=x, y=y, order=order, ax=ax, color="C0", size=4)


def category_label(value: object) -> str:
    """A parameter value as a tick label: flags as on/off, whole floats without ``.0``.

    Example:
        >>> [category_label(v) for v in ("True", False, 3.0, "relu")]
        ['on', 'off', '3', 'relu']
    """
    # CSV round trips turn bools into "True"/"False" strings or numpy bools; show them alike.
    if isinstance(value, str):
        return {"true": "on", "false": "off"}.get(value.lower(), value)
    if isinstance(value, bool | np.bool_):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
