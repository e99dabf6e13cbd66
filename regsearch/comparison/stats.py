"""Paired statistics for the comparison: intervals, paired tests, Holm, probability of improvement.

scipy.special supplies the t distribution (``stdtr``, ``stdtrit``, the functions behind
``scipy.stats.t``; scipy.stats itself is not imported, it costs ~0.5 s). Two pieces
are written here because scipy has no function for them:

- the corrected resampled t-test of Nadeau & Bengio (2003), in the r×K form of Bouckaert &
  Frank (2004): cross-validation folds share training rows, so their differences are
  correlated and the plain variance of the mean is too small; the correction multiplies the
  sample variance by ``1/J + n_val/n_train`` (J pairs) instead of ``1/J``;
- Holm's step-down adjustment of several p-values (Holm 1979), a few lines.

Example:
    >>> diff = paired_difference(pd.Series([0.1, 0.2, 0.3]), pd.Series([0.2, 0.4, 0.6]))
    >>> round(diff.mean, 3), round(diff.p_value, 4), diff.method
    (-0.2, 0.0742, 'paired t')
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "CONFIDENCE",
    "CORRECTED_T",
    "PAIRED_T",
    "Difference",
    "Estimate",
    "holm",
    "mean_ci",
    "paired_difference",
    "probability_of_improvement",
    "trimmed_difference",
]

CONFIDENCE = 0.95
PAIRED_T = "paired t"
CORRECTED_T = "corrected resampled t"
_TINY = 1e-12


@dataclass(frozen=True)
class Estimate:
    """A mean and its 95% t-interval; ``low``/``high`` are None with one value."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (the ``±`` part), or None without an interval."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2


@dataclass(frozen=True)
class Difference:
    """Candidate minus baseline over paired runs, with a two-sided test of "no difference".

    ``p_value`` and the interval are None with one pair (no test is possible). ``method`` names
    the test: ``"paired t"`` or ``"corrected resampled t"`` (folds).
    """

    mean: float
    low: float | None
    high: float | None
    p_value: float | None
    n: int
    method: str = PAIRED_T
    se: float | None = None  # standard error of the mean (corrected with folds); None, one pair
    df: int | None = None  # degrees of freedom of its t distribution

    @property
    def t(self) -> float | None:
        """The t statistic ``mean / se`` (±inf without spread), or None with one pair."""
        if self.se is None:
            return None
        if self.se <= 0:
            return 0.0 if abs(self.mean) <= _TINY else math.copysign(math.inf, self.mean)
        return self.mean / self.se

    def significant(self, alpha: float = 0.05) -> bool:
        """True when the test rejects "no difference" at level ``alpha``."""
        return self.p_value is not None and self.p_value < alpha


def mean_ci(
    values: Sequence[float] | pd.Series | np.ndarray, confidence: float = CONFIDENCE
) -> Estimate:
    """Mean of ``values`` (NaN dropped) with its t-distribution confidence interval.

    Raises:
        ValueError: No finite value, or ``confidence`` outside (0, 1).

    Example:
        >>> est = mean_ci([1.0, 2.0, 3.0])
        >>> round(est.mean, 3), round(est.low, 3), round(est.high, 3)
        (2.0, -0.484, 4.484)
    """
    _check_confidence(confidence)
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        raise ValueError("mean_ci needs at least one finite value")
    mean = float(data.mean())
    if data.size == 1:
        return Estimate(mean, None, None, 1)
    half = _t_quantile(confidence, data.size - 1) * float(data.std(ddof=1)) / math.sqrt(data.size)
    return Estimate(mean, mean - half, mean + half, int(data.size))


def paired_difference(
    candidate: pd.Series,
    baseline: pd.Series,
    confidence: float = CONFIDENCE,
    *,
    val_train_ratio: float | None = None,
) -> Difference | None:
    """``candidate − baseline`` paired on the index (a seed, or a (seed, fold) pair).

    Without ``val_train_ratio`` the test is the plain paired t-test (as ``scipy.stats.ttest_rel``)
    and the interval the t-interval of the differences. With it (cross-validation folds), both
    use the corrected variance ``s² · (1/J + val_train_ratio)`` of Nadeau & Bengio (2003), with
    J − 1 degrees of freedom, where ``val_train_ratio`` is n_val/n_train of one fold.

    Pairs with a missing value on either side are dropped. Differences that are all equal have
    no spread: p is 0 when they are not zero and 1 when they are (a t-test would divide by 0).

    Returns:
        The difference, or None when no index value has a finite value on both sides.

    Raises:
        ValueError: ``confidence`` outside (0, 1) or a negative ``val_train_ratio``.

    Example:
        >>> cand = pd.Series([0.30, 0.25, 0.33, 0.27])
        >>> base = pd.Series([0.35, 0.31, 0.34, 0.32])
        >>> plain = paired_difference(cand, base)
        >>> corrected = paired_difference(cand, base, val_train_ratio=1 / 3)
        >>> round(plain.p_value, 4), round(corrected.p_value, 4), corrected.method
        (0.0313, 0.087, 'corrected resampled t')
    """
    _check_confidence(confidence)
    if val_train_ratio is not None and not val_train_ratio >= 0:
        raise ValueError(f"val_train_ratio must be >= 0, got {val_train_ratio=}")
    both = pd.concat({"c": candidate, "b": baseline}, axis=1).dropna()
    if both.empty:
        return None
    diffs = (both["c"] - both["b"]).to_numpy(dtype=float)
    method = PAIRED_T if val_train_ratio is None else CORRECTED_T
    mean, n = float(diffs.mean()), int(diffs.size)
    if n == 1:
        return Difference(mean, None, None, None, 1, method)
    spread = float(diffs.std(ddof=1))
    if spread <= _TINY * max(1.0, abs(mean)):
        p = 1.0 if abs(mean) <= _TINY else 0.0
        return Difference(mean, mean, mean, p, n, method, 0.0, n - 1)
    # The plain paired t-test is the corrected one without the correction term.
    se = spread * math.sqrt(1 / n + (val_train_ratio or 0.0))
    return _from_t(mean, se, n - 1, confidence, method)


def trimmed_difference(
    candidate: pd.Series,
    baseline: pd.Series,
    trim: float,
    confidence: float = CONFIDENCE,
    *,
    val_train_ratio: float | None = None,
) -> Difference | None:
    """:func:`paired_difference` on the ``trim``-trimmed mean of the differences (Yuen 1974).

    The g = ⌊trim·J⌋ smallest and largest differences are left out of the mean and clipped to
    their neighbours for the (winsorized) spread; the standard error is that spread / (1 −
    2·trim), corrected for folds like :func:`paired_difference`, with J − 2g − 1 degrees of
    freedom. A few folds whose log loss explodes then move the decision much less than they
    move the plain mean. With g = 0 it is :func:`paired_difference`.

    Example:
        >>> diffs = pd.Series([-0.1, -0.12, -0.09, -0.11, -0.1, -0.08, -0.1, -0.11, -0.09, 2.0])
        >>> plain = paired_difference(diffs, diffs * 0)
        >>> robust = trimmed_difference(diffs, diffs * 0, 0.1)
        >>> round(plain.mean, 2), round(robust.mean, 2), robust.p_value < 0.001 < plain.p_value
        (0.11, -0.1, True)
    """
    both = pd.concat({"c": candidate, "b": baseline}, axis=1).dropna()
    g = int(trim * len(both))
    if g == 0:
        return paired_difference(candidate, baseline, confidence, val_train_ratio=val_train_ratio)
    _check_confidence(confidence)
    diffs = np.sort((both["c"] - both["b"]).to_numpy(dtype=float))
    n = diffs.size
    mean = float(diffs[g : n - g].mean())
    spread = float(np.clip(diffs, diffs[g], diffs[n - g - 1]).std(ddof=1)) / (1 - 2 * g / n)
    method = PAIRED_T if val_train_ratio is None else CORRECTED_T
    df = n - 2 * g - 1
    if spread <= _TINY * max(1.0, abs(mean)):
        return Difference(mean, mean, mean, 1.0 if abs(mean) <= _TINY else 0.0, n, method, 0.0, df)
    se = spread * math.sqrt(1 / n + (val_train_ratio or 0.0))
    found = _from_t(mean, se, df, confidence, method)
    return dataclasses.replace(found, n=n)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment: adjusted p-values, in the order given.

    scipy has no Holm adjustment, so it is written here: sort the m p-values ascending,
    multiply the i-th smallest (from 0) by m − i, carry the running maximum so the adjusted
    values keep the order of the raw ones, and cap at 1. A None (no test possible) stays None
    but still counts in m, which keeps the adjustment conservative.

    Example:
        >>> holm([0.01, 0.04, 0.03])
        [0.03, 0.06, 0.06]
        >>> holm([0.2, None])
        [0.4, None]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (p_values[i] is None, p_values[i] or 0.0))
    adjusted: list[float | None] = [None] * m
    running = 0.0
    for rank, i in enumerate(order):
        p = p_values[i]
        if p is None:
            continue
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = round(running, 15)  # (m − i)·p in floats: 3·0.01 is 0.030000000000000002
    return adjusted


def probability_of_improvement(
    candidate: pd.Series, baseline: pd.Series, higher_is_better: bool
) -> float | None:
    """Share of paired runs in which the candidate beat the baseline; a tie counts half.

    Pairs on the index like :func:`paired_difference` (Agarwal et al. 2021 use the same
    statistic between two algorithms' runs). None when no pair has both values.

    Example:
        >>> probability_of_improvement(pd.Series([0.3, 0.2, 0.5]), pd.Series([0.4, 0.2, 0.4]),
        ...                            higher_is_better=False)
        0.5
    """
    both = pd.concat({"c": candidate, "b": baseline}, axis=1).dropna()
    if both.empty:
        return None
    diff = (both["c"] - both["b"]).to_numpy(dtype=float)
    better = diff > _TINY if higher_is_better else diff < -_TINY
    ties = np.abs(diff) <= _TINY
    return float((better.sum() + 0.5 * ties.sum()) / diff.size)


def _from_t(mean: float, se: float, df: int, confidence: float, method: str) -> Difference:
    p = _two_sided_p(mean / se, df)
    half = _t_quantile(confidence, df) * se
    return Difference(mean, mean - half, mean + half, p, df + 1, method, se, df)


# The t distribution comes from scipy.special (Student's t CDF and its inverse, the functions
# behind scipy.stats.t): importing scipy.stats costs ~0.5 s, a tenth of a small sweep's wall time.
def _two_sided_p(t: float, df: int) -> float:
    from scipy.special import stdtr

    return float(2 * stdtr(df, -abs(t)))


def _t_quantile(confidence: float, df: int) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, (1 + confidence) / 2))


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence=}")
