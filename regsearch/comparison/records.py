"""The comparison's records: one candidate's numbers, the test confirmation, the whole verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from regsearch.comparison.bayesian import Posterior
from regsearch.comparison.formatting import short
from regsearch.comparison.stats import Difference, Estimate

__all__ = [
    "ALPHA",
    "MIN_PAIRS",
    "MIN_SEEDS",
    "STANDINGS",
    "TIERS",
    "Candidate",
    "Comparison",
    "Confirmation",
]

#: Significance level of the paired tests (after Holm's adjustment) and the winner rule.
ALPHA = 0.05
#: Fewer (seed, fold) pairs than this and the verdict calls the evidence weak.
MIN_PAIRS = 3
MIN_SEEDS = MIN_PAIRS  # the name before folds existed

TestStatus = Literal["agrees", "disagrees", "too small to tell", "not available"]
#: The graded answer, strongest first; ``"none"``: nothing to decide (no baseline, or no
#: candidate besides it).
TIERS = ("clear", "likely", "equivalent", "undecided", "none")
Tier = Literal["clear", "likely", "equivalent", "undecided", "none"]
#: Where one candidate stands against the baseline (see :mod:`regsearch.comparison.decision`).
STANDINGS = ("clear", "likely", "equivalent", "not better", "worse", "undecided")


@dataclass(frozen=True)
class Confirmation:
    """Whether the test split agrees with the validation decision; it never chooses.

    ``diff`` is the paired test-metric difference over seeds (None when not available). A
    difference counts only when it stands out of the test split's own noise (its interval
    excludes 0) and exceeds the equivalence margin; else the status is "too small to tell".
    ``other`` is the other metric family's test difference (test_acc for a loss decision)
    when it points the other way with the same clarity.
    """

    status: TestStatus
    metric: str  # "test_loss" or "test_acc": the decision metric's test counterpart
    diff: Difference | None = None
    other: Difference | None = None


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
    p_adjusted: float | None = None  # adjusted two-sided p of the decision (clear claim)
    p_improve: float | None = None  # share of decision pairs that beat the baseline (ties ½)
    diagnosis: str = ""  # gap diagnosis label, see decision.diagnose
    test: Confirmation | None = None
    better: bool = False  # significantly better than the baseline after the adjustment
    decision: Difference | None = None  # the difference the decision rests on (maybe trimmed)
    posterior: Posterior | None = None  # P(better / equivalent / worse) beyond the margin
    p_one_sided: float | None = None  # adjusted one-sided p of "better"
    standing: str = ""  # one of STANDINGS; empty for the baseline
    notes: tuple[str, ...] = ()  # e.g. a best value at the edge of its searched range
    off: str = ""  # the regularizer's strength sits at its "off" edge (see .ranges)

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
    learnable: bool = True  # False: no candidate beats the constant predictor
    verdict: str = ""
    rule: str = ""  # how the answer was decided, in one paragraph
    tier: Tier = "none"  # the graded answer, see TIERS
    recommended: str | None = None  # the candidate to use; None: keep the baseline
    margin: float = 0.0  # equivalence margin of the decision metric, in its units
    rule_name: str = ""  # the DecisionRule applied
    adjustment: str = "max-t"  # "max-t" or "holm": the clear claim's multiplicity adjustment
    settle: str = ""  # undecided: what would settle it
    overconfident: bool = False  # baseline loss worse than the constant's, accuracy better
    constant_acc: float | None = None  # constant predictor's val_acc (classification)

    @property
    def basis(self) -> str:
        """``"loss"`` or ``"acc"``: the metric family of the decision."""
        return self.metric.split("_", 1)[1]

    @property
    def focus(self) -> str | None:
        """The candidate the verdict is about: the recommended one, else the most promising
        undecided one, else the closest."""
        if self.recommended is not None:
            return self.recommended
        undecided = [c for c in self.candidates if c.standing == "undecided" and c.posterior]
        if undecided:
            return max(undecided, key=lambda c: c.posterior.better if c.posterior else 0).name
        return self.closest

    @property
    def conclusive(self) -> bool:
        """True for a clear winner on at least :data:`MIN_PAIRS` pairs, or a baseline shown
        equivalent; with a model that beats the constant predictor."""
        if not self.learnable or self.tier not in ("clear", "equivalent"):
            return False
        if self.tier == "equivalent":
            return True
        assert self.winner is not None
        return self.candidate(self.winner).vs_baseline[self.metric].n >= MIN_PAIRS

    def as_summary(self) -> dict[str, Any]:
        """The verdict as plain JSON values, for ``summary.json``: tier, recommendation, rule,
        and per candidate its standing, effect with interval, adjusted p and posterior.

        Example:
            >>> compare(trials, "classification").as_summary()["tier"]  # doctest: +SKIP
            'likely'
        """
        return {
            "tier": self.tier,
            "recommended": self.recommended,
            "winner": self.winner,
            "text": self.verdict,
            "metric": self.metric,
            "baseline": self.baseline,
            "margin": self.margin,
            "rule": self.rule_name,
            "adjustment": self.adjustment,
            "method": self.method,
            "learnable": self.learnable,
            "overconfident": self.overconfident,
            "settle": self.settle,
            "candidates": {c.name: _candidate_summary(c, self.metric) for c in self.candidates},
        }

    def candidate(self, name: str) -> Candidate:
        """The candidate called ``name``.

        Raises:
            KeyError: No candidate has that name.
        """
        for cand in self.candidates:
            if cand.name == name:
                return cand
        raise KeyError(f"no candidate {name!r}; have {[c.name for c in self.candidates]}")


def _candidate_summary(cand: Candidate, metric: str) -> dict[str, Any]:
    diff, post = cand.vs_baseline.get(metric), cand.posterior
    test = cand.test
    return {
        "params": cand.params,
        "standing": cand.standing or "baseline",
        "n_pairs": cand.n_pairs,
        "mean": cand.metrics[metric].mean if metric in cand.metrics else None,
        "effect": None if diff is None else [diff.mean, diff.low, diff.high],
        "p": None if diff is None else diff.p_value,
        "p_adjusted": cand.p_adjusted,
        "p_better": None if post is None else post.better,
        "p_equivalent": None if post is None else post.equivalent,
        "p_worse": None if post is None else post.worse,
        "diagnosis": cand.diagnosis,
        "test": None if test is None else test.status,
        "notes": list(cand.notes),
    }
