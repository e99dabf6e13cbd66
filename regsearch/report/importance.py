"""Hyperparameter importance: how much of the objective's variance each parameter explains."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from regsearch.report.panels import note_figure

if TYPE_CHECKING:
    import optuna

__all__ = [
    "MIN_IMPORTANCE_TRIALS",
    "Ranking",
    "importance_chart",
    "importance_skip_reason",
    "param_importance",
    "rank_families",
    "ranking_figure",
]

#: Fewer complete trials than this and :func:`importance_chart` lists the study in its note.
MIN_IMPORTANCE_TRIALS = 5


def importance_skip_reason(study: optuna.Study, params: Sequence[str] | None = None) -> str | None:
    """Why :func:`importance_chart` cannot rank ``study``'s parameters, or None when it can.

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


def importance_chart(
    studies: Mapping[str, optuna.Study], params: Sequence[str] | None = None
) -> Figure:
    """Hyperparameter importance of every family in one figure (fANOVA, fixed seed).

    One panel per family that can be ranked, stacked on one importance scale from 0 to 1 so
    the bars compare across families; the families that cannot be ranked (see
    :func:`importance_skip_reason`, or fANOVA failing) are listed in a note under the panels.
    A placeholder says why when no family can be ranked.

    Args:
        studies: Tuning studies by family (e.g. ``load_sweep(run_dir).studies`` without its
            ``"final"`` study).
        params: Parameters to assess; those in every complete trial of a study if None.

    Returns:
        The figure; nothing is shown.

    Example:
        >>> import optuna
        >>> from regsearch.report.panels import placeholder_reason
        >>> placeholder_reason(importance_chart({"l2": optuna.create_study()}))
        'importance needs 5+ complete trials'
    """
    return ranking_figure(rank_families(studies, params))


@dataclass(frozen=True)
class Ranking:
    """Importance per family: the scores of those that can be ranked, why not for the rest."""

    ranked: dict[str, dict[str, float]]  # family → parameter → share of the variance
    unranked: dict[str, str]  # family → why it cannot be ranked

    def unranked_note(self) -> str:
        """The families that cannot be ranked, those with the same reason together.

        Example:
            >>> Ranking({}, {"a": "too few", "b": "flat", "c": "too few"}).unranked_note()
            'a, c (too few); b (flat)'
        """
        by_reason: dict[str, list[str]] = {}
        for key, reason in self.unranked.items():
            by_reason.setdefault(reason, []).append(key)
        return "; ".join(f"{', '.join(keys)} ({reason})" for reason, keys in by_reason.items())


def rank_families(
    studies: Mapping[str, optuna.Study], params: Sequence[str] | None = None
) -> Ranking:
    """Each study's parameter importance (fANOVA), or why it has none, in the studies' order.

    Example:
        >>> import optuna
        >>> rank_families({"l2": optuna.create_study()}).unranked
        {'l2': 'importance needs 5+ complete trials'}
    """
    ranked: dict[str, dict[str, float]] = {}
    unranked: dict[str, str] = {}
    for key, study in studies.items():
        found = _scores(study, params)
        if isinstance(found, str):
            unranked[key] = found
        else:
            ranked[key] = found
    return Ranking(ranked, unranked)


def ranking_figure(ranking: Ranking) -> Figure:
    """The figure of :func:`importance_chart` from a ranking already worked out.

    Example:
        >>> ranking_figure(Ranking({"l2": {"l2": 0.8, "lr": 0.2}}, {})).axes[0].get_title()
        'l2'
    """
    if ranking.ranked:
        return _draw_importance(ranking)
    if not ranking.unranked:
        return note_figure("no studies")
    if len(ranking.unranked) == 1:
        return note_figure(next(iter(ranking.unranked.values())))
    return note_figure(f"no family can be ranked: {ranking.unranked_note()}")


def param_importance(study: optuna.Study, params: Sequence[str] | None = None) -> Figure:
    """Hyperparameter importance of one study: :func:`importance_chart` of it alone.

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
    return importance_chart({study.study_name: study}, params)


def _scores(study: optuna.Study, params: Sequence[str] | None) -> dict[str, float] | str:
    """Each parameter's importance in ``study``, or why it cannot be ranked."""
    import optuna

    reason = importance_skip_reason(study, params)
    if reason is not None:
        return reason
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    names = _shared_params(complete, params)
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    try:
        return optuna.importance.get_param_importances(
            study, evaluator=evaluator, params=names, target=target
        )
    except (RuntimeError, ValueError) as exc:  # e.g. every trial has the same value
        return f"importance not available: {exc}"


def _draw_importance(ranking: Ranking) -> Figure:
    """Stacked horizontal bar panels, one per family, and the note of the unranked ones."""
    ranked = ranking.ranked
    lines = textwrap.wrap(f"not ranked: {ranking.unranked_note()}", 90) if ranking.unranked else []
    heights = [len(scores) + 1.2 for scores in ranked.values()]
    ratios = [*heights, 0.8 * len(lines)] if lines else heights
    fig = Figure(figsize=(6.5, 0.3 * sum(ratios) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ratios), 1, squeeze=False, height_ratios=ratios)[:, 0]
    for ax, (key, scores) in zip(axes, ranked.items(), strict=False):
        order = sorted(scores, key=scores.__getitem__)  # drawn bottom up: largest on top
        ax.barh(order, [scores[k] for k in order], color="C0")
        ax.set_xlim(0.0, 1.0)
        ax.set_title(key, fontsize=10)
    axes[len(ranked) - 1].set_xlabel("importance (fANOVA, sums to 1)")
    if lines:
        note = axes[-1]
        note.axis("off")
        note.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=9, color="0.35")
    return fig
