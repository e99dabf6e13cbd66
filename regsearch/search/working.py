"""The in-memory working copy of a durable Optuna study, for fast asks and batched persistence.

Asking and telling on an RDB storage costs ~34 ms per TPE trial on sqlite (ask, each suggest,
each user attr and tell are separate transactions) against ~1.6 ms in memory. So a sweep asks
and tells on a :class:`WorkingStudy`; once per batch it hands the finished trials over to be
written to the durable study (by the recorder process) and pulls in what other workers
finished meanwhile. See benchmarks/README.md for the measurements.

Several workers (processes, maybe on several machines) may share one durable study. Each sweep
run has a worker id (:func:`new_worker_id`: host, pid and a nonce), stamped on every trial it
hands over, and a sampler stream of its own (:func:`worker_seed`), so that equal histories do
not give equal proposals.
"""

from __future__ import annotations

import copy
import hashlib
import os
import socket
import time
import uuid
from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState

from regsearch.search.optuna_access import trial_id, trials_after

__all__ = [
    "FINISHED",
    "LIVE_S",
    "TOLD_PREFIX",
    "WORKER_ATTR",
    "WorkingStudy",
    "new_worker_id",
    "worker_seed",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
WORKER_ATTR = "worker"  # which sweep process finished a trial (pull skips its own)
#: Study user attr ``told:<worker>`` = [trials that worker has finished, unix time]: written by
#: the worker itself at each handover, before its recorder writes the trials, so others know
#: what is on its way to the storage.
TOLD_PREFIX = "told:"
#: A ``told`` entry older than this is ignored: its worker died (kill -9) or stopped, and
#: trials it told but never wrote must not hold other workers back for longer.
LIVE_S = 60.0


def new_worker_id() -> str:
    """A fresh worker id, readable in logs: ``<host>-<pid>-<6 hex digits>``."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def worker_seed(seed: int, worker: str) -> int:
    """A sampler seed of this worker's own, derived from the sweep's ``seed``.

    Workers joining a shared study must not share a sampler stream: with equal histories
    (they pull each other's trials) equal seeds propose equal parameters. Member seeds are
    not affected (they stay ``seed + repeat``, so trials stay comparable across workers).

    Example:
        >>> worker_seed(0, "host-1-abc") == worker_seed(0, "host-2-abc")
        False
    """
    digest = hashlib.sha256(f"{seed}:{worker}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class WorkingStudy:
    """An in-memory study that asks and tells for a durable one.

    ``study`` (in memory) holds the durable study's finished trials, this process's trials and
    those other workers finished (pulled before each batch). :meth:`handover` returns this
    process's newly finished trials for persistence; numbers in the durable study are assigned
    when they are written there and may differ from ``study``'s when several workers share it.

    How a pull knows there is something new without reading every trial: it counts the
    durable study's trials (one ``COUNT``) and compares that with the durable trials it has
    *read* so far, its own written ones included (``_known``). Equal counts mean nothing new;
    otherwise it reads only the trials past the highest id it has read (RDB storages) and, if
    the counts still differ (a trial committed late under a lower id), everything once.
    Comparing against trials merely *handed over* would be wrong: while this worker's
    recorder is behind, as many of other workers' trials would stay invisible.

    Args:
        durable: The durable study, as :func:`~regsearch.search.study.create_or_load` gives it.
        storage: The storage ``durable`` was opened on (``get_storage(url)``); Optuna's
            ``Study`` keeps its storage private, so it is passed along.
        sampler: Asks in ``study``; seeded per worker (:func:`worker_seed`) when joining.
        pruner: Prunes in ``study``.
        worker: This sweep's worker id (default: a new one).
        key: The in-memory copy's study name (default: the durable study's). Optuna's
            Hyperband pruner puts a trial in a bracket by hashing the study name with the
            trial number, so a name that carries a timestamp would prune a rerun with the
            same seed differently; a stable key keeps reruns reproducible.
    """

    def __init__(
        self,
        durable: optuna.Study,
        storage: optuna.storages.BaseStorage,
        sampler: optuna.samplers.BaseSampler,
        pruner: optuna.pruners.BasePruner,
        worker: str | None = None,
        key: str | None = None,
    ) -> None:
        self.durable = durable
        self.storage = storage
        self.study_id = storage.get_study_id_from_name(durable.study_name)
        self.worker = worker or new_worker_id()
        self.study = optuna.create_study(
            study_name=key or durable.study_name,
            sampler=sampler,
            pruner=pruner,
            directions=durable.directions,
        )
        self._known: set[int] = set()  # durable trial ids read (any worker, any state)
        self._last_id = -1  # the highest of them
        self._handed: set[int] = set()  # our trial numbers (in ``study``) already handed over
        self._told = 0  # our finished trials handed over (each counts toward n_trials)
        self._pulled: Counter[str] = Counter()  # counting trials pulled, per other worker
        self._pull(self._read(everything=True))

    @property
    def name(self) -> str:
        """The durable study's name."""
        return self.durable.study_name

    def pull(self) -> int:
        """Copy in trials other workers finished since the last pull; returns how many count
        toward ``n_trials`` (interrupted ones do not)."""
        total = self.storage.get_n_trials(self.study_id)
        if total <= len(self._known):
            return 0  # nothing new (a cheap COUNT instead of reading every trial)
        added = self._pull(self._read(everything=False))
        if len(self._known) < total:  # committed late under an id below the last one read
            added += self._pull(self._read(everything=True))
        return added

    def _read(self, everything: bool) -> list[FrozenTrial]:
        return trials_after(self.storage, self.study_id, -1 if everything else self._last_id)

    def _pull(self, trials: list[FrozenTrial]) -> int:
        new = [t for t in trials if trial_id(t) not in self._known]
        self._known.update(trial_id(t) for t in new)
        self._last_id = max([self._last_id, *(trial_id(t) for t in new)])
        # Workers write finished trials only; one left RUNNING by a killed process is closed
        # as interrupted when a worker resumes, and interrupted trials never count anyway.
        theirs = [
            t for t in new if t.state in FINISHED and t.user_attrs.get(WORKER_ATTR) != self.worker
        ]
        first = len(self.study.get_trials(deepcopy=False))
        self.study.add_trials(theirs)
        self._handed.update(range(first, first + len(theirs)))  # not ours: never handed over
        counting = [t for t in theirs if not t.user_attrs.get("interrupted")]
        self._pulled.update(str(t.user_attrs.get(WORKER_ATTR, "")) for t in counting)
        return len(counting)

    def in_flight_elsewhere(self) -> int:
        """Trials other live workers have finished that are not in the durable study yet.

        Their recorders write them a little later (seconds at start-up); counting them keeps a
        shared study from overrunning ``n_trials`` by the batches still being written.
        """
        attrs = self.storage.get_study_user_attrs(self.study_id)
        now = time.time()
        pending = 0
        for key, value in attrs.items():
            worker = key[len(TOLD_PREFIX) :]
            if not key.startswith(TOLD_PREFIX) or worker == self.worker:
                continue
            told, stamp = value
            if now - float(stamp) < LIVE_S:
                pending += max(0, int(told) - self._pulled[worker])
        return pending

    def _publish(self) -> None:
        """Say how many trials this worker has finished (before its recorder writes them)."""
        key = f"{TOLD_PREFIX}{self.worker}"
        self.storage.set_study_user_attr(self.study_id, key, [self._told, time.time()])

    def handover(self, before: int | None = None) -> list[FrozenTrial]:
        """This process's finished trials not handed over yet, in order, stamped with the worker;
        only those numbered below ``before`` when given."""
        out = []
        for t in self.study.get_trials(deepcopy=False, states=FINISHED):
            if t.number in self._handed or t.user_attrs.get("interrupted"):
                continue
            if before is not None and t.number >= before:
                continue
            self._handed.add(t.number)
            # A shallow copy with its own user attrs: the stamp must not change ``study``.
            stamped = copy.copy(t)
            stamped.user_attrs = {**t.user_attrs, WORKER_ATTR: self.worker}
            out.append(stamped)
        if out:
            self._told += len(out)
            self._publish()
        return out
