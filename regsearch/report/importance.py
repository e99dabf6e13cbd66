"""Hyperparameter importance: how much of the objective's variance each parameter explains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from regsearch.report.panels import note_figure, panels

if TYPE_CHECKING:
    import optuna

__all__ = ["MIN_IMPORTANCE_TRIALS", "importance_skip_reason", "param_importance"]

#: Fewer complete trials than this and :func:`param_importance` draws a note instead.
MIN_IMPORTANCE_TRIALS = 5


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
        return note_figure(reason)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    names = _shared_params(complete, params)
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        scores = optuna.importance.get_param_importances(
            study, evaluator=evaluator, params=names, target=target
        )
    except (RuntimeError, ValueError) as exc:  # e.g. every trial has the same value
        return note_figure(f"importance not available: {exc}")
    fig, (ax,) = panels(1, width=6.0)
    order = sorted(scores, key=scores.__getitem__)
    ax.barh(order, [scores[k] for k in order], color="C0")
    ax.set_xlabel("importance (fANOVA, sums to 1)")
    ax.set_title(f"{study.study_name}", fontsize=10)
    return fig
