"""The gap between train and validation: against each searched parameter, and per family.

Example:
    >>> trials = pd.DataFrame({"family": ["l2", "dropout"], "state": "complete",
    ...                        "gap_loss": [0.05, 0.02]})
    >>> [t.get_text() for t in gap_by_family(trials, "regression").axes[0].get_xticklabels()]
    ['dropout', 'l2']
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from regsearch.report.members import complete_rows, gap_column, val_column
from regsearch.report.panels import NO_TRIALS, box_strip, category_label, note, note_figure, panels

__all__ = ["gap_by_family", "gap_vs_params", "param_kind"]

ParamKind = Literal["log", "numeric", "categorical"]


def param_kind(values: pd.Series, is_log: bool) -> ParamKind:
    """How a parameter's values should be plotted.

    Booleans and strings are categories (strip/box plot); numbers are a scatter, on a log axis
    when the search space sampled them on a log scale.

    Example:
        >>> param_kind(pd.Series([True, False, None]), is_log=False)
        'categorical'
        >>> param_kind(pd.Series([1e-4, 1e-2]), is_log=True)
        'log'
    """
    present = values.dropna()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(present):
        return "categorical"
    return "log" if is_log else "numeric"


def gap_vs_params(
    trials: pd.DataFrame, params: list[str], log_params: Collection[str], kind: str
) -> Figure:
    """Train/validation gap against each searched parameter, one panel per parameter.

    Uses complete tune members only. Points are coloured by the validation metric; boolean and
    categorical parameters are drawn as box plots with the members on top. A dashed line marks
    a gap of zero (no overfitting).

    Args:
        trials: One row per member, as in ``trials.csv``.
        params: Searched parameter names (columns of ``trials``).
        log_params: Those of ``params`` sampled on a log scale.
        kind: ``"classification"`` (plots ``gap_acc``) or ``"regression"`` (``gap_loss``).

    Returns:
        The figure; nothing is shown.

    Example:
        >>> trials = pd.DataFrame({"state": "complete", "dropout": [0.0, 0.3, 0.6],
        ...                        "gap_acc": [0.09, 0.04, 0.01], "val_acc": [0.8, 0.86, 0.84]})
        >>> fig = gap_vs_params(trials, ["dropout"], log_params=[], kind="classification")
        >>> panel = fig.axes[0]
        >>> panel.get_title(), panel.get_ylabel(), len(panel.collections[0].get_offsets())
        ('dropout', 'gap_acc', 3)
    """
    gap, val = gap_column(kind), val_column(kind)
    rows = complete_rows(trials)
    if gap in rows.columns:
        rows = rows.loc[rows[gap].notna()]
    if rows.empty or gap not in rows.columns:
        return note_figure(NO_TRIALS)
    if not params:
        return note_figure("no searched parameters")
    fig, axes = panels(len(params))
    for ax, param in zip(axes, params, strict=False):
        _gap_panel(ax, rows, param, param in log_params, gap, val)
        ax.axhline(0.0, color="0.3", linestyle="--", linewidth=1)
    for ax in axes[len(params) :]:
        ax.set_visible(False)
    return fig


def _gap_panel(ax: Axes, rows: pd.DataFrame, param: str, is_log: bool, gap: str, val: str) -> None:
    if param not in rows.columns or rows[param].isna().all():
        ax.set_title(param)
        note(ax, "not searched in these trials")
        return
    data = rows.loc[rows[param].notna()]
    how = param_kind(data[param], is_log)
    if how == "categorical":
        labels = data[param].map(category_label)
        order = sorted(labels.unique())
        plot = data.assign(**{param: labels})
        box_strip(ax, plot, param, gap, order)
    else:
        if how == "log":
            data = data.loc[data[param] > 0]
            ax.set_xscale("log")
        coloured = val in data.columns and data[val].notna().any()
        sns.scatterplot(
            data=data,
            x=param,
            y=gap,
            hue=val if coloured else None,
            palette="viridis" if coloured else None,
            legend=False,
            ax=ax,
            s=28,
        )
        if coloured:
            norm = Normalize(data[val].min(), data[val].max())
            ax.figure.colorbar(ScalarMappable(norm, "viridis"), ax=ax, label=val)
    ax.set_title(param)
    ax.set_xlabel(f"{param} (log)" if how == "log" else param)
    ax.set_ylabel(gap)


def gap_by_family(trials: pd.DataFrame, kind: str) -> Figure:
    """Gap per regularizer family, for the compare sweep's head-to-head.

    Uses the ``final`` re-evaluation rows when there are any (fresh seeds, so the spread is an
    honest error bar), else complete tune rows.

    Args:
        trials: One row per member, as in ``trials.csv``.
        kind: ``"classification"`` or ``"regression"``.

    Returns:
        The figure; nothing is shown.

    Example:
        >>> trials = pd.DataFrame({"family": ["l2", "l2", "dropout"], "state": "complete",
        ...                        "gap_loss": [0.05, 0.07, 0.02]})
        >>> ax = gap_by_family(trials, "regression").axes[0]
        >>> [t.get_text() for t in ax.get_xticklabels()], ax.get_title()
        (['dropout', 'l2'], 'gap_loss by family (tune members)')
    """
    gap = gap_column(kind)
    rows = complete_rows(trials, "final")
    phase = "final"
    if rows.empty:
        rows, phase = complete_rows(trials), "tune"
    if gap in rows.columns:
        rows = rows.loc[rows[gap].notna()]
    if rows.empty or gap not in rows.columns:
        return note_figure(NO_TRIALS)
    if "family" not in rows.columns:
        return note_figure("no family column (a sweep of one family)")
    order = sorted(rows["family"].astype(str).unique())
    fig, (ax,) = panels(1, width=max(5.0, 1.1 * len(order) + 2))
    plot = rows.assign(family=rows["family"].astype(str))
    box_strip(ax, plot, "family", gap, order)
    ax.axhline(0.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_title(f"{gap} by family ({phase} members)")
    ax.tick_params(axis="x", labelrotation=30)
    return fig
