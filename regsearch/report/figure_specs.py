"""Which figures the sweep report shows, each with its file name, title and caption.

A spec only names the drawing function and its data; the page draws it, so a figure that is
not shown is never drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.figure import Figure

from regsearch.comparison import Comparison
from regsearch.records import lr_control_of
from regsearch.report.boundaries_fig import decision_boundaries
from regsearch.report.comparison_fig import comparison_chart
from regsearch.report.curves import curve_groups, learning_curves
from regsearch.report.gap import gap_by_family, gap_vs_params
from regsearch.report.history import val_metric_history
from regsearch.report.importance import rank_families, ranking_figure
from regsearch.report.members import complete_rows, gap_column, val_column
from regsearch.report.penalty import PENALTY_PARAMS, penalty_effects

if TYPE_CHECKING:
    import optuna

__all__ = ["FigureSpec", "figure_specs"]

FigureSpec = tuple[str, str, str, Callable[[], Figure]]  # name, title, caption, draw


def _without_controls(frame: pd.DataFrame) -> pd.DataFrame:
    if "family" not in frame.columns:
        return frame
    controls = frame["family"].astype(str).map(lambda name: lr_control_of(name) is not None)
    return frame.loc[~controls]


def figure_specs(
    run_dir: Path,
    trials: pd.DataFrame,
    summary: dict[str, Any],
    curves: pd.DataFrame | None,
    comparison: Comparison | None,
    studies: Mapping[str, optuna.Study],
) -> list[FigureSpec]:
    params = [str(p) for p in summary.get("params") or []]
    best_info = summary.get("best")
    best = (str(best_info.get("family") or ""), int(best_info["trial"])) if best_info else None
    specs: list[FigureSpec] = []
    if comparison is not None:
        specs.append(_comparison_spec(comparison))
    # Learning-rate controls (baseline@<family>) explain the comparison table; the figures
    # show the candidates themselves.
    trials = _without_controls(trials)
    curves = None if curves is None else _without_controls(curves)
    if curves is not None and curve_groups(curves, trials, params, best):
        specs.append(_curves_spec(curves, trials, params, best, comparison is not None))
    npz = run_dir / "boundaries.npz"
    if npz.is_file():
        specs.append(
            (
                "decision_boundaries",
                "Decision boundaries",
                "Colour: predicted probability of class 1; black line: the 0.5 boundary; "
                "points: the training set. One seed per candidate.",
                lambda: decision_boundaries(npz),
            )
        )
    specs += _search_specs(trials, summary, params, comparison)
    importance = _importance_spec({k: s for k, s in studies.items() if k != "final"})
    return specs if importance is None else [*specs, importance]


def _importance_spec(studies: Mapping[str, optuna.Study]) -> FigureSpec | None:
    """One figure for every family that can be ranked; None when none can."""
    ranking = rank_families(studies)
    if not ranking.ranked:
        return None
    caption = (
        "Share of the objective's variance each parameter explains (fANOVA), one panel per "
        f"family ({', '.join(ranking.ranked)}), on one scale."
    )
    if ranking.unranked:
        caption += f" Not ranked: {ranking.unranked_note()}."
    return "importance", "Hyperparameter importance", caption, lambda: ranking_figure(ranking)


def _comparison_spec(comparison: Comparison) -> FigureSpec:
    return (
        "comparison",
        "Candidates on fresh seeds",
        f"Left: paired difference to {comparison.baseline or 'the baseline'} on "
        f"{comparison.metric} (the decision metric), mean and 95% interval ({comparison.method}); "
        "right: the same for the gap. Green: the recommended candidate; dashed: no difference.",
        lambda: comparison_chart(comparison),
    )


def _curves_spec(
    curves: pd.DataFrame,
    trials: pd.DataFrame,
    params: list[str],
    best: tuple[str, int] | None,
    final: bool,
) -> FigureSpec:
    who = (
        "each re-evaluated candidate" if final else "the best and the most weakly regularized trial"
    )
    return (
        "learning_curves",
        "Learning curves",
        f"Train (blue) and validation (orange) loss of {who}: mean over seeds, band ±1 s.d., "
        "drawn only over the epochs every run reached; thin lines: single runs still "
        "training after others stopped early. A widening gap between them is overfitting.",
        lambda: learning_curves(curves, trials, params, best),
    )


def _search_specs(
    trials: pd.DataFrame,
    summary: dict[str, Any],
    params: list[str],
    comparison: Comparison | None,
) -> list[FigureSpec]:
    kind = summary.get("kind", "regression")
    metric = summary.get("metric") or val_column(kind)
    direction = summary.get("direction", "minimize")
    log_params = list(summary.get("log_params") or [])
    gap = gap_column(kind)
    specs: list[FigureSpec] = [
        (
            "gap_vs_params",
            "Gap against each parameter",
            (
                f"{gap} of complete tuning members; colour is {val_column(kind)}; "
                "below the dashed line the model does not overfit."
            ),
            lambda: gap_vs_params(trials, params, log_params, kind),
        )
    ]
    if any(p in PENALTY_PARAMS for p in params):
        specs.append(
            (
                "penalty_effects",
                "Weights against the penalty strength",
                "L2 norm of the weight matrices and the share of weights below 1e-3 against λ "
                "(complete tuning members).",
                lambda: penalty_effects(trials, log_params),
            )
        )
    specs.append(
        (
            "val_metric_history",
            f"{metric} per trial",
            _history_caption(trials),
            lambda: val_metric_history(trials, metric, direction),
        )
    )
    if comparison is None and "family" in trials.columns and trials["family"].nunique() > 1:
        specs.append(
            (
                "gap_by_family",
                "Gap by regularizer family",
                f"{gap} of each family's tuning members.",
                lambda: gap_by_family(trials, kind),
            )
        )
    return specs


def _history_caption(trials: pd.DataFrame) -> str:
    tuned = complete_rows(trials)
    if "family" not in tuned.columns or tuned["family"].nunique() <= 1:
        return "Grey: each seed; blue: mean over seeds; orange: best so far."
    return (
        "Grey: each seed; one colour per family (trial numbers count per family): dots are its "
        "mean over seeds, the line its best so far."
    )
