"""Many-to-one adjustment: several candidates tested against one shared baseline.

Holm's method (:func:`~regsearch.comparison.stats.holm`) assumes nothing about how the tests
relate, so it pays for six candidates as if they were six unrelated questions. Here every
candidate is compared with the *same* baseline runs, so their paired differences are
positively correlated, and the largest of m correlated t statistics exceeds a threshold far
less often than the largest of m independent ones. The max-t method (Dunnett 1955 for the
exact many-to-one case; Westfall & Young 1993 for the step-down form) uses that: the adjusted
p-value of a candidate is the probability that the *largest* t statistic among the candidates
still in play reaches the candidate's own, under the joint null.

The joint null is a multivariate t: the correlation of the candidates' t statistics is the
correlation of their paired differences (their standard errors are scalars, the correction
for folds included), estimated from the pairs every candidate completed; the degrees of
freedom are the smallest among the candidates. scipy has no multivariate-t tail probability
of a maximum with a step-down, so it is drawn by Monte Carlo with a fixed seed (same input,
same p-values; 20,000 draws put the Monte Carlo error of a p-value near 0.05 at ±0.0015).

Example:
    >>> rng = np.random.default_rng(0)
    >>> shared = rng.normal(size=(25, 1))  # the baseline's noise, shared by every difference
    >>> diffs = pd.DataFrame(shared + 0.5 * rng.normal(size=(25, 3)), columns=["a", "b", "c"])
    >>> [round(p, 3) for p in max_t_adjusted(diffs, [2.4, 1.0, -0.5], df=24)]
    [0.05, 0.432, 0.622]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["DRAWS", "max_t_adjusted"]

#: Monte Carlo draws of the joint null.
DRAWS = 20_000
_SEED = 20_240_917  # fixed: the adjustment is a function of its input


def max_t_adjusted(
    diffs: pd.DataFrame,
    t_stats: Sequence[float | None],
    df: int,
    *,
    two_sided: bool = True,
    draws: int = DRAWS,
) -> list[float | None]:
    """Step-down max-t adjusted p-values of ``t_stats`` (one per column of ``diffs``).

    Args:
        diffs: Paired differences, one column per candidate (rows: pairs, NaN where missing);
            only their correlation is used.
        t_stats: Each candidate's t statistic (None: no test possible; stays None). For a
            one-sided test, positive means "better".
        df: Degrees of freedom of the t statistics.
        two_sided: Test |t| (any difference) or t (better only).
        draws: Monte Carlo draws.

    Raises:
        ValueError: ``t_stats`` and ``diffs`` disagree in length, or ``df`` < 1.
    """
    if len(t_stats) != diffs.shape[1]:
        raise ValueError(f"one t statistic per column: {len(t_stats)=} vs {diffs.shape[1]=}")
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df=}")
    tested = [i for i, t in enumerate(t_stats) if t is not None and not math.isnan(t)]
    out: list[float | None] = [None] * len(t_stats)
    if not tested:
        return out
    null = _null_draws(diffs.iloc[:, tested], df, draws)
    stats = np.array([float(t_stats[i]) for i in tested])  # type: ignore[arg-type]
    if two_sided:
        null, stats = np.abs(null), np.abs(stats)
    order = np.argsort(-stats, kind="stable")
    running = 0.0
    for rank, j in enumerate(order):
        rest = order[rank:]  # the hypotheses not yet rejected, this one included
        if len(rest) == 1:  # the maximum of one: the t distribution itself, exactly
            p = _t_tail(stats[j], df, two_sided)
        else:
            p = float((null[:, rest].max(axis=1) >= stats[j]).mean())
        running = max(running, p)  # step-down: adjusted p-values keep the order of the stats
        out[tested[j]] = running
    return out


def _t_tail(stat: float, df: int, two_sided: bool) -> float:
    from scipy.special import stdtr

    return float(2 * stdtr(df, -abs(stat))) if two_sided else float(stdtr(df, -stat))


def _null_draws(diffs: pd.DataFrame, df: int, draws: int) -> np.ndarray:
    """Draws of the candidates' t statistics under the joint null (multivariate t)."""
    corr = _correlation(diffs)
    rng = np.random.default_rng(_SEED)
    normal = rng.standard_normal((draws, corr.shape[0])) @ _root(corr).T
    scale = np.sqrt(rng.chisquare(df, size=(draws, 1)) / df)
    return normal / scale


def _correlation(diffs: pd.DataFrame) -> np.ndarray:
    """Correlation of the columns over the rows all of them have; identity when it cannot be
    estimated (fewer than 3 such rows, or a column without spread): treating the tests as
    independent is the conservative side for positively correlated ones."""
    m = diffs.shape[1]
    full = diffs.dropna().to_numpy(dtype=float)
    if m == 1 or full.shape[0] < 3 or (full.std(axis=0) <= 0).any():
        return np.eye(m)
    return np.corrcoef(full, rowvar=False)


def _root(corr: np.ndarray) -> np.ndarray:
    """A matrix L with L·Lᵀ = ``corr`` (eigenvalues clipped at 0 for rank-deficient ones)."""
    values, vectors = np.linalg.eigh(corr)
    return vectors * np.sqrt(np.clip(values, 0.0, None))
