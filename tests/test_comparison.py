"""Tests for regsearch.comparison on hand-made final-phase frames (no training).

Expected p-values and intervals come from closed forms, not from scipy: with df = 2 the
two-sided t p-value is 1 − |t|/√(2 + t²), with df = 1 it is 1 − (2/π)·atan|t|, and the 97.5%
t quantiles are the textbook 12.7062 (df 1), 4.3027 (df 2) and 2.7764 (df 4).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regsearch.comparison import (
    CANDIDATE_RULES,
    CORRECTED_T,
    PAIRED_T,
    Difference,
    compare,
    confirm_on_test,
    decision_metric,
    diagnose,
    direction,
    format_effect,
    format_estimate,
    format_p,
    higher_is_better,
    holm,
    mean_ci,
    paired_difference,
    probability_of_improvement,
)
from regsearch.comparison.ranges import SearchRange, ranges_from_summary

T975 = {1: 12.706204736174707, 2: 4.302652729911275, 4: 2.7764451051977987}
PARAMS = {"baseline": {}, "none": {}, "dropout": {"dropout": 0.3}, "l1": {"l1": 0.01}}
PARAMS |= {"l2": {"l2": 0.001}, "batchnorm": {"batch_norm": True}, "wd": {"wd": 0.01}}
Spec = dict[str, dict[str, list[float]]]


def p_df2(t: float) -> float:
    return 1 - abs(t) / math.sqrt(2 + t * t)


def p_df1(t: float) -> float:
    return 1 - 2 / math.pi * math.atan(abs(t))


def _row(trial: int, name: str, seed: int, fold: int) -> dict[str, Any]:
    row: dict[str, Any] = {"trial": trial, "seed": seed, "fold": fold, "state": "complete"}
    row |= {"family": name, "phase": "final", "dropout": np.nan, "l1": np.nan, "l2": np.nan}
    return row | {"batch_norm": np.nan, "wd": np.nan, **PARAMS.get(name, {})}


def make_final(spec: Spec, folds: int = 0, fold_column: bool = True) -> pd.DataFrame:
    """Final rows of a regression sweep (losses): per candidate ``val`` and ``train`` lists.

    Holdout (``folds=0``): one value per seed, ``test`` per seed (default = val), fold -1.
    Cross-validation: ``val``/``train`` run seed-major over ``folds`` folds, plus one refit
    row per seed carrying ``test``; the fold rows get a test loss of 99 that must be ignored.
    A NaN val makes that member a failed one (no metrics), as the engines report it.
    """
    rows: list[dict[str, Any]] = []
    for trial, (name, cols) in enumerate(spec.items()):
        val, train = cols["val"], cols.get("train", [0.2] * len(cols["val"]))
        per_seed = max(folds, 1)
        n_seeds = len(val) // per_seed
        test = cols.get("test", val if not folds else [0.5] * n_seeds)
        for i, (v, t) in enumerate(zip(val, train, strict=True)):
            seed, fold = 100 + i // per_seed, (i % folds if folds else -1)
            row = _row(trial, name, seed, fold)
            if math.isnan(v):
                row["state"] = "failed"
            else:
                row |= {"val_loss": v, "train_loss": t, "gap_loss": v - t}
                row["test_loss"] = 99.0 if folds else test[i]
            rows.append(row)
        if folds:
            for s in range(n_seeds):
                refit = _row(trial, name, 100 + s, -1) | {"train_loss": 0.2}
                rows.append(refit | {"val_loss": np.nan, "gap_loss": np.nan, "test_loss": test[s]})
    frame = pd.DataFrame(rows)
    return frame if fold_column else frame.drop(columns="fold")


BASE = [0.50, 0.52, 0.54, 0.51, 0.53]
GOOD = [0.45, 0.46, 0.50, 0.46, 0.47]  # val better on every seed
# Smaller gap because training fits worse (train up 0.25), validation slightly worse.
UNDERFIT = {"val": [0.52, 0.53, 0.56, 0.52, 0.55], "train": [0.45] * 5}


def run(spec: Spec, **kwargs: Any) -> Any:
    result = compare(make_final(spec, kwargs.pop("folds", 0)), "regression", **kwargs)
    assert result is not None
    return result


# --- the winner rule --------------------------------------------------------------------------


def test_clear_winner_sentence_and_numbers() -> None:
    result = run({"baseline": {"val": BASE}, "dropout": {"val": GOOD}})
    assert result.winner == "dropout" and result.conclusive and result.method == PAIRED_T
    win = result.candidate("dropout")
    diff = win.vs_baseline["val_loss"]
    d = np.array(GOOD) - np.array(BASE)
    half = T975[4] * d.std(ddof=1) / math.sqrt(5)
    assert diff.mean == pytest.approx(d.mean())
    assert (diff.low, diff.high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert win.p_adjusted == pytest.approx(diff.p_value)  # one candidate: no adjustment
    assert win.p_improve == 1.0 and win.diagnosis == "generalizes better"
    assert win.test is not None and win.test.status == "agrees"
    assert result.tier == "clear" and result.recommended == "dropout"
    assert win.standing == "clear" and win.posterior is not None and win.posterior.better > 0.99
    assert result.verdict == (
        f"Clear winner: dropout (dropout=0.3) beat baseline on val_loss by {format_effect(diff)} "
        f"(max-t-adjusted {format_p(diff.p_value)}, paired t, 5 paired seeds); "
        f"gap {d.mean():+.2g} (generalizes better); test agrees (test_loss {format_effect(diff)})."
    )


def test_underfitting_candidate_never_wins_and_is_labelled() -> None:
    spec = {"baseline": {"val": BASE}, "l1": UNDERFIT, "dropout": {"val": GOOD}}
    result = run(spec)
    under = result.candidate("l1")
    assert under.vs_baseline["gap_loss"].mean < -0.2  # by far the smallest gap ...
    assert under.diagnosis == "closes the gap by fitting worse"  # ... bought by fitting worse
    assert result.winner == "dropout"
    alone = run({"baseline": {"val": BASE}, "l1": UNDERFIT})
    assert alone.winner is None and alone.closest == "l1" and alone.recommended is None
    assert alone.candidate("l1").standing == "worse" and alone.tier == "equivalent"
    assert alone.verdict.startswith("Keep baseline: no regularizer improves val_loss by more than")
    assert "(closes the gap by fitting worse)" in alone.verdict


HOLM = CANDIDATE_RULES["holm, clear only"]


def test_holm_turns_a_borderline_winner_into_no_winner() -> None:
    # l2's raw p is just under 0.05; with two more candidates Holm multiplies it by 3.
    border = [b + d for b, d in zip(BASE, [-0.01, -0.02, 0.0, -0.015, -0.005], strict=True)]
    spec = {
        "baseline": {"val": BASE},
        "l2": {"val": border},
        "l1": {"val": [b + e for b, e in zip(BASE, [0.02, -0.03, 0.01, 0.0, -0.01], strict=True)]},
        "wd": {"val": [b + e for b, e in zip(BASE, [-0.02, 0.03, 0.0, 0.01, 0.0], strict=True)]},
    }
    result = run(spec, rule=HOLM)
    raw = result.candidate("l2").vs_baseline["val_loss"].p_value
    assert 0.03 < raw < 0.05
    adjusted = holm(
        [result.candidate(n).vs_baseline["val_loss"].p_value for n in ("l2", "l1", "wd")]
    )
    assert result.candidate("l2").p_adjusted == pytest.approx(adjusted[0])
    assert adjusted[0] == pytest.approx(3 * raw)  # smallest of three
    assert result.winner is None and result.closest == "l2" and not result.conclusive
    assert result.tier == "undecided" and result.recommended is None  # no likely tier in HOLM
    diff = result.candidate("l2").vs_baseline["val_loss"]
    assert result.verdict.startswith("Undecided: no regularizer is clearly better than baseline")
    assert (
        f"Most promising: l2 (l2=0.001), val_loss {format_effect(diff)} (P(better) = "
        in result.verdict
    )
    assert f"Holm-adjusted {format_p(adjusted[0])}, paired t, 5 paired seeds" in result.verdict
    # Alone, the same candidate wins: the multiple-test correction made the difference.
    assert run({"baseline": {"val": BASE}, "l2": {"val": border}}, rule=HOLM).winner == "l2"


def test_test_disagreement_is_reported_and_never_chooses() -> None:
    worse_test = [b + 0.05 for b in BASE]
    result = run({"baseline": {"val": BASE}, "dropout": {"val": GOOD, "test": worse_test}})
    assert result.winner == "dropout"  # validation decides
    check = result.candidate("dropout").test
    assert check is not None and check.status == "disagrees" and check.metric == "test_loss"
    assert "test disagrees (test_loss +0.05 [+0.05, +0.05])" in result.verdict


def test_test_not_available_without_test_rows() -> None:
    frame = make_final({"baseline": {"val": BASE}, "dropout": {"val": GOOD}})
    result = compare(frame.assign(test_loss=np.nan), "regression")
    assert result is not None and result.winner == "dropout"
    assert "test not available" in result.verdict
    assert result.candidate("dropout").test.status == "not available"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("spec", "winner", "fragments"),
    [
        pytest.param(
            {"baseline": {"val": [0.5, 0.6]}, "dropout": {"val": [0.4, 0.499]}},
            "dropout",
            ["Likely better: dropout", "2 paired seeds", "Only 2 pairs"],
            id="significant-but-2-pairs",
        ),
        pytest.param(
            {"baseline": {"val": [0.5]}, "dropout": {"val": [0.4]}},
            None,
            ["Undecided: no regularizer", "no test with a single pair", "weak evidence either way"],
            id="one-pair",
        ),
        pytest.param(
            {"l2": {"val": BASE}, "dropout": {"val": GOOD}},
            None,
            ["No unregularized candidate", "best val_loss was dropout's (dropout=0.3): 0.47"],
            id="no-baseline",
        ),
        pytest.param({"baseline": {"val": BASE}}, None, ["Only baseline finished"], id="alone"),
        pytest.param(
            {"none": {"val": BASE}, "l2": {"val": GOOD}},
            "l2",
            ["Clear winner: l2 (l2=0.001) beat none on val_loss"],
            id="experiment-none",
        ),
        pytest.param(
            {"baseline": {"val": [*BASE, 0.6]}, "dropout": {"val": [*GOOD, math.nan]}},
            "dropout",
            ["5 paired seeds", "1 failed member left out."],
            id="failed-member",
        ),
    ],
)
def test_verdict_cases(spec: Spec, winner: str | None, fragments: list[str]) -> None:
    result = run(spec)
    assert result.winner == winner
    assert not (result.conclusive and len(next(iter(spec.values()))["val"]) < 3)
    for fragment in fragments:
        assert fragment in result.verdict


# --- folds and the corrected resampled t-test ---------------------------------------------------


def test_corrected_t_is_wider_and_matches_hand_computation() -> None:
    # One seed × three folds: J = 3 pairs, df 2, n_val/n_train = 1/(3 − 1).
    d = np.array([-0.04, -0.02, -0.03])
    base = pd.Series([0.50, 0.52, 0.51])
    cand = base + d
    plain = paired_difference(cand, base)
    corrected = paired_difference(cand, base, val_train_ratio=0.5)
    assert plain is not None and corrected is not None
    se = d.std(ddof=1) * math.sqrt(1 / 3 + 0.5)
    assert corrected.p_value == pytest.approx(p_df2(d.mean() / se), rel=1e-9)
    assert corrected.high is not None and plain.p_value is not None
    assert corrected.high - corrected.mean == pytest.approx(T975[2] * se)
    assert plain.p_value == pytest.approx(p_df2(d.mean() / (d.std(ddof=1) / math.sqrt(3))))
    assert corrected.p_value is not None and corrected.p_value > plain.p_value
    assert corrected.method == CORRECTED_T


def test_cross_validation_layout() -> None:
    base = [0.50, 0.52, 0.51, 0.53, 0.49, 0.52]  # 2 seeds × 3 folds
    good = [v - 0.03 + e for v, e in zip(base, [0, 0.01, -0.01, 0.005, 0, -0.005], strict=True)]
    spec = {
        "baseline": {"val": base, "test": [0.50, 0.51]},
        "dropout": {"val": good, "test": [0.52, 0.53]},  # refit test worse: disagrees
    }
    result = run(spec, folds=3, metric="val_loss", cv={"folds": 3, "n_train": 80, "n_val": 40})
    assert result.method == CORRECTED_T and result.val_train_ratio == 0.5
    assert result.folds == (0, 1, 2) and result.seeds == (100, 101)
    dropout = result.candidate("dropout")
    assert dropout.n_pairs == 6 and dropout.n_seeds == 2 and dropout.n_failed == 0
    d = np.array(good) - np.array(base)
    se = d.std(ddof=1) * math.sqrt(1 / 6 + 0.5)
    assert dropout.vs_baseline["val_loss"].high == pytest.approx(d.mean() + 2.5705818 * se)
    # Test numbers come from the refit rows only (the fold rows' 99 is ignored), paired on seed.
    assert dropout.metrics["test_loss"].mean == pytest.approx(0.525)
    assert dropout.vs_baseline["test_loss"].n == 2 and dropout.test.status == "disagrees"
    # Intervals of the metrics are over seeds: folds are averaged within a seed first.
    seed_means = [np.mean(good[:3]), np.mean(good[3:])]
    assert dropout.metrics["val_loss"].n == 2
    assert dropout.metrics["val_loss"].mean == pytest.approx(np.mean(seed_means))
    assert "seed×fold pairs" in result.verdict and "corrected resampled t" in result.verdict
    assert "n_val/n_train = 0.5" in result.rule


def test_folds_without_sizes_use_one_over_k_minus_one() -> None:
    base = [0.50, 0.52, 0.51, 0.53, 0.49, 0.52, 0.5, 0.51]
    result = run({"baseline": {"val": base}, "l2": {"val": [v - 0.01 for v in base]}}, folds=4)
    assert result.val_train_ratio == pytest.approx(1 / 3)


def test_old_frames_without_fold_load_as_holdout() -> None:
    spec = {"baseline": {"val": BASE}, "dropout": {"val": GOOD}}
    result = compare(make_final(spec, fold_column=False), "regression")
    assert result is not None and result.method == PAIRED_T and result.folds == (-1,)
    assert result.winner == "dropout"


# --- decision metric, learnability ----------------------------------------------------------


def test_gap_objective_is_decided_on_val_loss_and_says_so() -> None:
    result = run({"baseline": {"val": BASE}, "l1": UNDERFIT}, metric="gap_loss")
    assert result.metric == "val_loss" and result.objective == "gap_loss"
    assert result.winner is None  # the smallest gap does not win
    assert (
        "the sweep optimized gap_loss" in result.rule and "validation loss decides" in result.rule
    )


def test_classification_on_val_acc() -> None:
    frame = make_final({"baseline": {"val": BASE}, "dropout": {"val": GOOD}})
    frame = frame.assign(val_acc=1 - frame["val_loss"], train_acc=0.95, test_acc=0.7)
    frame["gap_acc"] = frame["train_acc"] - frame["val_acc"]
    result = compare(frame, "classification", metric="val_acc")
    assert result is not None and result.metric == "val_acc" and result.winner == "dropout"
    assert result.candidate("dropout").vs_baseline["val_acc"].mean > 0
    assert result.candidate("dropout").p_improve == 1.0
    assert "test too small to tell (test_acc 0 [0, 0])" in result.verdict  # identical test


@pytest.mark.parametrize(
    ("constant", "learnable"),
    [({"val_loss": 0.45}, False), ({"val_loss": 0.49}, True), (None, True)],
)
def test_constant_predictor_line(constant: dict[str, float] | None, learnable: bool) -> None:
    # The best candidate (dropout, val_loss ≈ 0.468) decides whether anything was learnt.
    result = run({"baseline": {"val": BASE}, "dropout": {"val": GOOD}}, constant=constant)
    assert result.learnable is learnable
    first = result.verdict.splitlines()[0]
    if learnable:
        assert first.startswith("Clear winner: dropout (dropout=0.3) beat baseline")
        assert result.conclusive and result.recommended == "dropout"
    else:
        assert first == (
            "No candidate beats a constant predictor (val_loss 0.45 for predicting the "
            "training mean or majority class): the verdict below ranks the regularizers, but "
            "none of these models is useful yet (train longer, or widen the ranges)."
        )
        # The regularizer question is still answered (the d2l weight-decay case), not tested.
        second = result.verdict.splitlines()[1]
        assert second.startswith("Clear winner: dropout") and result.recommended == "dropout"
        assert not result.conclusive


def test_overconfident_baseline_is_flagged_and_the_verdict_goes_on() -> None:
    # Log loss above the constant's (0.49) while accuracy far above its 0.5: overconfidence.
    frame = make_final({"baseline": {"val": BASE}, "dropout": {"val": GOOD}})
    frame = frame.assign(val_acc=0.7, train_acc=1.0, gap_acc=0.3, test_acc=0.7)
    constant = {"val_loss": 0.45, "val_acc": 0.5}
    result = compare(frame, "classification", constant=constant)
    assert result is not None and result.learnable and result.overconfident
    first, second = result.verdict.splitlines()
    assert first.startswith("The baseline is overconfident: its val_loss 0.52 is worse than a")
    assert "val_acc 0.7 beats the constant's 0.5" in first
    assert second.startswith("Clear winner: dropout") and result.recommended == "dropout"


def test_no_final_rows_gives_none() -> None:
    tune = make_final({"baseline": {"val": BASE}}).assign(phase="tune")
    assert compare(tune, "regression") is None
    assert compare(pd.DataFrame(), "regression") is None


def test_rejects_bad_arguments() -> None:
    frame = make_final({"baseline": {"val": BASE}})
    with pytest.raises(ValueError, match="kind"):
        compare(frame, "ranking")
    with pytest.raises(ValueError, match="metric"):
        compare(frame, "regression", metric="test_loss")
    with pytest.raises(ValueError, match="train_acc"):
        compare(frame, "regression", metric="val_acc")
    with pytest.raises(ValueError, match="alpha"):
        compare(frame, "regression", alpha=5)


def test_params_survive_csv_round_trip(tmp_path: Any) -> None:
    make_final({"baseline": {"val": BASE}, "batchnorm": {"val": GOOD}}).to_csv(
        tmp_path / "t.csv", index=False
    )
    result = compare(pd.read_csv(tmp_path / "t.csv"), "regression")
    assert result is not None
    assert result.candidate("batchnorm").params == {"batch_norm": True}
    assert result.candidate("baseline").params_text == "unregularized"
    with pytest.raises(KeyError, match="nope"):
        result.candidate("nope")


# --- the pieces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("d_train", "d_val", "d_gap", "trend", "label"),
    [
        (-1, 0, 1, 0, "closes the gap by fitting worse"),
        (-1, 0, 1, -1, "closes the gap by fitting worse"),
        (-1, -1, 1, -1, "closes the gap by fitting worse"),
        (-1, 0, 1, 1, "closes the gap, validation gain not significant"),
        (0, 1, 1, 1, "generalizes better"),
        (-1, 1, 1, 1, "generalizes better"),  # validation decides even when training got worse
        (1, 0, -1, 0, "overfits more"),
        (0, -1, -1, -1, "overfits more"),
        (0, -1, 0, -1, "generalizes worse"),
        (0, 0, 1, 1, "no clear change"),
        (0, 0, 0, 0, "no clear change"),
    ],
)
def test_diagnose_table(d_train: int, d_val: int, d_gap: int, trend: int, label: str) -> None:
    assert diagnose(d_train, d_val, d_gap, trend) == label


@pytest.mark.parametrize(
    ("diff", "metric", "p", "expected"),
    [
        (Difference(-0.1, -0.2, -0.05, 0.01, 5), "val_loss", None, 1),
        (Difference(-0.1, -0.2, -0.05, 0.01, 5), "val_acc", None, -1),
        (Difference(-0.1, -0.2, -0.05, 0.01, 5), "gap_acc", None, 1),  # smaller gap is better
        (Difference(-0.1, -0.2, -0.05, 0.01, 5), "val_loss", 0.06, 0),  # adjusted p overrides
        (Difference(-0.1, None, None, None, 1), "val_loss", None, 0),  # one pair: no test
        (None, "val_loss", None, 0),
    ],
)
def test_direction(diff: Difference | None, metric: str, p: float | None, expected: int) -> None:
    assert direction(diff, metric, 0.05, p=p) == expected


@pytest.mark.parametrize(
    ("p_values", "expected"),
    [
        ([0.01, 0.04, 0.03], [0.03, 0.06, 0.06]),
        ([0.04, 0.3, 0.02], [0.08, 0.3, 0.06]),
        ([0.5, 0.6], [1.0, 1.0]),  # capped at 1
        ([0.02], [0.02]),
        ([0.2, None], [0.4, None]),  # None counts in m but stays None
        ([], []),
    ],
)
def test_holm(p_values: list[float | None], expected: list[float | None]) -> None:
    assert holm(p_values) == pytest.approx(expected)


def test_probability_of_improvement_counts_ties_half() -> None:
    cand = pd.Series([0.3, 0.2, 0.5, 0.1], index=[1, 2, 3, 4])
    base = pd.Series([0.4, 0.2, 0.4, 0.2, 9.9], index=[1, 2, 3, 4, 5])  # seed 5 unpaired
    assert probability_of_improvement(cand, base, higher_is_better=False) == 2.5 / 4
    assert probability_of_improvement(cand, base, higher_is_better=True) == 1.5 / 4
    assert probability_of_improvement(cand, pd.Series([1.0], index=[9]), False) is None


def test_probability_of_improvement_in_compare() -> None:
    mixed = [0.49, 0.53, 0.53, 0.50, 0.53]  # better, worse, better, better, tie
    result = run({"baseline": {"val": BASE}, "l2": {"val": mixed}})
    assert result.candidate("l2").p_improve == pytest.approx(3.5 / 5)


@pytest.mark.parametrize(
    ("val", "test", "margin", "status"),
    [
        (-0.04, -0.03, 0.0, "agrees"),
        (-0.04, 0.03, 0.0, "disagrees"),
        (0.02, 0.03, 0.0, "agrees"),  # worse on both
        (-0.04, -0.005, 0.0, "too small to tell"),  # interval [-0.015, 0.005] holds 0
        (-0.04, 0.0005, 0.0, "too small to tell"),
        (-0.04, 0.03, 0.05, "too small to tell"),  # clear of 0 but inside the margin
        (-0.04, None, 0.0, "not available"),
    ],
)
def test_confirm_on_test(val: float, test: float | None, margin: float, status: str) -> None:
    def diff(mean: float) -> Difference:
        return Difference(mean, mean - 0.01, mean + 0.01, 0.01, 5)

    check = confirm_on_test(diff(val), None if test is None else diff(test), "loss", margin)
    assert check.status == status and check.metric == "test_loss"


@pytest.mark.parametrize(
    ("objective", "decides"),
    [("val_loss", "val_loss"), ("val_acc", "val_acc"), ("gap_acc", "val_loss"), (None, "val_loss")],
)
def test_decision_metric(objective: str | None, decides: str) -> None:
    assert decision_metric(objective) == decides


@pytest.mark.parametrize(
    ("candidate", "baseline", "mean", "p", "n"),
    [
        ([0.1, 0.2, 0.3], [0.2, 0.4, 0.6], -0.2, p_df2(-0.2 / (0.1 / math.sqrt(3))), 3),
        ([0.0, 0.0], [0.1, 0.3], -0.2, p_df1(-0.2 / 0.1), 2),
        ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5], 0.0, 1.0, 3),
        ([0.6, 0.7, 0.8], [0.5, 0.6, 0.7], 0.1, 0.0, 3),
        ([0.3, math.nan, 0.5], [0.1, 0.2, 0.2], 0.25, p_df1(0.25 / 0.05), 2),
        ([0.3], [0.1], 0.2, None, 1),
    ],
)
def test_paired_difference(
    candidate: list[float], baseline: list[float], mean: float, p: float | None, n: int
) -> None:
    diff = paired_difference(pd.Series(candidate), pd.Series(baseline))
    assert isinstance(diff, Difference)
    assert diff.n == n
    assert diff.mean == pytest.approx(mean)
    if p is None:
        assert diff.p_value is None and diff.low is None and diff.high is None
    else:
        assert diff.p_value == pytest.approx(p, rel=1e-6, abs=1e-12)


def test_paired_difference_pairs_on_the_index() -> None:
    cand = pd.Series([0.3, 0.4], index=pd.MultiIndex.from_tuples([(1, 0), (1, 1)]))
    base = pd.Series([0.9, 0.1, 0.2], index=pd.MultiIndex.from_tuples([(0, 0), (1, 0), (1, 1)]))
    diff = paired_difference(cand, base)
    assert diff is not None and diff.n == 2 and diff.mean == pytest.approx(0.2)
    assert paired_difference(pd.Series([1.0], index=[5]), pd.Series([1.0], index=[6])) is None
    with pytest.raises(ValueError, match="val_train_ratio"):
        paired_difference(cand, base, val_train_ratio=-1)


@pytest.mark.parametrize(
    ("values", "mean", "half"),
    [
        ([1.0, 2.0, 3.0], 2.0, T975[2] * 1.0 / math.sqrt(3)),
        ([0.8, 0.9], 0.85, T975[1] * math.sqrt(0.005) / math.sqrt(2)),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 3.0, T975[4] * math.sqrt(2.5) / math.sqrt(5)),
        ([0.7, math.nan], 0.7, None),
    ],
)
def test_mean_ci(values: list[float], mean: float, half: float | None) -> None:
    est = mean_ci(values)
    assert est.mean == pytest.approx(mean)
    assert est.half_width == (None if half is None else pytest.approx(half))


def test_mean_ci_rejects_empty_and_bad_confidence() -> None:
    with pytest.raises(ValueError, match="finite"):
        mean_ci([math.nan])
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([1.0, 2.0], confidence=95)


@pytest.mark.parametrize(
    ("p", "text"), [(0.0371, "p=0.037"), (2e-5, "p<0.001"), (None, ""), (math.nan, "")]
)
def test_format_p(p: float | None, text: str) -> None:
    assert format_p(p) == text


def test_format_estimate_and_effect() -> None:
    assert format_estimate(mean_ci([0.8, 0.82, 0.84])) == "0.82 ± 0.05"
    assert format_estimate(mean_ci([0.8])) == "0.8"
    assert format_estimate(None) == ""
    assert format_effect(Difference(-0.041, -0.0603, -0.0221, 0.003, 5)) == "-0.041 [-0.06, -0.022]"
    assert format_effect(Difference(0.1, None, None, None, 1)) == "+0.1"


@pytest.mark.parametrize(
    ("metric", "higher"),
    [("val_acc", True), ("test_acc", True), ("gap_acc", False), ("val_loss", False)],
)
def test_higher_is_better(metric: str, higher: bool) -> None:
    assert higher_is_better(metric) is higher


@pytest.mark.parametrize("n", [2, 3, 7, 40])
def test_paired_t_matches_scipy_stats(n: int) -> None:
    """The t distribution from scipy.special gives scipy.stats' ttest_rel p and t interval."""
    from scipy import stats

    rng = np.random.default_rng(n)
    cand, base = pd.Series(rng.normal(0.3, 0.1, n)), pd.Series(rng.normal(0.35, 0.1, n))
    diff = paired_difference(cand, base)
    assert diff is not None and diff.low is not None and diff.high is not None
    assert diff.p_value == pytest.approx(stats.ttest_rel(cand, base).pvalue, rel=1e-9)
    d = (cand - base).to_numpy()
    low, high = stats.t.interval(0.95, n - 1, loc=d.mean(), scale=stats.sem(d))
    assert (diff.low, diff.high) == pytest.approx((low, high), rel=1e-9)


# --- searched ranges: edges and regularizers effectively off -----------------------------------


def test_a_strength_at_its_off_edge_is_credited_to_the_learning_rate() -> None:
    frame = make_final({"baseline": {"val": BASE}, "l1": {"val": GOOD}, "l2": {"val": GOOD}})
    frame.loc[frame["family"] == "l1", "l1"] = 1.2e-5
    frame.loc[frame["family"] == "l2", "l2"] = 0.9
    frame["lr"] = np.where(frame["family"] == "baseline", 0.021, 0.0064)
    ranges = {
        "baseline": {"lr": SearchRange(0.02, 0.6, True)},
        "l1": {"lr": SearchRange(0.02, 0.6, True), "l1": SearchRange(1e-5, 0.1, True)},
        "l2": {"lr": SearchRange(0.0064, 0.6, True), "l2": SearchRange(1e-4, 1.0, True)},
    }
    result = compare(frame, "regression", ranges=ranges)
    assert result is not None
    l1, l2, base = (result.candidate(n) for n in ("l1", "l2", "baseline"))
    assert l1.off == "l1" and l1.notes[0].startswith("Its l1 sits at the off edge of its range")
    assert "effectively the baseline at lr=0.0064" in l1.notes[0]
    assert "lr=0.0064 sits at the low edge of its range [0.02, 0.6] (widen it)." in l1.notes
    assert (
        l2.off == ""
        and "l2=0.9 sits at the high edge of its range [0.0001, 1] (widen it)." in l2.notes
    )
    assert base.notes == ("lr=0.021 sits at the low edge of its range [0.02, 0.6] (widen it).",)
    # The verdict names the learning rate, not the regularizer, when l1 is the one recommended.
    alone = compare(frame[frame["family"] != "l2"], "regression", ranges=ranges)
    assert alone is not None and alone.recommended == "l1"
    assert alone.verdict.startswith("Clear winner (through the learning rate, not l1): l1 (")
    assert "Its l1 sits at the off edge" in alone.verdict
    parsed = ranges_from_summary({"l1": {"l1": [1e-5, 0.1, True]}})
    assert parsed == {"l1": {"l1": ranges["l1"]["l1"]}}


# --- the graded verdict: one trial table per tier -----------------------------------------------


def _cv_spec(shifts: dict[str, np.ndarray]) -> Spec:
    """5 seeds × 5 folds: the baseline's fold losses plus each candidate's per-pair shift."""
    rng = np.random.default_rng(7)
    base = 0.5 + 0.05 * rng.standard_normal(25)
    return {"baseline": {"val": list(base)}} | {
        name: {"val": list(base + shift)} for name, shift in shifts.items()
    }


CV = {"folds": 5, "n_train": 80, "n_val": 20}  # n_val/n_train = 1/4
_RNG = np.random.default_rng(11)
_NOISE = _RNG.standard_normal((3, 25))


@pytest.mark.parametrize(
    ("shifts", "tier", "recommended", "opening"),
    [
        pytest.param(
            {"l2": 0.03 * _NOISE[0], "l1": 0.03 * _NOISE[1]},
            "undecided",
            None,
            "Undecided: no regularizer is clearly better than baseline on val_loss",
            id="null",
        ),
        pytest.param(
            {"l2": -0.1 + 0.02 * _NOISE[0], "l1": 0.03 * _NOISE[1]},
            "clear",
            "l2",
            "Clear winner: l2 (l2=0.001) beat baseline on val_loss by -0.1",
            id="clear",
        ),
        pytest.param(
            {"l2": -0.05 + 0.05 * _NOISE[0], "l1": 0.03 * _NOISE[1]},
            "likely",
            "l2",
            "Likely better: l2 (l2=0.001), val_loss -0.051",
            id="likely",
        ),
        pytest.param(
            {"l2": 0.0005 * _NOISE[0], "l1": 0.001 + 0.0005 * _NOISE[1]},
            "equivalent",
            None,
            "Keep baseline: no regularizer improves val_loss by more than ±0.0096",
            id="equivalent",
        ),
        pytest.param(
            # Better on 24 of 25 pairs, but one fold's loss explodes (heavy-tailed log loss).
            {"l2": np.where(np.arange(25) == 3, 3.0, -0.05 + 0.01 * _NOISE[0])},
            "undecided",
            None,
            "Undecided: no regularizer is clearly better",
            id="heavy-tail",
        ),
    ],
)
def test_each_tier_from_its_trial_table(
    shifts: dict[str, np.ndarray], tier: str, recommended: str | None, opening: str
) -> None:
    result = run(_cv_spec(shifts), folds=5, cv=CV)
    assert (result.tier, result.recommended) == (tier, recommended), result.verdict
    assert result.verdict.startswith(opening), result.verdict
    if recommended is not None:
        assert result.candidate(recommended).standing == tier
    if tier == "undecided":
        assert result.settle and result.settle in result.verdict


def test_undecided_says_what_would_settle_it() -> None:
    # A real but small effect: more seeds would settle it (the fold term is not yet binding).
    result = run(_cv_spec({"l2": -0.03 + 0.06 * _NOISE[2]}), folds=5, cv=CV)
    assert result.tier in ("undecided", "likely")
    noisy = run(_cv_spec({"l2": -0.035 + 0.05 * _NOISE[2]}), folds=5, cv=CV)
    assert noisy.tier == "undecided", noisy.verdict
    assert noisy.settle.startswith("More seeds cannot settle it at this pool size"), noisy.settle
    assert "search.final_cv=10 cuts the n_val/n_train term from 0.25 to 0.11" in noisy.settle
    hopeless = run(_cv_spec({"l2": -0.03 + 0.1 * _NOISE[2]}), folds=5, cv=CV)
    assert "more data or more folds would." in hopeless.settle  # 10 folds would not do either
    close = run(_cv_spec({"l2": -0.02 + 0.08 * _NOISE[2]}))  # holdout: 25 seeds, no folds
    assert close.tier == "undecided", close.verdict
    assert "final seeds (sweep.final_seeds=" in close.settle
