"""Who beat the baseline: pairing, the winner rule, the gap diagnosis and the test check.

See :mod:`regsearch.comparison` for the rules in prose; this module implements them and builds
the :class:`~regsearch.comparison.records.Comparison` record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from regsearch.comparison import controls, grading, verdict
from regsearch.comparison import rows as rowsmod
from regsearch.comparison.formatting import short
from regsearch.comparison.ranges import (
    SearchRange,
    effectively_off,
    range_notes,
    ranges_from_summary,
)
from regsearch.comparison.records import ALPHA, Candidate, Comparison, Confirmation
from regsearch.comparison.rules import DEFAULT_RULE, DecisionRule
from regsearch.comparison.stats import (
    CORRECTED_T,
    PAIRED_T,
    Difference,
    Estimate,
    mean_ci,
    paired_difference,
    probability_of_improvement,
)

__all__ = [
    "BASELINE_NAMES",
    "OBJECTIVES",
    "compare",
    "compare_sweep",
    "confirm_on_test",
    "decision_metric",
    "diagnose",
    "direction",
    "higher_is_better",
]

#: Candidate names of the unregularized reference, in order of preference.
BASELINE_NAMES = ("baseline", "none")
#: Sweep objectives (``search.metric``) the comparison understands.
OBJECTIVES = ("val_loss", "val_acc", "gap_loss", "gap_acc")
_KINDS = ("classification", "regression")
_TINY = 1e-12


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (accuracies, but not the accuracy gap).

    Example:
        >>> higher_is_better("val_acc"), higher_is_better("gap_acc"), higher_is_better("test_loss")
        (True, False, False)
    """
    return metric.endswith("_acc") and not metric.startswith("gap_")


def decision_metric(objective: str | None) -> str:
    """The metric that decides: the sweep's validation objective, or val_loss for a gap.

    A sweep that optimized a gap is still judged on validation loss, because a gap also
    closes when the model fits the training data worse.

    Raises:
        ValueError: ``objective`` is not one of :data:`OBJECTIVES`.

    Example:
        >>> decision_metric("val_acc"), decision_metric("gap_acc"), decision_metric(None)
        ('val_acc', 'val_loss', 'val_loss')
    """
    if objective is None:
        return "val_loss"
    if objective not in OBJECTIVES:
        raise ValueError(f"metric must be one of {OBJECTIVES}, got {objective=}")
    return objective if objective.startswith("val_") else "val_loss"


def direction(diff: Difference | None, metric: str, alpha: float, p: float | None = None) -> int:
    """+1 when the candidate is significantly better on ``metric``, −1 worse, 0 unclear.

    ``p`` overrides the difference's own p-value (the Holm-adjusted one for the decision
    metric). With one pair there is no test, so the change is unclear (0).

    Example:
        >>> direction(Difference(-0.1, -0.15, -0.05, 0.01, 5), "val_loss", 0.05)
        1
        >>> direction(Difference(-0.1, -0.15, -0.05, 0.01, 5), "val_loss", 0.05, p=0.2)
        0
    """
    p = diff.p_value if diff is not None and p is None else p
    if diff is None or p is None or p >= alpha or abs(diff.mean) <= _TINY:
        return 0
    gain = diff.mean if higher_is_better(metric) else -diff.mean
    return 1 if gain > 0 else -1


def _trend(diff: Difference, metric: str) -> int:
    """The sign of a difference's point estimate, +1 when it is the better direction."""
    if abs(diff.mean) <= _TINY:
        return 0
    return 1 if (diff.mean > 0) == higher_is_better(metric) else -1


def diagnose(d_train: int, d_val: int, d_gap: int, val_trend: int = 0) -> str:
    """The gap diagnosis from the directions (+1 better, −1 worse, 0 unclear) of the three Δ.

    For the gap, "better" means smaller. ``val_trend`` is the sign of the validation effect's
    point estimate (+1 better), which separates a gap closed at no visible cost to validation
    from one closed by fitting worse when neither is significant. Validation decides first; the
    gap only explains:

    ========  =========  =====  ========  ==========================================
    Δval      trend      Δgap   Δtrain    label
    ========  =========  =====  ========  ==========================================
    better    any        any    any       generalizes better
    0         better     +      worse     closes the gap, validation gain not significant
    not +     not better +      worse     closes the gap by fitting worse
    not +     any        −      any       overfits more
    worse     any        other  other     generalizes worse
    0         any        other  other     no clear change
    ========  =========  =====  ========  ==========================================

    Example:
        >>> diagnose(d_train=-1, d_val=0, d_gap=1)
        'closes the gap by fitting worse'
        >>> diagnose(d_train=-1, d_val=0, d_gap=1, val_trend=1)
        'closes the gap, validation gain not significant'
    """
    if d_val > 0:
        return "generalizes better"
    if d_gap > 0 and d_train < 0:
        if d_val == 0 and val_trend > 0:
            return "closes the gap, validation gain not significant"
        return "closes the gap by fitting worse"
    if d_gap < 0:
        return "overfits more"
    return "generalizes worse" if d_val < 0 else "no clear change"


def confirm_on_test(
    val: Difference | None, test: Difference | None, basis: str, margin: float = 0.0
) -> Confirmation:
    """Whether the paired test difference agrees in direction with the validation effect.

    A test difference counts only when it is clear of the test split's own noise: its interval
    excludes 0 (or, with one seed, it has no interval and is taken at face value) and it
    exceeds ``margin`` (the equivalence margin, in the metric's units). Otherwise the test is
    "too small to tell", neither agreeing nor disagreeing.

    Example:
        >>> val = Difference(-0.04, -0.06, -0.02, 0.003, 5)
        >>> confirm_on_test(val, Difference(0.03, 0.01, 0.05, 0.01, 5), "loss").status
        'disagrees'
        >>> confirm_on_test(val, Difference(0.0005, -0.01, 0.011, 0.9, 5), "loss").status
        'too small to tell'
    """
    metric = f"test_{basis}"
    if val is None or test is None:
        return Confirmation("not available", metric, test)
    if not _clear(test, margin) or abs(val.mean) <= _TINY:
        return Confirmation("too small to tell", metric, test)
    same = val.mean * test.mean > 0  # same metric family: equal signs mean the same direction
    return Confirmation("agrees" if same else "disagrees", metric, test)


def _clear(diff: Difference, margin: float) -> bool:
    """The difference is outside ±margin and its interval (if any) excludes 0."""
    if abs(diff.mean) <= max(margin, _TINY):
        return False
    return diff.low is None or diff.high is None or diff.low * diff.high > 0


def compare(
    trials: pd.DataFrame,
    kind: str,
    params: Sequence[str] | None = None,
    *,
    metric: str | None = None,
    alpha: float = ALPHA,
    cv: Mapping[str, Any] | None = None,
    constant: Mapping[str, float] | None = None,
    rule: DecisionRule = DEFAULT_RULE,
    ranges: Mapping[str, Mapping[str, SearchRange]] | None = None,
) -> Comparison | None:
    """Compare the final-phase candidates of a sweep against its baseline.

    Args:
        trials: One row per member, as in ``trials.csv`` (``seed, fold, state, family, phase``
            and the final metrics; a frame without ``fold`` reads as holdout, fold -1).
        kind: ``"classification"`` or ``"regression"``.
        params: Searched parameter columns; by default every column that is not a metric.
        metric: The sweep's objective (``search.metric``, ``summary["metric"]``); it decides
            when it is a validation metric, else val_loss does. Default val_loss.
        alpha: Significance level after Holm's adjustment.
        cv: ``summary["cv"]``: ``{"folds": K, "n_train": ..., "n_val": ...}`` or None. The
            correction uses n_val/n_train when given, else 1/(K − 1).
        constant: ``summary["constant_predictor"]``: the constant predictor's validation
            metrics, e.g. ``{"val_loss": 0.69, "val_acc": 0.5}``; no verdict when no candidate
            beats it (on the decision metric, or for classification on accuracy).
        rule: The decision rule (:data:`~regsearch.comparison.rules.DEFAULT_RULE`).
        ranges: Candidate name → parameter → its searched range (``summary["ranges"]``):
            notes on values at the edge of their range and regularizers effectively off.

    Returns:
        The comparison, or None when ``trials`` has no ``final`` rows.

    Raises:
        ValueError: ``kind``, ``metric`` or ``alpha`` is not allowed, or a column is missing.

    Example:
        >>> result = compare(trials, "classification", metric="val_loss")  # doctest: +SKIP
        >>> result.winner, result.candidate("dropout").diagnosis  # doctest: +SKIP
        ('dropout', 'generalizes better')
    """
    decide = _check(trials, kind, metric, alpha)
    final = rowsmod.final_rows(trials)
    if final.empty:
        return None
    order = final.sort_values("trial", kind="stable") if "trial" in final else final
    names = list(dict.fromkeys(order["family"].astype(str)))
    groups = {n: final.loc[final["family"].astype(str) == n] for n in names}
    tables = {n: rowsmod.decision_table(g, decide) for n, g in groups.items()}
    baseline = next((b for b in BASELINE_NAMES if b in names and not tables[b].empty), None)
    ratio = _val_train_ratio(pd.concat(list(tables.values())), cv)
    param_cols = list(params) if params is not None else rowsmod.param_columns(final)
    base = (groups[baseline], tables[baseline]) if baseline else None
    cands = [
        _candidate(n, groups[n], tables[n], None if n == baseline else base, ratio, decide)
        for n in sorted(names, key=lambda n: n != baseline)
    ]
    cands = [
        dataclasses.replace(c, params=rowsmod.param_values(groups[c.name], param_cols))
        for c in cands
    ]
    cands = [_with_ranges(c, (ranges or {}).get(c.name, {})) for c in cands]
    cands, margin = _judge(cands, tables, baseline, decide, alpha, rule, ratio)
    return _comparison(
        cands, baseline, decide, metric or decide, alpha, tables, ratio, constant, rule, margin
    )


def compare_sweep(trials: pd.DataFrame, summary: Mapping[str, Any]) -> Comparison | None:
    """:func:`compare` with what a sweep's ``summary.json`` says about the comparison.

    Reads ``kind``, ``params``, ``metric`` (the decision follows it), ``cv`` (sizes the
    correction for folds), ``constant_predictor`` (the learnability check) and ``ranges``
    (the searched ranges: edge notes).

    Example:
        >>> compare_sweep(trials, json.loads(Path("summary.json").read_text()))  # doctest: +SKIP
    """
    cv, constant = summary.get("cv"), summary.get("constant_predictor")
    return compare(
        trials,
        summary.get("kind", "regression"),
        [str(p) for p in summary.get("params") or []],
        metric=summary.get("metric"),
        cv=cv if isinstance(cv, Mapping) else None,
        constant=constant if isinstance(constant, Mapping) else None,
        ranges=ranges_from_summary(summary.get("ranges")),
    )


def _with_ranges(cand: Candidate, ranges: Mapping[str, SearchRange]) -> Candidate:
    """The candidate with its edge notes, and the regularizer it has effectively off."""
    if not ranges:
        return cand
    notes = range_notes(cand.params, ranges)
    off = effectively_off(cand.params, ranges)
    if off is not None:
        lr = cand.params.get("lr")
        at = f" at lr={short(lr)}" if lr is not None else ""
        notes = (
            f"Its {off} sits at the off edge of its range: effectively the baseline{at}, so the "
            "gain belongs to the learning rate, not to the regularizer.",
            *(n for n in notes if not n.startswith(f"{off}=")),
        )
    return dataclasses.replace(cand, notes=notes, off=off or "")


def _check(trials: pd.DataFrame, kind: str, metric: str | None, alpha: float) -> str:
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'classification' or 'regression', got {kind=}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha=}")
    decide = decision_metric(metric)
    if "phase" in trials.columns and (trials["phase"] == "final").any():
        basis = decide.split("_", 1)[1]
        need = [f"{s}_{basis}" for s in ("train", "val", "gap")] + ["seed", "family"]
        missing = [c for c in need if c not in trials.columns]
        if missing:
            raise ValueError(f"trials have no {missing} columns for metric={decide!r}")
    return decide


def _val_train_ratio(decision: pd.DataFrame, cv: Mapping[str, Any] | None) -> float | None:
    """n_val/n_train of one fold when the decision rows are folds, else None (holdout)."""
    if decision.empty:
        return None
    used = sorted({int(f) for f in decision.index.get_level_values("fold") if f >= 0})
    if not used:
        return None
    cv = cv or {}
    n_train, n_val = cv.get("n_train"), cv.get("n_val")
    if isinstance(n_train, int | float) and isinstance(n_val, int | float) and n_train > 0:
        return float(n_val) / float(n_train)
    k = int(cv.get("folds") or len(used))
    if k < 2:
        raise ValueError(f"cross-validation needs 2+ folds to correct the t-test, got {k}")
    return 1.0 / (k - 1)  # K folds: each validates on 1/K of the pool and trains on (K−1)/K


def _candidate(
    name: str,
    group: pd.DataFrame,
    table: pd.DataFrame,
    base: tuple[pd.DataFrame, pd.DataFrame] | None,
    ratio: float | None,
    decide: str,
) -> Candidate:
    metrics: dict[str, Estimate] = {}
    diffs: dict[str, Difference] = {}
    for col in rowsmod.METRIC_COLUMNS:
        if col not in group.columns:
            continue
        values, base_values = _values(group, table, base, col)
        if values.notna().any():
            metrics[col] = _estimate(values)
        if base_values is not None:
            test = col.startswith("test_")
            diff = paired_difference(values, base_values, val_train_ratio=None if test else ratio)
            if diff is not None:
                diffs[col] = diff
    p_improve = None
    if base is not None:
        better = higher_is_better(decide)
        p_improve = probability_of_improvement(table[decide], base[1][decide], better)
    seeds = table.index.get_level_values("seed").nunique() if not table.empty else 0
    return Candidate(
        name, {}, seeds, len(table), rowsmod.n_failed(group), metrics, diffs, p_improve=p_improve
    )


def _values(
    group: pd.DataFrame,
    table: pd.DataFrame,
    base: tuple[pd.DataFrame, pd.DataFrame] | None,
    col: str,
) -> tuple[pd.Series, pd.Series | None]:
    """The column's values to estimate and pair: test metrics by seed, the rest by (seed, fold)."""
    if col.startswith("test_"):
        mine = rowsmod.confirmation_table(group, col)[col]
        theirs = None if base is None else rowsmod.confirmation_table(base[0], col).get(col)
        return mine.astype(float), None if theirs is None else theirs.astype(float)
    mine = table[col].astype(float)
    return mine, None if base is None or col not in base[1] else base[1][col].astype(float)


def _estimate(values: pd.Series) -> Estimate:
    """Mean and interval over seeds: folds of one seed are averaged first (they are correlated)."""
    if isinstance(values.index, pd.MultiIndex):
        values = values.groupby(level="seed").mean()
    return mean_ci(values)


def _judge(
    cands: list[Candidate],
    tables: Mapping[str, pd.DataFrame],
    baseline: str | None,
    decide: str,
    alpha: float,
    rule: DecisionRule,
    ratio: float | None,
) -> tuple[list[Candidate], float]:
    """Grade the non-baseline candidates (:mod:`.grading`), then label each one's gap and
    check it on the test split. Returns them and the equivalence margin."""
    if baseline is None or decide not in cands[0].metrics:
        return cands, 0.0
    margin = rule.margin(decide, cands[0].metrics[decide].mean)
    cands = grading.grade(
        cands,
        tables,
        baseline,
        decide,
        better_is_higher=higher_is_better(decide),
        rule=rule,
        alpha=alpha,
        ratio=ratio,
        margin=margin,
    )
    cands = controls.with_controls(
        cands,
        tables,
        decide,
        ratio=ratio,
        margin=margin,
        better_is_higher=higher_is_better(decide),
    )
    basis = decide.split("_", 1)[1]
    base_test = cands[0].metrics.get(f"test_{basis}")
    test_margin = rule.margin(f"test_{basis}", base_test.mean) if base_test else 0.0
    out = []
    for c in cands:
        if not c.standing:
            out.append(c)
            continue
        d = c.vs_baseline
        d_val = 0 if c.p_adjusted is None else direction(d[decide], decide, alpha, p=c.p_adjusted)
        label = diagnose(
            direction(d.get(f"train_{basis}"), f"train_{basis}", alpha),
            d_val,
            direction(d.get(f"gap_{basis}"), f"gap_{basis}", alpha),
            _trend(d[decide], decide),
        )
        check = confirm_on_test(d[decide], d.get(f"test_{basis}"), basis, test_margin)
        if basis == "loss" and check.status in ("agrees", "disagrees"):
            check = _with_accuracy(check, d.get("test_acc"), rule.acc_margin)
        out.append(dataclasses.replace(c, diagnosis=label, test=check))
    return out, margin


def _with_accuracy(check: Confirmation, acc: Difference | None, margin: float) -> Confirmation:
    """Attach test accuracy when it clearly points the other way from the test loss."""
    if acc is None or check.diff is None or not _clear(acc, margin):
        return check
    same = (acc.mean > 0) == (check.diff.mean < 0)  # lower loss and higher accuracy agree
    return check if same else dataclasses.replace(check, other=acc)


def _comparison(
    cands: list[Candidate],
    baseline: str | None,
    decide: str,
    objective: str,
    alpha: float,
    tables: Mapping[str, pd.DataFrame],
    ratio: float | None,
    constant: Mapping[str, float] | None,
    rule: DecisionRule,
    margin: float,
) -> Comparison:
    sign = -1.0 if higher_is_better(decide) else 1.0
    others = [c for c in cands if decide in c.vs_baseline and not controls.is_control(c.name)]
    pool = [c for c in others if c.better]
    winner = min(pool, key=lambda c: sign * c.vs_baseline[decide].mean).name if pool else None
    closest = min(others, key=lambda c: sign * c.vs_baseline[decide].mean).name if others else None
    index = pd.concat(list(tables.values())).index if tables else pd.MultiIndex.from_tuples([])
    seeds = tuple(sorted({int(s) for s in index.get_level_values(0)})) if len(index) else ()
    folds = tuple(sorted({int(f) for f in index.get_level_values(1)})) if len(index) else ()
    level = None if constant is None else constant.get(decide)
    level_acc = None if constant is None else constant.get("val_acc")
    learnable, overconfident = _learnable(cands, baseline, decide, level, level_acc)
    grade, recommended = grading.tier(cands, decide, rule)
    found = Comparison(
        metric=decide,
        objective=objective,
        baseline=baseline,
        candidates=tuple(cands),
        winner=winner,
        closest=closest,
        method=PAIRED_T if ratio is None else CORRECTED_T,
        seeds=seeds,
        folds=folds,
        n_failed=sum(c.n_failed for c in cands),
        alpha=alpha,
        val_train_ratio=ratio,
        constant=None if level is None else float(level),
        learnable=learnable,
        tier=grade,
        recommended=recommended,
        margin=margin,
        rule_name=rule.name,
        adjustment=rule.adjust,
        overconfident=overconfident,
        constant_acc=None if level_acc is None else float(level_acc),
    )
    if grade == "undecided" and found.focus is not None:
        n_folds = len([f for f in folds if f >= 0])
        text = grading.settle(
            found.candidate(found.focus), ratio, n_folds, len(seeds), margin, rule
        )
        found = dataclasses.replace(found, settle=text)
    return dataclasses.replace(found, verdict=verdict.sentence(found), rule=verdict.rule(found))


def _learnable(
    cands: Sequence[Candidate],
    baseline: str | None,
    decide: str,
    level: float | None,
    level_acc: float | None,
) -> tuple[bool, bool]:
    """(does the best candidate beat the constant predictor, is the baseline overconfident).

    The best model must beat the constant on the decision metric, or — for classification —
    on accuracy: an overfit classifier's log loss can exceed the constant's while its accuracy
    is far better. That overconfidence is what regularization treats, so it is flagged and
    the verdict goes on. Neither withholds the verdict: which regularizer generalizes better
    is still answered when no model beats the constant yet (the d2l weight-decay setup, where
    L2 cuts the loss 50× but not below the constant's); the verdict then says so first.
    """
    if level is None or baseline is None:
        return True, False
    scored = [c for c in cands if decide in c.metrics]
    if not scored:
        return True, False
    better = higher_is_better(decide)
    best = max(c.metrics[decide].mean if better else -c.metrics[decide].mean for c in scored)
    beats = best - (level if better else -level) > _TINY
    accs = [c.metrics["val_acc"].mean for c in cands if "val_acc" in c.metrics]
    beats_acc = level_acc is not None and bool(accs) and max(accs) - level_acc > _TINY
    base = cands[0]
    overconfident = (
        decide.endswith("_loss")
        and base.metrics[decide].mean - level > _TINY
        and level_acc is not None
        and "val_acc" in base.metrics
        and base.metrics["val_acc"].mean - level_acc > _TINY
    )
    return beats or beats_acc, overconfident
