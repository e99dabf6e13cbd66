"""What a study optimizes, and the one rule for which trial is best.

The rule (:func:`best_index`): among finished trials with a score, the lowest score when the
first objective is minimized, the highest when it is maximized; ties go to the earliest. A
trial's score is its first objective value, which is the mean of that metric over the trial's
members. Every place that names a best trial uses it: the progress bar while tuning
(:meth:`Objective.best`), the final phase's candidates (one per tuned study) and the summary's
best row (:func:`regsearch.results.best_trial`, over the per-member table).

Example:
    >>> best_index([0.5, 0.25, 0.25], "minimize")
    1
    >>> best_index([0.5, float("nan"), 0.75], "maximize")
    2
    >>> best_index([], "minimize") is None
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from optuna.trial import FrozenTrial, TrialState

from regsearch.errors import ConfigError
from regsearch.records import EpochReport, MemberResult

if TYPE_CHECKING:
    from regsearch.config import SearchConfig

__all__ = ["DIRECTIONS", "Objective", "best_index"]

DIRECTIONS = ("minimize", "maximize")


def best_index(scores: Sequence[float], direction: str) -> int | None:
    """Position of the best finite score (the first of equals), or None when there is none.

    Raises:
        ValueError: ``direction`` is neither ``minimize`` nor ``maximize``.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"{direction=}: allowed: {', '.join(DIRECTIONS)}")
    sign = -1.0 if direction == "maximize" else 1.0
    finite = [(sign * s, i) for i, s in enumerate(scores) if math.isfinite(s)]
    return min(finite)[1] if finite else None


@dataclass(frozen=True)
class Objective:
    """What the study optimizes: one metric, or (metric, gap) for nsga2.

    Every metric is a member's final value (``MemberResult.final``) averaged over a trial's
    members; a gap metric is minimized like a loss, only accuracy is maximized.
    """

    metrics: tuple[str, ...]
    directions: tuple[str, ...]

    @classmethod
    def from_config(cls, search: SearchConfig, classification: bool) -> Objective:
        """The objective of ``search.metric`` (and the gap, for nsga2).

        Raises:
            ConfigError: An accuracy metric on a regression task.
        """
        if search.metric.endswith("_acc") and not classification:
            raise ConfigError(
                f"search.metric={search.metric!r}: accuracy needs a classification task; "
                "use val_loss or gap_loss"
            )
        direction = "maximize" if search.metric == "val_acc" else "minimize"
        if search.sampler != "nsga2":
            return cls((search.metric,), (direction,))
        gap = "gap_acc" if classification else "gap_loss"
        return cls((search.metric, gap), (direction, "minimize"))

    def values(self, results: Sequence[MemberResult]) -> list[float]:
        """Mean of each metric over the members' final metrics."""
        return [sum(r.final[m] for r in results) / len(results) for m in self.metrics]

    def intermediate(self, report: EpochReport) -> float:
        """The first metric at one evaluation, for the pruner."""
        name = self.metrics[0]
        if name == "val_loss":
            return report.val_loss
        if name == "gap_loss":
            return report.val_loss - report.train_loss
        assert report.val_acc is not None and report.train_acc is not None
        return report.val_acc if name == "val_acc" else report.train_acc - report.val_acc

    def best(self, trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
        """The best complete trial of ``trials`` by the first objective (:func:`best_index`).

        Only COMPLETE trials have values; pruned, failed and interrupted ones never win.
        """
        complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
        found = best_index([t.values[0] for t in complete], self.directions[0])
        return None if found is None else complete[found]
