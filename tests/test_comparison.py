"""Tests for regsearch.comparison on hand-made final-phase frames.

Expected p-values and intervals are computed here from closed forms, not from scipy: with
df = 2 the two-sided t p-value is 1 − |t|/√(2 + t²), with df = 1 it is 1 − (2/π)·atan|t|, and
the 97.5% t quantiles are the textbook 12.7062 (df 1), 4.3027 (df 2) and 2.7764 (df 4).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regsearch.comparison import (
    Difference,
    compare,
    format_estimate,
    format_p,
    higher_is_better,
    mean_ci,
    paired_difference,
)

T975 = {1: 12.706204736174707, 2: 4.302652729911275, 4: 2.7764451051977987}
PARAMS = {"baseline": {}, "none": {}, "dropout": {"dropout": 0.3}, "l1": {"l1": 0.01}}
PARAMS |= {"l2": {"l2": 0.001}, "batchnorm": {"batch_norm": True}}


def p_df2(t: float) -> float:
    return 1 - abs(t) / math.sqrt(2 + t * t)


def p_df1(t: float) -> float:
    return 1 - 2 / math.pi * math.atan(abs(t))


def make_final(
    spec: dict[str, dict[str, list[float]]], kind: str = "classification"
) -> pd.DataFrame:
    """Final-phase rows: per candidate, per seed, the given gap/val/test (train = val + gap).

    A NaN gap makes that member a failed one (no metrics), as the engines report it.
    """
    rows: list[dict[str, Any]] = []
    for trial, (name, cols) in enumerate(spec.items()):
        n = len(cols["gap"])
        val = cols.get("val", [0.8] * n)
        test = cols.get("test", [0.8] * n)
        for i in range(n):
            row: dict[str, Any] = {
                "trial": trial,
                "seed": 1000 + i,
                "state": "complete",
                "family": name,
                "phase": "final",
                "dropout": np.nan,
                "l1": np.nan,
                "l2": np.nan,
                "batch_norm": np.nan,
                **PARAMS.get(name, {}),
            }
            gap = cols["gap"][i]
            if math.isnan(gap):
                row["state"] = "failed"
            elif kind == "classification":
                row |= {"gap_acc": gap, "val_acc": val[i], "test_acc": test[i]}
                row |= {"train_acc": val[i] + gap, "gap_loss": gap / 2}
                row |= {"val_loss": 1 - val[i], "test_loss": 1 - test[i]}
                row["train_loss"] = 1 - val[i] - gap / 2
            else:
                row |= {"gap_loss": gap, "val_loss": val[i], "test_loss": test[i]}
                row["train_loss"] = val[i] - gap
            rows.append(row)
    return pd.DataFrame(rows)


BASE3 = {"gap": [0.20, 0.22, 0.24]}


@pytest.mark.parametrize(
    ("spec", "winner", "conclusive", "fragments"),
    [
        pytest.param(
            {"baseline": BASE3, "dropout": {"gap": [0.09, 0.10, 0.11], "test": [0.82] * 3}},
            "dropout",
            True,
            [
                "dropout (dropout=0.3) cut the accuracy gap from 0.22 to 0.1 "
                "(paired t, p=0.0023, 3 seeds); test accuracy +0.02."
            ],
            id="strong",
        ),
        pytest.param(
            {"baseline": BASE3, "dropout": {"gap": [0.10, 0.02, -0.06]}},
            "dropout",
            False,
            ["Weak evidence: dropout", "not significant", "p=0.074", "3 seeds"],
            id="weak-p",
        ),
        pytest.param(
            {"baseline": {"gap": [0.2, 0.3]}, "dropout": {"gap": [0.099, 0.201]}},
            "dropout",
            False,
            ["Weak evidence", "only 2 seeds", "p=0.0064"],
            id="significant-but-2-seeds",
        ),
        pytest.param(
            {"baseline": {"gap": [0.2]}, "dropout": {"gap": [0.1]}},
            "dropout",
            False,
            ["Weak evidence", "single seed", "no confidence interval"],
            id="one-seed",
        ),
        pytest.param(
            {
                "baseline": BASE3,
                "l1": {"gap": [0.05, 0.06, 0.07], "val": [0.75, 0.74, 0.73]},
                "l2": {"gap": [0.09, 0.10, 0.11]},
            },
            "l2",
            True,
            ["l2 (l2=0.001) cut the accuracy gap"],
            id="val-worse-excluded",
        ),
        pytest.param(
            {"baseline": BASE3, "l1": {"gap": [0.25, 0.26, 0.27]}},
            None,
            False,
            ["No candidate cut the accuracy gap below baseline's 0.22", "keep baseline (3 seeds)"],
            id="nothing-helps",
        ),
        pytest.param(
            {"none": BASE3, "l2": {"gap": [0.09, 0.10, 0.11]}},
            "l2",
            True,
            ["l2 (l2=0.001) cut the accuracy gap from 0.22 to 0.1"],
            id="experiment-none",
        ),
        pytest.param(
            {"l2": BASE3, "dropout": {"gap": [0.09, 0.10, 0.11]}},
            None,
            False,
            [
                "No unregularized candidate",
                "smallest accuracy gap was dropout's (dropout=0.3): 0.1",
            ],
            id="no-baseline",
        ),
        pytest.param(
            {"baseline": BASE3},
            None,
            False,
            ["Only baseline finished"],
            id="baseline-only",
        ),
        pytest.param(
            {
                "baseline": {"gap": [0.20, 0.22, 0.24, 0.3]},
                "dropout": {"gap": [0.09, 0.10, 0.11, math.nan]},
            },
            "dropout",
            True,
            ["3 seeds", "1 failed member left out."],
            id="failed-member",
        ),
    ],
)
def test_winner_and_verdict(
    spec: dict[str, dict[str, list[float]]],
    winner: str | None,
    conclusive: bool,
    fragments: list[str],
) -> None:
    result = compare(make_final(spec), "classification")
    assert result is not None
    assert result.winner == winner
    assert result.conclusive is conclusive
    for fragment in fragments:
        assert fragment in result.verdict


def test_strong_case_numbers() -> None:
    spec = {"baseline": BASE3, "dropout": {"gap": [0.09, 0.10, 0.11], "test": [0.82] * 3}}
    result = compare(make_final(spec), "classification")
    assert result is not None and result.baseline == "baseline"
    base = result.candidate("baseline")
    assert base.vs_baseline == {} and base.n_seeds == 3
    # baseline gap: mean 0.22, s.d. 0.02 → half-width 4.3027 · 0.02/√3
    assert base.metrics["gap_acc"].mean == pytest.approx(0.22)
    assert base.metrics["gap_acc"].half_width == pytest.approx(T975[2] * 0.02 / math.sqrt(3))
    diff = result.candidate("dropout").vs_baseline["gap_acc"]
    t = -0.12 / (0.01 / math.sqrt(3))
    assert diff.mean == pytest.approx(-0.12)
    assert diff.p_value == pytest.approx(p_df2(t), rel=1e-6)
    assert (diff.low, diff.high) == pytest.approx(
        (-0.12 - T975[2] * 0.01 / math.sqrt(3), -0.12 + T975[2] * 0.01 / math.sqrt(3))
    )
    test = result.candidate("dropout").vs_baseline["test_acc"]
    assert test.mean == pytest.approx(0.02) and test.p_value == 0.0  # constant shift
    val = result.candidate("dropout").vs_baseline["val_acc"]
    assert val.mean == 0.0 and val.p_value == 1.0  # identical on every seed
    assert result.candidate("dropout").params == {"dropout": 0.3}
    assert result.candidate("baseline").params_text == "unregularized"


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


def test_paired_difference_pairs_on_seed() -> None:
    cand = pd.Series([0.3, 0.4], index=[1001, 1002])
    base = pd.Series([0.9, 0.1, 0.2], index=[1000, 1001, 1002])
    diff = paired_difference(cand, base)
    assert diff is not None and diff.n == 2 and diff.mean == pytest.approx(0.2)
    assert paired_difference(pd.Series([1.0], index=[5]), pd.Series([1.0], index=[6])) is None


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


def test_no_final_rows_gives_none() -> None:
    tune = make_final({"baseline": BASE3}).assign(phase="tune")
    assert compare(tune, "classification") is None
    assert compare(pd.DataFrame(), "regression") is None


def test_regression_uses_loss() -> None:
    spec = {
        "baseline": {"gap": [0.30, 0.32, 0.34], "val": [0.5, 0.5, 0.5]},
        "l2": {"gap": [0.10, 0.11, 0.12], "val": [0.45, 0.46, 0.47]},
    }
    result = compare(make_final(spec, "regression"), "regression")
    assert result is not None and result.basis == "loss"
    assert result.winner == "l2"
    assert "cut the loss gap from 0.32 to 0.11" in result.verdict
    assert "test loss unchanged" in result.verdict
    assert "gap_acc" not in result.candidate("l2").metrics


def test_classification_can_use_loss_basis() -> None:
    spec = {"baseline": BASE3, "dropout": {"gap": [0.09, 0.10, 0.11]}}
    result = compare(make_final(spec), "classification", basis="loss")
    assert result is not None and result.basis == "loss" and "loss gap" in result.verdict


def test_rejects_bad_kind_and_missing_basis() -> None:
    frame = make_final({"baseline": BASE3}, "regression")
    with pytest.raises(ValueError, match="kind"):
        compare(frame, "ranking")
    with pytest.raises(ValueError, match="gap_acc"):
        compare(frame, "regression", basis="acc")


def test_test_numbers_never_choose() -> None:
    # dropout has the better test accuracy, but l2 cuts the gap more: l2 wins.
    spec = {
        "baseline": BASE3,
        "l2": {"gap": [0.05, 0.06, 0.07], "test": [0.70] * 3},
        "dropout": {"gap": [0.15, 0.16, 0.17], "test": [0.95] * 3},
    }
    result = compare(make_final(spec), "classification")
    assert result is not None and result.winner == "l2"


def test_params_survive_csv_round_trip(tmp_path: Any) -> None:
    spec = {"baseline": BASE3, "batchnorm": {"gap": [0.09, 0.10, 0.11]}}
    make_final(spec).to_csv(tmp_path / "t.csv", index=False)
    result = compare(pd.read_csv(tmp_path / "t.csv"), "classification")
    assert result is not None
    assert result.candidate("batchnorm").params == {"batch_norm": True}
    with pytest.raises(KeyError, match="nope"):
        result.candidate("nope")


@pytest.mark.parametrize(
    ("p", "text"), [(0.0371, "p=0.037"), (2e-5, "p<0.001"), (None, ""), (math.nan, "")]
)
def test_format_p(p: float | None, text: str) -> None:
    assert format_p(p) == text


def test_format_estimate() -> None:
    assert format_estimate(mean_ci([0.8, 0.82, 0.84])) == "0.82 ± 0.05"
    assert format_estimate(mean_ci([0.8])) == "0.8"
    assert format_estimate(None) == ""


@pytest.mark.parametrize(
    ("metric", "higher"),
    [("val_acc", True), ("test_acc", True), ("gap_acc", False), ("val_loss", False)],
)
def test_higher_is_better(metric: str, higher: bool) -> None:
    assert higher_is_better(metric) is higher
