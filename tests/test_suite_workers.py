"""A suite run by several workers: real ``python -m regsearch +experiment=suite`` processes.

Two "machines" (their own ``paths.root``) on one PostgreSQL storage must give every family of
every data set exactly its budget of tuning trials, know which data sets are done, and end
with the same records as one process alone with the same seed; two processes in one folder
must not undo each other's ``suite.json``. Rounds (``search.population=1``, one start-up trial)
make the second trial of each family a TPE proposal from the first, so the equality covers
what the sampler sees, not only the random start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest

from regsearch.search.storage import get_storage
from regsearch.search.working import WORKER_ATTR
from regsearch.suite.rounds import SLOT_ATTR
from regsearch.suite.shared import DONE_PREFIX
from tests.servers import postgres_url
from tests.test_suite import FAMILIES, TINY_SUITE

ROUNDS = ["search.population=1", "search.n_startup_trials=1"]
QUIET = ["tracking=none", "report=false", "progress=false"]
DATASETS = ("iris", "sonar")


def _start(root: Path, *overrides: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "regsearch", "+experiment=suite", *TINY_SUITE, *ROUNDS, *QUIET,
           "suite.name=pair", f"paths.root={root}", *overrides]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def _finish(procs: list[subprocess.Popen[str]]) -> list[str]:
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out[-4000:]
    return outs


def _tuning(storage: str, datasets: tuple[str, ...] = DATASETS) -> dict[tuple[str, str], list[Any]]:
    """(data set, family) → its tuning trials as (slot, params, value, worker), by slot."""
    store = get_storage(storage)
    found: dict[tuple[str, str], list[Any]] = {}
    for summary in store.get_all_studies():
        name = summary.study_name
        base, _, family = name.rpartition(".")
        dataset = base.rsplit("-", 1)[-1]
        if family not in (*FAMILIES, "baseline") or dataset not in datasets:
            continue
        trials = store.get_all_trials(store.get_study_id_from_name(name), deepcopy=False)
        found[dataset, family] = sorted(
            (t.user_attrs[SLOT_ATTR], t.params, t.values, t.user_attrs[WORKER_ATTR]) for t in trials
        )
    return found


def _state(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "suite.json").read_text())
    return data


@pytest.mark.slow
def test_two_machines_on_postgres_tune_exact_budgets_and_agree_with_one_process(
    tmp_path: Path, postgres_server: str
) -> None:
    storage = postgres_url(postgres_server, "suite_pair")
    start = time.monotonic()
    alone = _start(tmp_path / "alone")  # sqlite in its own folder: a one-process suite
    pair = [_start(tmp_path / f"machine{k}", f"search.storage={storage}") for k in (1, 2)]
    outs = _finish([alone, *pair])
    wall = time.monotonic() - start

    shared, single = _tuning(storage), _tuning(f"sqlite:///{tmp_path}/alone/optuna.db")
    assert set(shared) == {(d, f) for d in DATASETS for f in [*FAMILIES, "baseline"]}
    for key, trials in shared.items():
        assert [slot for slot, *_ in trials] == [0, 1], f"{key}: exactly its budget, one a slot"
    # A worker id is <host>-<pid>-<nonce>, one per data set's sweep: the processes are two.
    processes = {w.rsplit("-", 1)[0] for trials in shared.values() for *_, w in trials}
    shares = [line for out in outs[1:] for line in out.splitlines() if "rounds trained" in line]
    assert len(processes) == 2, f"both machines tuned: {shares}"
    # The same proposals and the same numbers, whichever worker trained a round.
    strip = {k: [t[:3] for t in v] for k, v in shared.items()}
    assert strip == {k: [t[:3] for t in v] for k, v in single.items()}

    reference = pd.read_csv(tmp_path / "alone" / "suite-pair" / "records.csv")
    for k in (1, 2):
        folder = tmp_path / f"machine{k}" / "suite-pair"
        state = _state(folder)
        assert {d: state["datasets"][d]["status"] for d in DATASETS} == dict.fromkeys(
            DATASETS, "done"
        )
        assert all(
            state["datasets"][d]["trials"] == dict.fromkeys([*FAMILIES, "baseline"], 2)
            for d in DATASETS
        )
        records = pd.read_csv(folder / "records.csv")
        pd.testing.assert_frame_equal(records, reference)
    _check_shared_state(storage, state["fingerprint"])
    _check_final_ran_once(storage)
    print(f"two machines and one process together: {wall:.0f} s; {shares}")


def _check_shared_state(storage: str, fingerprint: str) -> None:
    store = get_storage(storage)
    study_id = store.get_study_id_from_name(f"suite-pair-{fingerprint}")
    marks = {
        k[len(DONE_PREFIX) :]: v
        for k, v in store.get_study_user_attrs(study_id).items()
        if k.startswith(DONE_PREFIX)
    }
    assert set(marks) == set(DATASETS)
    claims = [s.study_name for s in store.get_all_studies() if ".r" in s.study_name]
    assert claims == [], "every round's claim was let go"


def _check_final_ran_once(storage: str) -> None:
    store = get_storage(storage)
    for summary in store.get_all_studies():
        if summary.study_name.endswith(".final"):
            study = optuna.load_study(study_name=summary.study_name, storage=store)
            names = [t.user_attrs["family"] for t in study.trials]
            assert len(names) == len(set(names)), f"{summary.study_name}: one trial a candidate"
            assert len({t.user_attrs[WORKER_ATTR] for t in study.trials}) == 1


@pytest.mark.slow
def test_two_processes_in_one_folder_share_its_suite_json(tmp_path: Path) -> None:
    """Same folder, same (sqlite) storage: both finish, each data set is done in suite.json
    with its run folder, and no family got more than its budget."""
    root = tmp_path / "sweeps"
    storage = f"sqlite:///{root}/optuna.db"
    get_storage(storage)  # created before both start: they resume it
    outs = _finish([_start(root, "suite.datasets=[iris]") for _ in range(2)])
    state = _state(root / "suite-pair")
    entry = state["datasets"]["iris"]
    assert entry["status"] == "done", outs
    assert (root / "suite-pair" / entry["run_dir"] / "summary.json").is_file()
    tuned = _tuning(storage, ("iris",))
    assert all([slot for slot, *_ in trials] == [0, 1] for trials in tuned.values())
    assert (root / "suite-pair" / "records.csv").is_file()
