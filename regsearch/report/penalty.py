"""What a penalty does to the trained weights: their norm and sparsity against λ.

Example:
    >>> trials = pd.DataFrame({"state": "complete", "l1": [1e-3, 1e-1], "sparsity": [0.1, 0.6]})
    >>> [ax.get_ylabel() for ax in penalty_effects(trials).axes]
    ['sparsity']
"""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from regsearch.comparison import BASELINE_NAMES
from regsearch.report.members import complete_rows
from regsearch.report.panels import PANEL_H, PANEL_W, note_figure
from regsearch.results import LAYER_COLUMNS

__all__ = ["PENALTY_PARAMS", "penalty_effects"]

#: Parameters whose strength is a penalty λ, drawn by :func:`penalty_effects`.
PENALTY_PARAMS = ("l1", "l2", "weight_decay")


def penalty_effects(trials: pd.DataFrame, log_params: Collection[str] = PENALTY_PARAMS) -> Figure:
    """Weight norm and sparsity of the trained weights against each penalty strength λ.

    One column per searched penalty (``l1``, ``l2``, ``weight_decay``), complete tune members;
    L1 should drive sparsity up, L2 and weight decay the norm down. The dashed line is the
    unregularized candidate's mean when the sweep re-evaluated one.

    Args:
        trials: One row per member, as in ``trials.csv``.
        log_params: Parameters drawn on a log axis.

    Returns:
        The figure; nothing is shown.

    Example:
        >>> trials = pd.DataFrame({"state": "complete", "l2": [1e-4, 1e-2, 1.0],
        ...                        "weight_norm": [9.0, 6.0, 2.0], "sparsity": 0.0})
        >>> fig = penalty_effects(trials, {"l2"})
        >>> [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
        [('l2 (λ)', 'weight_norm'), ('l2 (λ)', 'sparsity')]
    """
    rows = complete_rows(trials)
    present = [p for p in PENALTY_PARAMS if p in rows.columns and (rows[p] > 0).any()]
    # Per layer type too (weight_norm_conv, ...), where the network has several.
    stats = [
        s
        for s in ("weight_norm", "sparsity", *LAYER_COLUMNS)
        if s in rows.columns and rows[s].notna().any()
    ]
    if not present:
        return note_figure("no penalty strength (l1, l2, weight_decay) searched")
    if not stats:
        return note_figure("no weight_norm or sparsity recorded")
    fig = Figure(figsize=(PANEL_W * len(present), PANEL_H * len(stats)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(stats), len(present), squeeze=False)
    final = complete_rows(trials, "final")
    base = (
        final.loc[final["family"].astype(str).isin(BASELINE_NAMES)]
        if "family" in final
        else final.iloc[0:0]
    )
    for col, param in enumerate(present):
        data = rows.loc[rows[param] > 0]
        for row, stat in enumerate(stats):
            ax = axes[row][col]
            ax.scatter(data[param], data[stat], s=24, color="C0")
            if param in log_params:
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(NullFormatter())  # labels collide on short spans
            if not base.empty and base[stat].notna().any():
                ax.axhline(
                    base[stat].mean(), color="0.4", linestyle="--", lw=1, label="unregularized"
                )
                ax.legend(loc="best", frameon=False, fontsize=8)
            ax.set_xlabel(f"{param} (λ)")
            ax.set_ylabel(stat)
    return fig
