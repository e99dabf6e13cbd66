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
from matplotlib.figure import Figure

from regsearch.comparison import BASELINE_NAMES
from regsearch.report.panels import category_label, note_figure, panels
from regsearch.report.strength import weakest_trial

__all__ = ["curve_groups", "learning_curves"]

_SPLIT_COLORS = {"train": "C0", "val": "C1"}


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
        for split, color in _SPLIT_COLORS.items():
            stat = rows.groupby("epoch")[f"{split}_{metric}"].agg(["mean", "std", "count"])
            epochs = stat.index.to_numpy(dtype=float)
            ax.plot(epochs, stat["mean"], color=color, label=split)
            band = stat["std"].fillna(0.0).to_numpy()
            mean = stat["mean"].to_numpy()
            ax.fill_between(epochs, mean - band, mean + band, color=color, alpha=0.2, lw=0)
        n_seeds = rows["seed"].nunique() if "seed" in rows else 1
        ax.set_title(_group_title(label, rows, trials, params, n_seeds), fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
    axes[0].legend(loc="best", frameon=False)
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    return fig


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
