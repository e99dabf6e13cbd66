"""Learning curves: train and validation per epoch of the candidates, or of the best trial.

Example:
    >>> curves = pd.DataFrame({"phase": "final", "family": "l2", "trial": 0, "seed": 0,
    ...                        "epoch": [10, 20], "train_loss": [0.5, 0.3], "val_loss": 0.6})
    >>> learning_curves(curves).axes[0].get_title()
    'l2 · 1 seed'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from regsearch.comparison import BASELINE_NAMES
from regsearch.report.panels import category_label, note_figure, panels
from regsearch.report.strength import weakest_trial

__all__ = ["curve_groups", "learning_curves"]

_SPLIT_COLORS = {"train": "C0", "val": "C1"}
#: The columns that tell one run of a group (a member: trial × seed × fold) from another.
_RUN_KEYS = ("trial", "seed", "fold")


def curve_groups(
    curves: pd.DataFrame,
    trials: pd.DataFrame | None = None,
    params: Sequence[str] = (),
    best: tuple[str, int] | None = None,
) -> dict[str, pd.DataFrame]:
    """The curves to draw, label → rows of ``curves``.

    With ``final`` rows: one group per re-evaluated candidate, the baseline first. Otherwise
    the best trial (``best`` = (family, trial)) and the trial with the weakest regularization
    (see :func:`weakest_trial`, which needs ``trials``).

    Example:
        >>> curves = pd.DataFrame({"phase": "final", "trial": [0, 1, 2], "epoch": 10,
        ...                        "family": ["l2", "baseline", "dropout"]})
        >>> list(curve_groups(curves))
        ['baseline', 'l2', 'dropout']
    """
    if curves.empty or "phase" not in curves.columns:
        return {}
    usable = curves
    if "state" in curves.columns:
        usable = curves.loc[curves["state"].astype(str) != "failed"]
    final = usable.loc[usable["phase"] == "final"]
    if not final.empty:
        names = list(dict.fromkeys(final.sort_values("trial", kind="stable")["family"].astype(str)))
        names.sort(key=lambda n: n not in BASELINE_NAMES)
        return {n: final.loc[final["family"].astype(str) == n] for n in names}
    tune = usable.loc[usable["phase"] == "tune"]
    picks: dict[str, tuple[str, int]] = {}
    weakest = weakest_trial(trials, params) if trials is not None else None
    if weakest is not None and weakest != best:
        picks[f"weakest regularization (trial {weakest[1]})"] = weakest
    if best is not None:
        picks[f"best (trial {best[1]})"] = best
    groups = {}
    for label, (family, trial) in picks.items():
        mask = (tune["trial"] == trial) & (tune["family"].fillna("").astype(str) == family)
        if mask.any():
            groups[label] = tune.loc[mask]
    return groups


def learning_curves(
    curves: pd.DataFrame,
    trials: pd.DataFrame | None = None,
    params: Sequence[str] = (),
    best: tuple[str, int] | None = None,
    metric: str = "loss",
) -> Figure:
    """Train and validation curves per candidate, mean over seeds with a ±1 s.d. band.

    The groups come from :func:`curve_groups`: every re-evaluated candidate of a compare sweep
    (or experiment), else the best trial next to the most weakly regularized one. Panels share
    the y axis, so the widening of the train/validation gap reads across them.

    The mean is drawn only over the epochs every run of a group (seed, fold) reached: once
    early stopping ends some runs, the mean of those left would change shape without any run
    doing so. Each run that trains on is drawn alone from there, thin and translucent, and a
    note says how many runs are still training after which epoch.

    Args:
        curves: Per-epoch curves, as in ``curves.csv`` (:func:`regsearch.results.curves_frame`).
        trials: One row per member; gives each panel its parameter values.
        params: Searched parameter names.
        best: ``(family, trial)`` of the best trial, for a sweep without a final phase.
        metric: ``"loss"`` or ``"acc"``.

    Returns:
        The figure; nothing is shown.

    Example:
        >>> curves = pd.DataFrame({"phase": "final", "family": "dropout", "trial": 0,
        ...                        "seed": [0, 0, 1, 1], "epoch": [10, 20, 10, 20],
        ...                        "train_loss": [0.5, 0.3, 0.7, 0.3], "val_loss": 0.6})
        >>> ax = learning_curves(curves).axes[0]
        >>> ax.get_title(), [line.get_label() for line in ax.lines]
        ('dropout · 2 seeds', ['train', 'val'])
        >>> ax.lines[0].get_ydata().tolist()  # mean over the seeds per epoch
        [0.6, 0.3]
    """
    if metric not in ("loss", "acc"):
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric=}")
    groups = curve_groups(curves, trials, params, best)
    keys = [f"{split}_{metric}" for split in _SPLIT_COLORS]
    groups = {k: g for k, g in groups.items() if all(c in g and g[c].notna().any() for c in keys)}
    if not groups:
        return note_figure("no learning curves recorded")
    fig, axes = panels(len(groups), sharey=True)
    for ax, (label, rows) in zip(axes, groups.items(), strict=False):
        _draw_group(ax, _run_tables(rows, metric))
        n_seeds = rows["seed"].nunique() if "seed" in rows else 1
        ax.set_title(_group_title(label, rows, trials, params, n_seeds), fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
    # Built by hand: a panel whose runs share no epoch has no mean line to take a label from.
    handles = [Line2D([], [], color=color, label=split) for split, color in _SPLIT_COLORS.items()]
    axes[0].legend(handles=handles, loc="best", frameon=False)
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    return fig


def _run_tables(rows: pd.DataFrame, metric: str) -> dict[str, pd.DataFrame]:
    """Per split, epoch × run: one column per run (trial, seed, fold) with a value of both."""
    keys = [k for k in _RUN_KEYS if k in rows.columns]
    run = rows.groupby(keys, dropna=False).ngroup() if keys else pd.Series(0, index=rows.index)
    tables = {
        split: rows.groupby(["epoch", run])[f"{split}_{metric}"].mean().unstack()
        for split in _SPLIT_COLORS
    }
    valued = [r for r in tables["train"] if all(t[r].notna().any() for t in tables.values())]
    return {split: table[valued].sort_index() for split, table in tables.items()}


def _draw_group(ax: Axes, tables: dict[str, pd.DataFrame]) -> None:
    """The mean where every run has a value, each run alone after that, and a note of them."""
    shared = pd.concat([t.notna().all(axis=1) for t in tables.values()], axis=1).all(axis=1)
    last = shared[shared].index.max() if shared.any() else None
    first = tables["train"]
    later = first.index if last is None else first.index[first.index > last]
    going = [r for r in first if any(t[r].loc[later].notna().any() for t in tables.values())]
    for split, color in _SPLIT_COLORS.items():
        table = tables[split]
        _draw_mean(ax, table.loc[shared], color, split)
        for run in going:
            alone = table[run].dropna()
            alone = alone if last is None else alone[alone.index >= last]
            ax.plot(alone.index, alone, color=color, lw=0.9, alpha=0.55, gid="single run")
    if going:
        if last is not None:
            ax.axvline(last, color="0.7", linestyle=":", lw=1, gid="last shared epoch")
        n = first.shape[1]
        where = "with no epoch all reached" if last is None else f"after epoch {last:g}"
        text = f"{len(going)} of {n} run{'s' * (n != 1)} still training {where}"
        ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=8)


def _draw_mean(ax: Axes, table: pd.DataFrame, color: str, label: str) -> None:
    """The mean over the runs (columns) per epoch with a ±1 s.d. band."""
    if table.empty:
        return
    epochs = table.index.to_numpy(dtype=float)
    mean = table.mean(axis=1).to_numpy()
    band = table.std(axis=1).fillna(0.0).to_numpy()
    ax.plot(epochs, mean, color=color, label=label)
    ax.fill_between(epochs, mean - band, mean + band, color=color, alpha=0.2, lw=0)


def _group_title(
    label: str, rows: pd.DataFrame, trials: pd.DataFrame | None, params: Sequence[str], n: int
) -> str:
    seeds = f"{n} seed{'s' * (n != 1)}"
    if trials is None or trials.empty or rows.empty:
        return f"{label} · {seeds}"
    first = rows.iloc[0]
    mask = (trials["trial"] == first["trial"]) & (trials["phase"] == first["phase"])
    match = trials.loc[mask]
    values = []
    if not match.empty:
        row = match.iloc[0]
        values = [f"{p}={category_label(_round(row[p]))}" for p in params if pd.notna(row.get(p))]
    detail = ", ".join(values) or "unregularized"
    return f"{label} · {detail} · {seeds}"


def _round(value: Any) -> Any:
    if isinstance(value, float) and not value.is_integer():
        return float(f"{value:.3g}")
    return value
