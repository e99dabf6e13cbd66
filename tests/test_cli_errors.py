"""`python -m regsearch` on bad input: exit 2, one line on stderr, nothing in either store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

# (command line, text the error line must contain: the key or value that is wrong)
CASES = [
    (["+sweep=l2", "task=nope"], "task/nope"),
    (["+sweep=nope"], "sweep/nope"),
    ([], "+sweep="),
    (["+sweep=l2", "search.n_trials=0"], "search.n_trials"),
    (["+sweep=l2", "sweep.params.l2.low=2.0"], "sweep.params.l2.low"),
    (["+sweep=l2", "search.n_trails=3"], "search.n_trails"),
    (["+sweep=l2", "search.n_trials=abc"], "search.n_trials"),
    (["+sweep=l2", "train.l1=-1"], "train.l1"),
    (["+sweep=l2", "+sweep.params.dropout_0={low:0.0,high:0.5}"], "dropout_0"),
    # Raised inside the job, after Hydra started it: the task loads, the stores do not open.
    (["+sweep=l2", "task=csv", "task.path=table.csv", "task.target=nope"], "task.target"),
    (["+sweep=l2", "search.resume=true"], "search.storage"),
    (["+sweep=l2", "search.cv=1"], "search.cv"),
    (["+sweep=l2", "search.cv=five"], "search.cv"),
    # Known only once the data loads: wine's smallest class has 48 rows.
    (["+sweep=l2", "task=wine", "search.cv=60"], "search.cv"),
    (["+sweep=compare", "sweep.lr_range=[3.0,0.1]"], "sweep.lr_range"),
]


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "regsearch", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_stores_untouched(root: Path) -> None:
    optuna_db, mlflow_db = root / "optuna.db", root / "mlflow.db"
    if optuna_db.exists():
        summaries = optuna.get_all_study_summaries(f"sqlite:///{optuna_db}")
        assert summaries == [], f"{optuna_db} holds studies"
    if mlflow_db.exists():
        with sqlite3.connect(mlflow_db) as con:
            (n_runs,) = con.execute("SELECT COUNT(*) FROM runs").fetchone()
        assert n_runs == 0, f"{mlflow_db} holds runs"
    assert not optuna_db.exists() and not mlflow_db.exists()


@pytest.mark.parametrize(("args", "key"), CASES, ids=[" ".join(a) or "no-sweep" for a, _ in CASES])
def test_bad_input_exits_2_with_one_line(args: list[str], key: str, tmp_path: Path) -> None:
    (tmp_path / "table.csv").write_text(
        "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(12))
    )
    root = tmp_path / "sweeps"
    proc = run_cli(tmp_path, *args, f"paths.root={root}", "progress=false")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("regsearch: error: ")
    assert key in lines[0]
    assert_stores_untouched(root)
