"""The decision rules the comparison can apply, and the one it applies by default.

A rule is an instrument: ``benchmarks/bench_calibration.py`` measures each rule below on
scenarios whose truth is known (how often it claims a winner where none exists; how much of the
available test improvement its recommendation captures where one does) and the default is the
rule that table supports (see benchmarks/README.md and docs/comparison.md).

Example:
    >>> DEFAULT_RULE.adjust, DEFAULT_RULE.likely
    ('max-t', 0.8)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CANDIDATE_RULES", "DEFAULT_RULE", "DecisionRule"]


@dataclass(frozen=True)
class DecisionRule:
    """How the paired differences become a graded verdict.

    Attributes:
        name: Shown in the report's rule paragraph and the calibration table.
        adjust: Multiplicity adjustment of the strict (*clear*) claim across the candidates:
            ``"max-t"`` (step-down, for correlated many-to-one tests) or ``"holm"``.
        likely: Posterior probability P(better by more than the margin) from which a candidate
            that is not a clear winner is recommended as *likely better*; None: no such tier.
        likely_family_wise: Use the one-sided adjusted p instead of the per-candidate
            posterior for the *likely* tier (1 − p ≥ ``likely``).
        equivalence: Whether "every candidate equivalent or worse" is its own tier (keep the
            baseline) rather than *undecided*.
        decided: Posterior mass that settles a candidate as equivalent, worse or not better.
        loss_margin: Equivalence margin on a loss, as a share of the baseline's mean loss.
        acc_margin: Equivalence margin on an accuracy, in accuracy units.
        trim: Share trimmed from each tail of the paired differences of the decision metric
            (Yuen's trimmed mean; 0 is the plain mean): log loss of overfit classifiers is
            heavy-tailed.
    """

    name: str = "graded"
    adjust: Literal["max-t", "holm"] = "max-t"
    likely: float | None = 0.9
    likely_family_wise: bool = False
    equivalence: bool = True
    decided: float = 0.95
    loss_margin: float = 0.02
    acc_margin: float = 0.01
    trim: float = 0.0

    def __post_init__(self) -> None:
        if self.adjust not in ("max-t", "holm"):
            raise ValueError(f"adjust must be 'max-t' or 'holm', got {self.adjust=}")
        if self.likely is not None and not 0.5 < self.likely < 1:
            raise ValueError(f"likely must be in (0.5, 1) or None, got {self.likely=}")
        if not 0.5 < self.decided < 1:
            raise ValueError(f"decided must be in (0.5, 1), got {self.decided=}")
        if self.loss_margin < 0 or self.acc_margin < 0:
            raise ValueError(f"margins must be >= 0, got {self.loss_margin=}, {self.acc_margin=}")
        if not 0 <= self.trim < 0.5:
            raise ValueError(f"trim must be in [0, 0.5), got {self.trim=}")

    def margin(self, metric: str, baseline_mean: float) -> float:
        """The equivalence margin of ``metric`` in its own units.

        Example:
            >>> DecisionRule().margin("val_loss", 0.5), DecisionRule().margin("val_acc", 0.8)
            (0.01, 0.01)
        """
        if metric.endswith("_acc"):
            return self.acc_margin
        return self.loss_margin * abs(baseline_mean)


#: Rules the calibration benchmark compares; the first is the rule before graded verdicts.
CANDIDATE_RULES: dict[str, DecisionRule] = {
    rule.name: rule
    for rule in (
        DecisionRule("holm, clear only", adjust="holm", likely=None, equivalence=False),
        DecisionRule("max-t, clear only", likely=None),
        DecisionRule("graded, P≥0.9"),
        DecisionRule("graded, P≥0.95", likely=0.95),
        DecisionRule("graded, family-wise 0.9", likely_family_wise=True),
        DecisionRule("graded, P≥0.9, 10% trimmed", trim=0.1),
        DecisionRule("graded, P≥0.8", likely=0.8),
        DecisionRule("graded, P≥0.8, 20% trimmed", likely=0.8, trim=0.2),
    )
}
#: The rule the calibration table supports (benchmarks/README.md): no false claim under either
#: null, and the most of the available test improvement captured under signal.
DEFAULT_RULE = CANDIDATE_RULES["graded, P≥0.8"]
