"""The comparison's records: one candidate's numbers, the test confirmation, the whole verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from regsearch.comparison.formatting import short
from regsearch.comparison.stats import Difference, Estimate

__all__ = ["ALPHA", "MIN_PAIRS", "MIN_SEEDS", "Candidate", "Comparison", "Confirmation"]

#: Significance level of the paired tests (after Holm's adjustment) and the winner rule.
ALPHA = 0.05
#: Fewer (seed, fold) pairs than this and the verdict calls the evidence weak.
MIN_PAIRS = 3
MIN_SEEDS = MIN_PAIRS  # the name before folds existed

TestStatus = Literal["agrees", "disagrees", "not available"]


@dataclass(frozen=True)
class Confirmation:
    """Whether the test split agrees in sign with the validation decision; it never chooses.

    ``diff`` is the paired test-metric difference over seeds (None when not available).
    """

    status: TestStatus
    metric: str  # "test_loss" or "test_acc": the decision metric's test counterpart
    diff: Difference | None = None


@dataclass(frozen=True)
class Candidate:
    """One re-evaluated setting: its numbers and how it differs from the baseline.

    ``metrics`` holds mean and 95% interval per metric: train/val/gap over the per-seed means
    of the decision rows (folds averaged within a seed first, because folds of one seed share
    training rows), test over the seeds' test rows. ``vs_baseline`` holds paired differences:
    train/val/gap over (seed, fold) pairs with the comparison's test, test over seeds with
    the plain paired t-test.
    """

    name: str
    params: dict[str, Any]
    n_seeds: int  # seeds with at least one decision row
    n_pairs: int  # decision rows: (seed, fold) pairs
    n_failed: int  # members left out: failed, or without final metrics
    metrics: dict[str, Estimate]
    vs_baseline: dict[str, Difference] = field(default_factory=dict)  # empty for the baseline
    p_adjusted: float | None = None  # Holm-adjusted p of the decision metric's difference
    p_improve: float | None = None  # share of decision pairs that beat the baseline (ties ½)
    diagnosis: str = ""  # gap diagnosis label, see decision.diagnose
    test: Confirmation | None = None
    better: bool = False  # significantly better than the baseline after Holm

    @property
    def params_text(self) -> str:
        """``"dropout=0.31, l2=0.001"``, or ``"unregularized"`` without parameters."""
        return ", ".join(f"{k}={short(v)}" for k, v in self.params.items()) or "unregularized"


@dataclass(frozen=True)
class Comparison:
    """The final-phase comparison; see :mod:`regsearch.comparison` for the rules."""

    metric: str  # decision metric: "val_loss" or "val_acc"
    objective: str  # what the sweep optimized (search.metric); may be a gap
    baseline: str | None  # name of the reference candidate, if one was re-evaluated
    candidates: tuple[Candidate, ...]  # baseline first, then in the order they were run
    winner: str | None
    closest: str | None  # best mean effect among the non-baseline candidates
    method: str  # "paired t" or "corrected resampled t"
    seeds: tuple[int, ...]  # seeds in the decision rows
    folds: tuple[int, ...]  # folds in the decision rows; (-1,) without cross-validation
    n_failed: int  # failed members over all candidates, left out of every number
    alpha: float = ALPHA
    val_train_ratio: float | None = None  # n_val/n_train of the correction, with folds
    constant: float | None = None  # constant predictor's decision metric, when given
    learnable: bool = True  # False: the baseline does not beat the constant predictor
    verdict: str = ""
    rule: str = ""  # how the answer was decided, in one paragraph

    @property
    def basis(self) -> str:
        """``"loss"`` or ``"acc"``: the metric family of the decision."""
        return self.metric.split("_", 1)[1]

    @property
    def focus(self) -> str | None:
        """The candidate the verdict is about: the winner, else the closest."""
        return self.winner or self.closest

    @property
    def conclusive(self) -> bool:
        """True for a winner on at least :data:`MIN_PAIRS` pairs with a learnable baseline."""
        if self.winner is None or not self.learnable:
            return False
        return self.candidate(self.winner).vs_baseline[self.metric].n >= MIN_PAIRS

    def candidate(self, name: str) -> Candidate:
        """The candidate called ``name``.

        Raises:
            KeyError: No candidate has that name.
        """
        for cand in self.candidates:
            if cand.name == name:
                return cand
        raise KeyError(f"no candidate {name!r}; have {[c.name for c in self.candidates]}")
