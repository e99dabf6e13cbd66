"""The suite's state in its Optuna storage: which data sets are done, for every worker.

Workers of one suite (processes or machines running the same command with one shared
``search.storage``, each maybe with its own ``paths.root``) cannot learn from each other's
``suite.json``. They share the storage, so the suite keeps its state there: an empty study
``suite-<name>-<fingerprint>`` whose user attribute ``done:<data set>`` is written by each
worker that finishes that data set with its complete comparison (which worker, on which host,
in which folder). One attribute per data set: workers never overwrite each other's entries,
and two that finish one data set write the same fact. ``suite.json`` mirrors it locally
(:mod:`regsearch.suite.state`).

Example:
    >>> shared = SharedState.open("sqlite:///sweeps/optuna.db", "suite-keel12-1a2b3c4d",
    ...                           {"seed": "0"})  # doctest: +SKIP
    >>> shared.marks()["sonar"].worker  # doctest: +SKIP
    'host-123-abcdef'
"""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError

from regsearch.search.storage import get_storage

__all__ = ["DONE_PREFIX", "SETTINGS_ATTR", "DoneMark", "SharedState"]

#: ``done:<data set>`` = a :class:`DoneMark` as a dict.
DONE_PREFIX = "done:"
#: The suite's fingerprinted settings, for whoever reads the storage (the dashboard).
SETTINGS_ATTR = "regsearch.suite.settings"


@dataclass(frozen=True)
class DoneMark:
    """A data set finished with its complete comparison: by which worker, and where."""

    dataset: str
    worker: str
    host: str
    folder: str  # that worker's suite folder (on its host)
    run_dir: str  # the data set's run folder there, relative to ``folder``
    at: str

    @classmethod
    def here(cls, dataset: str, worker: str, folder: str, run_dir: str) -> DoneMark:
        """A mark made by this process now."""
        now = datetime.now().isoformat(timespec="seconds")
        return cls(dataset, worker, socket.gethostname(), folder, run_dir, now)

    @property
    def where(self) -> str:
        """The run folder, with its host."""
        return f"{self.folder}/{self.run_dir} on {self.host}"


class SharedState:
    """The suite's study in the shared storage (see the module docstring)."""

    def __init__(self, storage_url: str, name: str, study_id: int) -> None:
        self.url, self.name, self.study_id = storage_url, name, study_id

    @classmethod
    def open(cls, storage_url: str, name: str, settings: dict[str, str]) -> SharedState:
        """The suite's study ``name``, created when missing (workers starting together: one
        creates it, the others load it)."""
        storage = get_storage(storage_url)
        try:
            study_id = storage.create_new_study([optuna.study.StudyDirection.MINIMIZE], name)
            storage.set_study_user_attr(study_id, SETTINGS_ATTR, settings)
        except DuplicatedStudyError:
            study_id = storage.get_study_id_from_name(name)
        return cls(storage_url, name, study_id)

    def marks(self) -> dict[str, DoneMark]:
        """Data set → its mark, for every data set some worker finished."""
        attrs = get_storage(self.url).get_study_user_attrs(self.study_id)
        return {
            key[len(DONE_PREFIX) :]: _mark(value)
            for key, value in attrs.items()
            if key.startswith(DONE_PREFIX) and isinstance(value, dict)
        }

    def mark_done(self, mark: DoneMark) -> None:
        """Record that ``mark.dataset`` is done (its own attribute: no other entry changes)."""
        storage = get_storage(self.url)
        key = f"{DONE_PREFIX}{mark.dataset}"
        storage.set_study_user_attr(self.study_id, key, dataclasses.asdict(mark))


def _mark(value: dict[str, Any]) -> DoneMark:
    names = [f.name for f in dataclasses.fields(DoneMark)]
    return DoneMark(**{n: str(value.get(n, "")) for n in names})
