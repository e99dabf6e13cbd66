"""Statistics across data sets (docs/comparison.md §8): which regularizer wins, how often, how much.

The input is a tidy table of each data set's comparison records (:func:`records_frame`): one row
per (data set, candidate) with the candidate's mean decision metric and, for the non-baseline
candidates, the paired effect against the baseline with its 95% interval. Per regularizer
family against the baseline:

- **wins / ties / losses** over data sets: a win when the data set's interval lies wholly on
  the better side of 0, a loss when wholly on the worse side, a tie when it includes 0;
- the **median effect** over data sets with a seeded percentile **bootstrap** interval
  (``scipy.stats.bootstrap``);
- a two-sided **Wilcoxon signed-rank** test of the effects over data sets
  (``scipy.stats.wilcoxon``), **Holm**-adjusted across the families
  (:func:`regsearch.comparison.stats.holm`): the decision (Benavoli et al. 2016);
- **average ranks** of all candidates (baseline included, 1 = best) with the **Friedman** test
  (``scipy.stats.friedmanchisquare``) and the **Nemenyi** critical difference (Demšar 2006),
  drawn as a critical-difference diagram: descriptive, the Wilcoxon tests decide.

Why not autorank: autorank 1.3.0 does install next to numpy 2.4 and pandas 3.1 without changing
them (checked), but it pulls statsmodels, baycomp, formulaic, patsy, interface_meta and wrapt for
one table look-up (statsmodels' ``qsturng``), refuses fewer than five data sets (a quick suite
has two or three) and prints to stdout. The Nemenyi critical difference is one line with
``scipy.stats.studentized_range`` (:func:`nemenyi_cd`, tested against Demšar's table).

Example:
    >>> stats = suite_stats(records, n_resamples=999, seed=0)  # doctest: +SKIP
    >>> stats.family("dropout").wtl  # doctest: +SKIP
    (8, 3, 1)
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from regsearch.comparison import Comparison, higher_is_better, holm
from regsearch.comparison.controls import is_control

__all__ = [
    "RECORD_COLUMNS",
    "FamilyStats",
    "SuiteStats",
    "average_ranks",
    "friedman",
    "median_interval",
    "nemenyi_cd",
    "outcome",
    "records_frame",
    "suite_stats",
    "wilcoxon_p",
]

Outcome = Literal["win", "tie", "loss"]
#: Columns of the records table, one row per (data set, candidate).
RECORD_COLUMNS = (
    "dataset",
    "candidate",
    "baseline",  # True on the baseline's row
    "metric",  # the decision metric, e.g. val_loss
    "mean",  # the candidate's mean decision metric
    "effect",  # candidate − baseline on the decision metric, paired (NaN for the baseline)
    "low",  # 95% interval of the effect (unadjusted), NaN without one
    "high",
    "p_holm",  # the data set's own Holm-adjusted p (across its candidates)
    "n_pairs",
    "test_effect",  # candidate − baseline on the test split's metric (confirmation only)
    "winner",  # the data set's own verdict named this candidate a clear winner
    "learnable",  # the data set's best model beat the constant predictor
    "standing",  # where this candidate stands on its data set (comparison STANDINGS)
    "tier",  # the data set's verdict tier (clear, likely, equivalent, undecided, none)
    "recommended",  # the data set's verdict recommends this candidate (any tier)
)
_TINY = 1e-12


def records_frame(dataset: str, comparison: Comparison) -> pd.DataFrame:
    """One data set's comparison as rows of :data:`RECORD_COLUMNS` (baseline first; the
    learning-rate controls ``baseline@<family>`` are left out).

    Raises:
        ValueError: The comparison has no baseline to pair the candidates with.
    """
    if comparison.baseline is None:
        raise ValueError(f"{dataset}: the comparison has no baseline candidate")
    metric = comparison.metric
    rows = []
    for cand in comparison.candidates:
        if is_control(cand.name):
            continue  # a learning-rate control explains a candidate; it is not one
        diff = cand.vs_baseline.get(metric)
        test = cand.test.diff if cand.test is not None else None
        est = cand.metrics.get(metric)
        rows.append(
            {
                "dataset": dataset,
                "candidate": cand.name,
                "baseline": cand.name == comparison.baseline,
                "metric": metric,
                "mean": est.mean if est is not None else math.nan,
                "effect": diff.mean if diff is not None else math.nan,
                "low": _number(diff.low if diff is not None else None),
                "high": _number(diff.high if diff is not None else None),
                "p_holm": _number(cand.p_adjusted),
                "n_pairs": diff.n if diff is not None else cand.n_pairs,
                "test_effect": test.mean if test is not None else math.nan,
                "winner": cand.name == comparison.winner,
                "learnable": comparison.learnable,
                "standing": cand.standing or "baseline",
                "tier": comparison.tier,
                "recommended": cand.name == comparison.recommended,
            }
        )
    return pd.DataFrame(rows, columns=list(RECORD_COLUMNS))


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def outcome(low: float, high: float, higher_better: bool) -> Outcome:
    """Win, tie or loss of one data set: does its effect's interval exclude 0, on which side?

    A missing interval (one pair) is a tie: nothing shows a difference.

    Example:
        >>> outcome(-0.3, -0.1, higher_better=False), outcome(-0.1, 0.2, False)
        ('win', 'tie')
        >>> outcome(-0.3, -0.1, higher_better=True)
        'loss'
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return "tie"
    if low > 0 or high < 0:
        positive = low > 0
        return "win" if positive == higher_better else "loss"
    return "tie"


def median_interval(
    values: Sequence[float] | np.ndarray, n_resamples: int, seed: int, confidence: float = 0.95
) -> tuple[float, float | None, float | None]:
    """Median of ``values`` (NaN dropped) with a percentile bootstrap interval over them.

    ``scipy.stats.bootstrap`` resamples the data sets with replacement, seeded; the percentile
    method stays defined when many resampled medians are equal (BCa does not). Fewer than two
    values have no interval.

    Raises:
        ValueError: No finite value.

    Example:
        >>> med, low, high = median_interval([0.1, 0.2, 0.3, 0.4], n_resamples=999, seed=0)
        >>> med, low <= med <= high
        (0.25, True)
    """
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        raise ValueError("median_interval needs at least one finite value")
    median = float(np.median(data))
    if data.size < 2 or np.ptp(data) <= _TINY:
        return median, (median if data.size >= 2 else None), (median if data.size >= 2 else None)
    from scipy import stats

    found = stats.bootstrap(
        (data,),
        np.median,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return median, float(found.confidence_interval.low), float(found.confidence_interval.high)


def wilcoxon_p(effects: Sequence[float] | np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p of "the effects are centred on 0" (NaN dropped).

    ``scipy.stats.wilcoxon`` with its defaults (exact distribution for small samples, zero
    differences dropped); None when no effect differs from 0.

    Example:
        >>> round(wilcoxon_p([-0.1, -0.2, -0.15, -0.3, -0.05, -0.12]), 4)
        0.0312
    """
    data = np.asarray(effects, dtype=float)
    data = data[np.isfinite(data)]
    if not (np.abs(data) > _TINY).any():
        return None
    from scipy import stats

    with warnings.catch_warnings():  # few data sets: scipy warns that the normal approx is off
        warnings.simplefilter("ignore", UserWarning)
        return float(stats.wilcoxon(data).pvalue)


def average_ranks(means: pd.DataFrame, higher_better: bool) -> pd.Series:
    """Mean rank of each column over the rows (1 = best in a row, ties share the mean rank).

    Args:
        means: One row per data set, one column per candidate, without missing values.
        higher_better: Rank the largest value first (accuracy) instead of the smallest.

    Example:
        >>> frame = pd.DataFrame({"a": [0.1, 0.3], "b": [0.2, 0.2], "c": [0.3, 0.1]})
        >>> average_ranks(frame, higher_better=False).tolist()
        [2.0, 2.0, 2.0]
    """
    from scipy import stats

    values = means.to_numpy(dtype=float)
    ranks = stats.rankdata(-values if higher_better else values, axis=1)
    return pd.Series(ranks.mean(axis=0), index=means.columns, name="avg_rank")


def friedman(means: pd.DataFrame) -> tuple[float, float] | None:
    """Friedman's chi-square statistic and p over the rows (``scipy.stats.friedmanchisquare``).

    None with fewer than three candidates or two data sets (the test is not defined).
    """
    if means.shape[1] < 3 or means.shape[0] < 2:
        return None
    from scipy import stats

    result = stats.friedmanchisquare(*(means[c].to_numpy(dtype=float) for c in means.columns))
    stat, p = float(result.statistic), float(result.pvalue)
    return (stat, p) if math.isfinite(p) else None


def nemenyi_cd(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks: k candidates over n data sets.

    ``q_α · sqrt(k(k+1) / (6n))`` with ``q_α`` the studentized range quantile over √2
    (Demšar 2006, Table 5: 2.343 for k = 3, 2.949 for k = 7 at α = 0.05).

    Raises:
        ValueError: ``k`` < 2, ``n`` < 1 or ``alpha`` outside (0, 1).

    Example:
        >>> round(nemenyi_cd(7, 12), 2)
        2.6
    """
    if k < 2 or n < 1 or not 0 < alpha < 1:
        raise ValueError(
            f"nemenyi_cd needs k >= 2, n >= 1, 0 < alpha < 1; got {k=}, {n=}, {alpha=}"
        )
    from scipy import stats

    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6 * n))


@dataclass(frozen=True)
class FamilyStats:
    """One regularizer family against the baseline over the data sets that paired it."""

    name: str
    wins: int
    ties: int
    losses: int
    n: int  # data sets with an effect
    median: float | None  # median effect (candidate − baseline), metric units
    low: float | None  # bootstrap interval of the median
    high: float | None
    p: float | None  # Wilcoxon signed-rank, two-sided
    p_holm: float | None  # Holm-adjusted across the families
    avg_rank: float | None  # average rank among all candidates (1 = best)
    better: bool = False  # significantly better after Holm, and its median effect is better
    worse: bool = False  # significantly worse after Holm

    @property
    def wtl(self) -> tuple[int, int, int]:
        """(wins, ties, losses)."""
        return self.wins, self.ties, self.losses


@dataclass(frozen=True)
class SuiteStats:
    """Everything the suite report says across data sets."""

    metric: str  # the decision metric the effects are on
    baseline: str
    datasets: tuple[str, ...]  # data sets with a comparison
    families: tuple[FamilyStats, ...]  # in the order of the records
    ranks: pd.Series  # average rank per candidate, baseline included (complete data sets)
    ranked: tuple[str, ...]  # data sets every candidate completed (used for the ranks)
    friedman: tuple[float, float] | None  # (chi², p)
    cd: float | None  # Nemenyi critical difference at alpha
    alpha: float
    n_resamples: int
    seed: int
    unlearnable: tuple[str, ...] = field(default=())  # no model beat a constant
    # Each data set's own verdict: its tier and the candidate it recommends (None: keep).
    per_set: tuple[tuple[str, str, str | None], ...] = field(default=())

    @property
    def higher_better(self) -> bool:
        """Whether a larger value of the decision metric is better (accuracy)."""
        return higher_is_better(self.metric)

    @property
    def winners(self) -> list[FamilyStats]:
        """Families significantly better than the baseline, best median effect first."""
        sign = -1.0 if self.higher_better else 1.0
        found = [f for f in self.families if f.better and f.median is not None]
        return sorted(found, key=lambda f: sign * (f.median or 0.0))

    @property
    def closest(self) -> FamilyStats | None:
        """The family with the best median effect, significant or not."""
        sign = -1.0 if self.higher_better else 1.0
        found = [f for f in self.families if f.median is not None]
        return min(found, key=lambda f: sign * (f.median or 0.0)) if found else None

    def family(self, name: str) -> FamilyStats:
        """The statistics of family ``name``.

        Raises:
            KeyError: No such family.
        """
        for fam in self.families:
            if fam.name == name:
                return fam
        raise KeyError(f"no family {name!r}; have {[f.name for f in self.families]}")


def suite_stats(
    records: pd.DataFrame, *, n_resamples: int = 9999, seed: int = 0, alpha: float = 0.05
) -> SuiteStats:
    """The cross-data-set statistics of a records table (:data:`RECORD_COLUMNS`).

    Args:
        records: Rows of :func:`records_frame` for every finished data set, concatenated.
        n_resamples: Bootstrap resamples of each median effect's interval.
        seed: Seed of the bootstrap.
        alpha: Level of the Holm-adjusted Wilcoxon tests and of the critical difference.

    Raises:
        ValueError: No rows, missing columns, or data sets decided on different metrics.
    """
    missing = [c for c in RECORD_COLUMNS if c not in records.columns]
    if records.empty or missing:
        raise ValueError(f"suite_stats needs rows with columns {list(RECORD_COLUMNS)}")
    metrics = sorted(set(records["metric"]))
    if len(metrics) != 1:
        raise ValueError(f"data sets were decided on different metrics: {metrics}")
    metric, better_high = metrics[0], higher_is_better(metrics[0])
    base_rows = records[records["baseline"].astype(bool)]
    baseline = str(base_rows["candidate"].iloc[0]) if not base_rows.empty else "baseline"
    families = [
        c for c in dict.fromkeys(records["candidate"]) if c not in set(base_rows["candidate"])
    ]
    means = records.pivot_table(index="dataset", columns="candidate", values="mean", sort=False)
    complete = means[[baseline, *families]].dropna() if baseline in means else means.iloc[0:0]
    ranks = average_ranks(complete, better_high) if len(complete) else pd.Series(dtype=float)
    per = [_family(records, f, better_high, n_resamples, seed) for f in families]
    out = _judge(per, ranks, better_high, alpha)
    k, n = complete.shape[1], complete.shape[0]
    return SuiteStats(
        metric=metric,
        baseline=baseline,
        datasets=tuple(dict.fromkeys(records["dataset"])),
        families=tuple(out),
        ranks=ranks,
        ranked=tuple(complete.index),
        friedman=friedman(complete),
        cd=nemenyi_cd(k, n, alpha) if k >= 2 and n >= 1 else None,
        alpha=alpha,
        n_resamples=n_resamples,
        seed=seed,
        unlearnable=tuple(
            dict.fromkeys(records.loc[~records["learnable"].astype(bool), "dataset"])
        ),
        per_set=_per_set(records),
    )


def _per_set(records: pd.DataFrame) -> tuple[tuple[str, str, str | None], ...]:
    """(data set, tier, recommended candidate or None) in the records' order."""
    out = []
    for name, rows in records.groupby("dataset", sort=False):
        chosen = rows.loc[rows["recommended"].astype(bool), "candidate"]
        out.append(
            (str(name), str(rows["tier"].iloc[0]), str(chosen.iloc[0]) if len(chosen) else None)
        )
    return tuple(out)


def _judge(
    per: list[FamilyStats], ranks: pd.Series, higher_better: bool, alpha: float
) -> list[FamilyStats]:
    """Holm across the families; better/worse when adjusted p < alpha, by the median's sign."""
    out = []
    for fam, p_adj in zip(per, holm([f.p for f in per]), strict=True):
        significant = p_adj is not None and p_adj < alpha and fam.median is not None
        gain = 0.0 if fam.median is None else (fam.median if higher_better else -fam.median)
        out.append(
            dataclasses.replace(
                fam,
                p_holm=p_adj,
                avg_rank=_rank(ranks, fam.name),
                better=significant and gain > _TINY,
                worse=significant and gain < -_TINY,
            )
        )
    return out


def _rank(ranks: pd.Series, name: str) -> float | None:
    return float(ranks[name]) if name in ranks.index else None


def _family(
    records: pd.DataFrame, name: str, higher_better: bool, n_resamples: int, seed: int
) -> FamilyStats:
    rows = records[(records["candidate"] == name) & records["effect"].notna()]
    results = [
        outcome(lo, hi, higher_better) for lo, hi in zip(rows["low"], rows["high"], strict=True)
    ]
    effects = rows["effect"].to_numpy(dtype=float)
    median, low, high = (
        median_interval(effects, n_resamples, seed) if effects.size else (None, None, None)
    )
    return FamilyStats(
        name=name,
        wins=results.count("win"),
        ties=results.count("tie"),
        losses=results.count("loss"),
        n=int(effects.size),
        median=median,
        low=low,
        high=high,
        p=wilcoxon_p(effects) if effects.size else None,
        p_holm=None,
        avg_rank=None,
    )
