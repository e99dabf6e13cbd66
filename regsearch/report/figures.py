"""Seaborn figures of a finished sweep, one function per figure.

Every function builds a :class:`matplotlib.figure.Figure` on an Agg canvas directly instead of
going through pyplot, so calling one from a notebook neither changes the notebook's backend nor
leaves figures in pyplot's registry, and a headless server needs no display.

Every function returns a figure, also when its data is missing: it then draws a placeholder
that says why, and :func:`placeholder_reason` tells such a figure apart from a drawn one.

Example:
    >>> fig = gap_by_family(pd.DataFrame(), "classification")
    >>> placeholder_reason(fig)
    'no complete trials'
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

from regsearch.comparison import BASELINE_NAMES, Comparison, higher_is_better

if TYPE_CHECKING:
    import optuna

__all__ = [
    "comparison_chart",
    "curve_groups",
    "decision_boundaries",
    "gap_by_family",
    "gap_vs_params",
    "importance_skip_reason",
    "learning_curves",
    "param_importance",
    "penalty_effects",
    "placeholder_reason",
    "val_metric_history",
    "weakest_trial",
]

ParamKind = Literal["log", "numeric", "categorical"]

_PANEL_W = 4.2
_PANEL_H = 3.4
_MAX_COLS = 3
_NO_TRIALS = "no complete trials"
#: The label (``Figure.get_label()``) of a placeholder figure: a note instead of the data.
PLACEHOLDER = "regsearch.placeholder"


def placeholder_reason(fig: Figure) -> str | None:
    """Why a figure function drew a placeholder instead of its data; None for a drawn figure.

    Example:
        >>> placeholder_reason(val_metric_history(pd.DataFrame(), "val_loss", "minimize"))
        'no complete trials'
    """
    if fig.get_label() != PLACEHOLDER:
        return None
    return "; ".join(t.get_text() for ax in fig.axes for t in ax.texts)


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
        return _note_figure(_NO_TRIALS)
    family = rows["family"].astype(str) if "family" in rows.columns else pd.Series("", rows.index)
    names = list(dict.fromkeys(family))  # in the sweep's order: the baseline first
    fig, (ax,) = _panels(1, width=7.0)
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
        return _note_figure(_NO_TRIALS)
    if "family" not in rows.columns:
        return _note_figure("no family column (a sweep of one family)")
    order = sorted(rows["family"].astype(str).unique())
    fig, (ax,) = _panels(1, width=max(5.0, 1.1 * len(order) + 2))
    plot = rows.assign(family=rows["family"].astype(str))
    _box_strip(ax, plot, "family", gap, order)
    ax.axhline(0.0, color="0.3", linestyle="--", linewidth=1)
    ax.set_title(f"{gap} by family ({phase} members)")
    ax.tick_params(axis="x", labelrotation=30)
    return fig


#: How each regularization parameter's value maps to strength (+1: larger is stronger).
STRENGTH_SIGN = {"l1": 1, "l2": 1, "weight_decay": 1, "dropout": 1, "patience": -1}
#: Parameters whose strength is a penalty λ, drawn by :func:`penalty_effects`.
PENALTY_PARAMS = ("l1", "l2", "weight_decay")
#: Fewer complete trials than this and :func:`param_importance` draws a note instead.
MIN_IMPORTANCE_TRIALS = 5
_SPLIT_COLORS = {"train": "C0", "val": "C1"}


def _strength_sign(param: str) -> int:
    """+1 when a larger value regularizes more, -1 when less, 0 when it is not a strength."""
    if param.startswith("dropout"):
        return 1
    if param.endswith("_on") or param == "batch_norm":
        return 1
    return STRENGTH_SIGN.get(param, 0)


def weakest_trial(trials: pd.DataFrame, params: Sequence[str]) -> tuple[str, int] | None:
    """``(family, trial)`` of the complete tune trial with the weakest regularization.

    Each known regularization parameter (l1, l2, weight_decay, dropout*, patience, *_on flags,
    batch_norm) ranks the trials from weakest to strongest; a missing value (the regularizer
    is off) counts as weakest. The trial with the lowest mean rank wins; ties go to the lowest
    trial number. None when no trial completed or no parameter is a known strength.

    Example:
        >>> rows = pd.DataFrame({"trial": [0, 1], "state": "complete", "l2": [0.1, 0.001]})
        >>> weakest_trial(rows, ["l2"])
        ('', 1)
    """
    rows = complete_rows(trials)
    known = [p for p in params if p in rows.columns and _strength_sign(p)]
    if rows.empty or not known or "trial" not in rows.columns:
        return None
    family = rows["family"].astype(str) if "family" in rows.columns else pd.Series("", rows.index)
    first = rows.assign(family=family).drop_duplicates(["family", "trial"])
    ranks = pd.DataFrame(index=first.index)
    for param in known:
        # Off (NaN) is weakest, below every finite strength.
        values = first[param].map(_strength_value).astype(float) * _strength_sign(param)
        ranks[param] = values.fillna(-np.inf).rank(method="min")
    score = ranks.mean(axis=1)
    order = first.assign(_score=score).sort_values(["_score", "trial"], kind="stable")
    pick = order.iloc[0]
    return str(pick["family"]), int(pick["trial"])


def _strength_value(value: object) -> float:
    if isinstance(value, str):
        return {"true": 1.0, "false": 0.0}.get(value.lower(), math.nan)
    if isinstance(value, bool | np.bool_):
        return float(value)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


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
        return _note_figure("no learning curves recorded")
    fig, axes = _panels(len(groups), sharey=True)
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
        values = [f"{p}={_category_label(_round(row[p]))}" for p in params if pd.notna(row.get(p))]
    detail = ", ".join(values) or "unregularized"
    return f"{label} · {detail} · {seeds}"


def _round(value: Any) -> Any:
    if isinstance(value, float) and not value.is_integer():
        return float(f"{value:.3g}")
    return value


def comparison_chart(comparison: Comparison) -> Figure:
    """Each candidate's paired difference to the baseline, with its 95% interval.

    Left panel: the decision metric (the comparison's test: plain or corrected t); right
    panel: the gap on the same metric family, which explains the decision. One row per
    non-baseline candidate, in the order they were run; the recommended one is green, the rest
    blue; a dashed line marks "no difference". A candidate with one pair has no error bar.

    Args:
        comparison: From :func:`regsearch.comparison.compare`.

    Returns:
        The figure; nothing is shown.

    Example:
        >>> fig = comparison_chart(compare(trials, "classification"))  # doctest: +SKIP
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]  # doctest: +SKIP
        ['l2', 'dropout']
    """
    metric, gap = comparison.metric, f"gap_{comparison.basis}"
    cands = [c for c in comparison.candidates if metric in c.vs_baseline]
    if not cands:
        why = "no baseline to pair with" if comparison.baseline is None else "no paired candidates"
        return _note_figure(why)
    fig = Figure(figsize=(10.0, max(2.6, 0.45 * len(cands) + 1.4)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    colors = ["C2" if c.name == comparison.recommended else "C0" for c in cands]
    better = "higher" if higher_is_better(metric) else "lower"
    titles = (f"Δ {metric} ({better} is better)", f"Δ {gap} (lower: smaller gap)")
    for ax, key, title in zip(axes, (metric, gap), titles, strict=True):
        for y, (cand, color) in enumerate(zip(cands, colors, strict=True)):
            diff = cand.vs_baseline.get(key)
            if diff is None:
                continue
            err = None if diff.low is None or diff.high is None else (diff.high - diff.low) / 2
            ax.errorbar(diff.mean, y, xerr=err, fmt="o", color=color, capsize=4, ms=7, lw=2)
        ax.axvline(0.0, color="0.55", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", color="0.9")
        ax.xaxis.set_major_locator(MaxNLocator(5))  # half-width panels: fewer, legible ticks
    axes[0].set_yticks(range(len(cands)), [c.name for c in cands])
    axes[0].invert_yaxis()
    n = max(c.vs_baseline[metric].n for c in cands)
    fig.suptitle(
        f"Candidate − {comparison.baseline} over up to {n} paired runs: mean and 95% interval "
        f"({comparison.method})",
        fontsize=11,
    )
    return fig


def importance_skip_reason(study: optuna.Study, params: Sequence[str] | None = None) -> str | None:
    """Why :func:`param_importance` cannot rank ``study``'s parameters, or None when it can.

    Example:
        >>> import optuna
        >>> importance_skip_reason(optuna.create_study())
        'importance needs 5+ complete trials'
    """
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return f"importance needs {MIN_IMPORTANCE_TRIALS}+ complete trials"
    if len(_shared_params(complete, params)) < 2:
        return "importance needs 2+ parameters searched in every complete trial"
    return None


def _shared_params(
    complete: Sequence[optuna.trial.FrozenTrial], params: Sequence[str] | None
) -> list[str]:
    shared = set.intersection(*(set(t.params) for t in complete)) if complete else set()
    return [p for p in (params or sorted(shared)) if p in shared]


def param_importance(study: optuna.Study, params: Sequence[str] | None = None) -> Figure:
    """Hyperparameter importance of one study (Optuna's fANOVA evaluator, fixed seed).

    Draws a note instead when fewer than two parameters were searched in every complete trial
    or fewer than :data:`MIN_IMPORTANCE_TRIALS` trials completed (see
    :func:`importance_skip_reason`).

    Args:
        study: A tuning study (e.g. ``load_sweep(run_dir).studies["cocktail"]``).
        params: Parameters to assess; those in every complete trial if None.

    Returns:
        The figure; nothing is shown.

    Example:
        >>> import optuna
        >>> study = optuna.create_study(study_name="l2-moons")
        >>> space = {"l2": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True),
        ...          "lr": optuna.distributions.FloatDistribution(0.01, 1.0)}
        >>> for i in range(5):
        ...     params = {"l2": 10.0**-i, "lr": 0.1 * (i % 3 + 1)}
        ...     trial = optuna.trial.create_trial(params=params, distributions=space, value=i)
        ...     study.add_trial(trial)
        >>> ax = param_importance(study).axes[0]
        >>> sorted(t.get_text() for t in ax.get_yticklabels()), ax.get_title()
        (['l2', 'lr'], 'l2-moons')
    """
    import optuna

    reason = importance_skip_reason(study, params)
    if reason is not None:
        return _note_figure(reason)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    names = _shared_params(complete, params)
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        scores = optuna.importance.get_param_importances(
            study, evaluator=evaluator, params=names, target=target
        )
    except (RuntimeError, ValueError) as exc:  # e.g. every trial has the same value
        return _note_figure(f"importance not available: {exc}")
    fig, (ax,) = _panels(1, width=6.0)
    order = sorted(scores, key=scores.__getitem__)
    ax.barh(order, [scores[k] for k in order], color="C0")
    ax.set_xlabel("importance (fANOVA, sums to 1)")
    ax.set_title(f"{study.study_name}", fontsize=10)
    return fig


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
        return _note_figure("no decision boundaries recorded")
    xx, yy, x, y = (boundaries[k] for k in ("xx", "yy", "x", "y"))
    span = np.ptp(xx), np.ptp(yy)
    width = 3.8
    fig, axes = _panels(len(names), width=width, height=0.25 + width * span[1] / max(span[0], 1e-9))
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
    stats = [s for s in ("weight_norm", "sparsity") if s in rows.columns]
    if not present:
        return _note_figure("no penalty strength (l1, l2, weight_decay) searched")
    if not stats:
        return _note_figure("no weight_norm or sparsity recorded")
    fig = Figure(figsize=(_PANEL_W * len(present), _PANEL_H * len(stats)), layout="constrained")
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


def _panels(
    n: int, width: float = _PANEL_W, height: float = _PANEL_H, sharey: bool = False
) -> tuple[Figure, list[Axes]]:
    ncols = min(n, _MAX_COLS)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey)
    return fig, list(axes.ravel())


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _note_figure(text: str) -> Figure:
    """A placeholder: ``text`` says why the data is not drawn (see :func:`placeholder_reason`)."""
    fig, (ax,) = _panels(1, width=6.0)
    fig.set_label(PLACEHOLDER)
    _note(ax, text)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig
