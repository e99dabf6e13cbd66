"""A multirun ends with one summary of every job (regsearch.multirun): real `-m` runs.

Each job leaves ``job.json`` in its Hydra job folder; when the multirun ends, or stops early,
``summary.csv`` and ``summary.md`` in ``<paths.root>/multirun/<stamp>/`` hold one row per job
(its verdict, or why it failed) and the same table is printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from regsearch.multirun import (
    JOB_RECORD,
    SUMMARY_COLUMNS,
    MultirunSummary,
    job_rows,
    read_job_records,
)
from regsearch.results import comparison_frame

FAST = [
    "train.max_epochs=20",
    "train.eval_every=10",
    "search.cv=0",
    "tracking=none",
    "report=false",
    "progress=false",
]


def _command(root: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "regsearch", "-m", f"paths.root={root}", *FAST, *overrides]


def _run(root: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command(root, *overrides), cwd=root, capture_output=True, text=True, timeout=300
    )


def _multirun_dir(root: Path) -> Path:
    (found,) = (root / "multirun").iterdir()
    return found


@pytest.mark.slow
def test_a_multirun_ends_with_one_table_of_every_jobs_verdict(tmp_path: Path) -> None:
    # A sweep with job 0's very settings, run before: the multirun must not take its folder.
    earlier = subprocess.run(
        [
            sys.executable,
            "-m",
            "regsearch",
            "+sweep=l1",
            f"paths.root={tmp_path}",
            *FAST,
            "search.n_trials=2",
            "sweep.final_seeds=2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert earlier.returncode == 0, earlier.stderr[-3000:]
    (old_run,) = (tmp_path / "l1-moons").iterdir()

    # `++`: with the preset swept, `sweep.*` is not in the config Hydra composes first.
    done = _run(tmp_path, "+sweep=l1,l2", "search.n_trials=2", "++sweep.final_seeds=2")
    assert done.returncode == 0, done.stderr[-3000:]

    folder = _multirun_dir(tmp_path)
    frame = pd.read_csv(folder / "summary.csv")
    assert list(frame.columns) == SUMMARY_COLUMNS
    assert frame["job"].tolist() == [0, 1]
    assert frame["status"].tolist() == ["completed", "completed"]
    assert frame["sweep"].tolist() == ["l1", "l2"]
    assert frame["task"].tolist() == ["moons", "moons"]
    for sweep, overrides in zip(frame["sweep"], frame["overrides"], strict=True):
        assert f"+sweep={sweep}" in overrides.split()
    assert frame["error"].isna().all()

    run_dirs = [Path(d) for d in frame["run_dir"]]
    assert old_run.resolve() not in run_dirs, "each job's own run folder, not an earlier one"
    for row, run_dir in zip(frame.itertuples(), run_dirs, strict=True):
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["sweep"] == row.sweep and summary["final_seeds"] == [1000, 1001]
        verdict = summary["verdict"]
        assert row.tier == verdict["tier"] and row.metric == verdict["metric"] == "val_loss"
        assert row.recommended == (verdict["recommended"] or "baseline")
        assert row.trials == summary["n_complete"] == 2
        # The reported candidate is the sweep's regularizer, with the numbers of its verdict.
        compared = comparison_frame(summary).set_index("candidate").loc[row.candidate]
        assert row.candidate == row.sweep and row.setting == compared["params"]
        assert row.setting.startswith(f"{row.sweep}=")
        assert row.effect == pytest.approx(compared["effect"])
        assert row.ci_low < row.effect < row.ci_high
        assert row.ci_low == pytest.approx(compared["ci_low"])
        assert row.p_adjusted == pytest.approx(compared["p_adjusted"])
        assert row.verdict == verdict["text"]

    markdown = (folder / "summary.md").read_text()
    assert markdown.startswith(f"# Multirun {folder.name}: 2 jobs (2 completed)")
    assert "| 0 | +sweep=l1 | completed | l1 | moons |" in markdown
    for run_dir in run_dirs:  # linked relative to the multirun folder
        link = os.path.relpath(run_dir, folder)
        assert f"({link})" in markdown and (folder / link).resolve() == run_dir

    # Printed at the end, after the jobs' own output.
    tail = done.stdout[done.stdout.index("multirun done") :].splitlines()
    assert tail[0].startswith("multirun done: 2 jobs (2 completed)")
    assert tail[1].split()[:3] == ["job", "overrides", "status"]
    assert [line.split()[:4] for line in tail[2:]] == [
        ["0", "+sweep=l1", "completed", "l1"],
        ["1", "+sweep=l2", "completed", "l2"],
    ]


@pytest.mark.slow
def test_joblib_jobs_are_summarized_and_copies_of_one_job_get_a_folder_each(
    tmp_path: Path,
) -> None:
    """Records written by the launcher's worker processes; two copies of one job (N workers
    as docs/servers.md starts them) side by side, each row with its own run folder."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    done = _run(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "+sweep=l2",
        "task=wine,wine",
        "search.n_trials=1",
        "search.population=1",
        "sweep.final_seeds=2",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = _multirun_dir(tmp_path)
    records = read_job_records(folder)
    assert [(r["job"], r["status"]) for r in records] == [(0, "completed"), (1, "completed")]
    assert {r["pid"] for r in records}.isdisjoint({os.getpid()}), "written by the workers"
    frame = pd.read_csv(folder / "summary.csv")
    assert frame["task"].tolist() == ["wine", "wine"]
    assert frame["tier"].notna().all()
    assert sorted(Path(d) for d in frame["run_dir"]) == sorted(
        d.resolve() for d in (tmp_path / "l2-wine").iterdir()
    )
    assert "multirun done: 2 jobs (2 completed)" in done.stdout


@pytest.mark.slow
def test_ctrl_c_in_a_job_still_writes_the_summary_with_failed_and_not_run_rows(
    tmp_path: Path,
) -> None:
    """Hydra skips on_multirun_end when a job exits; the launching process writes it at exit."""
    proc = subprocess.Popen(
        _command(
            tmp_path,
            "+sweep=l2,l1",
            "train.max_epochs=4000",  # long enough to be interrupted mid-tuning
            "search.n_trials=200",
            "search.population=1",
        ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Job 0 is tuning once its run folder holds its first (partial) summary.
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("l2-moons/*/summary.json")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted; both stores are consistent" in err

    folder = _multirun_dir(tmp_path)
    frame = pd.read_csv(folder / "summary.csv")
    assert frame["status"].tolist() == ["failed", "not run"]
    assert frame["sweep"].tolist()[0] == "l2"
    assert frame["error"].tolist() == [
        "exited before its end (its output says why)",
        "the multirun ended first",
    ]
    (run_dir,) = tmp_path.glob("l2-moons/*")
    assert Path(frame["run_dir"][0]) == run_dir.resolve(), "the interrupted job's run folder"
    assert "+sweep=l1" in frame["overrides"][1].split()
    assert "multirun stopped before its end: 2 jobs (1 failed, 1 not run)" in out
    assert "- job 1 not run: the multirun ended first" in (folder / "summary.md").read_text()

    # Rebuilt later from the records, the job never run is still there.
    (folder / "summary.csv").unlink()
    again = subprocess.run(
        [sys.executable, "-m", "regsearch.multirun", str(folder)], capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("multirun: 2 jobs (1 failed, 1 not run)")
    assert pd.read_csv(folder / "summary.csv")["status"].tolist() == ["failed", "not run"]


def _job_config(tmp_path: Path, mode: RunMode) -> DictConfig:
    return OmegaConf.create(
        {
            "hydra": {
                "mode": mode,
                "runtime": {"output_dir": str(tmp_path / "multirun" / "0")},
                "job": {"num": 0},
                "overrides": {"task": ["+sweep=l2", "task=wine"]},
            },
            "paths": {"root": str(tmp_path)},
            "sweep": {"name": "l2"},
            "task": {"name": "wine"},
        }
    )


def test_a_job_that_raises_is_a_failed_row_with_its_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _job_config(tmp_path, RunMode.MULTIRUN)
    callback = MultirunSummary()
    callback.on_job_start(config)
    record = read_job_records(tmp_path / "multirun")[0]
    assert record["status"] == "running" and record["overrides"] == ["+sweep=l2", "task=wine"]
    failed = JobReturn(status=JobStatus.FAILED, _return_value=ValueError("no such column"))
    callback.on_job_end(config, failed)
    assert capsys.readouterr().err == "", "the error is Hydra's to print, once"
    frame = job_rows(read_job_records(tmp_path / "multirun"), planned=[["a"], ["b"]])
    shown = frame[["job", "status", "sweep", "task", "error"]].fillna("")
    assert shown.values.tolist() == [
        [0, "failed", "l2", "wine", "ValueError: no such column"],
        [1, "not run", "", "", "the multirun ended first"],
    ]


def test_a_single_run_through_hydra_leaves_no_record(tmp_path: Path) -> None:
    config = _job_config(tmp_path, RunMode.RUN)
    MultirunSummary().on_job_start(config)
    MultirunSummary().on_job_end(config, JobReturn(status=JobStatus.COMPLETED))
    assert not list(tmp_path.rglob(JOB_RECORD))
