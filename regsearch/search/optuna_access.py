"""The one place regsearch reaches into Optuna's private parts, and why each is needed.

Everything else in regsearch uses Optuna's public API: ``Study``, ``FrozenTrial`` and the
``BaseStorage`` methods (a study's storage is the one regsearch opened itself, see
:func:`regsearch.search.storage.get_storage`). Two things have no public form in Optuna 5.0:

- a trial's storage id (``FrozenTrial._trial_id``): the only key that orders a storage's trials
  as they were created, across workers; the public ``number`` is assigned per study;
- reading only the trials created after a given id (``RDBStorage._get_trials``): the
  incremental read Optuna's own cached storage uses. The public ``get_all_trials`` reads every
  row, every time: a shared study of thousands of trials would be read whole before each batch.

pyproject.toml bounds Optuna's major version for these two; the tests in
``tests/test_optuna_access.py`` check both against real sqlite, journal and in-memory storages.

Example:
    >>> import optuna
    >>> storage = optuna.storages.InMemoryStorage()
    >>> study = optuna.create_study(storage=storage)
    >>> study.add_trial(optuna.trial.create_trial(value=1.0))
    >>> study_id = storage.get_study_id_from_name(study.study_name)
    >>> [trial_id(t) for t in trials_after(storage, study_id, -1)]
    [0]
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial

__all__ = ["trial_id", "trials_after"]


def trial_id(trial: FrozenTrial) -> int:
    """The storage's id of ``trial``: unique in its storage and increasing in creation order.

    Optuna keeps it private (``FrozenTrial._trial_id``) and offers no accessor.
    """
    return int(trial._trial_id)


def trials_after(
    storage: optuna.storages.BaseStorage, study_id: int, after: int
) -> list[FrozenTrial]:
    """The trials of study ``study_id`` whose storage id is above ``after`` (all: ``-1``).

    Not deep-copied: callers must not change them. On an RDB storage only the newer rows are
    read (Optuna's private ``RDBStorage._get_trials``); other storages hold their trials in
    memory already and are read whole, through the public API, and filtered here.
    """
    if isinstance(storage, optuna.storages.RDBStorage):
        return list(storage._get_trials(study_id, None, set(), after))
    trials = storage.get_all_trials(study_id, deepcopy=False)
    return [t for t in trials if trial_id(t) > after]
