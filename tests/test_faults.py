"""Crashes as tests: real sweeps killed at chosen moments, then resumed (no mocks).

Each scenario runs ``python -m regsearch`` on a tmp ``paths.root``, watches the Optuna sqlite
file to know which phase the sweep is in, kills something, checks that no process is left
behind, and resumes with ``search.resume=true``: the study then holds exactly ``n_trials``
tuning trials with distinct parameters, the final phase once, and nothing RUNNING in either
store.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

STUDY = "crash"
N_TRIALS = 16
TIMEOUT_S = 120  # generous: the machine may be busy; the tests normally take seconds


def _sweep(root: Path, *extra: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        "-m",
        "regsearch",
        "+sweep=l2",
        f"paths.root={root}",
        "train.max_epochs=4000",  # ~0.3 s a batch: time to act between batches
        "train.eval_every=200",
        "progress=false",
        "report=false",
        "search.cv=0",
        f"search.n_trials={N_TRIALS}",
        "search.population=2",
        "sweep.final_seeds=3",
        f"search.study_name={STUDY}",
        *extra,
    ]
    with (root / "stdout.txt").open("w") as out:  # the log, read while the sweep runs
        return subprocess.Popen(command, cwd=root, stdout=out, stderr=subprocess.PIPE, text=True)


def root_arg(root: Path) -> str:
    """``root`` as the resume command quotes it."""
    import shlex

    return shlex.quote(str(root))


def _logged(root: Path, text: str) -> bool:
    return text in (root / "stdout.txt").read_text()


def _count(root: Path, study: str) -> int:
    """Trials of ``study`` in the Optuna sqlite file (0 while it does not exist yet)."""
    try:
        with sqlite3.connect(f"file:{root}/optuna.db?mode=ro", uri=True, timeout=1) as con:
            row = con.execute(
                "select count(*) from trials join studies using (study_id) where study_name = ?",
                (study,),
            ).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0])


def _study_exists(root: Path, study: str) -> bool:
    try:
        with sqlite3.connect(f"file:{root}/optuna.db?mode=ro", uri=True, timeout=1) as con:
            query = "select count(*) from studies where study_name = ?"
            return bool(con.execute(query, (study,)).fetchone()[0])
    except sqlite3.Error:
        return False


def _wait_for(what: str, condition: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended (code {proc.returncode}) before {what}: {_tail(proc)}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def _tail(proc: subprocess.Popen[str]) -> str:
    _, err = proc.communicate(timeout=TIMEOUT_S)
    return err[-3000:]


def _children(pid: int) -> dict[int, str]:
    """Child process id → command line, read from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def _helpers(proc: subprocess.Popen[str]) -> dict[str, int]:
    """The sweep's recorder and multiprocessing resource tracker: name → pid."""
    helpers: dict[str, int] = {}

    def both_started() -> bool:
        for pid, cmdline in _children(proc.pid).items():
            kind = "tracker" if "resource_tracker" in cmdline else "recorder"
            if "multiprocessing" in cmdline:
                helpers[kind] = pid
        return len(helpers) == 2

    _wait_for("the recorder started", both_started, proc)
    return helpers


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has not collected it yet


def _assert_gone(helpers: dict[str, int], within_s: float = 15) -> None:
    deadline = time.monotonic() + within_s
    while any(_alive(pid) for pid in helpers.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {name: pid for name, pid in helpers.items() if _alive(pid)}
    for pid in left.values():
        os.kill(pid, signal.SIGKILL)  # do not leave them to the next test
    assert not left, f"left behind: {left}"


def _kill(proc: subprocess.Popen[str], helpers: dict[str, int]) -> None:
    proc.kill()
    proc.wait(timeout=TIMEOUT_S)
    _assert_gone(helpers)


def _statuses(root: Path, parents: bool = False) -> list[str]:
    """MLflow run statuses (only the sweeps' parent runs: ``parents``), oldest first."""
    query = "select status from runs order by start_time"
    if parents:
        query = (
            "select status from runs join tags using (run_uuid) "
            "where tags.key = 'regsearch.study' order by start_time"
        )
    try:
        with sqlite3.connect(f"file:{root}/mlflow.db?mode=ro", uri=True, timeout=1) as con:
            return [row[0] for row in con.execute(query)]
    except sqlite3.Error:
        return []  # not created yet


def _resume_to_the_end(root: Path) -> None:
    done = _sweep(root, "search.resume=true")
    _, err = done.communicate(timeout=TIMEOUT_S)
    assert done.returncode == 0, err[-3000:]
    storage = f"sqlite:///{root}/optuna.db"
    tuned = optuna.load_study(study_name=STUDY, storage=storage).trials
    assert len(tuned) == N_TRIALS, "each tuning trial stored once, the ones in flight redone"
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in tuned)
    assert len({t.params["l2"] for t in tuned}) == N_TRIALS, "no parameter set stored twice"
    final = optuna.load_study(study_name=f"{STUDY}.final", storage=storage).trials
    families = [t.user_attrs["family"] for t in final]
    assert sorted(families) == sorted(set(families)) and len(families) == 2, (families, err)
    with sqlite3.connect(root / "optuna.db") as con:
        running = con.execute("select count(*) from trials where state = 'RUNNING'").fetchone()
    assert running[0] == 0
    assert "RUNNING" not in _statuses(root)
    assert _statuses(root, parents=True) == ["KILLED", "KILLED", "FINISHED"]


@pytest.mark.slow
def test_a_sweep_killed_mid_tuning_and_in_the_final_phase_resumes_to_the_end(
    tmp_path: Path,
) -> None:
    # (a) kill -9 once the first batches are stored, well before the last one.
    proc = _sweep(tmp_path)
    helpers = _helpers(proc)
    _wait_for("two batches stored", lambda: _count(tmp_path, STUDY) >= 4, proc)
    _kill(proc, helpers)
    stored = _count(tmp_path, STUDY)
    assert 4 <= stored < N_TRIALS
    # The orphaned recorder logged what it had and closed the parent run before exiting.
    assert _statuses(tmp_path, parents=True) == ["KILLED"]
    assert "RUNNING" not in _statuses(tmp_path)

    # (b) resume, kill -9 while the final phase trains (tuning stored, final not yet).
    proc = _sweep(tmp_path, "search.resume=true")
    helpers = _helpers(proc)
    _wait_for("the final phase training", lambda: _logged(tmp_path, "retraining"), proc)
    _kill(proc, helpers)
    assert _count(tmp_path, STUDY) == N_TRIALS
    assert _count(tmp_path, f"{STUDY}.final") == 0, "killed after the final phase, not in it"

    _resume_to_the_end(tmp_path)


@pytest.mark.slow
def test_a_killed_recorder_stops_the_sweep_and_sigterm_closes_it_like_ctrl_c(
    tmp_path: Path,
) -> None:
    # (c) kill -9 the recorder: the sweep stops at the next batch with one line, exit 1.
    proc = _sweep(tmp_path)
    helpers = _helpers(proc)
    _wait_for("the parent run opened", lambda: _statuses(tmp_path, parents=True) != [], proc)
    _wait_for("a batch stored", lambda: _count(tmp_path, STUDY) >= 2, proc)
    os.kill(helpers["recorder"], signal.SIGKILL)
    killed = time.monotonic()
    _, err = proc.communicate(timeout=TIMEOUT_S)
    assert time.monotonic() - killed < 20, "noticed at the next batch, not after the sweep"
    assert proc.returncode == 1, err[-3000:]
    assert "recorder process exited with code -9" in err
    assert "Traceback" not in err
    _assert_gone(helpers)
    assert _count(tmp_path, STUDY) < N_TRIALS
    assert "RUNNING" in _statuses(tmp_path)  # the parent run, closed by the next sweep

    # SIGTERM: handled like Ctrl-C, the stores closed, parent run KILLED, resume printed.
    proc = _sweep(tmp_path, "search.resume=true")
    helpers = _helpers(proc)
    before = _count(tmp_path, STUDY)
    _wait_for("a resumed batch stored", lambda: _count(tmp_path, STUDY) > before, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err[-3000:]
    # The whole command to run again, preset and settings included, not only the study.
    command = f"python -m regsearch +sweep=l2 paths.root={root_arg(tmp_path)}"
    assert command in err and f"search.resume=true search.study_name={STUDY}" in err
    _assert_gone(helpers)
    assert "RUNNING" not in _statuses(tmp_path), "the earlier sweep's runs were closed too"
    assert _statuses(tmp_path, parents=True) == ["KILLED", "KILLED"]

    _resume_to_the_end(tmp_path)


def test_a_recorder_whose_sweep_dies_exits_on_its_own(tmp_path: Path) -> None:
    """kill -9 of a process holding a Recorder: the recorder (and the tracker) follow it."""
    script = tmp_path / "hold.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time
            from regsearch.recorder import Recorder

            recorder = Recorder("sqlite:///{tmp_path}/optuna.db")
            recorder.flush()
            print(recorder.pid, flush=True)
            time.sleep(600)
            """
        )
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    recorder = int(proc.stdout.readline())
    helpers = {"recorder": recorder}
    for pid, cmdline in _children(proc.pid).items():
        if "resource_tracker" in cmdline:
            helpers["tracker"] = pid
    os.kill(recorder, signal.SIGTERM)  # the sweep decides when its recorder stops
    time.sleep(0.3)
    assert _alive(recorder)
    _kill(proc, helpers)  # gone within seconds, not at the end of the grace period


@pytest.mark.slow
def test_a_sweep_killed_at_start_up_leaves_nothing_that_resume_cannot_finish(
    tmp_path: Path,
) -> None:
    # kill -9 as soon as its study exists: recorder started, stores created, nothing trained.
    proc = _sweep(tmp_path)
    helpers = _helpers(proc)
    _wait_for("the study", lambda: _study_exists(tmp_path, STUDY), proc)
    _kill(proc, helpers)
    assert _count(tmp_path, STUDY) == 0
    assert "RUNNING" not in _statuses(tmp_path)  # the recorder closed what it had opened
    done = _sweep(tmp_path, "search.resume=true")
    _, err = done.communicate(timeout=TIMEOUT_S)
    assert done.returncode == 0, err[-3000:]
    storage = f"sqlite:///{tmp_path}/optuna.db"
    tuned = optuna.load_study(study_name=STUDY, storage=storage).trials
    assert len(tuned) == N_TRIALS and len({t.params["l2"] for t in tuned}) == N_TRIALS
    assert len(optuna.load_study(study_name=f"{STUDY}.final", storage=storage).trials) == 2
    assert "RUNNING" not in _statuses(tmp_path)


@pytest.mark.slow
def test_a_sweep_killed_before_its_stores_exist_leaves_nothing_in_the_way(tmp_path: Path) -> None:
    """The recorder starts before the stores are opened (its imports overlap the sweep's); a
    sweep killed then has written nothing that a fresh start trips over."""
    proc = _sweep(tmp_path)
    helpers = _helpers(proc)
    _kill(proc, helpers)
    assert _count(tmp_path, STUDY) == 0
    assert _statuses(tmp_path) == []  # no MLflow run was opened
    done = _sweep(tmp_path)
    _, err = done.communicate(timeout=TIMEOUT_S)
    assert done.returncode == 0, err[-3000:]
    tuned = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{tmp_path}/optuna.db").trials
    assert len(tuned) == N_TRIALS
    assert _statuses(tmp_path, parents=True) == ["FINISHED"]
