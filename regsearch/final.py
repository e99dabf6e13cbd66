"""The final phase: every candidate retrained side by side on fresh seeds (and folds).

A searching sweep ends here with each family's best and the baseline; an experiment preset
with its fixed settings. All candidates train on the same seeds — with cross-validation, on the
same (seed, fold) pairs, every pool row validated once per seed — so the comparison is paired.
Validation decides (``regsearch.comparison``); the test split only confirms. With folds, the
test numbers come from one *refit* per (candidate, seed) on the whole train+validation pool:
early stopping cannot watch a validation split there, so a refit with patience trains for the
median best epoch its folds found on that seed.

Example:
    >>> run_final_phase(plan, tuned_studies, final_study, recorder.record)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from regsearch.plan import BASELINE, Plan
from regsearch.records import LR_CONTROL, REFIT, Member, MemberResult, TrialOutcome
from regsearch.search.claims import Claim, claim, holder, release
from regsearch.search.objective import Objective
from regsearch.search.study import member_record
from regsearch.search.working import WORKER_ATTR

__all__ = [
    "CLAIM_SUFFIX",
    "FINAL_SEED_OFFSET",
    "candidates",
    "claim_final",
    "final_seeds",
    "run_final_phase",
]

log = logging.getLogger(__name__)

#: The final phase's fresh seeds start here, far from the tuning seeds.
FINAL_SEED_OFFSET = 1000
#: Final metrics a refit cannot have: it trains on the validation rows.
_NO_VALIDATION = ("val_loss", "val_acc", "gap_loss", "gap_acc", "val_loss_orig")

Record = Callable[[str, list[tuple[FrozenTrial, TrialOutcome]]], None]


def final_seeds(plan: Plan) -> list[int]:
    """The fresh seeds of the final phase."""
    assert plan.cfg.sweep is not None
    return [plan.cfg.seed + FINAL_SEED_OFFSET + k for k in range(plan.cfg.sweep.final_seeds)]


def candidates(plan: Plan, studies: dict[str, optuna.Study]) -> dict[str, dict[str, Any]]:
    """Name → values to re-evaluate: fixed settings, or the baseline and each family's best.

    The baseline is unregularized; when the learning rate was tuned it is the baseline
    family's best (so it had the same chance as every regularized arm), and each regularized
    best at another learning rate brings its control ``baseline@<family>`` along.
    """
    if plan.final_candidates_known:
        return {name: dict(values) for name, values in plan.settings.items()}
    found: dict[str, dict[str, Any]] = {BASELINE: {}}
    for family, study in studies.items():
        # Validation decides: a trial's values are its validation metrics.
        best = plan.objective.best(study.get_trials(deepcopy=False))
        if best is not None:
            found[family] = dict(best.params)
    return found | _lr_controls(found)


def _lr_controls(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``baseline@<family>``: the baseline at each regularized best's own learning rate.

    The learning rate is tuned in every arm, so a regularized best may win only through its
    learning rate (a strength at the "off" end of its range). Its paired difference with the
    unregularized model at that same learning rate isolates what the regularizer does.
    """
    base_lr = found.get(BASELINE, {}).get("lr")
    if base_lr is None:
        return {}
    return {
        LR_CONTROL.format(family): {"lr": values["lr"]}
        for family, values in found.items()
        if family != BASELINE
        and "lr" in values
        and values["lr"] != base_lr
        # a best with its regularizer off (batch_norm=false, ...) is its own control
        and any(v not in (False, 0, 0.0, None) for k, v in values.items() if k != "lr")
    }


#: How long a worker that did not run the final phase waits for its trials (seconds): its
#: outputs then hold the tested verdict too; after that they name the worker that has it.
FINAL_WAIT_S = 300.0


def run_final_phase(
    plan: Plan,
    tuned: dict[str, optuna.Study],
    final: optuna.Study,
    record: Record,
    where: str = "",
    wait_s: float = FINAL_WAIT_S,
) -> Claim | None:
    """Train every candidate not yet in ``final`` on the fresh seeds, in one engine call.

    The candidates are cross-validated with the final comparison's folds (``search.final_cv``:
    10 by default when the tuning was cross-validated); a second call then refits each
    (candidate, seed) on the whole pool.
    ``record`` gets the finished trials (one per candidate) for the durable stores.

    Workers sharing a study run it once: the first to finish tuning claims it
    (:func:`claim_final`, naming ``where`` its outputs go); the others stop training, wait up
    to ``wait_s`` for its trials to reach the storage, and return its claim.

    Returns:
        The other worker's claim when it holds the final phase, else None.
    """
    done = {t.user_attrs.get("family") for t in final.get_trials(deepcopy=False)}
    todo = {k: v for k, v in candidates(plan, tuned).items() if k not in done}
    plan = plan.for_final()  # the comparison's folds (search.final_cv)
    storage = plan.cfg.search.storage
    if not todo:
        # Every candidate is in: this worker ran it (a resume), or another worker finished it
        # before this one's tuning ended; that worker's outputs then hold the same verdict.
        ran = holder(storage, f"{final.study_name}{CLAIM_SUFFIX}")
        if ran is None or ran.worker == plan.worker:
            return None
        _say_skipped(final.study_name, ran)
        return ran
    # Claiming writes to the storage, which waits while the recorder writes the last tuned
    # trials (~1 s of a moons sweep on sqlite): the candidates train meanwhile, and stop at
    # their next evaluation if another worker holds the claim.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="claim") as pool:
        pending = pool.submit(claim_final, storage, final.study_name, plan.worker, where)
        try:
            results = _train_candidates(plan, todo, lambda: _lost(pending))
        except BaseException:
            if pending.exception() is None and (held := pending.result()).mine:
                release(storage, held)  # a resume can run it again
            raise
        held = pending.result()
    if held.mine:
        _record(plan, todo, results, final, record, held.worker)
        return None
    _wait_for(final, set(todo), held, wait_s)
    return held


def _wait_for(final: optuna.Study, names: set[str], held: Claim, wait_s: float) -> bool:
    """Poll ``final`` until it holds a trial of every candidate in ``names`` (True) or
    ``wait_s`` passes (False, logged with where the verdict will be)."""
    deadline = time.monotonic() + wait_s
    log.info("waiting up to %.0f s for the final phase of worker %s", wait_s, held.worker)
    while True:
        done = {t.user_attrs.get("family") for t in final.get_trials(deepcopy=False)}
        if names <= done:
            return True
        if time.monotonic() >= deadline:
            log.warning(
                "the final phase of worker %s has not finished; its outputs: %s",
                held.worker,
                held.where or f"host {held.host}",
            )
            return False
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


#: The final study ``S.final`` is claimed by creating the (empty) study ``S.final.claim``.
CLAIM_SUFFIX = ".claim"


def claim_final(storage_url: str, final_name: str, worker: str, where: str = "") -> Claim:
    """The claim on the final phase of ``final_name``: this worker's (``mine``), or the other
    worker's that holds it (logged).

    A claim left by a killed process of this host (its pid no longer runs) is taken over; one
    left on another host stays until its claim study ``<final>.claim`` is deleted (for
    example ``optuna delete-study --study-name ... --storage ...``).
    """
    name = f"{final_name}{CLAIM_SUFFIX}"
    held = claim(storage_url, name, worker, where)
    if not held.mine and held.stale and release(storage_url, held):
        log.warning("final phase: taking over the claim of %s, which no longer runs", held.worker)
        held = claim(storage_url, name, worker, where)
    if not held.mine:
        _say_skipped(final_name, held)
    return held


def _say_skipped(final_name: str, held: Claim) -> None:
    log.info(
        "final phase of %s: run by worker %s (host %s, pid %d, since %s); skipped here",
        final_name,
        held.worker,
        held.host,
        held.pid,
        held.since,
    )


def _lost(pending: Future[Claim]) -> bool:
    """Whether the claim has gone to another worker (a failed claim raises after training)."""
    return pending.done() and pending.exception() is None and not pending.result().mine


def _train_candidates(
    plan: Plan, todo: dict[str, dict[str, Any]], lost: Callable[[], bool]
) -> list[MemberResult]:
    """Every candidate's members on the fresh seeds (and their refits); all stop early, as
    pruned, once ``lost()`` says the claim went to another worker."""
    seeds = final_seeds(plan)
    members: list[Member] = []
    for i, values in enumerate(todo.values()):
        members.extend(plan.members(i, values, seeds))
    log.info("retraining %d candidates on %d fresh seeds", len(todo), len(seeds))
    results = plan.train(members, on_epoch=lambda _i, _report: lost())
    if plan.task.folds and not lost():
        refits = _refit(plan, results)
        results = _cross_fit_stopping(plan, results, lost) + refits
    return results


def _cross_fit_stopping(
    plan: Plan, results: list[MemberResult], lost: Callable[[], bool]
) -> list[MemberResult]:
    """Fold results of early-stopping candidates scored without peeking at their own rows.

    Early stopping restores the epoch that scored best on the validation fold it is then
    scored on, which makes its validation loss optimistic (a minimum over noisy evaluations).
    Each such fold is trained again for the median best epoch of the *other* folds of its
    seed, without stopping, and scored at the end: the epoch count is chosen without the rows
    that score it, like the refit's. Other candidates are returned unchanged.
    """
    groups: dict[tuple[int, int], list[MemberResult]] = {}
    for r in results:
        if r.member.hparams.patience is not None and r.member.fold not in (None, REFIT):
            groups.setdefault((r.member.trial, r.member.repeat), []).append(r)
    if not groups:
        return results
    again: list[Member] = []
    for folds in groups.values():
        for r in folds:
            others = [o for o in folds if o is not r]
            cap = _refit_epochs(r.member.hparams.patience, others, plan.schedule.eval_every)
            hp = dataclasses.replace(r.member.hparams, patience=None, max_epochs=cap)
            again.append(dataclasses.replace(r.member, hparams=hp))
    redone = plan.train(again, on_epoch=lambda _i, _report: lost())
    first = {
        (r.member.trial, r.member.repeat, r.member.fold): r for f in groups.values() for r in f
    }
    by_key = {}
    for m in redone:
        key = (m.member.trial, m.member.repeat, m.member.fold)
        # Keep the candidate's own settings and the stopper's best epoch on this fold (what
        # the refit and the other folds' caps are made of); stopped_epoch is the cap trained.
        m.member, m.best_epoch = first[key].member, first[key].best_epoch
        by_key[key] = m
    return [by_key.get((r.member.trial, r.member.repeat, r.member.fold), r) for r in results]


def _record(
    plan: Plan,
    todo: dict[str, dict[str, Any]],
    results: list[MemberResult],
    final: optuna.Study,
    record: Record,
    worker: str,
) -> None:
    """One finished trial per candidate from its members' results, to the durable stores."""
    pairs = []
    for i, (name, values) in enumerate(todo.items()):
        mine = [r for r in results if r.member.trial == i]
        trial, outcome = final_trial(plan.objective, name, values, mine)
        trial.set_user_attr(WORKER_ATTR, worker)
        pairs.append((trial, outcome))
    record(final.study_name, pairs)


def _refit(plan: Plan, fold_results: list[MemberResult]) -> list[MemberResult]:
    """One member per (candidate, seed) on the whole pool; the test split is scored there."""
    by_seed: dict[tuple[int, int], list[MemberResult]] = {}
    for r in fold_results:
        by_seed.setdefault((r.member.trial, r.member.repeat), []).append(r)
    members = []
    for folds in by_seed.values():
        first = folds[0].member
        cap = _refit_epochs(first.hparams.patience, folds, plan.schedule.eval_every)
        hp = dataclasses.replace(first.hparams, patience=None, max_epochs=cap)
        members.append(dataclasses.replace(first, hparams=hp, fold=REFIT))
    results = plan.train(members)
    for result in results:
        for key in _NO_VALIDATION:
            result.final.pop(key, None)
        # Its "validation" curve is the training pool again: keep the training curves only.
        result.curves = {k: v for k, v in result.curves.items() if k.startswith("train_")}
    return results


def _refit_epochs(patience: int | None, folds: list[MemberResult], every: int) -> int | None:
    """Epochs for a refit: all of them, or with early stopping the folds' median best epoch."""
    if patience is None:
        return None
    best = [r.best_epoch for r in folds if r.state == "complete" and r.best_epoch > 0]
    if not best:
        return every
    return max(every, math.ceil(statistics.median(best) / every) * every)


def _fixed(value: Any) -> optuna.distributions.BaseDistribution:
    """A one-point distribution, so a fixed value can be stored as an Optuna param."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return optuna.distributions.CategoricalDistribution([value])
    if isinstance(value, int):
        return optuna.distributions.IntDistribution(value, value)
    return optuna.distributions.FloatDistribution(value, value)


def final_trial(
    objective: Objective, name: str, values: dict[str, Any], results: list[MemberResult]
) -> tuple[FrozenTrial, TrialOutcome]:
    """One re-evaluated candidate as a finished trial (numbered when the recorder writes it).

    Its objective value is the mean over the members that were validated (not the refits).
    """
    failed = [r for r in results if r.state != "complete"]
    validated = [r for r in results if r.member.fold != REFIT]
    scores = None if failed else objective.values(validated)
    trial = optuna.trial.create_trial(
        state=TrialState.FAIL if failed else TrialState.COMPLETE,
        values=scores,
        params=values,
        distributions={k: _fixed(v) for k, v in values.items()},
        user_attrs={"family": name, "members": [member_record(r) for r in results]},
    )
    error = failed[0].error if failed else ""
    state = "failed" if failed else "complete"
    outcome = TrialOutcome(-1, values, state, scores, results, name, phase="final", error=error)
    return trial, outcome
