"""Exact tuning budgets across workers: each family's trials in rounds, each round claimed once.

A suite run by several workers (processes or machines sharing one Optuna storage) must give
every family of every data set exactly its budget, and the same trials as one worker alone:
otherwise the suite compares arms that had different chances. A sweep's own loop
(:func:`regsearch.search.study.run_studies`) asks until a study holds ``n_trials`` finished
trials; trials another worker is still training are invisible to it, so a shared study can end
with up to a population per other worker more. The suite tunes differently:

- **Slots and rounds.** A family's budget is ``n`` slots (0 … n-1), cut into rounds of
  ``search.population`` consecutive slots (compare: 12 trials = 3 rounds of 4).
- **A round is claimed once.** Before training a round a worker claims it by creating the
  empty study ``<family study>.r<k>.claim`` (:func:`regsearch.search.claims.claim`: study
  creation is the one write every Optuna storage makes exclusive). The holder trains the
  round's slots and hands them to its recorder (each trial carries its ``slot``); it deletes
  the claim once the storage holds them, meanwhile tuning other families. Every worker
  re-reads the round after claiming, so a round written meanwhile is never trained twice.
  A claim left by a killed process of this host is taken over; the round is then recomputed
  whole (same proposals, same numbers) and only its missing slots recorded. A claim left by
  a worker that died on another host stays until its claim study is deleted (the waiting
  workers log who holds it), as the final phase's does.
- **Proposals depend on slots, not on workers.** Round ``k`` starts once rounds ``0 … k-1``
  are complete. Its parameters come from a fresh sampler seeded by the family's stream and
  ``k`` (:func:`round_seed`), on an in-memory study holding exactly the earlier rounds' trials
  in slot order, with the start-up slots at the shared learning rates
  (:mod:`regsearch.search.streams`). Who trains a round, and when, changes nothing.
- **A round is one engine call.** Its members (slot × seed × fold) train together in one
  call, as with one worker, so the population engine stacks them identically and their numbers
  are equal bit for bit (a member's numbers vary ~1e-7 with its stack position otherwise).

Why rounds rather than a claim per trial, or counting the first ``n`` trials afterwards: both
would keep the budgets equal but not the trials. A trial's proposal depends on the trials its
sampler has seen, and which those are would depend on timing and on which worker asked.

Hence the guarantee: a family holds exactly its budget of tuning trials per data set (one per
slot; were a slot ever written twice after a crash, the first copy counts), the final phase
chooses from those trials only, and for a given seed the trials, the candidates and so the
suite's records are the same for one worker or many. The price: within one family a round waits
for the previous one (a sweep's own loop refills as soon as any trial ends), and each round is
its own engine call, so on an accelerator the families no longer share one call.

Example:
    >>> [list(r) for r in round_slots(10, 4)]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial

from regsearch.clock import Clock
from regsearch.config import FamilyConfig, SearchConfig
from regsearch.plan import Plan
from regsearch.recorder import Recorder
from regsearch.records import TrialOutcome
from regsearch.search.claims import Claim, claim, release
from regsearch.search.optuna_access import trial_id, trials_after
from regsearch.search.space import SearchSpace
from regsearch.search.streams import family_seed, shared_log_values
from regsearch.search.study import (
    StudyRun,
    Tuning,
    enqueue_grid,
    make_pruner,
    make_sampler,
    run_studies,
)
from regsearch.search.working import FINISHED, WORKER_ATTR, WorkingStudy

__all__ = [
    "SLOT_ATTR",
    "Ledger",
    "budget",
    "round_claim",
    "round_seed",
    "round_slots",
    "tune_in_rounds",
]

log = logging.getLogger(__name__)

#: The user attribute of a tuning trial naming its slot (0 … budget-1) in its family.
SLOT_ATTR = "slot"
#: Seconds between looks at the storage while every open round is another worker's.
POLL_S = 1.0


def round_slots(n_trials: int, size: int) -> list[range]:
    """The rounds of a budget: consecutive slots, ``size`` at a time (the last may be short)."""
    return [range(start, min(n_trials, start + size)) for start in range(0, n_trials, size)]


def round_seed(stream: int, index: int) -> int:
    """The sampler seed of round ``index`` of a family whose stream is ``stream``.

    Example:
        >>> round_seed(7, 0) == round_seed(7, 0) != round_seed(7, 1)
        True
    """
    digest = hashlib.sha256(f"{stream}:round:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def round_claim(study: str, index: int) -> str:
    """The claim study of round ``index`` of the family study ``study``."""
    return f"{study}.r{index}.claim"


def budget(fam: FamilyConfig, search: SearchConfig) -> int:
    """A family's tuning trials: ``n_trials``; a grid never runs past its size."""
    if search.sampler != "grid":
        return fam.n_trials
    return min(fam.n_trials, SearchSpace(dict(fam.params)).grid_size(search.grid_points))


@dataclass
class Ledger:
    """A family's durable tuning trials by slot, read incrementally from the shared storage."""

    working: WorkingStudy  # the sweep's working study of the family (its durable study)
    rounds: list[range]
    by_slot: dict[int, FrozenTrial] = field(default_factory=dict)
    _known: set[int] = field(default_factory=set)  # storage ids read
    _last_id: int = -1

    @property
    def name(self) -> str:
        """The family's durable study."""
        return self.working.name

    def refresh(self, everything: bool = False) -> None:
        """Read the trials written since the last look, or ``everything`` again.

        The incremental read (rows above the highest id read: ~2 ms when there are none;
        Optuna's ``get_n_trials`` reads every trial) can miss a trial that PostgreSQL committed
        after one with a higher id. Callers read everything where that would matter: after
        claiming a round, and once their own recorder has written what it was given.
        """
        after = -1 if everything else self._last_id
        self._add(trials_after(self.working.storage, self.working.study_id, after))

    def _add(self, trials: list[FrozenTrial]) -> None:
        for t in trials:
            tid = trial_id(t)
            if tid in self._known:
                continue
            self._known.add(tid)
            self._last_id = max(self._last_id, tid)
            slot = t.user_attrs.get(SLOT_ATTR)
            if t.state not in FINISHED or t.user_attrs.get("interrupted") or slot is None:
                continue
            held = self.by_slot.get(int(slot))
            if held is None or trial_id(held) > tid:  # a slot written twice: the first counts
                self.by_slot[int(slot)] = t

    def complete(self, index: int) -> bool:
        """Whether every slot of round ``index`` is written."""
        return all(s in self.by_slot for s in self.rounds[index])

    def next_round(self) -> int | None:
        """The first round not complete (the only one that may start), None when all are."""
        return next((i for i in range(len(self.rounds)) if not self.complete(i)), None)

    def trials(self, stop: int) -> list[FrozenTrial]:
        """The trials of slots ``0 … stop-1``, in slot order (all written)."""
        return [self.by_slot[s] for s in range(stop)]


def tune_in_rounds(
    plan: Plan, working: dict[str, WorkingStudy], recorder: Recorder, clock: Clock
) -> None:
    """Tune every family of ``plan`` to exactly its budget, in rounds claimed across workers.

    The suite's ``tune`` for :func:`regsearch.sweep.run_sweep` (see the module docstring).
    Families take turns round by round (every family's first round before any second one),
    so workers sharing the storage spread over the families; a worker whose open rounds are
    all held by others waits for them. On return each working study's ``study`` holds the
    family's budget of trials in slot order: what the final phase chooses from.
    """
    rounds = _Rounds(plan, working, recorder, clock)
    try:
        rounds.run()
    finally:
        rounds.release_all()  # after an interrupt: another worker, or a resume, redoes them
    total = sum(len(ledger.rounds) for ledger in rounds.ledgers.values())
    log.info("tuning complete: %d of %d rounds trained here", rounds.trained, total)
    for family, ledger in rounds.ledgers.items():
        working[family].study = _slot_study(working[family], ledger)


class _Rounds:
    """One worker's pass over a data set's rounds: which it holds, which are written."""

    def __init__(
        self, plan: Plan, working: dict[str, WorkingStudy], recorder: Recorder, clock: Clock
    ) -> None:
        self.plan, self.recorder, self.clock = plan, recorder, clock
        size = max(1, plan.cfg.search.population)
        self.ledgers = {
            family: Ledger(w, round_slots(budget(plan.families[family], plan.cfg.search), size))
            for family, w in working.items()
        }
        # Rounds trained here whose trials the recorder has not written yet: their claims are
        # kept until then, so no other worker takes them for unfinished.
        self.held: dict[tuple[int, str], Claim] = {}
        self.others: dict[str, Claim] = {}  # the rounds other workers hold, by claim name
        self.trained = 0
        self.waited = False
        self.read_all = False  # the next look reads every trial again (see Ledger.refresh)

    def run(self) -> None:
        """Claim and train open rounds until every family's rounds are written."""
        while True:
            todo = self._open()
            if not todo and not self.held:
                return
            self.others.clear()  # who holds what is learnt again on each pass
            if any(self._claim_and_train(index, family) for index, family in todo):
                continue
            if self.held:  # nothing else to do: wait for this worker's own trials
                with self.clock("recorder_wait"):
                    self.recorder.flush()  # raises if the recorder cannot write them
                self.read_all = True
                continue
            if not self.waited:
                self._say_waiting()
                self.waited = True
            time.sleep(POLL_S)

    def _say_waiting(self) -> None:
        """Name the workers this one waits for (once): a claim held by a worker that died on
        another host stays until its claim study is deleted."""
        holders = ", ".join(
            f"{name} by {c.worker} (host {c.host}, since {c.since})"
            for name, c in sorted(self.others.items())
        )
        log.info("every open round is held by another worker; waiting for %s", holders)

    def _open(self) -> list[tuple[int, str]]:
        """(round, family) of each family's first unwritten round not held here, round-major;
        the claims of rounds now written are let go."""
        url = self.plan.cfg.search.storage
        with self.clock("sync"):
            for ledger in self.ledgers.values():
                ledger.refresh(self.read_all)
            self.read_all = False
            for key in [k for k in self.held if self.ledgers[k[1]].complete(k[0])]:
                release(url, self.held.pop(key))
            found = ((ledger.next_round(), f) for f, ledger in self.ledgers.items())
            return sorted((i, f) for i, f in found if i is not None and (i, f) not in self.held)

    def _claim_and_train(self, index: int, family: str) -> bool:
        """Train round ``index`` of ``family`` if this worker gets its claim; True if it did
        (or found it written meanwhile), False when another worker holds it."""
        ledger = self.ledgers[family]
        name = round_claim(ledger.name, index)
        with self.clock("sync"):
            held = _claim_round(self.plan.cfg.search.storage, name, self.plan.worker)
        if not held.mine:
            self.others[name] = held
            return False
        self.others.pop(name, None)
        self.held[index, family] = held  # kept until its trials are written (see _open)
        ledger.refresh(everything=True)  # its previous holder may have written it
        if not ledger.complete(index):
            pairs = _train_round(self.plan, ledger, family, index, self.clock)
            self.recorder.record(ledger.name, pairs)  # one message: the round is written whole
            self.trained += 1
        return True

    def release_all(self) -> None:
        """Let go of every claim still held."""
        url = self.plan.cfg.search.storage
        while self.held:
            release(url, self.held.popitem()[1])


def _claim_round(url: str, name: str, worker: str) -> Claim:
    """This worker's claim on a round, or the live holder's (a dead one's is taken over)."""
    held = claim(url, name, worker)
    if not held.mine and held.stale and release(url, held):
        log.warning(
            "round %s: taking over the claim of %s, which no longer runs", name, held.worker
        )
        held = claim(url, name, worker)
    return held


def _train_round(
    plan: Plan, ledger: Ledger, family: str, index: int, clock: Clock
) -> list[tuple[FrozenTrial, TrialOutcome]]:
    """Ask and train the whole round in one engine call; its unwritten slots, stamped."""
    search = plan.cfg.search
    fam = plan.families[family]
    space = SearchSpace(dict(fam.params))
    slots = ledger.rounds[index]
    stream = _stream(plan, family)
    study = _round_study(plan, ledger, family, space, index, stream)
    _enqueue_round(study, plan, fam, slots, stream)
    seeds = [plan.cfg.seed + r for r in range(search.repeats)]
    told: list[tuple[FrozenTrial, TrialOutcome]] = []
    run = StudyRun(
        study,
        space,
        n_trials=slots.stop,  # the earlier rounds' trials are in ``study`` already
        family=family,
        build_members=lambda key, values: plan.members(key, values, seeds),
        on_batch=told.extend,  # recorded once the round is whole (one message)
    )
    log.debug("%s: round %d (slots %d-%d)", ledger.name, index, slots.start, slots.stop - 1)
    tuning = Tuning(
        population=len(slots),
        objective=plan.objective,
        train=plan.train,
        pruning=search.pruner != "none",
        report_every=search.report_every,
        timeout=None,  # a round is trained whole: the budget is exact
        progress=plan.cfg.progress,
        clock=clock,
    )
    run_studies([run], tuning)
    # In ``study`` a trial's number is its slot: the earlier slots were added in order first.
    for trial, _ in told:
        trial.user_attrs[SLOT_ATTR] = trial.number
    return [(t, o) for t, o in told if t.number not in ledger.by_slot]


def _stream(plan: Plan, family: str) -> int:
    """The family's sampler stream, as a sweep's creating worker has it."""
    if len(plan.families) == 1:
        return plan.cfg.seed
    return family_seed(plan.cfg.seed, plan.task.name, family)


def _round_study(
    plan: Plan, ledger: Ledger, family: str, space: SearchSpace, index: int, stream: int
) -> WorkingStudy:
    """An in-memory working study holding the earlier rounds' trials in slot order, with the
    round's own sampler and a fresh pruner."""
    search = plan.cfg.search
    key = f"{plan.sweep_name}-{plan.task.name}.{family}"  # as the sweep keys it (Hyperband)
    storage = optuna.storages.InMemoryStorage()
    history = optuna.create_study(
        storage=storage, study_name=key, directions=ledger.working.durable.directions
    )
    # Unstamped: the working study would skip this worker's own trials as already known.
    history.add_trials([_unstamped(t) for t in ledger.trials(ledger.rounds[index].start)])
    return WorkingStudy(
        history,
        storage,
        make_sampler(search, round_seed(stream, index), space),
        make_pruner(search, plan.schedule.max_epochs, plan.schedule.eval_every),
        worker=plan.worker,
        key=key,
    )


def _enqueue_round(
    study: WorkingStudy, plan: Plan, fam: FamilyConfig, slots: range, stream: int
) -> None:
    """Fix what a sweep fixes up front, for this round's slots only: the grid's points (in the
    family's seeded order), or the shared learning rates of the start-up slots."""
    search = plan.cfg.search
    space = SearchSpace(dict(fam.params))
    if search.sampler == "grid":
        enqueue_grid(study.study, space, search.grid_points, stream, slots.stop)
        return
    if len(plan.families) < 2 or "lr" not in fam.params:
        return
    lr = fam.params["lr"]
    assert lr.low is not None and lr.high is not None
    n = min(search.n_startup_trials, budget(fam, search))
    shared = shared_log_values(lr.low, lr.high, n, plan.cfg.seed) if n > 0 else []
    for slot in slots:
        if slot < len(shared):  # enqueued first, so the round's asks take them in slot order
            study.study.enqueue_trial({"lr": shared[slot]})


def _unstamped(trial: FrozenTrial) -> FrozenTrial:
    plain = copy.copy(trial)
    plain.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != WORKER_ATTR}
    return plain


def _slot_study(working: WorkingStudy, ledger: Ledger) -> optuna.Study:
    """The family's budget of trials, in slot order, in memory (for the final phase)."""
    study = optuna.create_study(directions=working.durable.directions)
    study.add_trials(ledger.trials(ledger.rounds[-1].stop if ledger.rounds else 0))
    return study
