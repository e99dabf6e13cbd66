"""Optuna study set-up (sampler, pruner, create or load) and the ask → train → tell loop.

The whole study runs inside one process: trials are asked in batches of ``population``, their
members (trial × seed) are handed to an engine in one call, and each trial is told its mean
objective over seeds. Intermediate values go to the pruner through the engine's ``on_epoch``.

Asking and telling happen on a :class:`~regsearch.search.working.WorkingStudy`, an in-memory
copy of the durable study; finished trials are handed over once per batch for persistence.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from regsearch.clock import Clock
from regsearch.config import ConfigError, SearchConfig
from regsearch.engine.members import OnEpoch
from regsearch.records import EpochReport, Member, MemberResult, TrialOutcome
from regsearch.search.space import SearchSpace
from regsearch.search.storage import get_storage
from regsearch.search.working import FINISHED, WorkingStudy

__all__ = [
    "Objective",
    "count_finished",
    "create_or_load",
    "enqueue_grid",
    "get_storage",
    "make_pruner",
    "make_sampler",
    "member_record",
    "open_study",
    "run_trials",
]

log = logging.getLogger(__name__)

#: Seconds between looks at the storage while other workers' last trials are being written.
WAIT_S = 0.5

TrainFn = Callable[[list[Member], OnEpoch], list[MemberResult]]
MembersFn = Callable[[int, dict[str, Any]], list[Member]]


@dataclass(frozen=True)
class Objective:
    """What the study optimizes: one metric, or (metric, gap) for nsga2."""

    metrics: tuple[str, ...]
    directions: tuple[str, ...]

    @classmethod
    def from_config(cls, search: SearchConfig, classification: bool) -> Objective:
        if search.metric.endswith("_acc") and not classification:
            raise ConfigError(
                f"search.metric={search.metric!r}: accuracy needs a classification task; "
                "use val_loss or gap_loss"
            )
        direction = "maximize" if search.metric == "val_acc" else "minimize"
        if search.sampler != "nsga2":
            return cls((search.metric,), (direction,))
        gap = "gap_acc" if classification else "gap_loss"
        return cls((search.metric, gap), (direction, "minimize"))

    def values(self, results: Sequence[MemberResult]) -> list[float]:
        """Mean of each metric over the members' final metrics."""
        return [sum(r.final[m] for r in results) / len(results) for m in self.metrics]

    def intermediate(self, report: EpochReport) -> float:
        """The first metric at one evaluation, for the pruner."""
        name = self.metrics[0]
        if name == "val_loss":
            return report.val_loss
        if name == "gap_loss":
            return report.val_loss - report.train_loss
        assert report.val_acc is not None and report.train_acc is not None
        return report.val_acc if name == "val_acc" else report.train_acc - report.val_acc

    def better(self, a: float, b: float) -> bool:
        return a > b if self.directions[0] == "maximize" else a < b


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


def open_study(
    name: str,
    storage_url: str,
    objective: Objective,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    *,
    resume: bool,
    must_be_new: bool,
) -> optuna.Study:
    """Create the study ``name``, or load it when ``resume`` and it exists (see
    :func:`create_or_load`)."""
    study, _ = create_or_load(
        name, storage_url, objective, sampler, pruner, resume=resume, must_be_new=must_be_new
    )
    return study


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
    _close_stale(study)
    return study, False


def _has_trials(storage: optuna.storages.BaseStorage, name: str) -> bool:
    return storage.get_n_trials(storage.get_study_id_from_name(name)) > 0


def _close_stale(study: optuna.Study) -> None:
    """Trials left RUNNING by a killed process count as interrupted failures."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study.tell(t.number, state=TrialState.FAIL)


def count_finished(study: optuna.Study) -> int:
    """Trials that ran to an end; interrupted ones do not count, so resume redoes them."""
    trials = study.get_trials(deepcopy=False, states=FINISHED)
    return sum(1 for t in trials if not t.user_attrs.get("interrupted"))


class _Pruning:
    """Routes each member's evaluations to its trial's pruner (first seed and fold decide)."""

    def __init__(
        self,
        trials: dict[int, optuna.Trial],
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


def run_trials(
    working: WorkingStudy,
    space: SearchSpace,
    *,
    n_trials: int,
    population: int,
    objective: Objective,
    build_members: MembersFn,
    train: TrainFn,
    on_batch: Callable[[list[tuple[FrozenTrial, TrialOutcome]]], None],
    family: str,
    pruning: bool = False,
    report_every: int = 1,
    timeout: float | None = None,
    progress: bool = True,
    clock: Clock | None = None,
) -> list[TrialOutcome]:
    """Ask, train and tell until the study holds ``n_trials`` finished trials.

    After each batch ``on_batch`` gets the batch's finished trials (for the durable storage),
    each with its outcome (for tracking). ``clock`` collects seconds spent in ``sampler`` (ask and
    suggest), ``train``, ``tell``, ``sync`` (pulling other workers' trials) and ``handover``.
    A KeyboardInterrupt drops the trials in flight (they are never persisted, so a resume
    redoes them) and is re-raised.
    """
    clock = clock or Clock()
    study = working.study
    start = time.monotonic()
    done = count_finished(study)
    outcomes: list[TrialOutcome] = []
    best = _best_so_far(study, objective)
    bar = tqdm(
        total=n_trials,
        initial=min(done, n_trials),
        desc=family,
        unit="trial",
        disable=not progress,
        leave=True,
        dynamic_ncols=True,
    )
    try:
        while timeout is None or time.monotonic() - start < timeout:
            with clock("sync"):
                done += working.pull()
                elsewhere = working.in_flight_elsewhere()
            if done >= n_trials:
                break
            if done + elsewhere >= n_trials:
                time.sleep(WAIT_S)  # other workers' last trials are on their way to the storage
                continue
            batch = min(population, n_trials - done - elsewhere)
            told = _run_batch(
                study,
                space,
                batch,
                objective,
                build_members,
                train,
                family,
                pruning,
                report_every,
                clock,
            )
            with clock("handover"):
                by_number = {o.number: o for o in told}
                on_batch([(t, by_number[t.number]) for t in working.handover()])
            for outcome in told:
                outcomes.append(outcome)
                done += 1
                if outcome.values is not None and (
                    best is None or objective.better(outcome.values[0], best)
                ):
                    best = outcome.values[0]
            bar.update(len(told))
            bar.set_postfix_str(
                f"best {objective.metrics[0]} {best:.4g}"
                if best is not None
                else "no complete trial yet"
            )
    finally:
        bar.close()
    return outcomes


def _best_so_far(study: optuna.Study, objective: Objective) -> float | None:
    values = [t.values[0] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if not values:
        return None
    return max(values) if objective.directions[0] == "maximize" else min(values)


def _run_batch(
    study: optuna.Study,
    space: SearchSpace,
    size: int,
    objective: Objective,
    build_members: MembersFn,
    train: TrainFn,
    family: str,
    pruning: bool,
    report_every: int,
    clock: Clock,
) -> list[TrialOutcome]:
    trials: dict[int, optuna.Trial] = {}
    told: set[int] = set()
    try:
        params: dict[int, dict[str, Any]] = {}
        members: list[Member] = []
        with clock("sampler"):
            for _ in range(size):
                trial = study.ask()
                trials[trial.number] = trial
                params[trial.number] = space.suggest(trial)
                members.extend(build_members(trial.number, params[trial.number]))
        router = _Pruning(trials, members, objective, pruning, report_every)
        with clock("train"):
            results = train(members, router)
        outcomes = []
        with clock("tell"):
            for number, trial in trials.items():
                mine = [r for r in results if r.member.trial == number]
                outcome = _tell(
                    study, trial, params[number], mine, objective, family, number in router.pruned
                )
                told.add(number)
                outcomes.append(outcome)
        return outcomes
    except KeyboardInterrupt:
        for number, trial in trials.items():
            if number not in told:
                trial.set_user_attr("interrupted", True)
                study.tell(trial, state=TrialState.FAIL)
        raise


def _tell(
    study: optuna.Study,
    trial: optuna.Trial,
    params: dict[str, Any],
    results: list[MemberResult],
    objective: Objective,
    family: str,
    pruned: bool,
) -> TrialOutcome:
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
