"""The final phase end to end: paired (seed, fold) re-evaluation, refits, verdict and report."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from regsearch.config import validate
from regsearch.console import summary_lines
from regsearch.sweep import SweepResult, run_sweep
from tests.conftest import TINY, compose_config

FAMILIES = ("l1", "l2", "weight_decay", "dropout", "early_stopping", "batchnorm")


def small_compare(*extra: str) -> list[str]:
    """compare with two trials per arm and two fresh seeds."""
    budget = [f"sweep.families.{f}.n_trials=2" for f in FAMILIES]
    return ["+sweep=compare", *TINY, *budget, "sweep.final_seeds=2", "tracking=none", *extra]


@pytest.fixture(scope="module")
def moons_cv(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    """compare on moons with the default search.cv=auto: 5 folds of the 200-row pool."""
    root = tmp_path_factory.mktemp("cv")
    composed = compose_config(root, *small_compare("train.max_epochs=60"))
    return run_sweep(validate(composed), OmegaConf.to_yaml(composed, resolve=True))


@pytest.mark.slow
def test_every_candidate_is_validated_on_the_same_seed_fold_pairs(moons_cv) -> None:
    final = moons_cv.trials[moons_cv.trials["phase"] == "final"]
    controls = {f"baseline@{f}" for f in FAMILIES}
    assert {"baseline", *FAMILIES} <= set(final["family"]) <= {"baseline", *FAMILIES, *controls}
    folds = final[final["fold"] >= 0]
    pairs = folds.groupby("family").apply(
        lambda g: tuple(sorted(zip(g["seed"], g["fold"], strict=True)))
    )
    assert pairs.nunique() == 1
    seeds = sorted(set(final["seed"]))
    # search.final_cv=auto: the tuning's 5 folds become 10 for the comparison.
    assert pairs.iloc[0] == tuple((s, f) for s in seeds for f in range(10))
    assert folds["val_loss"].notna().all() and folds["gap_loss"].notna().all()
    tune_seeds = set(moons_cv.trials.loc[moons_cv.trials["phase"] == "tune", "seed"])
    assert not tune_seeds & set(seeds), "final seeds must be fresh"


@pytest.mark.slow
def test_test_numbers_come_from_one_refit_per_candidate_and_seed(moons_cv) -> None:
    final = moons_cv.trials[moons_cv.trials["phase"] == "final"]
    refits = final[final["fold"] == -1]
    assert sorted(refits.groupby("family").size().unique()) == [2]  # one per fresh seed
    assert refits["val_loss"].isna().all() and refits["gap_loss"].isna().all()
    assert refits["test_loss"].notna().all() and refits["train_loss"].notna().all()
    # A refit trains on the whole pool (200 moons rows); early stopping cannot watch a
    # validation split there, so it trains for the folds' median best epoch on its seed.
    every = 10

    def cap(best: pd.Series) -> int:
        return max(every, math.ceil(statistics.median(best) / every) * every)

    stopper = final[final["family"] == "early_stopping"]
    for seed, rows in stopper.groupby("seed"):
        folds = rows[rows["fold"] >= 0]
        refit = rows.loc[rows["fold"] == -1, "stopped_epoch"].item()
        assert refit == cap(folds["best_epoch"]), seed
        # Each fold is scored after training for the other folds' median best epoch: its
        # epoch count never saw the rows that score it.
        for _, row in folds.iterrows():
            others = folds.loc[folds["fold"] != row["fold"], "best_epoch"]
            assert row["stopped_epoch"] == cap(others), (seed, row["fold"])


@pytest.mark.slow
def test_tuning_trials_are_scored_on_every_fold_and_the_baseline_tunes_lr(moons_cv) -> None:
    tune = moons_cv.trials[moons_cv.trials["phase"] == "tune"]
    per_trial = tune.groupby(["family", "trial"])["fold"].apply(lambda f: sorted(f))
    assert all(folds == [0, 1, 2, 3, 4] for folds in per_trial)
    assert set(tune["family"]) == {"baseline", *FAMILIES}
    assert tune.loc[tune["family"] == "baseline", "lr"].notna().all()
    final = moons_cv.trials[moons_cv.trials["phase"] == "final"]
    baseline_lr = final.loc[final["family"] == "baseline", "lr"].unique()
    assert len(baseline_lr) == 1 and 0.02 <= baseline_lr[0] <= 0.6


@pytest.mark.slow
def test_summary_report_and_console_say_how_it_was_decided(moons_cv) -> None:
    summary = moons_cv.summary
    assert summary["cv"]["folds"] == 10 and summary["tuning_cv"]["folds"] == 5
    assert summary["cv"]["pool_rows"] == 200
    assert (summary["cv"]["n_train"], summary["cv"]["n_val"]) == (180, 20)
    assert summary["final_seeds"] == [1000, 1001]
    assert 0 < summary["constant_predictor"]["val_acc"] < 1
    found = moons_cv.comparison
    assert found is not None and found.val_train_ratio == pytest.approx(20 / 180)
    block = summary["verdict"]
    assert block["tier"] == found.tier and block["recommended"] == found.recommended
    assert set(block["candidates"]) == {c.name for c in found.candidates}
    html = (moons_cv.run_dir / "report.html").read_text()
    assert "How this was decided" in html
    assert "max-t" in html and "<dt>tier</dt>" in html
    lines = summary_lines(moons_cv)
    verdict = next(line for line in lines if line.startswith("verdict:"))
    assert "baseline" in verdict
    assert "test" in verdict  # the test confirmation sits next to the verdict


@pytest.mark.slow
def test_holdout_when_cv_is_zero(tmp_path: Path, make_config) -> None:
    cfg, text = make_config(tmp_path, *small_compare("search.cv=0"))
    result = run_sweep(cfg, text)
    assert (result.trials["fold"] == -1).all()
    final = result.trials[result.trials["phase"] == "final"]
    assert final["val_loss"].notna().all() and final["test_loss"].notna().all()
    assert result.summary["cv"] is None


@pytest.mark.slow
def test_compare_on_a_real_data_set_with_folds(tmp_path: Path, make_config) -> None:
    cfg, text = make_config(
        tmp_path, *small_compare("task=wine", "search.cv=3", "search.final_cv=3")
    )
    result = run_sweep(cfg, text)
    final = result.trials[result.trials["phase"] == "final"]
    folds = final[final["fold"] >= 0]
    # Stratified: each validation fold of wine's 3 classes holds about a third of the pool.
    assert set(folds["fold"]) == {0, 1, 2}
    assert result.summary["cv"]["stratified"] is True
    verdict = next(line for line in summary_lines(result) if line.startswith("verdict:"))
    assert "baseline" in verdict


@pytest.mark.slow
def test_regression_targets_are_standardized_and_reported_in_original_units(
    tmp_path: Path, make_config
) -> None:
    cfg, text = make_config(
        tmp_path, "+sweep=l2", "task=diabetes", *TINY, "search.n_trials=2", "tracking=none"
    )
    result = run_sweep(cfg, text)
    scale = result.summary["target_scale"]
    assert 40 < scale < 100  # diabetes progression: std ≈ 77 in its own units
    rows = result.trials.dropna(subset=["test_loss"])
    assert np.allclose(rows["test_loss_orig"], rows["test_loss"] * scale**2, rtol=0.2)
    # Predicting the training mean scores about 1 on a z-scored target.
    assert 0.7 < result.summary["constant_predictor"]["val_loss"] < 1.4
    assert isinstance(pd.read_csv(result.run_dir / "trials.csv"), pd.DataFrame)


@pytest.mark.slow
def test_each_regularized_best_brings_its_learning_rate_control(moons_cv) -> None:
    final = moons_cv.trials[moons_cv.trials["phase"] == "final"]
    lr = final.groupby("family")["lr"].first()
    for family in FAMILIES:
        control = f"baseline@{family}"
        if control in lr:
            assert lr[control] == lr[family] != lr["baseline"]
            regularizer = [c for c in final.columns if c not in ("lr",) and c in ("l1", "l2")]
            assert final.loc[final["family"] == control, regularizer].isna().all().all()
    found = moons_cv.comparison
    assert found is not None
    assert all(not c.standing for c in found.candidates if c.name.startswith("baseline@"))
    assert found.recommended is None or not found.recommended.startswith("baseline@")
