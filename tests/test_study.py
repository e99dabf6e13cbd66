"""The Optuna loop with every sampler and pruner, on real studies and the real engine."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from regsearch.config import MoonsTask, ParamSpec
from regsearch.engine.members import OnEpoch, OnResult, Refill, Schedule
from regsearch.engine.population import train
from regsearch.models import ModelSpec
from regsearch.records import Hyperparams, Member, MemberResult, TrialOutcome
from regsearch.search.objective import Objective
from regsearch.search.space import SearchSpace, apply_params
from regsearch.search.study import StudyRun, Tuning, member_record, run_studies
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


def _tiny_run(
    family: str,
    space: SearchSpace,
    calls: list[int],
    *,
    n_trials: int = 5,
    pruner: optuna.pruners.BasePruner | None = None,
    max_epochs: int = 10,
    broken: int | None = None,
) -> tuple[StudyRun, Tuning]:
    """A real TPE study on a tiny moons task, trained bit-exactly wherever a member sits.

    ``calls`` gets each engine call's first members count; trial key ``broken`` gets a
    learning rate that makes its loss non-finite.
    """
    task = load_task(MoonsTask(n_samples=80, n_pool=60))
    spec, schedule = ModelSpec(2, 1, hidden=(4,)), Schedule(max_epochs=max_epochs, eval_every=5)
    storage = optuna.storages.InMemoryStorage()
    durable = optuna.create_study(study_name=family, storage=storage)
    sampler = optuna.samplers.TPESampler(seed=3, n_startup_trials=2, constant_liar=True)
    pruning = pruner is not None
    working = WorkingStudy(durable, storage, sampler, pruner or optuna.pruners.NopPruner())

    def members(key: int, values: dict[str, float]) -> list[Member]:
        hp = apply_params(Hyperparams(lr=0.1), values, 1)
        if key == broken:
            hp = dataclasses.replace(hp, lr=1e12)
        return [Member(key, seed, hp, repeat=seed) for seed in (0, 1)]

    def engine(
        ms: list[Member],
        on_epoch: OnEpoch,
        *,
        refill: Refill | None = None,
        on_result: OnResult | None = None,
    ) -> list[MemberResult]:
        calls.append(len(ms))
        return train(
            task,
            spec,
            ms,
            schedule=schedule,
            on_epoch=on_epoch,
            exact=True,
            refill=refill,
            on_result=on_result,
        )

    run = StudyRun(working, space, n_trials, family, members, lambda pairs: None)
    tuning = Tuning(population=2, objective=OBJECTIVE, train=engine, progress=False)
    return run, dataclasses.replace(tuning, pruning=pruning)


SPACES = {
    "l2": SearchSpace({"l2": ParamSpec(low=1e-4, high=1e-1, log=True)}),
    "dropout": SearchSpace({"dropout": ParamSpec(low=0.0, high=0.5)}),
    "lr": SearchSpace({"lr": ParamSpec(low=1e-3, high=3.0, log=True)}),
}


def test_studies_tuned_together_share_engine_calls_and_find_what_they_find_alone() -> None:
    pairs_of = {f: SPACES[f] for f in ("l2", "dropout")}
    alone: dict[str, list[tuple[dict, list[float] | None]]] = {}
    for family, space in pairs_of.items():
        calls: list[int] = []
        run, tuning = _tiny_run(family, space, calls)
        outcomes = run_studies([run], tuning)[family]
        alone[family] = [(o.params, o.values) for o in outcomes]
        assert calls == [4], "one engine call: 2 trials × 2 seeds, the rest refilled"
    calls = []
    pairs = [_tiny_run(family, space, calls) for family, space in pairs_of.items()]
    together = run_studies([run for run, _ in pairs], pairs[0][1])
    assert calls == [8], "both studies' members share one engine call"
    for family, outcomes in together.items():
        assert [(o.params, o.values) for o in outcomes] == alone[family], family
        assert {o.family for o in outcomes} == {family}


class _Spy:
    """Wraps a tiny run's engine: records every member's result as ``on_result`` gets it."""

    def __init__(self, tuning: Tuning) -> None:
        self.inner = tuning.train
        self.seen: dict[int, MemberResult] = {}

    def __call__(
        self, ms: list[Member], on_epoch: OnEpoch, *, refill: Refill, on_result: OnResult
    ) -> list[MemberResult]:
        def spy(index: int, result: MemberResult) -> None:
            assert index not in self.seen, "one result per member"
            self.seen[index] = result
            on_result(index, result)

        return self.inner(ms, on_epoch, refill=refill, on_result=spy)


def _pruned_sweep(
    n_trials: int, broken: int | None = None, pruner_name: str = "median"
) -> tuple[StudyRun, list[TrialOutcome], _Spy, list[int]]:
    """A pruned study of ``n_trials`` over four decades of lr (some hopeless early)."""
    calls: list[int] = []
    pruner: optuna.pruners.BasePruner = optuna.pruners.MedianPruner(
        n_startup_trials=2, n_warmup_steps=5
    )
    if pruner_name == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(min_resource=5, max_resource=60)
    run, tuning = _tiny_run(
        "lr", SPACES["lr"], calls, n_trials=n_trials, pruner=pruner, max_epochs=60, broken=broken
    )
    spy = _Spy(tuning)
    outcomes = run_studies([run], dataclasses.replace(tuning, train=spy))["lr"]
    return run, outcomes, spy, calls


def test_pruned_sweep_refills_the_stack_and_tells_each_trial_once_with_its_members_value() -> None:
    run, outcomes, spy, calls = _pruned_sweep(n_trials=9, broken=3)
    trials = run.working.study.get_trials(deepcopy=False)
    assert calls == [4], "one engine call; trials 2.. were asked as slots freed"
    assert len(trials) == len(outcomes) == 9
    assert sorted(o.number for o in outcomes) == list(range(9)), "each trial told once"
    states = [t.state for t in trials]
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    members: dict[int, list[MemberResult]] = {}
    for index in sorted(spy.seen):  # engine indices: the members in the order handed in
        members.setdefault(spy.seen[index].member.trial, []).append(spy.seen[index])
    assert len(members) == 9 and all(len(rs) == 2 for rs in members.values())
    for outcome in outcomes:
        mine = next(rs for rs in members.values() if rs[0] is outcome.results[0])
        assert outcome.results == mine, "the trial's own members, in seed order"
        trial = trials[outcome.number]
        assert trial.user_attrs["members"] == [member_record(r) for r in mine]
        if outcome.state == "complete":
            assert outcome.values == OBJECTIVE.values(mine)
            assert trial.values == outcome.values
        if outcome.state == "pruned":
            assert all(r.stopped_epoch < 60 for r in mine)
    broken = [o for o in outcomes if o.number == 3]  # one study, one call: key 3 is trial 3
    assert [o.state for o in broken] == ["failed"] and trials[3].state == TrialState.FAIL
    assert "not finite" in trials[3].user_attrs["error"]


def test_refilled_members_train_as_they_would_alone() -> None:
    _, outcomes, _, _ = _pruned_sweep(n_trials=6)
    task = load_task(MoonsTask(n_samples=80, n_pool=60))
    spec = ModelSpec(2, 1, hidden=(4,))
    last = max(outcomes, key=lambda o: o.number)  # asked by refill, long after the start
    if last.state == "pruned":  # the router stopped it; alone it would run to the end
        last = max((o for o in outcomes if o.state == "complete"), key=lambda o: o.number)
    assert last.number >= 2, "a refilled trial"
    members = [r.member for r in last.results]
    alone = train(task, spec, members, schedule=Schedule(max_epochs=60, eval_every=5), exact=True)
    assert [r.final for r in alone] == [r.final for r in last.results]


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_same_seed_same_sweep(pruner: str) -> None:
    # Which trial a member's result finishes, and so what TPE has seen at each ask, depends
    # only on the epochs: the asynchronous loop stays reproducible on the CPU.
    first = _pruned_sweep(n_trials=8, pruner_name=pruner)
    second = _pruned_sweep(n_trials=8, pruner_name=pruner)
    assert any(o.state == "pruned" for o in first[1])
    assert [(o.number, o.params, o.state, o.values) for o in first[1]] == [
        (o.number, o.params, o.state, o.values) for o in second[1]
    ]
