"""The in-memory working copy of a durable Optuna study, for fast asks and batched persistence.

Asking and telling on an RDB storage costs ~34 ms per TPE trial on sqlite (ask, each suggest,
each user attr and tell are separate transactions) against ~1.6 ms in memory. So a sweep asks
and tells on a :class:`WorkingStudy`; once per batch it hands the finished trials over to be
written to the durable study (by the recorder process) and pulls in what other workers
finished meanwhile. See benchmarks/README.md for the measurements.
"""

from __future__ import annotations

import uuid

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["FINISHED", "WORKER_ATTR", "WorkingStudy"]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
WORKER_ATTR = "worker"  # which sweep process finished a trial (pull skips its own)


class WorkingStudy:
    """An in-memory study that asks and tells for a durable one.

    ``study`` (in memory) holds the durable study's finished trials, this process's trials and
    those other workers finished (pulled before each batch). :meth:`handover` returns this
    process's newly finished trials for persistence; numbers in the durable study are assigned
    when they are written there and may differ from ``study``'s when several workers share it.
    """

    def __init__(
        self,
        durable: optuna.Study,
        sampler: optuna.samplers.BaseSampler,
        pruner: optuna.pruners.BasePruner,
    ) -> None:
        self.durable = durable
        self.worker = uuid.uuid4().hex
        self.study = optuna.create_study(
            study_name=durable.study_name,
            sampler=sampler,
            pruner=pruner,
            directions=durable.directions,
        )
        self._seen: set[int] = set()  # durable trial ids already copied in
        self._handed: set[int] = set()  # our trial numbers (in ``study``) already handed over
        self._sent = 0
        self._pull(self._durable_finished())

    @property
    def name(self) -> str:
        return self.study.study_name

    def pull(self) -> int:
        """Copy in trials other workers finished since the last pull; returns how many count
        toward ``n_trials`` (interrupted ones do not)."""
        total = self.durable._storage.get_n_trials(self.durable._study_id)
        if total <= len(self._seen) + self._sent:
            return 0  # nothing new (a cheap COUNT instead of reading every trial)
        return self._pull(self._durable_finished())

    def _durable_finished(self) -> list[FrozenTrial]:
        return self.durable.get_trials(deepcopy=False, states=FINISHED)

    def _pull(self, trials: list[FrozenTrial]) -> int:
        new = [
            t
            for t in trials
            if t._trial_id not in self._seen and t.user_attrs.get(WORKER_ATTR) != self.worker
        ]
        self._seen.update(t._trial_id for t in new)
        first = len(self.study.get_trials(deepcopy=False))
        self.study.add_trials(new)
        self._handed.update(range(first, first + len(new)))  # not ours: never handed over
        return sum(1 for t in new if not t.user_attrs.get("interrupted"))

    def handover(self) -> list[FrozenTrial]:
        """This process's finished trials not handed over yet, in order, stamped with the worker."""
        out = []
        for t in self.study.get_trials(deepcopy=False, states=FINISHED):
            if t.number in self._handed or t.user_attrs.get("interrupted"):
                continue
            self._handed.add(t.number)
            copy = FrozenTrial(
                number=t.number,
                state=t.state,
                value=None,
                values=t.values,
                datetime_start=t.datetime_start,
                datetime_complete=t.datetime_complete,
                params=t.params,
                distributions=t.distributions,
                user_attrs={**t.user_attrs, WORKER_ATTR: self.worker},
                system_attrs=t.system_attrs,
                intermediate_values=t.intermediate_values,
                trial_id=t._trial_id,
            )
            out.append(copy)
        self._sent += len(out)
        return out
