"""The Bayesian correlated t-test: how probable it is that a candidate is better, equivalent or
worse than the baseline, with a region of practical equivalence.

Corani & Benavoli (2015) and Benavoli et al. (2017) give the posterior of the mean paired
difference μ of cross-validated runs under a correlation ρ = n_val/(n_val + n_train) between
folds: a Student t with J − 1 degrees of freedom, located at the observed mean difference and
scaled by s·√(1/J + ρ/(1 − ρ)). Since ρ/(1 − ρ) = n_val/n_train, that scale is exactly the
standard error of the corrected resampled t-test (:func:`~regsearch.comparison.stats.
paired_difference`), so the frequentist test and this posterior read the same numbers; the
posterior adds what a user acting on the answer needs: P(better), P(equivalent), P(worse),
where "equivalent" means |μ| ≤ ``margin`` in the metric's units (the ROPE).

The formula is three calls of Student's t CDF, so it is written out with scipy.special rather
than taken from the ``baycomp`` package (which would add a dependency for these lines).

Example:
    >>> post = posterior(Difference(-0.04, -0.07, -0.01, 0.01, 25, se=0.015, df=24),
    ...                  margin=0.01, higher_is_better=False)
    >>> round(post.better, 3), round(post.equivalent, 3), round(post.worse, 3)
    (0.972, 0.027, 0.001)
"""

from __future__ import annotations

from dataclasses import dataclass

from regsearch.comparison.stats import Difference

__all__ = ["Posterior", "needed_se", "posterior"]


@dataclass(frozen=True)
class Posterior:
    """P(μ better by more than the margin), P(|μ| ≤ margin), P(μ worse by more than it).

    The three add up to 1. ``margin`` is the equivalence margin in the metric's units.
    """

    better: float
    equivalent: float
    worse: float
    margin: float


def posterior(diff: Difference, margin: float, higher_is_better: bool) -> Posterior | None:
    """The correlated-t posterior of ``diff`` (candidate − baseline), or None with one pair.

    Differences without spread (every pair equal) put all the mass on their mean.

    Raises:
        ValueError: A negative ``margin``.
    """
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin=}")
    if diff.se is None or diff.df is None:
        return None
    gain = diff.mean if higher_is_better else -diff.mean
    if diff.se <= 0:
        point = (float(gain > margin), float(abs(gain) <= margin), float(gain < -margin))
        return Posterior(*point, margin)
    from scipy.special import stdtr

    # P(gain > m) = P(T > (m − gain)/se) with T ~ t(df); stdtr is its CDF.
    above = float(stdtr(diff.df, (gain - margin) / diff.se))
    below = float(stdtr(diff.df, (-margin - gain) / diff.se))
    return Posterior(above, max(0.0, 1.0 - above - below), below, margin)


def needed_se(gain: float, margin: float, probability: float, df: int) -> float:
    """The standard error at which an observed ``gain`` would give P(better) = ``probability``.

    0 when the gain is inside the margin (no standard error makes it "better").

    Example:
        >>> round(needed_se(0.05, 0.01, 0.95, 24), 4)
        0.0234
    """
    from scipy.special import stdtrit

    excess = abs(gain) - margin
    return excess / float(stdtrit(df, probability)) if excess > 0 else 0.0
