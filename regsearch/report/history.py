"""The objective per trial with its best so far: how the search converged.

Example:
    >>> trials = pd.DataFrame({"trial": [0, 1], "state": "complete", "val_loss": [0.5, 0.4]})
    >>> val_metric_history(trials, "val_loss", "minimize").axes[0].get_ylabel()
    'val_loss'
"""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from regsearch.report.members import complete_rows
from regsearch.report.panels import NO_TRIALS, note_figure, panels

__all__ = ["val_metric_history"]


def val_metric_history(trials: pd.DataFrame, metric: str, direction: str) -> Figure:
    """Objective metric per trial number with the best-so-far line.

    Each complete tune member is a faint dot; the per-trial mean over seeds (what the study
    optimizes) is a solid dot, and the step line is the best mean so far. Trial numbers count
    per study, so a sweep with several families (compare) gets one colour, mean and best-so-far
    line per family instead of averaging different families' trials that share a number.

    Args:
        trials: One row per member, as in ``trials.csv``.
        metric: Column to plot, usually ``summary["metric"]`` (e.g. ``"val_loss"``).
        direction: ``"minimize"`` or ``"maximize"``.

    Returns:
        The figure; nothing is shown.

    Raises:
        ValueError: ``direction`` is neither ``"minimize"`` nor ``"maximize"``.

    Example:
        >>> trials = pd.DataFrame({"trial": [0, 0, 1, 1, 2, 2], "state": "complete",
        ...                        "val_loss": [0.5, 0.7, 0.4, 0.4, 0.45, 0.55]})
        >>> fig = val_metric_history(trials, "val_loss", "minimize")
        >>> best = fig.axes[0].lines[0]
        >>> best.get_label(), best.get_ydata().tolist()
        ('best so far', [0.6, 0.4, 0.4])
    """
    if direction not in ("minimize", "maximize"):
        raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction=}")
    rows = complete_rows(trials)
    if metric in rows.columns:
        rows = rows.loc[rows[metric].notna()]
    if rows.empty or metric not in rows.columns or "trial" not in rows.columns:
        return note_figure(NO_TRIALS)
    family = rows["family"].astype(str) if "family" in rows.columns else pd.Series("", rows.index)
    names = list(dict.fromkeys(family))  # in the sweep's order: the baseline first
    fig, (ax,) = panels(1, width=7.0)
    sns.scatterplot(x=rows["trial"], y=rows[metric], ax=ax, color="0.6", alpha=0.5, s=14)
    for i, name in enumerate(names):
        per_trial = rows.loc[family == name].groupby("trial", sort=True)[metric].mean()
        best = per_trial.cummin() if direction == "minimize" else per_trial.cummax()
        mean_color, best_color = ("C0", "C1") if len(names) == 1 else (f"C{i % 10}",) * 2
        label = "mean" if len(names) == 1 else name
        ax.scatter(per_trial.index, per_trial.to_numpy(), color=mean_color, s=30, label=label)
        ax.step(
            per_trial.index.to_numpy(),
            best.to_numpy(),
            where="post",
            color=best_color,
            label="best so far" if len(names) == 1 else f"_{name} best so far",
        )
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    if len(names) > 1:
        ax.set_title("mean per trial and best so far, per family", fontsize=10)
    ax.legend(loc="best", frameon=False)
    return fig
