"""Statistics across data sets on constructed tables: W/T/L, Holm, ranks, Wilcoxon and Friedman
against scipy, the Nemenyi critical difference against Demšar's table, the bootstrap median."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from regsearch.comparison import compare, holm
from regsearch.suite.figures import cliques
from regsearch.suite.stats import (
    RECORD_COLUMNS,
    average_ranks,
    friedman,
    median_interval,
    nemenyi_cd,
    outcome,
    records_frame,
    suite_stats,
    wilcoxon_p,
)
from regsearch.suite.verdict import suite_sentence
from tests.test_comparison import make_final


@pytest.mark.parametrize(
    ("low", "high", "higher_better", "expected"),
    [
        (-0.3, -0.1, False, "win"),  # loss went down: better
        (0.1, 0.3, False, "loss"),
        (-0.1, 0.2, False, "tie"),  # the interval includes 0
        (0.0, 0.2, False, "tie"),  # touching 0 is including it
        (0.01, 0.02, True, "win"),  # accuracy went up
        (-0.02, -0.01, True, "loss"),
        (math.nan, math.nan, False, "tie"),  # one pair: no interval, nothing shown
    ],
)
def test_outcome(low: float, high: float, higher_better: bool, expected: str) -> None:
    assert outcome(low, high, higher_better) == expected


def records(
    effects: dict[str, list[tuple[float, float, float]]], base: list[float]
) -> pd.DataFrame:
    """A records table: per family, per data set (effect, low, high); baseline means ``base``."""
    rows = []
    for d, mean in enumerate(base):
        rows.append({"dataset": f"d{d}", "candidate": "baseline", "baseline": True, "mean": mean})
        for fam, cells in effects.items():
            eff, low, high = cells[d]
            rows.append(
                {"dataset": f"d{d}", "candidate": fam, "baseline": False, "mean": mean + eff}
                | {"effect": eff, "low": low, "high": high}
            )
    frame = pd.DataFrame(rows)
    frame["metric"], frame["learnable"], frame["winner"] = "val_loss", True, False
    for col in ("p_holm", "n_pairs", "test_effect"):
        frame[col] = np.nan
    # Each data set's own verdict: "good" recommended (likely) where its interval excludes 0.
    frame["standing"] = np.where(frame["baseline"], "baseline", "undecided")
    good = (frame["candidate"] == "good") & (frame["high"] < 0)
    frame["recommended"] = good
    frame["tier"] = frame["dataset"].map(
        frame.groupby("dataset")["recommended"].any().map({True: "likely", False: "undecided"})
    )
    return frame[list(RECORD_COLUMNS)].astype({"effect": float, "low": float, "high": float})


BASE = [0.60, 0.50, 0.70, 0.40, 0.55, 0.65, 0.45]
# good: better on every data set (wins where the interval excludes 0); bad: worse everywhere;
# mixed: small effects of both signs, mostly ties.
GOOD = [
    (-0.05, -0.08, -0.02),
    (-0.04, -0.07, -0.01),
    (-0.06, -0.1, -0.02),
    (-0.01, -0.03, 0.01),
    (-0.03, -0.05, -0.01),
    (-0.02, -0.04, 0.005),
    (-0.07, -0.1, -0.04),
]
BAD = [
    (0.05, 0.02, 0.08),
    (0.06, 0.03, 0.09),
    (0.02, -0.01, 0.05),
    (0.04, 0.01, 0.07),
    (0.08, 0.05, 0.11),
    (0.03, 0.0, 0.06),
    (0.05, 0.02, 0.08),
]
MIXED = [(0.01, -0.02, 0.04), (-0.01, -0.04, 0.02), (0.012, -0.01, 0.05), (-0.02, -0.05, 0.01),
         (0.005, -0.02, 0.03), (-0.03, -0.06, -0.001), (0.015, -0.01, 0.04)]  # fmt: skip


@pytest.fixture
def table() -> pd.DataFrame:
    return records({"good": GOOD, "bad": BAD, "mixed": MIXED}, BASE)


def test_wins_ties_losses(table: pd.DataFrame) -> None:
    found = suite_stats(table, n_resamples=999, seed=0)
    assert found.family("good").wtl == (5, 2, 0)
    assert found.family("bad").wtl == (0, 2, 5)  # (0.0, 0.06) touches 0: a tie
    assert found.family("mixed").wtl == (1, 6, 0)
    assert [f.n for f in found.families] == [7, 7, 7]


def test_wilcoxon_matches_scipy_and_holm_adjusts_across_families(table: pd.DataFrame) -> None:
    found = suite_stats(table, n_resamples=999, seed=0)
    raw = []
    for name, cells in (("good", GOOD), ("bad", BAD), ("mixed", MIXED)):
        expected = sps.wilcoxon([c[0] for c in cells]).pvalue
        assert found.family(name).p == pytest.approx(expected)
        raw.append(expected)
    assert [f.p_holm for f in found.families] == pytest.approx(holm(raw))
    # Seven data sets all on one side: exact two-sided p = 2/2⁷, ×3 and ×2 by Holm.
    assert found.family("good").p == pytest.approx(2 / 128)
    assert found.family("good").p_holm == pytest.approx(3 * 2 / 128)
    assert found.family("good").better and not found.family("good").worse
    assert found.family("bad").worse and not found.family("bad").better
    assert not found.family("mixed").better and not found.family("mixed").worse
    assert [f.name for f in found.winners] == ["good"]


def test_wilcoxon_without_any_effect_has_no_p() -> None:
    assert wilcoxon_p([0.0, 0.0, 0.0]) is None
    assert wilcoxon_p([np.nan, 0.1, 0.2]) == pytest.approx(sps.wilcoxon([0.1, 0.2]).pvalue)


def test_average_ranks_by_hand_with_ties() -> None:
    means = pd.DataFrame(
        {"base": [0.5, 0.4, 0.6], "a": [0.4, 0.4, 0.7], "b": [0.6, 0.3, 0.5]},
        index=["d0", "d1", "d2"],
    )
    # d0: a 1, base 2, b 3; d1: b 1, base/a 2.5; d2: b 1, base 2, a 3.
    assert average_ranks(means, higher_better=False).tolist() == pytest.approx(
        [(2 + 2.5 + 2) / 3, (1 + 2.5 + 3) / 3, (3 + 1 + 1) / 3]
    )
    assert average_ranks(means, higher_better=True).tolist() == pytest.approx(
        [(2 + 1.5 + 2) / 3, (3 + 1.5 + 1) / 3, (1 + 3 + 3) / 3]
    )


def test_suite_ranks_include_the_baseline_and_friedman_matches_scipy(table: pd.DataFrame) -> None:
    found = suite_stats(table, n_resamples=999, seed=0)
    means = table.pivot_table(index="dataset", columns="candidate", values="mean", sort=False)
    assert found.ranks.index.tolist() == ["baseline", "good", "bad", "mixed"]
    # good is best except on d3 and d5, where mixed's effect is larger; bad is always last.
    assert found.ranks["good"] == pytest.approx(9 / 7) and found.ranks["bad"] == pytest.approx(4.0)
    assert found.family("good").avg_rank == pytest.approx(9 / 7)
    expected = sps.friedmanchisquare(*(means[c].to_numpy() for c in found.ranks.index))
    assert found.friedman == pytest.approx((expected.statistic, expected.pvalue))
    assert found.cd == pytest.approx(nemenyi_cd(4, 7))


def test_friedman_needs_three_candidates_and_two_data_sets() -> None:
    two = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 1.0, 2.5]})
    assert friedman(two) is None
    one_row = pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]})
    assert friedman(one_row) is None


#: Demšar (2006), Table 5(a): two-tailed Nemenyi q_0.05 for k = 2..10 classifiers.
DEMSAR_Q05 = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]


@pytest.mark.parametrize(("k", "q"), list(zip(range(2, 11), DEMSAR_Q05, strict=True)))
def test_nemenyi_cd_matches_demsars_table(k: int, q: float) -> None:
    n = 12
    assert nemenyi_cd(k, n) / math.sqrt(k * (k + 1) / (6 * n)) == pytest.approx(q, abs=2e-3)
    assert nemenyi_cd(k, 4 * n) == pytest.approx(nemenyi_cd(k, n) / 2)


def test_nemenyi_cd_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k=1"):
        nemenyi_cd(1, 5)


def test_median_interval_is_seeded_and_covers_the_median() -> None:
    values = [-0.05, -0.04, -0.06, -0.01, -0.03, -0.02, -0.07, 0.01]
    first = median_interval(values, n_resamples=999, seed=1)
    assert first == median_interval(values, n_resamples=999, seed=1)
    assert first[0] == pytest.approx(np.median(values))
    assert first[1] is not None and first[2] is not None
    assert first[1] <= first[0] <= first[2]
    assert median_interval([0.2], n_resamples=99, seed=0) == (0.2, None, None)
    with pytest.raises(ValueError):
        median_interval([np.nan], n_resamples=99, seed=0)


def test_cliques_join_ranks_closer_than_the_cd() -> None:
    assert cliques([1.0, 1.2, 2.5, 2.6, 4.0], cd=1.0) == [(0, 1), (2, 3)]
    assert cliques([1.0, 1.5, 2.0, 2.4], cd=1.5) == [(0, 3)]
    assert cliques([1.0, 2.0], cd=0.5) == []


def test_records_frame_from_a_real_comparison() -> None:
    spec = {
        "baseline": {"val": [0.50, 0.52, 0.54, 0.51, 0.53]},
        "dropout": {"val": [0.45, 0.46, 0.50, 0.46, 0.47]},
        "l2": {"val": [0.51, 0.50, 0.55, 0.52, 0.52]},
    }
    found = compare(make_final(spec), "regression", metric="val_loss")
    assert found is not None
    frame = records_frame("toy", found)
    assert list(frame.columns) == list(RECORD_COLUMNS)
    assert frame["candidate"].tolist() == ["baseline", "dropout", "l2"]
    drop = frame.set_index("candidate").loc["dropout"]
    diff = found.candidate("dropout").vs_baseline["val_loss"]
    assert (drop["effect"], drop["low"], drop["high"]) == (diff.mean, diff.low, diff.high)
    assert bool(drop["winner"]) and drop["n_pairs"] == 5
    assert bool(drop["recommended"]) and drop["tier"] == "clear" and drop["standing"] == "clear"
    assert math.isnan(frame.set_index("candidate").loc["baseline", "effect"])


def test_verdict_names_the_winner_and_flags_few_data_sets(table: pd.DataFrame) -> None:
    text = suite_sentence(suite_stats(table, n_resamples=999, seed=0))
    assert text.startswith("Across 7 data sets, good beat baseline on val_loss")
    assert "5 wins / 2 ties / 0 losses" in text and "Worse than the baseline: bad" in text
    assert text.endswith(
        "Per data set: 5 likely, 2 undecided. 5 of 7 data sets recommend one of the families "
        "that won across data sets (good)."
    )
    few = table[table["dataset"].isin(["d0", "d1", "d2"])]
    text = suite_sentence(suite_stats(few, n_resamples=999, seed=0))
    assert text.startswith("No regularizer beat baseline consistently across 3 data sets")
    assert "a smoke test, not evidence" in text
