"""Several workers on one study: real CLI processes on PostgreSQL and on a journal file.

What a shared study promises (README, "Stores, workers and what a crash keeps"): every worker
sees the others' finished trials before each batch, no two workers propose the same
parameters, the study stops at ``n_trials`` plus at most the trials in flight, the final phase
runs once, and workers started together never crash on creating the storage or the study.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

from regsearch.config import ConfigError
from regsearch.search.claims import HOLDER, claim, release
from regsearch.search.objective import Objective
from regsearch.search.storage import get_storage
from regsearch.search.study import create_or_load
from regsearch.search.working import WORKER_ATTR, WorkingStudy, worker_seed
from tests.conftest import TINY, join_study
from tests.servers import postgres_url

OBJECTIVE = Objective(("val_loss",), ("minimize",))
FAST = [*TINY, "report=false", "tracking=none", "search.cv=0"]


def _cli(root: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "regsearch", "+sweep=l2", f"paths.root={root}", *overrides]


def _run_ok(cmd: list[str], cwd: Path) -> None:
    """Run a regsearch command to its end; it must succeed."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _workers(
    root: Path, storage: str, n_workers: int, n_trials: int, population: int
) -> list[tuple[int, str, str]]:
    """Start ``n_workers`` CLI workers together as README says: the first without
    ``search.resume``, the others with it; returns their (returncode, stdout, stderr)."""
    base = _cli(
        root,
        *FAST,
        "train.max_epochs=4000",  # ~0.4 s a batch: the workers' runs overlap
        f"search.storage={storage}",
        "search.study_name=shared",
        f"search.n_trials={n_trials}",
        f"search.population={population}",
        "search.repeats=1",
    )
    commands = [base] + [[*base, "search.resume=true"]] * (n_workers - 1)
    procs = [
        subprocess.Popen(c, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outs, strict=True)]


def _check_shared(
    root: Path,
    storage: str,
    outs: list[tuple[int, str, str]],
    n_workers: int,
    n_trials: int,
    population: int,
) -> None:
    for code, out, err in outs:
        assert code == 0, (out + err)[-3000:]
    tuned = optuna.load_study(study_name="shared", storage=get_storage(storage))
    trials = tuned.get_trials(deepcopy=False)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # In flight when the count is reached: at most the batch each other worker is training
    # (workers publish what they finished before their recorders write it).
    assert n_trials <= len(trials) <= n_trials + (n_workers - 1) * population
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == len(params), "no parameter set proposed twice"
    assert len({t.user_attrs[WORKER_ATTR] for t in trials}) >= 2, "the work was shared"
    final = optuna.load_study(study_name="shared.final", storage=get_storage(storage))
    ran = {t.user_attrs[WORKER_ATTR] for t in final.trials}
    assert len(ran) == 1, "the final phase ran once"
    assert sorted(t.user_attrs["family"] for t in final.trials) == ["baseline", "l2"]
    skipped = [o for _, o, e in outs if "skipped here" in o + e]
    assert len(skipped) == n_workers - 1, "the others said who ran it"
    assert all(next(iter(ran)) in o + e for _, o, e in outs if "skipped here" in o + e)
    # Every worker's outputs tell the truth: the others waited for the final phase, so each
    # run folder holds the same tested verdict, and names the folder of the one that ran it.
    folders = {p.parent: json.loads(p.read_text()) for p in root.glob("l2-moons/*/summary.json")}
    assert len(folders) == n_workers
    assert len({json.dumps(s["verdict"], sort_keys=True) for s in folders.values()}) == 1
    by = [s["final_by"] for s in folders.values() if s.get("final_by")]
    (runner,) = [f for f, s in folders.items() if not s.get("final_by")]
    assert len(by) == n_workers - 1
    assert all(b["worker"] == next(iter(ran)) for b in by)
    assert all(b["where"].startswith(f"{runner.resolve()} on ") for b in by)


@pytest.mark.slow
def test_four_workers_started_together_on_postgres(tmp_path: Path, postgres_server: str) -> None:
    storage = postgres_url(postgres_server, "four_workers")  # fresh: the tables race too
    outs = _workers(tmp_path, storage, 4, 16, 2)
    _check_shared(tmp_path, storage, outs, 4, 16, 2)


@pytest.mark.slow
def test_three_workers_started_together_on_a_journal_file(tmp_path: Path) -> None:
    storage = str(tmp_path / "optuna.journal")
    (tmp_path / "optuna.journal").touch()  # resuming workers refuse a file that is not there
    outs = _workers(tmp_path, storage, 3, 16, 2)
    _check_shared(tmp_path, storage, outs, 3, 16, 2)


def _race(storage: str, barrier: Any, results: Any) -> None:
    """One racing process: open the storage and the study, then claim the final phase."""
    from regsearch.search.working import new_worker_id

    barrier.wait()
    study, created = create_or_load(
        "raced",
        storage,
        OBJECTIVE,
        optuna.samplers.RandomSampler(),
        optuna.pruners.NopPruner(),
        resume=True,
        must_be_new=False,
    )
    held = claim(storage, "raced.final.claim", new_worker_id())
    results.put((created, held.mine, held.worker, study.study_name))


@pytest.mark.parametrize("kind", ["postgres", "sqlite", "journal"])
def test_processes_racing_to_create_a_storage_one_creates_one_claims(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "postgres":
        storage = postgres_url(request.getfixturevalue("postgres_server"), "race")
    elif kind == "sqlite":
        storage = f"sqlite:///{tmp_path}/fresh/optuna.db"
    else:
        storage = str(tmp_path / "optuna.journal")
    ctx = mp.get_context("spawn")
    n = 4
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(storage, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * n, "no process crashed"
    outs = [results.get(timeout=5) for _ in range(n)]
    assert sum(created for created, *_ in outs) == 1
    assert sum(mine for _, mine, *_ in outs) == 1
    assert len({holder for *_, holder, _ in outs}) == 1, "everyone agrees who holds the claim"


def test_a_pull_sees_other_workers_trials_while_its_own_are_not_written(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"

    def worker(seed: int) -> WorkingStudy:
        return join_study(storage, "s", OBJECTIVE, optuna.samplers.RandomSampler(seed=seed))

    a, b = worker(0), worker(1)
    for w in (a, b):
        for _ in range(2):
            trial = w.study.ask()
            trial.suggest_float("x", 0, 1)
            w.study.tell(trial, 0.5)
    assert len(a.handover()) == 2  # handed to a recorder that has not written them yet
    b.durable.add_trials(b.handover())  # b's recorder was quicker
    assert a.pull() == 2, "b's trials are not hidden behind a's unwritten ones"
    assert a.pull() == 0


def test_joining_workers_sample_their_own_streams() -> None:
    seeds = {worker_seed(0, f"host-{pid}-abcdef") for pid in range(100)}
    assert len(seeds) == 100
    assert worker_seed(3, "w") == worker_seed(3, "w")


def test_a_claim_is_released_and_a_stale_one_taken_over(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    held = claim(storage, "c", "me")
    assert held.mine and claim(storage, "c", "me").mine  # the holder may ask again
    other = claim(storage, "c", "other")
    assert not other.mine and other.worker == "me" and not other.stale  # this pid runs
    assert release(storage, held)
    assert claim(storage, "c", "other").mine
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    store = get_storage(storage)
    study_id = store.get_study_id_from_name("c")
    holder = store.get_study_user_attrs(study_id)[HOLDER]
    store.set_study_user_attr(study_id, HOLDER, {**holder, "pid": int(dead.stdout)})
    assert claim(storage, "c", "third").stale


def test_a_claim_whose_claimant_died_before_naming_itself_is_stale(tmp_path: Path) -> None:
    # kill -9 between creating the claim study and writing its holder attributes.
    storage = f"sqlite:///{tmp_path}/optuna.db"
    store = get_storage(storage)
    store.create_new_study([optuna.study.StudyDirection.MINIMIZE], "c")
    held = claim(storage, "c", "late")
    assert not held.mine and held.stale
    assert release(storage, held)
    assert claim(storage, "c", "late").mine


def test_storage_errors_are_one_line_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no PostgreSQL driver"):
        get_storage("postgresql+psycopg2://user@127.0.0.1/db")  # psycopg 2 is not installed
    with pytest.raises(ConfigError, match="not a database URL"):
        get_storage("mysql+nosuchdriver://user@127.0.0.1/db")
    with pytest.raises(ConfigError, match="cannot open it"):
        get_storage("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_default_study_names_of_sweeps_started_in_one_second_differ(
    tmp_path: Path, make_config
) -> None:
    from regsearch.plan import make_plan
    from regsearch.sweep import _study_base

    cfg, _ = make_config(tmp_path, "+sweep=l2", *FAST)
    plan = make_plan(cfg)
    names = {_study_base(plan, "20260101-120000") for _ in range(20)}
    assert len(names) == 20
    assert all(n.startswith("l2-moons-20260101-120000-") for n in names)


def test_a_sweep_logs_to_an_mlflow_tracking_server(tmp_path: Path, mlflow_server: str) -> None:
    from mlflow.tracking import MlflowClient

    cmd = _cli(
        tmp_path,
        *TINY,
        "report=false",
        "search.cv=0",
        "search.n_trials=3",
        "sweep.final_seeds=0",
        f"tracking.uri={mlflow_server}",
        "tracking.experiment=served",
    )
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "View run" not in done.stdout + done.stderr, "MLflow's per-run lines are silenced"
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("served")
    assert experiment is not None
    # The server decides where artifacts go (proxied), not the client's local folder.
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 3
    assert all("val_loss" in r.data.metrics for r in children)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert "trials.csv" in [a.path for a in client.list_artifacts(parent.info.run_id)]


@pytest.mark.slow
def test_the_joblib_launcher_runs_tasks_in_parallel(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    start = time.monotonic()
    _run_ok(
        [
            sys.executable,
            "-m",
            "regsearch",
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "+sweep=l2",
            "task=moons,wine",
            f"paths.root={tmp_path}",
            *FAST,
            "search.n_trials=2",
            "sweep.final_seeds=0",
        ],
        tmp_path,
    )
    for task in ("moons", "wine"):
        (run,) = (tmp_path / f"l2-{task}").iterdir()
        assert (run / "trials.csv").is_file(), f"{task}: {time.monotonic() - start:.0f} s"


def test_a_worker_that_loses_the_final_claim_stops_its_candidates_and_records_nothing(
    tmp_path: Path, make_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The candidates train while the claim is made; once another (live) worker holds it, they
    stop at their first evaluation, as pruned, and the final study gets no trial from here."""
    from regsearch.final import CLAIM_SUFFIX, _train_candidates, run_final_phase
    from regsearch.plan import make_plan

    storage = f"sqlite:///{tmp_path}/optuna.db"
    cfg, _ = make_config(
        tmp_path, "+sweep=l2", *FAST, "train.max_epochs=400", f"search.storage={storage}"
    )
    plan = make_plan(cfg)
    final = optuna.create_study(study_name="s.final", storage=get_storage(storage))
    # This (live) process holds it, for a worker that writes to its own run folder.
    claim(storage, f"s.final{CLAIM_SUFFIX}", "other-worker", where="/elsewhere/run on host-b")
    todo = {"baseline": {}, "l2": {"l2": 1e-3}}
    stopped = _train_candidates(plan, todo, lost=lambda: True)
    assert {r.state for r in stopped} == {"pruned"}
    assert {r.stopped_epoch for r in stopped} == {plan.schedule.eval_every}
    recorded: list[Any] = []
    with caplog.at_level("INFO", logger="regsearch.final"):
        held = run_final_phase(
            plan, {}, final, lambda name, pairs: recorded.append(pairs), wait_s=0.5
        )
    assert recorded == [] and final.trials == []
    assert "run by worker other-worker" in caplog.text and "skipped here" in caplog.text
    # It waited (bounded) for the other worker's trials, then named where they will be.
    assert held is not None and held.worker == "other-worker"
    assert held.where == "/elsewhere/run on host-b"
    assert "its outputs: /elsewhere/run on host-b" in caplog.text


def test_a_worker_whose_tuning_ends_after_the_final_phase_says_who_ran_it(
    tmp_path: Path, make_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Another worker claimed and finished the final phase before this one's tuning ended:
    nothing trains here, and this worker names the one that ran it (its outputs link there)."""
    from regsearch.final import CLAIM_SUFFIX, run_final_phase
    from regsearch.plan import make_plan

    storage = f"sqlite:///{tmp_path}/optuna.db"
    cfg, _ = make_config(tmp_path, "+sweep=l2", *FAST, f"search.storage={storage}")
    plan = make_plan(cfg)
    final = optuna.create_study(study_name="s.final", storage=get_storage(storage))
    claim(storage, f"s.final{CLAIM_SUFFIX}", "other-worker", where="/elsewhere/run")
    final.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"family": "baseline"}))
    recorded: list[Any] = []
    with caplog.at_level("INFO", logger="regsearch.final"):
        held = run_final_phase(plan, {}, final, lambda name, pairs: recorded.append(pairs))
    assert recorded == [] and len(final.trials) == 1
    assert "run by worker other-worker" in caplog.text and "skipped here" in caplog.text
    assert held is not None and held.where == "/elsewhere/run"
    # The worker that ran it, resuming, is not told it was skipped.
    caplog.clear()
    same = dataclasses.replace(plan, worker="other-worker")
    assert run_final_phase(same, {}, final, lambda *_: None) is None
    assert "skipped here" not in caplog.text


def test_launcher_jobs_all_started_with_resume_share_one_study_on_a_fresh_store(
    tmp_path: Path,
) -> None:
    """README's recipe for N workers through a Hydra launcher: every job has the study name and
    search.resume=true, the store does not exist yet; the first job creates the study, the
    next ones join it (job k asks for k finished trials in all)."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    storage = f"sqlite:///{tmp_path}/fresh/optuna.db"
    _run_ok(
        [
            *[sys.executable, "-m", "regsearch", "-m", "hydra/launcher=joblib"],
            *["hydra.launcher.n_jobs=1", "+sweep=l2", f"paths.root={tmp_path}", *FAST],
            "search.n_trials=1,2",
            "search.population=1",
            "sweep.final_seeds=0",
            f"search.storage={storage}",
            "search.study_name=joined",
            "search.resume=true",
        ],
        tmp_path,
    )
    study = optuna.load_study(study_name="joined", storage=get_storage(storage))
    assert len(study.trials) == 2
    assert len({t.user_attrs[WORKER_ATTR] for t in study.trials}) == 2  # one trial per job
