"""In-memory working studies, the recorder process and what lands in the durable stores."""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

import regsearch
from regsearch.config import ConfigError, MoonsTask, ParamSpec
from regsearch.console import summary_lines
from regsearch.engine.members import OnEpoch, Schedule
from regsearch.engine.population import train
from regsearch.models import ModelSpec
from regsearch.recorder import Recorder, RecorderError
from regsearch.records import Hyperparams, Member, MemberResult, RunSummary, TrialOutcome
from regsearch.search.objective import Objective
from regsearch.search.space import SearchSpace, apply_params
from regsearch.search.study import StudyRun, Tuning, run_studies
from regsearch.search.working import WORKER_ATTR, WorkingStudy
from regsearch.sweep import run_sweep
from regsearch.tasks import load_task
from regsearch.tracking import is_abandoned
from tests.conftest import TINY, join_study

OBJECTIVE = Objective(("val_loss",), ("minimize",))


def _run(working: WorkingStudy, n_trials: int) -> None:
    """A real tiny study on moons; each batch persisted straight to the durable study."""
    task = load_task(MoonsTask(n_samples=80, n_pool=60))
    spec = ModelSpec(2, 1, hidden=(4,))
    schedule = Schedule(max_epochs=5, eval_every=5)
    base = Hyperparams(lr=0.1)

    def members(number: int, values: dict[str, float]) -> list[Member]:
        return [Member(number, 0, apply_params(base, values, 1))]

    run = StudyRun(
        working,
        SearchSpace({"l2": ParamSpec(low=1e-4, high=1e-1, log=True)}),
        n_trials=n_trials,
        family="l2",
        build_members=members,
        on_batch=lambda pairs: working.durable.add_trials([trial for trial, _ in pairs]),
    )

    def engine(
        ms: list[Member], on_epoch: OnEpoch | None = None, **hooks: Any
    ) -> list[MemberResult]:
        return train(task, spec, ms, schedule=schedule, on_epoch=on_epoch, **hooks)

    run_studies([run], Tuning(population=2, objective=OBJECTIVE, train=engine, progress=False))


def test_workers_sharing_a_study_see_each_others_trials_between_batches(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"

    def worker(seed: int) -> WorkingStudy:
        return join_study(storage, "shared", OBJECTIVE, optuna.samplers.TPESampler(seed=seed))

    a, b = worker(0), worker(1)
    _run(a, 4)
    _run(b, 8)  # b opened before a ran: it pulls a's 4 trials, then adds 4
    _run(a, 12)  # a pulls b's 4, then adds 4
    durable = optuna.load_study(study_name="shared", storage=storage)
    assert len(durable.trials) == 12, "no trial persisted twice, none lost"
    by_worker = [t.user_attrs[WORKER_ATTR] for t in durable.trials]
    assert by_worker.count(a.worker) == 8
    assert by_worker.count(b.worker) == 4
    assert len(a.study.trials) == 12  # the sampler saw every trial, its own and b's
    assert sorted(t.params["l2"] for t in a.study.trials) == sorted(
        t.params["l2"] for t in durable.trials
    )


def test_mlflow_child_runs_carry_the_durable_trial_numbers(tmp_path: Path, make_config) -> None:
    from mlflow.tracking import MlflowClient

    cfg, text = make_config(
        tmp_path,
        "+sweep=l2",
        *TINY,
        "report=false",
        "search.n_trials=6",
        "search.population=4",
        "tracking.ui_port=5123",
    )
    result = run_sweep(cfg, text)
    study = optuna.load_study(
        study_name=result.study_names[0], storage=f"sqlite:///{tmp_path}/optuna.db"
    )
    durable = {t.number: t for t in study.trials}
    mlflow = result.summary["mlflow"]
    runs = MlflowClient(mlflow["uri"]).search_runs(
        [mlflow["experiment_id"]],
        f"tags.mlflow.parentRunId = '{mlflow['parent_run_id']}' and tags.regsearch.phase = 'tune'",
    )
    assert len(runs) == 6
    for run in runs:
        trial = durable[int(run.data.tags["optuna.trial_number"])]
        assert float(run.data.params["l2"]) == pytest.approx(trial.params["l2"])
    assert result.summary["recorded_trials"] == 6 + 2  # 6 tuned + best and baseline re-run
    for db in ("mlflow.db", "optuna.db"):  # the recorder writes in WAL mode
        with sqlite3.connect(tmp_path / db) as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert result.summary["timings"]["train"] > 0 and result.summary["timings"]["final"] > 0
    # The verdict is on the parent run, searchable: tags.regsearch.tier, .recommended.
    parent = MlflowClient(mlflow["uri"]).get_run(mlflow["parent_run_id"]).data.tags
    found = result.comparison
    assert found is not None
    assert parent["regsearch.verdict"] == found.verdict
    assert parent["regsearch.tier"] == found.tier
    assert parent["regsearch.recommended"] == (found.recommended or "baseline")
    # Provenance: in summary.json and on the parent run, the same facts.
    origin = result.summary["provenance"]
    assert {"torch", "numpy", "optuna", "mlflow", "hydra-core"} <= set(origin["packages"])
    assert origin["regsearch"] == regsearch.__version__ and origin["python"] and origin["host"]
    assert parent["regsearch.provenance.package.torch"] == origin["packages"]["torch"]
    assert parent["regsearch.provenance.device"] == origin["device"]
    checkout = Path(regsearch.__file__).resolve().parent.parent
    if (checkout / ".git").exists():
        git = ["git", "-C", str(checkout), "rev-parse", "HEAD"]
        head = subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()
        assert origin["commit"].removesuffix("+dirty") == head
    on_disk = json.loads((result.run_dir / "summary.json").read_text())
    assert on_disk["provenance"] == origin
    # The printed command and link use the port the user gave; the tuning's best trial is
    # named as such, above the verdict it must not seem to contradict.
    lines = summary_lines(result)
    browse = next(line for line in lines if line.startswith("browse:"))
    assert "--port 5123" in browse and "http://127.0.0.1:5123/#/experiments/" in browse
    best = next(i for i, line in enumerate(lines) if line.startswith("best tuning trial"))
    assert best < next(i for i, line in enumerate(lines) if line.startswith("verdict:"))


def test_a_recorder_that_cannot_write_a_trial_says_so(tmp_path: Path) -> None:
    recorder = Recorder(f"sqlite:///{tmp_path}/optuna.db")
    try:
        optuna.create_study(study_name="exists", storage=f"sqlite:///{tmp_path}/optuna.db")
        trial = optuna.trial.create_trial(value=1.0)
        recorder.record(
            "no-such-study", [(trial, TrialOutcome(-1, {}, "complete", [1.0], [], "x"))]
        )
        with pytest.raises(RecorderError, match="no-such-study"):
            recorder.flush()
    finally:
        recorder.close()


def test_a_dead_recorder_is_an_error_not_a_hang(tmp_path: Path) -> None:
    recorder = Recorder(f"sqlite:///{tmp_path}/optuna.db")
    recorder._process.kill()
    recorder._process.join()
    with pytest.raises(RecorderError, match="exited"):
        recorder.flush()
    trial = optuna.trial.create_trial(value=1.0)
    with pytest.raises(RecorderError, match="exited with code -9"):  # at the batch boundary
        recorder.record("s", [(trial, TrialOutcome(-1, {}, "complete", [1.0], [], "x"))])
    recorder.finish(RunSummary("FAILED"))  # the death was raised already: only cleaned up
    assert not recorder.alive


def test_a_sweep_refused_after_its_recorder_started_writes_no_mlflow_store(
    tmp_path: Path, make_config
) -> None:
    """The recorder starts with the sweep and imports MLflow at once, but opens no store
    before the sweep's own checks pass: a taken study name leaves no mlflow.db behind."""
    tiny = [*TINY, "+sweep=l2", "search.n_trials=1", "sweep.final_seeds=0", "report=false"]
    named = [*tiny, "search.study_name=taken"]
    run_sweep(*make_config(tmp_path, *named, "tracking=none"))
    with pytest.raises(ConfigError, match="taken"):
        run_sweep(*make_config(tmp_path, *named))  # tracking=mlflow
    assert not (tmp_path / "mlflow.db").exists()
    assert not [p for p in mp.active_children() if p.name == "regsearch-recorder"]


def test_an_unused_recorder_is_stopped_at_once_and_wrote_nothing(tmp_path: Path) -> None:
    recorder = Recorder(f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db")
    recorder.close()
    assert not recorder.alive
    assert list(tmp_path.iterdir()) == []


def _record_one(storage: str) -> int:
    recorder = Recorder(storage)
    try:
        trial = optuna.trial.create_trial(value=1.0)
        recorder.record("s", [(trial, TrialOutcome(-1, {}, "complete", [1.0], [], "x"))])
        return recorder.flush().written
    finally:
        recorder.close()


def test_the_recorder_starts_in_a_joblib_worker(tmp_path: Path) -> None:
    """Hydra's joblib launcher runs jobs in loky workers, whose default start method is
    "loky": the recorder must not hand that to its spawned child."""
    from joblib import Parallel, delayed

    storage = f"sqlite:///{tmp_path}/optuna.db"
    optuna.create_study(study_name="s", storage=storage)
    (written,) = Parallel(n_jobs=2, backend="loky")(delayed(_record_one)(storage) for _ in [0])
    assert written == 1


@pytest.mark.parametrize(
    ("run", "alive", "abandoned"),
    [
        ({"regsearch.host": "h", "regsearch.pid": "7"}, False, True),  # its sweep died
        ({"regsearch.host": "h", "regsearch.pid": "7"}, True, False),  # another live worker
        ({"regsearch.host": "h", "regsearch.pid": "8"}, True, True),  # this process, earlier
        ({"regsearch.host": "other", "regsearch.pid": "7"}, False, False),  # cannot tell
        ({}, False, False),  # written before runs named their owner
    ],
)
def test_a_running_parent_run_is_abandoned_only_when_its_sweep_is_gone(
    run: dict[str, str], alive: bool, abandoned: bool
) -> None:
    owner = {"regsearch.host": "h", "regsearch.pid": "8"}
    assert is_abandoned(run, owner, alive=lambda pid: alive) is abandoned


@pytest.mark.slow
def test_a_plain_script_without_a_main_guard_can_run_a_sweep(tmp_path: Path) -> None:
    """The recorder is spawned without re-running the caller's script."""
    script = tmp_path / "sweep_me.py"
    overrides = [*TINY, "+sweep=l2", "search.n_trials=2", f"paths.root={tmp_path}"]
    script.write_text(
        textwrap.dedent(
            f"""
            from hydra import compose, initialize_config_dir
            from omegaconf import OmegaConf
            from regsearch.__main__ import CONF_DIR
            from regsearch.config import validate
            from regsearch.sweep import run_sweep

            print("script body ran")
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
                cfg = compose("config", overrides={overrides!r})
            result = run_sweep(validate(cfg), OmegaConf.to_yaml(cfg, resolve=True))
            print("trials", result.summary["n_trials"])
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("script body ran") == 1
    assert "trials 2" in done.stdout


def test_a_trial_with_more_metrics_than_one_mlflow_batch_keeps_every_point(
    tmp_path: Path, make_config
) -> None:
    from mlflow.tracking import MlflowClient

    cfg, text = make_config(
        tmp_path,
        "+sweep=l2",
        *TINY,
        "train.max_epochs=200",
        "train.eval_every=1",  # 200 evaluations × 6 curves: over log_batch's 1,000 metrics
        "report=false",
        "search.n_trials=1",
        "sweep.final_seeds=0",
    )
    result = run_sweep(cfg, text)
    mlflow = result.summary["mlflow"]
    client = MlflowClient(mlflow["uri"])
    (run,) = client.search_runs(
        [mlflow["experiment_id"]], f"tags.mlflow.parentRunId = '{mlflow['parent_run_id']}'"
    )
    history = client.get_metric_history(run.info.run_id, "gap_acc")
    assert [m.step for m in history] == list(range(1, 201))
    assert "l2" in run.data.params


@pytest.mark.slow
def test_two_cli_workers_share_one_study(tmp_path: Path) -> None:
    n_trials, population = 16, 2
    base = [
        sys.executable,
        "-m",
        "regsearch",
        "+sweep=l2",
        f"paths.root={tmp_path}",
        *TINY,
        "train.max_epochs=3000",  # ~0.5 s a batch: the workers' runs overlap
        "report=false",
        "sweep.final_seeds=0",
        f"search.n_trials={n_trials}",
        f"search.population={population}",
        "search.study_name=shared",
    ]
    first = subprocess.Popen(base, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = tmp_path / "optuna.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the second worker resumes, so the study must exist
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                if con.execute("select count(*) from studies").fetchone()[0]:
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.1)
    second = subprocess.run(
        [*base, "search.resume=true"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err.decode()[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{db}")
    # Each worker may finish the batch it was training, and sees the other's trials once they
    # are written, so the total can pass n_trials a little, but the work was shared.
    assert n_trials <= len(study.trials) < 2 * n_trials
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    workers = {t.user_attrs[WORKER_ATTR] for t in study.trials}
    assert len(workers) == 2, "both workers contributed trials"
