"""The Optuna loop with every sampler and pruner, on real studies and the real engine."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from regsearch.sweep import run_sweep
from tests.conftest import TINY

QUICK = [*TINY, "tracking=none", "report=false", "search.repeats=1"]


@pytest.mark.parametrize(
    ("sampler", "preset", "extra"),
    [
        ("tpe", "cocktail", ["search.n_startup_trials=2"]),
        ("random", "cocktail", []),
        ("cmaes", "l2", ["search.n_startup_trials=2"]),
        ("qmc", "dropout", []),
        ("grid", "batchnorm", []),
        ("nsga2", "dropout", []),
    ],
)
def test_every_sampler_runs_a_study(
    sampler: str, preset: str, extra: list[str], tmp_path: Path, make_config
) -> None:
    cfg, text = make_config(
        tmp_path,
        f"+sweep={preset}",
        *QUICK,
        f"search.sampler={sampler}",
        "search.n_trials=4",
        *extra,
    )
    result = run_sweep(cfg, text)
    study = optuna.load_study(
        study_name=result.study_names[0], storage=f"sqlite:///{tmp_path}/optuna.db"
    )
    assert len(study.trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert len(study.directions) == (2 if sampler == "nsga2" else 1)


def test_grid_covers_every_point_once(tmp_path: Path, make_config) -> None:
    cfg, text = make_config(tmp_path, "+sweep=batchnorm", *QUICK, "search.n_trials=100")
    result = run_sweep(cfg, text)
    tuned = result.trials[result.trials["phase"] == "tune"]
    seen = {(r.batch_norm, r.lr) for r in tuned.itertuples()}
    assert tuned["trial"].nunique() == 6  # the grid caps the budget
    assert len(tuned) == 6 * 5  # each point scored on the 5 folds of moons' small pool
    assert seen == {(bn, lr) for bn in (False, True) for lr in (0.05, 0.2, 0.5)}


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruners_stop_bad_trials(pruner: str, tmp_path: Path, make_config) -> None:
    # lr spans four decades, so some trials are hopeless early and get pruned.
    cfg, text = make_config(
        tmp_path,
        "+sweep=dropout",
        *QUICK,
        "train.max_epochs=200",
        "train.eval_every=10",
        f"search.pruner={pruner}",
        "search.sampler=random",
        "search.n_startup_trials=2",
        "search.n_trials=14",
        "+sweep.params.lr={low: 0.0001, high: 1.0, log: true}",
    )
    result = run_sweep(cfg, text)
    study = optuna.load_study(
        study_name=result.study_names[0], storage=f"sqlite:///{tmp_path}/optuna.db"
    )
    states = [t.state for t in study.trials]
    assert len(states) == 14
    assert optuna.trial.TrialState.PRUNED in states
    pruned = result.trials[result.trials["state"] == "pruned"]
    assert (pruned["stopped_epoch"] < 200).all()


def test_population_asks_batches_and_repeats_are_members(tmp_path: Path, make_config) -> None:
    cfg, text = make_config(
        tmp_path,
        "+sweep=l2",
        *QUICK,
        "search.population=3",
        "search.n_trials=5",
        "search.repeats=2",
    )
    result = run_sweep(cfg, text)
    tuned = result.trials[result.trials["phase"] == "tune"]
    assert tuned.shape[0] == 5 * 2 * 5  # trials × seeds × folds
    members = tuned.groupby("trial")[["seed", "fold"]].apply(lambda g: sorted(map(tuple, g.values)))
    assert all(m == [(s, f) for s in (0, 1) for f in range(5)] for m in members)


def test_timeout_stops_asking(tmp_path: Path, make_config) -> None:
    cfg, text = make_config(
        tmp_path, "+sweep=l2", *QUICK, "search.n_trials=500", "search.timeout=2"
    )
    result = run_sweep(cfg, text)
    tuned = result.trials[result.trials["phase"] == "tune"]
    assert 1 <= tuned["trial"].nunique() < 500
