"""End to end: every preset on a tiny budget against real Optuna + MLflow sqlite stores."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from regsearch.results import METRIC_COLUMNS
from regsearch.sweep import run_sweep
from tests.conftest import TINY

PRESETS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "sweep").glob("*.yaml"))
CONTRACT = ["trial", "seed", "state", *METRIC_COLUMNS, "duration_s"]
PER_EPOCH = ["train_loss", "val_loss", "gap_loss", "train_acc", "val_acc", "gap_acc"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One store for the module: a new MLflow sqlite store costs seconds to create.
    return tmp_path_factory.mktemp("sweeps")


def budget(preset: str) -> list[str]:
    if preset == "compare":
        return [
            "sweep.final_seeds=2",
            *(
                f"sweep.families.{f}.n_trials=2"
                for f in ("l1", "l2", "weight_decay", "dropout", "early_stopping", "batchnorm")
            ),
        ]
    if preset == "batchnorm":
        return ["search.repeats=1"]
    return ["search.n_trials=3", "search.repeats=2"]


def child_runs(uri: str, parent_id: str) -> list:
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(parent_id)
    return client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'", max_results=1000
    )


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_end_to_end(preset: str, root: Path, make_config) -> None:
    cfg, yaml_text = make_config(root, f"+sweep={preset}", *TINY, *budget(preset))
    result = run_sweep(cfg, yaml_text)

    # Optuna: the study (or one per family + final for compare) holds the finished trials.
    storage = f"sqlite:///{root}/optuna.db"
    for name in result.study_names:
        study = optuna.load_study(study_name=name, storage=storage)
        assert study.trials, name
        assert all(t.state.is_finished() for t in study.trials)

    # Run folder per the output contract.
    assert result.run_dir.parent == root / f"{preset}-moons"
    for name in ("config.yaml", "trials.csv", "report.html", "summary.json", "trials.parquet"):
        assert (result.run_dir / name).is_file(), name
    trials = pd.read_csv(result.run_dir / "trials.csv")
    assert set(CONTRACT) <= set(trials.columns)
    parquet = pd.read_parquet(result.run_dir / "trials.parquet")
    pd.testing.assert_frame_equal(parquet[CONTRACT], result.trials[CONTRACT], check_dtype=False)
    assert set(result.summary["params"]) <= set(trials.columns)
    assert (trials["state"] == "complete").all()

    # MLflow: one parent run for the sweep, one nested child per trial with per-epoch curves.
    mlflow = result.summary["mlflow"]
    children = child_runs(mlflow["uri"], mlflow["parent_run_id"])
    n_trials = trials.drop_duplicates(["family", "phase", "trial"]).shape[0]
    assert len(children) == n_trials
    client = MlflowClient(tracking_uri=mlflow["uri"])
    assert client.get_run(mlflow["parent_run_id"]).info.status == "FINISHED"
    # MLflow 3's UI opens it in the model-training view (runs table), not the GenAI one.
    experiment = client.get_experiment(mlflow["experiment_id"])
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    child = children[0]
    assert child.info.status == "FINISHED"
    assert {"optuna.trial_number", "regsearch.state"} <= set(child.data.tags)
    assert {"best_epoch", "test_loss", "test_acc"} <= set(child.data.metrics)
    history = client.get_metric_history(child.info.run_id, "val_loss")
    assert [m.step for m in history] == [10, 20, 30, 40]
    assert set(PER_EPOCH) <= set(child.data.metrics)
    logged = set().union(*(c.data.params for c in children))
    for name in result.summary["params"]:
        if preset != "cocktail":  # a magnitude whose flag was off in every trial is never logged
            assert name in logged


@pytest.mark.slow
def test_compare_retrains_every_family_and_the_baseline_on_the_same_fresh_seeds(
    root: Path, make_config
) -> None:
    cfg, yaml_text = make_config(
        root, "+sweep=compare", *TINY, *budget("compare"), "search.study_name=cmp"
    )
    result = run_sweep(cfg, yaml_text)
    final = result.trials[result.trials["phase"] == "final"]
    families = set(final["family"])
    assert families == {
        "baseline",
        "l1",
        "l2",
        "weight_decay",
        "dropout",
        "early_stopping",
        "batchnorm",
    }
    seeds = final.groupby("family")["seed"].apply(lambda s: tuple(sorted(set(s))))
    assert seeds.nunique() == 1 and len(seeds.iloc[0]) == 2
    tune_seeds = set(result.trials.loc[result.trials["phase"] == "tune", "seed"])
    assert not tune_seeds & set(seeds.iloc[0]), "final seeds must be fresh"


def _numbers(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "trials.csv").drop(columns=["duration_s"])


@pytest.mark.slow
@pytest.mark.parametrize("pruner", ["none", "hyperband"])
def test_same_seed_gives_same_numbers(tmp_path: Path, make_config, pruner: str) -> None:
    # Study names differ as time-stamped ones do; Hyperband's brackets must not depend on them.
    runs = []
    for i in range(2):
        cfg, yaml_text = make_config(
            tmp_path,
            "+sweep=cocktail",
            *TINY,
            "search.n_trials=6",
            "tracking=none",
            f"search.pruner={pruner}",
            f"search.study_name=same-{i}",
        )
        runs.append(run_sweep(cfg, yaml_text).run_dir)
    pd.testing.assert_frame_equal(_numbers(runs[0]), _numbers(runs[1]))


@pytest.mark.slow
def test_nan_trial_is_recorded_failed_and_the_sweep_goes_on(tmp_path: Path, make_config) -> None:
    cfg, yaml_text = make_config(
        tmp_path,
        "+sweep=l2",
        "task=highdim_linear",
        "progress=false",
        "search.sampler=grid",
        "search.repeats=1",
        "+sweep.params.lr={low: 0.001, high: 10.0, log: true, grid: [0.001, 10.0]}",
        "+sweep.params.l2.grid=[0.0001]",
        "search.n_trials=2",
        "search.cv=0",  # one member per trial: the states below are the trials'
    )
    result = run_sweep(cfg, yaml_text)
    trials = result.trials[result.trials["phase"] == "tune"]
    assert sorted(trials["state"]) == ["complete", "failed"]
    study = optuna.load_study(
        study_name=result.study_names[0], storage=f"sqlite:///{tmp_path}/optuna.db"
    )
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "FAIL"]
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    assert "finite" in failed.user_attrs["error"]
    mlflow = result.summary["mlflow"]
    runs = child_runs(mlflow["uri"], mlflow["parent_run_id"])
    runs = [r for r in runs if r.data.tags["regsearch.phase"] == "tune"]
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]
    assert sorted(r.data.tags["regsearch.state"] for r in runs) == ["complete", "failed"]


def _running_runs(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("select count(*) from runs where status = 'RUNNING'").fetchone()[0]


@pytest.mark.slow
def test_ctrl_c_leaves_stores_consistent_and_resume_reaches_n_trials(
    tmp_path: Path, make_config
) -> None:
    n_trials = 12
    overrides = [
        "+sweep=dropout",
        "progress=false",
        # ~1 s a trial: trials are persisted by the recorder process, which starts (imports,
        # opens the stores) while the first trials train; the sweep must outlast that.
        "train.max_epochs=4000",
        "train.eval_every=50",
        "search.population=1",  # one trial per batch, so the sweep can stop between trials
        f"search.n_trials={n_trials}",
        "search.repeats=1",
        "search.study_name=stopme",
    ]
    cfg, yaml_text = make_config(tmp_path, *overrides)
    storage = f"sqlite:///{tmp_path}/optuna.db"

    def interrupt_after_two_trials() -> None:
        # Plain read-only sqlite polling: an Optuna storage here would race the sweep's own
        # table creation.
        db = tmp_path / "optuna.db"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                    done = con.execute(
                        "select count(*) from trials where state in ('COMPLETE', 'PRUNED', 'FAIL')"
                    ).fetchone()[0]
                if done >= 2:
                    os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C in the main thread
                    return
            except sqlite3.Error:
                pass  # not created yet
            time.sleep(0.05)

    watcher = threading.Thread(target=interrupt_after_two_trials, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, yaml_text)
    watcher.join()

    study = optuna.load_study(study_name="stopme", storage=storage)
    finished = [t for t in study.trials if not t.user_attrs.get("interrupted")]
    assert 2 <= len(finished) < n_trials
    assert all(t.state.is_finished() for t in study.trials), "no RUNNING trial left behind"
    assert _running_runs(tmp_path / "mlflow.db") == 0, "no RUNNING MLflow run left behind"

    cfg, yaml_text = make_config(tmp_path, *overrides, "search.resume=true")
    result = run_sweep(cfg, yaml_text)
    study = optuna.load_study(study_name="stopme", storage=storage)
    counted = [t for t in study.trials if not t.user_attrs.get("interrupted")]
    assert len(counted) == n_trials
    assert result.trials.drop_duplicates("trial").shape[0] == n_trials
    assert _running_runs(tmp_path / "mlflow.db") == 0


@pytest.mark.slow
def test_cli_runs_a_sweep_and_says_where_results_are(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "regsearch",
        "+sweep=baseline",
        f"paths.root={tmp_path}",
        *TINY,
        "search.repeats=2",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "regsearch: baseline on moons" in out
    assert "best tuning trial 0" in out
    assert f"results: {tmp_path}/baseline-moons/" in out
    assert f"mlflow ui --backend-store-uri sqlite:///{tmp_path}/mlflow.db" in out
    assert "Traceback" not in done.stderr


def test_final_seeds_zero_skips_the_re_evaluation(tmp_path: Path, make_config) -> None:
    cfg, text = make_config(
        tmp_path, "+sweep=l2", *TINY, "search.n_trials=2", "sweep.final_seeds=0"
    )
    result = run_sweep(cfg, text)
    assert set(result.trials["phase"]) == {"tune"}
    assert "final" not in result.summary["studies"]


@pytest.mark.slow
def test_hydra_multirun_runs_one_sweep_per_job(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "regsearch",
        "-m",
        "+sweep=l2",
        "task=moons,wine",
        f"paths.root={tmp_path}",
        *TINY,
        "search.n_trials=2",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for task in ("moons", "wine"):
        (run_dir,) = (tmp_path / f"l2-{task}").iterdir()
        assert (run_dir / "report.html").exists()
        assert json.loads((run_dir / "summary.json").read_text())["n_trials"] == 2
