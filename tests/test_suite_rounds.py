"""The pieces of a suite shared by workers, on real sqlite storages: rounds and their claims,
the ledger of slots, the suite's state in the storage and ``suite.json`` shared by processes."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from regsearch.search.claims import HOLDER, claim
from regsearch.search.objective import Objective
from regsearch.search.storage import get_storage
from regsearch.search.working import WORKER_ATTR, WorkingStudy
from regsearch.suite.rounds import SLOT_ATTR, Ledger, _claim_round, round_claim, round_slots
from regsearch.suite.shared import DoneMark, SharedState
from regsearch.suite.state import SuiteState
from tests.conftest import join_study

OBJECTIVE = Objective(("val_loss",), ("minimize",))


def test_rounds_cut_a_budget_into_consecutive_slots() -> None:
    assert [list(r) for r in round_slots(12, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert [list(r) for r in round_slots(2, 4)] == [[0, 1]]
    assert [list(r) for r in round_slots(3, 1)] == [[0], [1], [2]]


def _trial(slot: int | None, value: float, **attrs: object) -> optuna.trial.FrozenTrial:
    user_attrs = {**attrs, WORKER_ATTR: "w"} | ({} if slot is None else {SLOT_ATTR: slot})
    return optuna.trial.create_trial(
        value=value,
        params={"x": value},
        distributions={"x": optuna.distributions.FloatDistribution(0, 10)},
        user_attrs=user_attrs,
    )


def _working(tmp_path: Path) -> WorkingStudy:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    return join_study(storage, "s.l2", OBJECTIVE, optuna.samplers.RandomSampler(seed=0))


def test_the_ledger_counts_one_trial_a_slot_the_first_written(tmp_path: Path) -> None:
    working = _working(tmp_path)
    ledger = Ledger(working, round_slots(4, 2))
    working.durable.add_trials([_trial(0, 1.0), _trial(1, 2.0)])
    ledger.refresh()
    assert ledger.complete(0) and ledger.next_round() == 1
    # A slot written twice (a round taken over after a crash), an interrupted trial and one
    # without a slot: none adds a trial, and slot 1 keeps its first copy.
    working.durable.add_trials(
        [_trial(1, 9.0), _trial(2, 3.0, interrupted=True), _trial(None, 4.0)]
    )
    ledger.refresh()
    assert [t.value for t in ledger.trials(2)] == [1.0, 2.0]
    assert ledger.next_round() == 1 and not ledger.complete(1)
    working.durable.add_trials([_trial(3, 5.0), _trial(2, 6.0)])
    ledger.refresh()
    assert ledger.next_round() is None
    assert [t.user_attrs[SLOT_ATTR] for t in ledger.trials(4)] == [0, 1, 2, 3]


def test_a_round_claim_is_held_once_and_a_dead_holders_taken_over(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    name = round_claim("suite-x-1234abcd-iris.l2", 1)
    assert name == "suite-x-1234abcd-iris.l2.r1.claim"
    assert _claim_round(storage, name, "a").mine
    held = _claim_round(storage, name, "b")
    assert not held.mine and held.worker == "a"  # this (live) process holds it for "a"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          text=True, capture_output=True, check=True)  # fmt: skip
    store = get_storage(storage)
    study_id = store.get_study_id_from_name(name)
    holder = store.get_study_user_attrs(study_id)[HOLDER]
    store.set_study_user_attr(study_id, HOLDER, {**holder, "pid": int(dead.stdout)})
    taken = _claim_round(storage, name, "b")
    assert taken.mine and taken.worker == "b"
    assert not claim(storage, name, "c").mine


def test_the_shared_state_tells_every_worker_which_data_sets_are_done(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/optuna.db"
    one = SharedState.open(storage, "suite-x-1234abcd", {"seed": "0"})
    two = SharedState.open(storage, "suite-x-1234abcd", {"seed": "0"})  # joins, not a new one
    assert one.study_id == two.study_id and one.marks() == {}
    one.mark_done(DoneMark.here("iris", "w1", "/m1/suite-x", "compare-keel-iris/1"))
    two.mark_done(DoneMark.here("sonar", "w2", "/m2/suite-x", "compare-keel-sonar/1"))
    marks = SharedState.open(storage, "suite-x-1234abcd", {}).marks()
    assert {d: m.worker for d, m in marks.items()} == {"iris": "w1", "sonar": "w2"}
    assert marks["sonar"].where.startswith("/m2/suite-x/compare-keel-sonar/1 on ")


def _finished_run(folder: Path, name: str) -> str:
    run_dir = f"compare-keel-{name}/1"
    (folder / run_dir).mkdir(parents=True)
    (folder / run_dir / "summary.json").write_text("{}")
    return run_dir


def test_two_processes_in_one_folder_keep_each_others_entries(tmp_path: Path) -> None:
    """What a second suite process in the same folder used to undo: the other's entries."""
    folder = tmp_path / "suite-x"
    a = SuiteState(folder, {"name": "x", "fingerprint": "f"})
    b = SuiteState(folder, {"name": "x", "fingerprint": "f"})
    a.save()
    b.save()
    a.mark("iris", status="running")
    b.mark("sonar", status="running")
    a.mark("iris", status="done", run_dir=_finished_run(folder, "iris"))
    b.mark("iris", status="incomplete", run_dir="compare-keel-iris/2")  # lost the final phase
    b.mark("sonar", status="done", run_dir=_finished_run(folder, "sonar"))
    on_disk = json.loads((folder / "suite.json").read_text())["datasets"]
    assert {d: e["status"] for d, e in on_disk.items()} == {"iris": "done", "sonar": "done"}
    assert on_disk["iris"]["run_dir"] == "compare-keel-iris/1"
    a.reload()
    assert a.done("iris") and a.done("sonar")


def _mark_many(folder: Path, tag: str) -> None:
    state = SuiteState(folder, {"name": "x"})
    for i in range(20):
        state.mark(f"{tag}{i}", status="running")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_suite_json_writes_of_many_processes_all_land(tmp_path: Path) -> None:
    folder = tmp_path / "suite-x"
    ctx = mp.get_context("fork")  # forked: no interpreter start-up per process
    procs = [ctx.Process(target=_mark_many, args=(folder, tag)) for tag in ("a", "b", "c")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    entries = json.loads((folder / "suite.json").read_text())["datasets"]
    assert len(entries) == 60


def test_a_suite_folder_tuned_before_rounds_is_refused_with_what_to_do(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from regsearch.config import ConfigError
    from regsearch.suite.state import open_state, suite_fingerprint

    folder = tmp_path / "suite-x"
    folder.mkdir()
    old = {"name": "x", "fingerprint": "0ea3dea2", "settings": {"seed": "0"}}
    (folder / "suite.json").write_text(json.dumps(old))
    fp = suite_fingerprint(OmegaConf.create({"seed": 0}))
    with pytest.raises(ConfigError, match=r"tuned by an older regsearch .* suite\.name=<new"):
        open_state(folder, "x", fp)
