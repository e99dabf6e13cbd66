"""The Optuna loop with every sampler and pruner, on real studies and the real engine."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from regsearch.config import MoonsTask, ParamSpec
from regsearch.engine.members import OnEpoch, Schedule
from regsearch.engine.population import train
from regsearch.models import ModelSpec
from regsearch.records import Hyperparams, Member, MemberResult
from regsearch.search.objective import Objective
from regsearch.search.space import SearchSpace, apply_params
from regsearch.search.study import StudyRun, Tuning, run_studies
from regsearch.search.working import WorkingStudy
from regsearch.sweep import run_sweep
from regsearch.tasks import load_task
from tests.conftest import TINY

OBJECTIVE = Objective(("val_loss",), ("minimize",))

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


def _tiny_run(family: str, space: SearchSpace, calls: list[int]) -> tuple[StudyRun, Tuning]:
    """A real TPE study on a tiny moons task, trained bit-exactly wherever a member sits."""
    task = load_task(MoonsTask(n_samples=80, n_pool=60))
    spec, schedule = ModelSpec(2, 1, hidden=(4,)), Schedule(max_epochs=10, eval_every=5)
    storage = optuna.storages.InMemoryStorage()
    durable = optuna.create_study(study_name=family, storage=storage)
    sampler = optuna.samplers.TPESampler(seed=3, n_startup_trials=2, constant_liar=True)
    working = WorkingStudy(durable, storage, sampler, optuna.pruners.NopPruner())

    def members(key: int, values: dict[str, float]) -> list[Member]:
        hp = apply_params(Hyperparams(lr=0.1), values, 1)
        return [Member(key, seed, hp, repeat=seed) for seed in (0, 1)]

    def engine(ms: list[Member], on_epoch: OnEpoch) -> list[MemberResult]:
        calls.append(len(ms))
        return train(task, spec, ms, schedule=schedule, on_epoch=on_epoch, exact=True)

    run = StudyRun(working, space, 5, family, members, lambda pairs: None)
    return run, Tuning(population=2, objective=OBJECTIVE, train=engine, progress=False)


SPACES = {
    "l2": SearchSpace({"l2": ParamSpec(low=1e-4, high=1e-1, log=True)}),
    "dropout": SearchSpace({"dropout": ParamSpec(low=0.0, high=0.5)}),
}


def test_studies_tuned_together_share_engine_calls_and_find_what_they_find_alone() -> None:
    alone: dict[str, list[tuple[dict, list[float] | None]]] = {}
    for family, space in SPACES.items():
        calls: list[int] = []
        run, tuning = _tiny_run(family, space, calls)
        outcomes = run_studies([run], tuning)[family]
        alone[family] = [(o.params, o.values) for o in outcomes]
        assert calls == [4, 4, 2]  # 5 trials, 2 per round, 2 seeds each
    calls = []
    pairs = [_tiny_run(family, space, calls) for family, space in SPACES.items()]
    together = run_studies([run for run, _ in pairs], pairs[0][1])
    assert calls == [8, 8, 4], "each round trains both studies' members in one engine call"
    for family, outcomes in together.items():
        assert [(o.params, o.values) for o in outcomes] == alone[family], family
        assert {o.family for o in outcomes} == {family}
