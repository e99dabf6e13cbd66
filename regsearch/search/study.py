"""Optuna study set-up (sampler, pruner, create or load) and the ask → train → tell loop.

The whole study runs inside one process: the first ``population`` trials are asked, their
members (trial × seed × fold) are handed to an engine in one call, and each trial is told its
mean objective over its members as soon as the last one is in. The engine's ``refill`` keeps
the stack full: slots freed by finished or pruned members get newly asked trials, so with a
pruner the sweep is an asynchronous successive-halving population. Intermediate values go to
the pruner through the engine's ``on_epoch``. Several studies (a compare sweep's families)
tune together: their members share the engine call (:func:`run_studies`).

Asking and telling happen on a :class:`~regsearch.search.working.WorkingStudy`, an in-memory
copy of the durable study; told trials are handed over for persistence at most once a second
(and when the engine call ends).
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
from optuna.exceptions import DuplicatedStudyError
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from regsearch.clock import Clock
from regsearch.config import ConfigError, SearchConfig
from regsearch.engine.members import OnEpoch, OnResult, Refill
from regsearch.records import EpochReport, Member, MemberResult, TrialOutcome
from regsearch.search.objective import Objective
from regsearch.search.space import SearchSpace
from regsearch.search.storage import get_storage
from regsearch.search.working import FINISHED, WorkingStudy

__all__ = [
    "StudyRun",
    "Tuning",
    "count_finished",
    "create_or_load",
    "enqueue_grid",
    "make_pruner",
    "make_sampler",
    "member_record",
    "run_studies",
]

log = logging.getLogger(__name__)

#: Seconds between looks at the storage while other workers' last trials are being written.
WAIT_S = 0.5
#: Seconds between handovers of told trials while an engine call runs.
HANDOVER_S = 1.0


class TrainFn(Protocol):
    """The engine call the loop makes (``Plan.train``; contract:
    :mod:`regsearch.engine.members`): the members asked so far, and hooks through which the
    engine asks for more as slots free up and reports each result as soon as it is final."""

    def __call__(
        self,
        members: list[Member],
        on_epoch: OnEpoch | None = None,
        *,
        refill: Refill | None = None,
        on_result: OnResult | None = None,
    ) -> list[MemberResult]: ...


MembersFn = Callable[[int, dict[str, Any]], list[Member]]


def make_sampler(
    search: SearchConfig, seed: int, space: SearchSpace
) -> optuna.samplers.BaseSampler:
    """The seeded sampler named by ``search.sampler``."""
    s = optuna.samplers
    if search.sampler == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return s.TPESampler(
                seed=seed,
                n_startup_trials=search.n_startup_trials,
                multivariate=True,
                group=True,  # conditional (flag) spaces: model each sub-space jointly
                constant_liar=search.population > 1,  # keep a batch of asked trials diverse
            )
    if search.sampler == "random":
        return s.RandomSampler(seed=seed)
    if search.sampler == "grid":
        # Optuna's GridSampler calls study.stop() when the grid is exhausted, which fails
        # outside study.optimize(); the grid is enqueued instead (enqueue_grid).
        return s.RandomSampler(seed=seed)
    if search.sampler == "cmaes":
        return s.CmaEsSampler(seed=seed, n_startup_trials=search.n_startup_trials)
    if search.sampler == "qmc":
        return s.QMCSampler(seed=seed)
    return s.NSGAIISampler(seed=seed, population_size=max(4, min(50, search.n_trials // 4)))


def enqueue_grid(
    study: optuna.Study, space: SearchSpace, points: int, seed: int, limit: int
) -> int:
    """Enqueue up to ``limit`` grid points not yet in ``study``, in a seeded order.

    Only what the budget will use is enqueued, so no WAITING trial is left behind.
    Returns the grid size.
    """
    grid = space.grid(points)
    names = list(grid)
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]
    random.Random(seed).shuffle(combos)
    seen = [
        t.params for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("interrupted")
    ]
    missing = [combo for combo in combos if combo not in seen]
    for combo in missing[: max(0, limit - count_finished(study))]:
        study.enqueue_trial(combo)
    return len(combos)


def make_pruner(
    search: SearchConfig, max_epochs: int, eval_every: int
) -> optuna.pruners.BasePruner:
    """The pruner named by ``search.pruner`` (steps are epochs)."""
    if search.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=search.n_startup_trials, n_warmup_steps=max_epochs // 10
        )
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=eval_every, max_resource=max_epochs)
    return optuna.pruners.NopPruner()


def create_or_load(
    name: str,
    storage_url: str,
    objective: Objective,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    *,
    resume: bool,
    must_be_new: bool,
) -> tuple[optuna.Study, bool]:
    """The study ``name``, and whether this call created it.

    Created when it does not exist; loaded when ``resume`` and it exists. Several workers
    starting together on one name race to create it: one does, the others load it. So a
    ``must_be_new`` name may be taken by a study without trials yet (the first worker of a
    shared study, started together with the others' ``search.resume=true``). A loaded study
    first closes trials a killed process left RUNNING (as interrupted failures, which resume
    redoes).

    Raises:
        ConfigError: The name is taken, by a study with trials if ``must_be_new``, or at all
            if neither ``must_be_new`` nor ``resume``.
    """
    storage = get_storage(storage_url)
    exists = name in {s.study_name for s in storage.get_all_studies()}
    if not exists:
        try:
            study = optuna.create_study(
                study_name=name,
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                directions=[optuna.study.StudyDirection[d.upper()] for d in objective.directions],
            )
            # The dashboard then shows "val_loss", not "Objective 0" (experimental since 3.2,
            # unchanged through 5.x: its warning says nothing a user can act on).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(objective.metrics))
            return study, True
        except DuplicatedStudyError:
            exists = True  # another worker created it a moment ago
    if must_be_new and _has_trials(storage, name):
        raise ConfigError(
            f"search.study_name={name!r}: already exists in {storage_url}; "
            "continue it with search.resume=true or choose another name"
        )
    if not resume and not must_be_new:
        raise ConfigError(
            f"study {name!r} already exists in {storage_url}; set search.resume=true to continue it"
        )
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    _close_stale(study, storage)
    return study, False


def _has_trials(storage: optuna.storages.BaseStorage, name: str) -> bool:
    return storage.get_n_trials(storage.get_study_id_from_name(name)) > 0


def _close_stale(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Trials left RUNNING by a killed process count as interrupted failures."""
    study_id = storage.get_study_id_from_name(study.study_name)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        stale = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(stale, "interrupted", True)
        study.tell(t.number, state=TrialState.FAIL)


def count_finished(study: optuna.Study) -> int:
    """Trials that ran to an end; interrupted ones do not count, so resume redoes them."""
    trials = study.get_trials(deepcopy=False, states=FINISHED)
    return sum(1 for t in trials if not t.user_attrs.get("interrupted"))


class _Pruning:
    """Routes each member's evaluations to its trial's pruner (first seed and fold decide).

    ``trials[member.trial]`` is the member's Optuna trial; ``trials`` and ``members`` are the
    engine call's own lists, which grow as trials are asked during the call.
    """

    def __init__(
        self,
        trials: Sequence[optuna.Trial],
        members: list[Member],
        objective: Objective,
        enabled: bool,
        every: int,
    ) -> None:
        self.trials, self.members, self.objective = trials, members, objective
        self.enabled, self.every = enabled, every
        self.pruned: set[int] = set()
        self.evals: dict[int, int] = {}

    def __call__(self, index: int, report: EpochReport) -> bool:
        member = self.members[index]
        if member.trial in self.pruned:
            return True
        if not self.enabled or member.repeat != 0 or member.fold not in (None, 0):
            return False
        count = self.evals[index] = self.evals.get(index, 0) + 1
        if count % self.every:
            return False
        trial = self.trials[member.trial]
        value = self.objective.intermediate(report)
        if not math.isfinite(value):
            return False  # the engine fails the member itself
        trial.report(value, step=report.epoch)
        if trial.should_prune():
            self.pruned.add(member.trial)
            return True
        return False


@dataclass(frozen=True)
class StudyRun:
    """One study of a tuning run: its working study, what it searches, its budget, and where
    its finished trials go.

    ``build_members(key, values)`` gives the members of one trial; ``key`` is the trial's place
    in its engine call (several studies' trials may share one call), not its Optuna number.
    ``on_batch`` gets the study's told trials at each handover (for the durable storage),
    each with its outcome (for tracking).
    """

    working: WorkingStudy
    space: SearchSpace
    n_trials: int
    family: str
    build_members: MembersFn
    on_batch: Callable[[list[tuple[FrozenTrial, TrialOutcome]]], None]


@dataclass(frozen=True)
class Tuning:
    """What the studies of one tuning run share: the engine call, the objective and limits."""

    population: int  # trials each study asks first (then as slots free up)
    objective: Objective
    train: TrainFn  # the engine call shared by the members of every study asking
    pruning: bool = False
    report_every: int = 1  # evaluations between intermediate values sent to the pruner
    timeout: float | None = None  # seconds; no trial is asked after it
    progress: bool = True  # a progress bar per study on stderr
    clock: Clock = field(default_factory=Clock)


def run_studies(runs: Sequence[StudyRun], tuning: Tuning) -> dict[str, list[TrialOutcome]]:
    """Ask, train and tell until every study holds its ``n_trials`` finished trials.

    Every study that still needs trials asks up to ``population`` of them; the members of all
    of them start in one engine call. When the engine takes ``refill`` and ``on_result`` (see
    :mod:`regsearch.engine.members`), the call keeps its stack full: each trial is told as soon
    as its last member's result is in (so the sampler sees it before the next ask), and slots
    freed by finished or pruned members are filled with newly asked whole trials, round-robin
    over the studies still asking, until the budgets or ``timeout`` are reached. With pruning
    this is asynchronous successive halving. An engine taking only ``(members, on_epoch)``
    trains in rounds of ``population`` trials instead.

    ``clock`` collects seconds spent in ``sampler`` (ask and suggest), ``train`` (the engine
    call, which includes the asks, tells and handovers made from its hooks), ``tell``, ``sync``
    (pulling other workers' trials) and ``handover``. A KeyboardInterrupt drops the trials in
    flight (they are never persisted, so a resume redoes them) and is re-raised.

    Returns:
        Each study's told outcomes, by family.
    """
    deadline = None if tuning.timeout is None else time.monotonic() + tuning.timeout
    jobs = [_Job(run, tuning, position) for position, run in enumerate(runs)]
    try:
        while deadline is None or time.monotonic() < deadline:
            with tuning.clock("sync"):
                sizes = [job.quota(tuning.population) for job in jobs]
            if all(size is None for size in sizes):
                break
            asking = [(job, size) for job, size in zip(jobs, sizes, strict=True) if size]
            if not asking:
                time.sleep(WAIT_S)  # other workers' last trials are on their way to the storage
                continue
            _Flight(jobs, tuning, deadline).run(asking)
    finally:
        for job in jobs:
            job.bar.close()
    return {job.run.family: job.outcomes for job in jobs}


class _Job:
    """One study's progress through a run: its finished trials, outcomes and progress bar."""

    def __init__(self, run: StudyRun, tuning: Tuning, position: int) -> None:
        self.run = run
        self.done = count_finished(run.working.study)
        self.in_flight = 0  # asked, not handed over yet
        self.width: int | None = None  # members per trial, known after the first ask
        self.outcomes: list[TrialOutcome] = []
        self.bar = _Progress(run, tuning.objective, tuning.progress, position)

    def quota(self, limit: int | None = None) -> int | None:
        """Trials to ask now (at most ``limit``): None once the study has its budget, 0 while
        its last trials are in flight here or being written by other workers."""
        if limit is None and self.run.n_trials - self.done - self.in_flight <= 0:
            # Nothing to ask whatever the storage says (other workers only add finished
            # trials): skip its reads, which a refill at every evaluation would repeat.
            return None if self.done >= self.run.n_trials else 0
        self.done += self.run.working.pull()
        if self.done >= self.run.n_trials:
            return None
        elsewhere = self.run.working.in_flight_elsewhere()
        left = self.run.n_trials - self.done - elsewhere - self.in_flight
        return max(0, left if limit is None else min(limit, left))

    def hand_over(self, told: list[TrialOutcome], clock: Clock, before: int | None) -> None:
        """Send finished trials (all numbered below ``before``) on (``on_batch``), count them."""
        with clock("handover"):
            by_number = {o.number: o for o in told}
            handed = self.run.working.handover(before)
            self.run.on_batch([(t, by_number[t.number]) for t in handed])
        self.outcomes += told
        self.done += len(told)
        self.bar.advance(len(told))


class _Progress:
    """The progress bar: finished trials, and the best score so far (:meth:`Objective.best`)."""

    def __init__(self, run: StudyRun, objective: Objective, enabled: bool, position: int) -> None:
        self.study, self.objective = run.working.study, objective
        self.bar = tqdm(
            total=run.n_trials,
            initial=min(count_finished(self.study), run.n_trials),
            desc=run.family,
            unit="trial",
            disable=not enabled,
            leave=True,
            dynamic_ncols=True,
            position=position,  # several studies tune together: one line each
        )

    def advance(self, n: int) -> None:
        """Count ``n`` more finished trials and show the best one."""
        self.bar.update(n)
        if self.bar.disable:
            return
        best = self.objective.best(self.study.get_trials(deepcopy=False))
        self.bar.set_postfix_str(
            f"best {self.objective.metrics[0]} {best.values[0]:.4g}"
            if best is not None
            else "no complete trial yet"
        )

    def close(self) -> None:
        self.bar.close()


@dataclass
class _Asked:
    """A trial in flight: its study's job, the Optuna trial and its sampled values."""

    job: _Job
    trial: optuna.Trial
    values: dict[str, Any]
    width: int  # its members
    told: bool = False


class _Flight:
    """One engine call: its trials and members, which grow as ``refill`` asks more.

    A member's ``trial`` is its trial's place in ``asked`` (the key results are collected
    under), and the engine's index of a member is its place in ``members``: members are
    appended in exactly the order they are handed to the engine.
    """

    def __init__(self, jobs: list[_Job], tuning: Tuning, deadline: float | None) -> None:
        self.jobs, self.tuning, self.deadline = jobs, tuning, deadline
        self.asked: list[_Asked] = []
        self.trials: list[optuna.Trial] = []
        self.members: list[Member] = []
        self.results: dict[int, dict[int, MemberResult]] = {}  # key → engine index → result
        self.turn = 0  # where the next round-robin pass over the studies starts
        self.pending: dict[_Job, list[TrialOutcome]] = {}  # told, not handed over yet
        self.handed_at = time.monotonic()
        self.router = _Pruning(
            self.trials, self.members, tuning.objective, tuning.pruning, tuning.report_every
        )

    def run(self, asking: list[tuple[_Job, int]]) -> None:
        """Ask the first trials, train (refilling when the engine can), tell every trial.

        A KeyboardInterrupt fails the trials not told yet (marked interrupted), re-raised.
        """
        try:
            with self.tuning.clock("sampler"):
                first = [m for job, size in asking for _ in range(size) for m in self._ask(job)]
            with self.tuning.clock("train"):
                results = self.tuning.train(
                    first, self.router, refill=self.refill, on_result=self.on_result
                )
            # Trials on_result missed (none, by the engine contract) are told from the list.
            for index, result in enumerate(results):
                if not self.asked[result.member.trial].told:
                    self.on_result(index, result)
            self.hand_over(force=True)
        except KeyboardInterrupt:
            for a in self.asked:
                if not a.told:
                    a.trial.set_user_attr("interrupted", True)
                    a.job.run.working.study.tell(a.trial, state=TrialState.FAIL)
            raise

    def _ask(self, job: _Job) -> list[Member]:
        """Ask one trial of ``job``'s study; its members, appended to ``members``."""
        trial = job.run.working.study.ask()
        values = job.run.space.suggest(trial)
        key = len(self.asked)
        members = job.run.build_members(key, values)
        self.asked.append(_Asked(job, trial, values, len(members)))
        self.trials.append(trial)
        self.members.extend(members)
        self.results[key] = {}
        job.in_flight += 1
        job.width = len(members)
        return members

    def refill(self, free: int) -> list[Member]:
        """Whole new trials for ``free`` slots, round-robin over the studies still asking;
        [] after the deadline or once no study has a trial left to ask."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return []
        fits = [job for job in self.jobs if job.width is None or job.width <= free]
        if not fits:
            return []  # no whole trial fits: wait for more slots (saves the storage reads)
        if any(job.run.n_trials > job.done + job.in_flight for job in fits):
            # Before asking, publish what was told: workers sharing a study count it
            # (in_flight_elsewhere); unpublished, their asks would overrun n_trials.
            self.hand_over(force=True)
        with self.tuning.clock("sync"):
            quotas = {job: job.quota() or 0 for job in fits}
        new: list[Member] = []
        idle, turn = 0, self.turn
        with self.tuning.clock("sampler"):
            while idle < len(fits):  # until a whole pass asks nothing
                job = fits[turn % len(fits)]
                turn += 1
                if quotas[job] > 0 and (job.width is None or job.width <= free):
                    members = self._ask(job)
                    new += members
                    free -= len(members)
                    quotas[job] -= 1
                    idle = 0
                else:
                    idle += 1
        self.turn = turn
        return new

    def on_result(self, index: int, result: MemberResult) -> None:
        """Collect a member's result; tell and hand over its trial once all are in."""
        key = self.members[index].trial
        self.results[key][index] = result
        a = self.asked[key]
        if a.told or len(self.results[key]) < a.width:
            return
        # Member order (seed, fold), not arrival order: the same records and float sums as
        # when the whole trial finishes at once.
        results = [self.results[key][i] for i in sorted(self.results[key])]
        with self.tuning.clock("tell"):
            outcome = _tell(a, results, self.tuning.objective, key in self.router.pruned)
        a.told = True
        self.pending.setdefault(a.job, []).append(outcome)
        self.hand_over(force=False)

    def hand_over(self, force: bool) -> None:
        """Hand the told trials over, at most every ``HANDOVER_S`` unless ``force``: each
        handover writes to the storage (~50 ms on sqlite), trials may finish one at a time."""
        if not force and time.monotonic() - self.handed_at < HANDOVER_S:
            return
        self.handed_at = time.monotonic()
        for job, told in self.pending.items():
            # In ask order only: a trial told before an earlier one of its study (stopped
            # early, pruned) waits for it, so the durable study numbers trials as they were
            # asked, whatever the timing (same seed, same trial numbers).
            open_numbers = [a.trial.number for a in self.asked if a.job is job and not a.told]
            before = min(open_numbers, default=None)
            ready = [o for o in told if before is None or o.number < before]
            if ready:
                job.in_flight -= len(ready)  # counted in flight until counted done: no overshoot
                job.hand_over(ready, self.tuning.clock, before)
            told[:] = [o for o in told if before is not None and o.number >= before]
        self.pending = {job: told for job, told in self.pending.items() if told}


def _tell(
    asked: _Asked, results: list[MemberResult], objective: Objective, pruned: bool
) -> TrialOutcome:
    """Tell a trial its state (failed, pruned or complete, in that order) and its values."""
    study, trial, params = asked.job.run.working.study, asked.trial, asked.values
    family = asked.job.run.family
    trial.set_user_attr("family", family)
    trial.set_user_attr("members", [member_record(r) for r in results])
    failed = [r for r in results if r.state == "failed"]
    if failed:
        error = failed[0].error
        trial.set_user_attr("error", error)
        study.tell(trial, state=TrialState.FAIL)
        return TrialOutcome(trial.number, params, "failed", None, results, family, error=error)
    if pruned:
        study.tell(trial, state=TrialState.PRUNED)
        return TrialOutcome(trial.number, params, "pruned", None, results, family)
    values = objective.values(results)
    study.tell(trial, values)
    return TrialOutcome(trial.number, params, "complete", values, results, family)


def member_record(result: MemberResult) -> dict[str, Any]:
    """A member's final numbers as JSON-safe data (NaN → None), stored on the Optuna trial."""
    record: dict[str, Any] = {
        "seed": result.member.seed,
        "fold": -1 if result.member.fold is None else result.member.fold,
        "state": result.state,
        **result.final,
        "best_epoch": result.best_epoch,
        "stopped_epoch": result.stopped_epoch,
        "weight_norm": result.weight_norm,
        "sparsity": result.sparsity,
        **result.by_layer,
        "duration_s": result.duration_s,
    }
    if result.error:
        record["error"] = result.error
    if result.epochs:
        # Curves ride along so the tables and figures can be rebuilt from the storage alone.
        record["curves"] = {"epoch": result.epochs, **result.curves}
    return {k: _json_safe(v) for k, v in record.items()}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
