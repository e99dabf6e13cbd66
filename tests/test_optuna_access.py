"""regsearch.search.optuna_access: Optuna's private parts, checked against real storages.

Each private accessor is compared with what Optuna's public API says about the same trials,
so an Optuna release that changes them fails here, not in a sweep.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.storages.journal import JournalFileBackend

from regsearch.search.optuna_access import trial_id, trials_after


def _storage(kind: str, tmp_path: Path) -> optuna.storages.BaseStorage:
    if kind == "sqlite":
        return optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/o.db")
    if kind == "journal":
        return optuna.storages.JournalStorage(JournalFileBackend(str(tmp_path / "o.journal")))
    return optuna.storages.InMemoryStorage()


def _add(study: optuna.Study, values: list[float]) -> None:
    for value in values:
        study.add_trial(optuna.trial.create_trial(value=value))


@pytest.fixture(params=["sqlite", "journal", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> optuna.storages.BaseStorage:
    return _storage(request.param, tmp_path)


def test_trial_id_is_the_id_the_public_api_gives_for_the_trial_number(
    storage: optuna.storages.BaseStorage,
) -> None:
    a = optuna.create_study(study_name="a", storage=storage)
    b = optuna.create_study(study_name="b", storage=storage)
    _add(a, [1.0])
    _add(b, [2.0, 3.0])  # ids are global to the storage, numbers per study
    _add(a, [4.0])
    for study in (a, b):
        study_id = storage.get_study_id_from_name(study.study_name)
        for t in study.get_trials(deepcopy=False):
            public = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
            assert trial_id(t) == public
    assert [t.number for t in a.trials] == [0, 1]
    assert trial_id(a.trials[1]) > trial_id(b.trials[1]), "ids grow in creation order"


def test_trials_after_reads_only_newer_trials_of_one_study(
    storage: optuna.storages.BaseStorage,
) -> None:
    a = optuna.create_study(study_name="a", storage=storage)
    b = optuna.create_study(study_name="b", storage=storage)
    a_id = storage.get_study_id_from_name("a")
    _add(a, [1.0, 2.0])
    _add(b, [9.0])
    first = trials_after(storage, a_id, -1)
    assert [t.value for t in first] == [1.0, 2.0]
    last = max(trial_id(t) for t in first)
    assert trials_after(storage, a_id, last) == []
    _add(b, [9.0])
    _add(a, [3.0])
    newer = trials_after(storage, a_id, last)
    assert [(t.number, t.value) for t in newer] == [(2, 3.0)], "b's trials never show up"
    assert [t.number for t in trials_after(storage, a_id, -1)] == [0, 1, 2]
