"""`python -m regsearch` on bad input: exit 2, one line on stderr, nothing in either store."""

from __future__ import annotations

import os
import shutil
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
    (["+sweep=l2", "search.final_cv=1"], "search.final_cv"),
    # Known only once the data loads: wine's smallest class has 48 rows.
    (["+sweep=l2", "task=wine", "search.cv=60"], "search.cv"),
    (["+sweep=compare", "sweep.lr_range=[3.0,0.1]"], "sweep.lr_range"),
    # Seeds: Optuna's samplers and numpy's RandomState take [0, 2**32).
    (["+sweep=l2", "seed=-1"], "seed=-1"),
    (["+sweep=l2", "seed=4294967296"], "seed=4294967296"),
    (["+sweep=l2", "task.data_seed=-5"], "task.data_seed"),
    # Non-finite or absurd numbers (the rest are tests/test_config.py's BAD table).
    (["+sweep=l2", "train.lr=inf"], "train.lr"),
    (["+sweep=l2", "train.lr=1e6"], "train.lr"),
    (["+sweep=l2", "search.timeout=inf"], "search.timeout"),
    # Stores: checked before either opens (no driver import error, no connection traceback).
    (["+sweep=l2", "search.storage=not-a-url"], "search.storage"),
    (["+sweep=l2", "search.storage=foo://x"], "search.storage"),
    (["+sweep=l2", "search.storage=sqlite://"], "search.storage"),
    (["+sweep=l2", "search.storage=postgresql+psycopg://u@127.0.0.1:1/db"], "search.storage"),
    (["+sweep=l2", "search.storage=sqlite:///table.csv/optuna.db"], "search.storage"),
    (["+sweep=l2", "search.storage=table.csv/s.journal"], "search.storage"),
    (["+sweep=l2", "tracking.uri=sqlite:///table.csv/sub/mlflow.db"], "tracking.uri"),
    (["+sweep=l2", "tracking.uri=./mlruns"], "tracking.uri"),
    (["+sweep=l2", "tracking.artifact_root=table.csv/art"], "tracking.artifact_root"),
    (["+sweep=l2", "tracking.ui_port=0"], "tracking.ui_port"),
    # The output root: a file, or a folder under a file (works as root, unlike permissions).
    (["+sweep=l2", "paths.root=table.csv"], "paths.root"),
    (["+sweep=l2", "paths.root=table.csv/sub"], "paths.root"),
    # Data refused once it loads, before the stores open.
    (["+sweep=l2", "task=csv", "task.path=dup.csv", "task.target=y"], "repeated column names"),
    (["+sweep=l2", "task=csv", "task.path=inf.csv", "task.target=y"], "'b'"),
    (["+sweep=l2", "task=csv", "task.path=ids.csv", "task.target=y"], "task.max_levels"),
    (
        ["+sweep=l2", "task=csv", "task.path=table.csv", "task.target=y", "task.max_levels=0"],
        "task.max_levels",
    ),
    (
        [
            "+sweep=l2",
            "task=csv",
            "task.path=table.csv",
            "task.target=y",
            "task.test_fraction=0.99",
        ],
        "validation split is empty",
    ),
    (["+sweep=l2", "task=wine", "task.test_fraction=0.99"], "training split"),
    # Multirun: every job is composed and validated before the first starts.
    (["-m", "+sweep=l2", "sweep.final_seeds=3,-1"], "sweep.final_seeds=-1"),
    (["-m", "+sweep=l1,l2", "sweep.final_seedz=2"], "sweep.final_seedz"),
    (["-m", "+sweep=l2", "task=moons,nope"], "task/nope"),
    (["-m", "+sweep=l1,l2", "sweep.final_seeds=2"], "write ++sweep.final_seeds=2"),
    # Jobs sharing one study must be the same experiment (workers), here l2 and l1.
    (["-m", "+sweep=l2,l1", "search.study_name=s", "search.resume=true"], "share the study"),
    # Typos get the likely spelling, as a whole key.
    (["+sweep=l2", "serch.n_trials=3"], "did you mean search.n_trials?"),
    (["--config-dir", "nope", "+sweep=l2"], "--config-dir=nope"),
]

#: Files every case finds in its working directory.
FILES = {
    "table.csv": "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(12)),
    # pandas would read the second y as y.1: the target among the features, accuracy 1.000.
    "dup.csv": "a,y,y\n" + "".join(f"{i},{i % 2},{i % 2}\n" for i in range(12)),
    "inf.csv": "a,b,y\n" + "".join(f"{i},{'inf' if i == 5 else i},{i % 2}\n" for i in range(12)),
    # A code column: 1,100 levels would be 1,100 one-hot features (the default limit is 1,000);
    # with a different value in every row it would be left out as an ID instead.
    "ids.csv": "id,a,y\n" + "".join(f"row{i % 1100},{i % 7},{i % 2}\n" for i in range(1200)),
}


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


def assert_refused(proc: subprocess.CompletedProcess[str], key: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("regsearch: error: ")
    assert key in lines[0]


@pytest.mark.parametrize(("args", "key"), CASES, ids=[" ".join(a) or "no-sweep" for a, _ in CASES])
def test_bad_input_exits_2_with_one_line(args: list[str], key: str, tmp_path: Path) -> None:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    root = tmp_path / "sweeps"
    # A case that sets paths.root itself keeps it; the stores would then be under it.
    own_root = [a.split("=", 1)[1] for a in args if a.startswith("paths.root=")]
    extra = [] if own_root else [f"paths.root={root}"]
    proc = run_cli(tmp_path, *args, *extra, "progress=false")
    assert_refused(proc, key)
    assert_stores_untouched(root)
    assert (tmp_path / "table.csv").read_text() == FILES["table.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)  # nothing else written


def test_read_only_root_exits_2(tmp_path: Path) -> None:
    """A folder nobody may write, root included: ``chattr +i`` (skipped where unsupported)."""
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr not available, and root ignores permission bits")
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    done = subprocess.run([chattr, "+i", str(frozen)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i not permitted here: {done.stderr.strip()}")
    try:
        proc = run_cli(tmp_path, "+sweep=l2", f"paths.root={frozen}/sweeps", "progress=false")
    finally:
        subprocess.run([chattr, "-i", str(frozen)], check=True)
    assert_refused(proc, "paths.root")
    assert "not writable" in proc.stderr
    assert list(frozen.iterdir()) == []


def test_postgres_without_its_driver_names_the_extra(tmp_path: Path) -> None:
    """psycopg made unimportable, as if the extra were not installed: one line naming it."""
    argv = ["regsearch", "+sweep=l2", "search.storage=postgresql://u@127.0.0.1:1/db"]
    argv += [f"paths.root={tmp_path / 'sweeps'}", "progress=false"]
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        f"sys.argv = {argv!r}\n"
        "from regsearch.__main__ import main\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert_refused(proc, "search.storage")
    assert "pip install 'regsearch[postgres]'" in proc.stderr
    assert_stores_untouched(tmp_path / "sweeps")


def test_help_names_regsearch_and_lists_only_the_groups_a_user_picks(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("regsearch: ")
    assert "+sweep=compare" in proc.stdout and "python -m regsearch.report" in proc.stdout
    groups = proc.stdout.split("Groups")[1]
    assert "sweep:" in groups and "compare" in groups and "task:" in groups and "wine" in groups
    assert "schema" not in proc.stdout and "powered by Hydra" not in proc.stdout
    assert not (tmp_path / "sweeps").exists()
