"""Decision boundaries of a two-dimensional task, one panel per candidate."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from regsearch.comparison import BASELINE_NAMES
from regsearch.report.panels import note_figure, panels

__all__ = ["decision_boundaries"]


def decision_boundaries(boundaries: Mapping[str, np.ndarray] | str | Path) -> Figure:
    """Decision boundaries of each candidate side by side, over the training points.

    The filled contours are the predicted probability of class 1 on the grid, the black line
    its 0.5 level (the boundary), the points the training set coloured by label — as the NNDL
    book draws them for make_moons.

    Args:
        boundaries: The arrays of ``boundaries.npz`` (``xx``, ``yy``, ``x``, ``y`` and one
            ``prob__<name>`` per candidate), or the path of that file.

    Returns:
        The figure; nothing is shown.

    Example:
        >>> xx, yy = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5))
        >>> arrays = {"xx": xx, "yy": yy, "x": np.array([[0.0, 0.5], [0.5, 0.0]]),
        ...           "y": np.array([0, 1]), "prob__l2": 1 / (1 + np.exp(-4 * xx)),
        ...           "prob__baseline": 1 / (1 + np.exp(-4 * yy))}
        >>> [ax.get_title() for ax in decision_boundaries(arrays).axes]
        ['baseline', 'l2']
    """
    if isinstance(boundaries, str | Path):
        with np.load(boundaries) as npz:
            boundaries = {k: npz[k] for k in npz.files}
    names = [k.removeprefix("prob__") for k in boundaries if k.startswith("prob__")]
    names.sort(key=lambda n: n not in BASELINE_NAMES)
    if not names or any(k not in boundaries for k in ("xx", "yy", "x", "y")):
        return note_figure("no decision boundaries recorded")
    xx, yy, x, y = (boundaries[k] for k in ("xx", "yy", "x", "y"))
    span = np.ptp(xx), np.ptp(yy)
    width = 3.8
    fig, axes = panels(len(names), width=width, height=0.25 + width * span[1] / max(span[0], 1e-9))
    levels = np.linspace(0.0, 1.0, 11)
    classes = ListedColormap(["#2166ac", "#b2182b"])
    for ax, name in zip(axes, names, strict=False):
        prob = boundaries[f"prob__{name}"]
        ax.contourf(xx, yy, prob, levels=levels, cmap="RdBu_r", alpha=0.45)
        ax.contour(xx, yy, prob, levels=[0.5], colors="k", linewidths=1.5)
        ax.scatter(
            x[:, 0],
            x[:, 1],
            c=y,
            cmap=classes,
            vmin=0,
            vmax=1,
            s=14,
            edgecolors="k",
            linewidths=0.4,
        )
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="box")
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    return fig
