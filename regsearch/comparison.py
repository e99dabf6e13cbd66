"""Head-to-head comparison of re-evaluated candidates, with confidence intervals and a verdict.

A compare sweep (and an experiment preset) ends with a ``final`` phase: several named
candidates (``baseline`` or ``none`` for the unregularized model, then e.g. each family's best)
retrained on the same fresh seeds. This module turns those rows of the trials frame into
numbers a practitioner can act on:

- per candidate, the mean over seeds of train/val/test metric and gap with a 95% confidence
  interval from the t distribution (no interval from a single seed);
- per candidate, the paired difference against the baseline on the seeds both completed, with
  its 95% interval and the p-value of a paired t-test (``scipy.stats.ttest_rel``);
- a winner, chosen on validation data only, and one verdict sentence.

**The winner rule.** A candidate is *eligible* unless its validation metric is significantly
worse than the baseline's (paired t-test, ``p < alpha``, difference in the worse direction; with
a single paired seed, where no test is possible, unless it is worse on that seed). Among
eligible candidates whose mean paired gap difference is negative (they shrink the gap), the
winner has the largest reduction; ties go to the better validation metric. The gap is
``gap_acc = train_acc − val_acc`` (classification) or ``gap_loss = val_loss − train_loss``,
so it uses training and validation data only. Test numbers are reported next to it and never
used to choose. The verdict calls the evidence weak when the winner's gap reduction has
``p ≥ alpha`` or rests on fewer than :data:`MIN_SEEDS` seeds.

Example:
    >>> result = compare(trials, "classification")  # doctest: +SKIP
    >>> print(result.verdict)  # doctest: +SKIP
    dropout (dropout=0.31) cut the accuracy gap from 0.18 to 0.06 (paired t, p=0.002, 5 seeds);
    test accuracy +0.05.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "ALPHA",
    "BASELINE_NAMES",
    "MIN_SEEDS",
    "Candidate",
    "Comparison",
    "Difference",
    "Estimate",
    "compare",
    "format_estimate",
    "format_p",
    "higher_is_better",
    "mean_ci",
    "paired_difference",
]

Basis = Literal["acc", "loss"]

#: Candidate names of the unregularized reference, in order of preference.
BASELINE_NAMES = ("baseline", "none")
#: Significance level of the paired tests and the winner rule.
ALPHA = 0.05
#: Fewer seeds than this and the verdict calls the evidence weak whatever the p-value.
MIN_SEEDS = 3
CONFIDENCE = 0.95
SPLITS = ("train", "val", "test", "gap")
_LABELS = {"acc": "accuracy", "loss": "loss"}
# Columns of trials.csv that are not searched parameters (see results.trials_frame).
_NOT_PARAMS = {
    "trial",
    "seed",
    "state",
    "family",
    "phase",
    "duration_s",
    "best_epoch",
    "stopped_epoch",
    "weight_norm",
    "sparsity",
    *(f"{s}_{b}" for s in SPLITS for b in _LABELS),
}


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds and its 95% t-interval; ``low``/``high`` are None with one seed."""

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
    """Candidate minus baseline, paired on the seeds both completed.

    ``p_value`` is the two-sided paired t-test's; None (like the interval) with one pair.
    """

    mean: float
    low: float | None
    high: float | None
    p_value: float | None
    n: int

    def significant(self, alpha: float = ALPHA) -> bool:
        """True when the paired test rejects "no difference" at level ``alpha``."""
        return self.p_value is not None and self.p_value < alpha


@dataclass(frozen=True)
class Candidate:
    """One re-evaluated setting: its numbers and how it differs from the baseline."""

    name: str
    params: dict[str, Any]
    n_seeds: int  # complete members
    n_failed: int  # members left out: failed, or without final metrics
    metrics: dict[str, Estimate]  # "train_acc", "gap_loss", ... → estimate over seeds
    vs_baseline: dict[str, Difference] = field(default_factory=dict)  # empty for the baseline
    eligible: bool = False  # may win: validation not significantly worse than the baseline

    @property
    def params_text(self) -> str:
        """``"dropout=0.31, l2=0.001"``, or ``"no regularization"`` without parameters."""
        return ", ".join(f"{k}={_short(v)}" for k, v in self.params.items()) or "unregularized"


@dataclass(frozen=True)
class Comparison:
    """The final-phase comparison; see the module docstring for the winner rule."""

    basis: Basis  # metric family of the verdict: "acc" or "loss"
    baseline: str | None  # name of the reference candidate, if one was re-evaluated
    candidates: tuple[Candidate, ...]  # baseline first, then in the order they were run
    winner: str | None
    verdict: str
    n_failed: int  # failed members over all candidates, left out of every number
    alpha: float = ALPHA

    @property
    def conclusive(self) -> bool:
        """True when a winner cut the gap significantly (``p < alpha``) on enough seeds."""
        if self.winner is None:
            return False
        diff = self.candidate(self.winner).vs_baseline[f"gap_{self.basis}"]
        return diff.significant(self.alpha) and diff.n >= MIN_SEEDS

    def candidate(self, name: str) -> Candidate:
        """The candidate called ``name``.

        Raises:
            KeyError: No candidate has that name.
        """
        for cand in self.candidates:
            if cand.name == name:
                return cand
        raise KeyError(f"no candidate {name!r}; have {[c.name for c in self.candidates]}")


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (accuracies, but not the accuracy gap).

    Example:
        >>> higher_is_better("val_acc"), higher_is_better("gap_acc"), higher_is_better("test_loss")
        (True, False, False)
    """
    return metric.endswith("_acc") and not metric.startswith("gap_")


def mean_ci(values: Sequence[float] | pd.Series, confidence: float = CONFIDENCE) -> Estimate:
    """Mean of ``values`` (NaN dropped) with its t-distribution confidence interval.

    Raises:
        ValueError: No finite value, or ``confidence`` outside (0, 1).

    Example:
        >>> est = mean_ci([1.0, 2.0, 3.0])
        >>> round(est.mean, 3), round(est.low, 3), round(est.high, 3)
        (2.0, -0.484, 4.484)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence=}")
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if data.size == 0:
        raise ValueError("mean_ci needs at least one finite value")
    mean = float(data.mean())
    if data.size == 1:
        return Estimate(mean, None, None, 1)
    from scipy import stats  # 2 s to import: only when an interval is needed

    sem = float(data.std(ddof=1)) / math.sqrt(data.size)
    half = float(stats.t.ppf((1 + confidence) / 2, data.size - 1)) * sem
    return Estimate(mean, mean - half, mean + half, int(data.size))


def paired_difference(
    candidate: pd.Series, baseline: pd.Series, confidence: float = CONFIDENCE
) -> Difference | None:
    """``candidate − baseline`` paired on the index (the seed), with a paired t-test.

    Pairs with a missing value on either side are dropped. Differences that are all equal have
    no spread, where the t statistic is undefined: the p-value is then 1 when they are all zero
    and 0 otherwise (a constant shift on every seed).

    Returns:
        The difference, or None when no seed has both values.

    Example:
        >>> d = paired_difference(pd.Series([1.0, 2.5, 3.0]), pd.Series([0.5, 2.0, 2.0]))
        >>> round(d.mean, 3), round(d.p_value, 3)
        (0.667, 0.074)
    """
    both = pd.concat([candidate.rename("c"), baseline.rename("b")], axis=1, join="inner")
    both = both.astype(float).dropna()
    if both.empty:
        return None
    diff = mean_ci(both["c"] - both["b"], confidence)
    if diff.n == 1:
        return Difference(diff.mean, None, None, None, 1)
    spread = float((both["c"] - both["b"]).std(ddof=1))
    if spread <= 1e-12 * max(1.0, abs(diff.mean)):
        p = 1.0 if abs(diff.mean) <= 1e-12 else 0.0
        return Difference(diff.mean, diff.mean, diff.mean, p, diff.n)
    from scipy import stats

    with warnings.catch_warnings():  # nearly-equal samples warn about precision; p stays valid
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_rel(both["c"], both["b"]).pvalue)
    return Difference(diff.mean, diff.low, diff.high, p, diff.n)


def compare(
    trials: pd.DataFrame,
    kind: str,
    params: Sequence[str] | None = None,
    basis: Basis | None = None,
    alpha: float = ALPHA,
) -> Comparison | None:
    """Compare the final-phase candidates of a sweep; None when it has no final rows.

    Args:
        trials: One row per member, as in ``trials.csv`` (columns ``seed, state, family,
            phase`` and the final metrics).
        kind: ``"classification"`` or ``"regression"``.
        params: Searched parameter columns; by default every column that is not a metric.
        basis: Metric family of the winner rule and verdict; accuracy for classification,
            loss for regression by default. Both are in ``Candidate.metrics`` when present.
        alpha: Significance level of the paired tests.

    Returns:
        The comparison, or None when ``trials`` has no ``final`` rows.

    Raises:
        ValueError: ``kind``/``basis`` is not allowed, or the basis columns are missing.

    Example:
        >>> result = compare(trials, "classification")  # doctest: +SKIP
        >>> diff = result.candidate("dropout").vs_baseline["gap_acc"]  # doctest: +SKIP
        >>> result.winner, round(diff.p_value, 4)  # doctest: +SKIP
        ('dropout', 0.0021)
    """
    if kind not in ("classification", "regression"):
        raise ValueError(f"kind must be 'classification' or 'regression', got {kind=}")
    basis = basis or ("acc" if kind == "classification" else "loss")
    if basis not in _LABELS:
        raise ValueError(f"basis must be 'acc' or 'loss', got {basis=}")
    if trials.empty or "phase" not in trials.columns:
        return None
    final = trials.loc[trials["phase"] == "final"]
    if final.empty:
        return None
    missing = [f"{s}_{basis}" for s in SPLITS if f"{s}_{basis}" not in final.columns]
    if missing:
        raise ValueError(f"trials have no {missing} columns for basis={basis!r}")
    names = list(dict.fromkeys(final.sort_values("trial", kind="stable")["family"].astype(str)))
    param_cols = list(params) if params is not None else _param_columns(final)
    per_name = {n: final.loc[final["family"].astype(str) == n] for n in names}
    baseline = next((b for b in BASELINE_NAMES if b in names and _usable(per_name[b])), None)
    base_rows = _complete(per_name[baseline]) if baseline else None
    cands = [
        _candidate(name, per_name[name], param_cols, None if name == baseline else base_rows)
        for name in sorted(names, key=lambda n: n != baseline)
    ]
    cands = [_with_eligibility(c, basis, alpha) for c in cands]
    winner = _winner(cands, baseline, basis)
    n_failed = sum(c.n_failed for c in cands)
    text = _verdict(cands, baseline, winner, basis, alpha, n_failed)
    return Comparison(basis, baseline, tuple(cands), winner, text, n_failed, alpha)


def format_estimate(
    est: Estimate | Difference | None, digits: int = 3, signed: bool = False
) -> str:
    """``"0.812 ± 0.021"``: the mean to ``digits`` and the half-width to 2 significant digits.

    Only the mean without an interval (one seed); empty for None.

    Example:
        >>> format_estimate(mean_ci([0.8, 0.82, 0.84]))
        '0.82 ± 0.05'
    """
    if est is None:
        return ""
    sign = "+" if signed else ""
    text = f"{est.mean:{sign}.{digits}g}"
    if est.low is None or est.high is None:
        return text
    return f"{text} ± {(est.high - est.low) / 2:.2g}"


def format_p(p: float | None) -> str:
    """A p-value for a sentence: ``"p=0.037"``, ``"p<0.001"``; empty when there is none.

    Example:
        >>> format_p(0.0371), format_p(0.00002), format_p(None)
        ('p=0.037', 'p<0.001', '')
    """
    if p is None or math.isnan(p):
        return ""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def _param_columns(rows: pd.DataFrame) -> list[str]:
    return [str(c) for c in rows.columns if c not in _NOT_PARAMS]


def _complete(rows: pd.DataFrame) -> pd.DataFrame:
    """Complete members with final metrics, indexed by seed."""
    if "state" in rows.columns:
        rows = rows.loc[rows["state"].astype(str) == "complete"]
    metrics = [c for c in rows.columns if c in _NOT_PARAMS and c.endswith(("_acc", "_loss"))]
    done = rows.dropna(subset=[c for c in metrics if c.startswith("val_")])
    return done.drop_duplicates("seed").set_index("seed")


def _usable(rows: pd.DataFrame) -> bool:
    return not _complete(rows).empty


def _candidate(
    name: str,
    rows: pd.DataFrame,
    params: list[str],
    base: pd.DataFrame | None,
) -> Candidate:
    done = _complete(rows)
    metrics = {
        f"{s}_{b}": mean_ci(done[f"{s}_{b}"])
        for b in _LABELS
        for s in SPLITS
        if f"{s}_{b}" in done.columns and done[f"{s}_{b}"].notna().any()
    }
    first = rows.iloc[0]
    values = {p: _plain(first[p]) for p in params if p in rows.columns and pd.notna(first[p])}
    diffs: dict[str, Difference] = {}
    if base is not None:
        for key in metrics:
            if key in base.columns:
                diff = paired_difference(done[key], base[key])
                if diff is not None:
                    diffs[key] = diff
    return Candidate(name, values, len(done), len(rows) - len(done), metrics, diffs)


def _with_eligibility(cand: Candidate, basis: Basis, alpha: float) -> Candidate:
    val = cand.vs_baseline.get(f"val_{basis}")
    if val is None or f"gap_{basis}" not in cand.vs_baseline:
        return cand
    worse = val.mean < 0 if higher_is_better(f"val_{basis}") else val.mean > 0
    if val.p_value is not None:
        worse = worse and val.p_value < alpha
    return Candidate(
        cand.name,
        cand.params,
        cand.n_seeds,
        cand.n_failed,
        cand.metrics,
        cand.vs_baseline,
        not worse,
    )


def _winner(cands: list[Candidate], baseline: str | None, basis: Basis) -> str | None:
    gap, val = f"gap_{basis}", f"val_{basis}"
    sign = -1.0 if higher_is_better(val) else 1.0
    pool = [c for c in cands if c.name != baseline and c.eligible and c.vs_baseline[gap].mean < 0]
    if not pool:
        return None
    best = min(pool, key=lambda c: (c.vs_baseline[gap].mean, sign * c.metrics[val].mean))
    return best.name


def _verdict(
    cands: list[Candidate],
    baseline: str | None,
    winner: str | None,
    basis: Basis,
    alpha: float,
    n_failed: int,
) -> str:
    gap, label = f"gap_{basis}", f"{_LABELS[basis]} gap"
    others = [c for c in cands if c.name != baseline and gap in c.metrics]
    if baseline is None:
        text = "No unregularized candidate ('baseline' or 'none') finished, so nothing is tested"
        if others:
            low = min(others, key=lambda c: c.metrics[gap].mean)
            text += f"; the smallest {label} was {low.name}'s ({low.params_text}): "
            text += f"{_short(low.metrics[gap].mean)}"
        sentence = text + "."
    elif not others:
        sentence = f"Only {baseline} finished the re-evaluation, so there is nothing to compare."
    elif winner is None:
        base = next(c for c in cands if c.name == baseline)
        sentence = (
            f"No candidate cut the {label} below {baseline}'s {_short(base.metrics[gap].mean)} "
            f"without a significantly worse validation {_LABELS[basis]}: keep {baseline} "
            f"({base.n_seeds} seed{'s' * (base.n_seeds != 1)})."
        )
        if base.n_seeds < MIN_SEEDS:
            sentence += " So few seeds are weak evidence either way; raise sweep.final_seeds."
    else:
        sentence = _winner_sentence(cands, baseline, winner, basis, alpha)
    if n_failed:
        sentence += f" {n_failed} failed member{'s' * (n_failed != 1)} left out."
    return sentence


def _winner_sentence(
    cands: list[Candidate], baseline: str, winner: str, basis: Basis, alpha: float
) -> str:
    gap, test, label = f"gap_{basis}", f"test_{basis}", f"{_LABELS[basis]} gap"
    win = next(c for c in cands if c.name == winner)
    diff = win.vs_baseline[gap]
    base_gap = win.metrics[gap].mean - diff.mean  # the baseline's mean on the same seeds
    seeds = f"{diff.n} seed{'s' * (diff.n != 1)}"
    test_diff = win.vs_baseline.get(test)
    tail = f"; test {_LABELS[basis]} {_signed(test_diff.mean)}" if test_diff else ""
    who = f"{winner} ({win.params_text})"
    numbers = f"from {_short(base_gap)} to {_short(win.metrics[gap].mean)}"
    if diff.n == 1:
        return (
            f"Weak evidence: {who} had the smaller {label} ({numbers} vs {baseline}) on a single "
            f"seed, so there is no confidence interval or test{tail}. Re-run with more "
            "sweep.final_seeds before acting on it."
        )
    test_text = f"paired t, {format_p(diff.p_value)}, {seeds}"
    if diff.significant(alpha) and diff.n >= MIN_SEEDS:
        return f"{who} cut the {label} {numbers} ({test_text}){tail}."
    why = f"only {seeds}" if diff.n < MIN_SEEDS else f"the difference is not significant at {alpha}"
    return (
        f"Weak evidence: {who} had the smallest {label} ({numbers} against {baseline}), but "
        f"{why} ({test_text}){tail}. More sweep.final_seeds would settle it."
    )


def _signed(value: float) -> str:
    return "unchanged" if abs(value) < 5e-13 else f"{value:+.2g}"


def _short(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | float | np.number):
        number = float(value)
        return str(int(number)) if number.is_integer() else f"{number:.2g}"
    return str(value)


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # CSV round trips turn flags into text
    return value
