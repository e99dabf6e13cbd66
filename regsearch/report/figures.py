"""Seaborn figures of a finished sweep, one function per figure.

Every function builds a :class:`matplotlib.figure.Figure` on an Agg canvas directly instead of
going through pyplot, so calling one from a notebook neither changes the notebook's backend nor
leaves figures in pyplot's registry, and a headless server needs no display.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection
from typing import Literal

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["gap_by_family", "gap_vs_params", "val_metric_history"]

ParamKind = Literal["log", "numeric", "categorical"]

_PANEL_W = 4.2
_PANEL_H = 3.4
_MAX_COLS = 3
_NO_TRIALS = "no complete trials"


def gap_column(kind: str) -> str:
    """Name of the train/validation gap column for a task kind.

    Args:
        kind: ``"classification"`` or ``"regression"``.

    Returns:
        ``"gap_acc"`` for classification, else ``"gap_loss"``.

    Example:
        >>> gap_column("classification")
        'gap_acc'
    """
    return "gap_acc" if kind == "classification" else "gap_loss"


def val_column(kind: str) -> str:
    """Name of the validation metric used to colour points for a task kind.

    Example:
        >>> val_column("regression")
        'val_loss'
    """
    return "val_acc" if kind == "classification" else "val_loss"


def complete_rows(trials: pd.DataFrame, phase: str = "tune") -> pd.DataFrame:
    """Complete members of one phase; frames without a ``phase`` column count as all tune.

    Example:
        >>> complete_rows(pd.DataFrame({"state": ["complete", "failed"]})).shape[0]
        1
    """
    if trials.empty or "state" not in trials.columns:
        return trials.iloc[0:0]
    keep = trials["state"] == "complete"
    if "phase" in trials.columns:
        keep &= trials["phase"].fillna("tune") == phase
    elif phase != "tune":
        return trials.iloc[0:0]
    return trials.loc[keep]


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
        >>> fig = gap_vs_params(trials, ["dropout", "l2"], {"l2"}, "classification")
        >>> fig.savefig("gap.png")
    """
    gap, val = gap_column(kind), val_column(kind)
    rows = complete_rows(trials)
    if gap in rows.columns:
        rows = rows.loc[rows[gap].notna()]
    if rows.empty or gap not in rows.columns:
        return _note_figure(_NO_TRIALS)
    if not params:
        return _note_figure("no searched parameters")
    fig, axes = _panels(len(params))
    for ax, param in zip(axes, params, strict=False):
        _gap_panel(ax, rows, param, param in log_params, gap, val)
        ax.axhline(0.0, color="0.3", linestyle="--", linewidth=1)
    for ax in axes[len(params) :]:
        ax.set_visible(False)
    return fig


def _gap_panel(ax: Axes, rows: pd.DataFrame, param: str, is_log: bool, gap: str, val: str) -> None:
    if param not in rows.columns or rows[param].isna().all():
        ax.set_title(param)
        _note(ax, "not searched in these trials")
        return
    data = rows.loc[rows[param].notna()]
    how = param_kind(data[param], is_log)
    if how == "categorical":
        labels = data[param].map(_category_label)
        order = sorted(labels.unique())
        plot = data.assign(**{param: labels})
        _box_strip(ax, plot, param, gap, order)
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


def val_metric_history(trials: pd.DataFrame, metric: str, direction: str) -> Figure:
    """Objective metric per trial number with the best-so-far line.

    Each complete tune member is a faint dot; the per-trial mean over seeds (what the study
    optimizes) is a solid dot, and the step line is the best mean so far.

    Args:
        trials: One row per member, as in ``trials.csv``.
        metric: Column to plot, usually ``summary["metric"]`` (e.g. ``"val_loss"``).
        direction: ``"minimize"`` or ``"maximize"``.

    Returns:
        The figure; nothing is shown.

    Raises:
        ValueError: ``direction`` is neither ``"minimize"`` nor ``"maximize"``.

    Example:
        >>> fig = val_metric_history(trials, "val_loss", "minimize")
    """
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction=}")
    rows = complete_rows(trials)
    if metric in rows.columns:
        rows = rows.loc[rows[metric].notna()]
    if rows.empty or metric not in rows.columns or "trial" not in rows.columns:
        return _note_figure(_NO_TRIALS)
    per_trial = rows.groupby("trial", sort=True)[metric].mean()
    best = per_trial.cummin() if direction == "minimize" else per_trial.cummax()
    fig, (ax,) = _panels(1, width=7.0)
    sns.scatterplot(x=rows["trial"], y=rows[metric], ax=ax, color="0.6", alpha=0.5, s=14)
    sns.scatterplot(x=per_trial.index, y=per_trial.values, ax=ax, color="C0", s=30, label="mean")
    ax.step(best.index.to_numpy(), best.to_numpy(), where="post", color="C1", label="best so far")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.legend(loc="best", frameon=False)
    return fig


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
        >>> fig = gap_by_family(trials, "classification")
    """
    gap = gap_column(kind)
    rows = complete_rows(trials, "final")
    phase = "final"
    if rows.empty:
        rows, phase = complete_rows(trials), "tune"
    if gap in rows.columns:
        rows = rows.loc[rows[gap].notna()]
    if rows.empty or gap not in rows.columns or "family" not in rows.columns:
        return _note_figure(_NO_TRIALS)
    order = sorted(rows["family"].astype(str).unique())
    fig, (ax,) = _panels(1, width=max(5.0, 1.1 * len(order) + 2))
    plot = rows.assign(family=rows["family"].astype(str))
    _box_strip(ax, plot, "family", gap, order)
    ax.axhline(0.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_title(f"{gap} by family ({phase} members)")
    ax.tick_params(axis="x", labelrotation=30)
    return fig


def _box_strip(ax: Axes, data: pd.DataFrame, x: str, y: str, order: list[str]) -> None:
    # seaborn 0.13.2 passes matplotlib's deprecated `vert=`; the warning is theirs to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
        sns.boxplot(data=data, x=x, y=y, order=order, ax=ax, color="0.9", fliersize=0)
    sns.stripplot(data=data, x=x, y=y, order=order, ax=ax, color="C0", size=4)


def _category_label(value: object) -> str:
    # CSV round trips turn bools into "True"/"False" strings or numpy bools; show them alike.
    if isinstance(value, str):
        return {"true": "on", "false": "off"}.get(value.lower(), value)
    if isinstance(value, bool | np.bool_):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _panels(n: int, width: float = _PANEL_W) -> tuple[Figure, list[Axes]]:
    ncols = min(n, _MAX_COLS)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, _PANEL_H * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, list(axes.ravel())


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _note_figure(text: str) -> Figure:
    fig, (ax,) = _panels(1, width=6.0)
    _note(ax, text)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig
