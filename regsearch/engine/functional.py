"""The population engine for any network (``model=cnn``, ``model=custom``), with ``torch.func``.

Same contract and results as :mod:`regsearch.engine.reference` (its oracle), but members of
one architecture train as one computation: a :class:`~regsearch.engine.cohort.Cohort` stacks
members that share their structure (batch norm on/off) and data view (a cross-validation
fold is a view), and every step serves all of them. This module builds cohorts, evaluates and
stops members, and takes new ones from ``refill``:

- A member starts at epoch 0 of its own in a new cohort; cohorts train side by side, epoch by
  epoch, so a cohort's members share their epoch (and hence their minibatch order) without
  depending on each other.
- At each evaluation a stopped member (early stopping, pruning, failure, its last epoch) gets
  its final result at once and leaves its cohort, giving its compute back.
- A network ``vmap`` cannot run (an ``nn.Dropout2d``, an in-place trick, a ``.item()`` in
  ``forward``) trains on the reference engine instead, said once per network.

The hand-stacked MLP engine (:mod:`regsearch.engine.population`) stays the MLP's: it is
faster there.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from regsearch.dropout import seed_dropout_
from regsearch.engine.cohort import Cohort, Slice
from regsearch.engine.members import (
    OnEpoch,
    OnResult,
    Probe,
    Refill,
    Schedule,
    check_optimizer_args,
    last_epoch,
)
from regsearch.engine.metrics import accuracy
from regsearch.engine.metrics import loss as task_loss
from regsearch.engine.reference import train as reference_train
from regsearch.networks import NetSpec, build_net
from regsearch.records import (
    EpochReport,
    Hyperparams,
    Member,
    MemberResult,
    NonFiniteLoss,
    with_gaps,
)
from regsearch.regularizers import EarlyStopping, weight_stats
from regsearch.tasks.bundle import TaskData

__all__ = ["train", "vectorizes"]

log = logging.getLogger(__name__)

#: Most members per cohort. Conv members are compute-bound on a CPU, so a larger cohort
#: brings nothing there; an accelerator is bounded by memory only.
_CPU_COHORT = 32
_DEVICE_COHORT = 1024
#: Members share a cohort when they share their structure and data: (batch norm, fold, the
#: seed that partitions the folds; None without folds).
_CohortKey = tuple[bool, int | None, int | None]
_checked: dict[str, str] = {}  # repr(spec) → "" (vectorizes) or why not, said once


def train(
    task: TaskData,
    model: NetSpec,
    members: list[Member],
    *,
    schedule: Schedule,
    on_epoch: OnEpoch | None = None,
    device: str | torch.device = "cpu",
    refill: Refill | None = None,
    on_result: OnResult | None = None,
    probe: Probe | None = None,
) -> list[MemberResult]:
    """Train every member, cohorts side by side; one result per member in index order
    (contract: :mod:`regsearch.engine.members`)."""
    dev = torch.device(device)
    task = task.to(dev)
    if not vectorizes(model, task, dev):
        return reference_train(
            task,
            model,
            members,
            schedule=schedule,
            on_epoch=on_epoch,
            device=dev,
            refill=refill,
            on_result=on_result,
            probe=probe,
        )
    run = _Run(task, model, schedule, dev, on_epoch, on_result, probe, capacity=len(members))
    run.add(members)
    while True:
        if not run.cohorts:
            new = refill(run.capacity) if refill is not None else []
            if not new:
                break
            run.add(new)
            continue
        evaluated = run.epoch()
        free = run.capacity - run.in_flight()
        if refill is not None and evaluated and free > 0 and run.in_flight():
            run.add(refill(free))
    return [r for r in run.results if r is not None]


def vectorizes(spec: NetSpec, task: TaskData, device: torch.device) -> bool:
    """Whether two members of ``spec`` train as one ``vmap`` computation; said once if not."""
    key = repr(spec)
    if key not in _checked:
        _checked[key] = _why_not(spec, task, device)
        if _checked[key]:
            log.warning(
                "this network cannot be stacked (%s); it trains one member at a time on the "
                "reference engine",
                _checked[key],
            )
    return not _checked[key]


def _why_not(spec: NetSpec, task: TaskData, device: torch.device) -> str:
    """Empty when a two-member cohort trains one step and evaluates, else the error text."""
    try:
        members = [Member(0, seed, Hyperparams(lr=1e-3)) for seed in (0, 1)]
        nets = [_initial_net(spec, m, Schedule(), device) for m in members]
        rows = dataclasses.replace(task, x_train=task.x_train[:4], y_train=task.y_train[:4])
        cohort = Cohort(nets, members, rows, Schedule(batch_size=None), device)
        cohort.train_epoch()
        cohort.outputs(task.x_val[:2])
    except Exception as err:  # the user's module: whatever vmap or it raises
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return ""


def _initial_net(
    spec: NetSpec, member: Member, schedule: Schedule, device: torch.device
) -> nn.Module:
    """The member's initial network, checked as the reference engine checks it."""
    hp = member.hparams
    gen = torch.Generator().manual_seed(member.seed)
    net = build_net(spec, dropout=hp.dropout, batch_norm=hp.batch_norm, generator=gen).to(device)
    check_optimizer_args(hp, schedule)
    last_epoch(hp, schedule)
    if hp.patience:
        EarlyStopping(hp.patience, hp.min_delta, schedule.restore_best)
    return net


@dataclass
class _Track:
    """What the engine keeps for one member while it trains."""

    index: int
    result: MemberResult
    last: int
    stopper: EarlyStopping | None
    best: Slice | None = None
    best_val: float = math.inf
    seconds: float = 0.0
    done: bool = False  # its result is final; it leaves its cohort at the next compaction


@dataclass
class _Run:
    """The cohorts in flight and every member's result so far."""

    task: TaskData
    spec: NetSpec
    schedule: Schedule
    device: torch.device
    on_epoch: OnEpoch | None
    on_result: OnResult | None
    probe: Probe | None
    capacity: int
    results: list[MemberResult | None] = field(default_factory=list)
    cohorts: list[tuple[Cohort, list[_Track]]] = field(default_factory=list)

    def in_flight(self) -> int:
        return sum(len(c) for c, _ in self.cohorts)

    def add(self, members: list[Member]) -> None:
        """New members: each gets its index, a failed result at once if it cannot start."""
        groups: dict[_CohortKey, list[tuple[Member, _Track, nn.Module]]] = {}
        for member in members:
            index = len(self.results)
            self.results.append(None)
            try:
                net = _initial_net(self.spec, member, self.schedule, self.device)
            except (RuntimeError, ValueError) as err:
                self._fail(
                    _Track(index, MemberResult(member=member, state="complete"), 0, None), err
                )
                continue
            seed_dropout_(net, member.seed, self.device)
            view = None if member.fold is None else member.seed
            key = (member.hparams.batch_norm, member.fold, view)
            groups.setdefault(key, []).append(
                (member, _new_track(index, member, self.schedule), net)
            )
        size = _CPU_COHORT if self.device.type == "cpu" else _DEVICE_COHORT
        for (_, fold, _), group in groups.items():
            data = self.task.member_data(fold, group[0][0].seed)
            for start in range(0, len(group), size):
                part = group[start : start + size]
                nets = [net for _, _, net in part]
                cohort = Cohort(nets, [m for m, _, _ in part], data, self.schedule, self.device)
                self.cohorts.append((cohort, [t for _, t, _ in part]))

    def epoch(self) -> bool:
        """One epoch of every cohort, then the evaluations due; True if any was due."""
        evaluated = False
        for cohort, tracks in list(self.cohorts):
            start = time.perf_counter()
            try:
                cohort.train_epoch()
                due = [k for k, t in enumerate(tracks) if _due(cohort.epoch, t.last, self.schedule)]
                if due:
                    evaluated = True
                    self._evaluate(cohort, tracks, due)
            except (RuntimeError, ValueError) as err:  # not one member's: fail the cohort
                for track in tracks:
                    if not track.done:  # not finished before the error
                        self._fail(track, err)
            share = (time.perf_counter() - start) / max(1, len(cohort))
            for track in tracks:
                track.seconds += share
            self._compact(cohort, tracks)
        self.cohorts = [(c, t) for c, t in self.cohorts if t]
        return evaluated

    def _evaluate(self, cohort: Cohort, tracks: list[_Track], due: list[int]) -> None:
        train_out = cohort.outputs(cohort.data.x_train)
        val_out = cohort.outputs(cohort.data.x_val)
        for k in due:
            try:
                report = _report(cohort.data, cohort.epoch, train_out[k], val_out[k])
            except NonFiniteLoss as err:
                self._fail(tracks[k], err)
                continue
            self._record(cohort, k, tracks[k], report)

    def _record(self, cohort: Cohort, k: int, track: _Track, report: EpochReport) -> None:
        result = track.result
        result.stopped_epoch = report.epoch
        result.record(report)
        if report.val_loss < track.best_val:
            track.best_val, result.best_epoch = report.val_loss, report.epoch
        stop = report.epoch >= track.last
        if track.stopper is not None:
            if track.stopper.update(report.val_loss, report.epoch):
                stop = True
            if track.stopper.best_epoch == report.epoch and track.stopper.restore_best:
                track.best = cohort.member(k)
        if not stop and self.on_epoch is not None:
            try:
                if self.on_epoch(track.index, report):
                    result.state, stop = "pruned", True
            except (RuntimeError, ValueError) as err:
                self._fail(track, err)
                return
        if stop:
            self._finish(cohort, k, track)

    def _finish(self, cohort: Cohort, k: int, track: _Track) -> None:
        """The member's final metrics (restored best weights where early stopping restores)."""
        result = track.result
        saved = cohort.member(k)
        if track.stopper is not None:
            result.best_epoch = track.stopper.best_epoch
            if track.best is not None:
                saved = track.best
        final: dict[str, float] = {}
        data = cohort.data
        for split in ("train", "val", "test"):
            out = cohort.slice_outputs(saved, getattr(data, f"x_{split}"))
            y = getattr(data, f"y_{split}")
            final[f"{split}_loss"] = float(task_loss(out, y, data.n_classes))
            if data.is_classification:
                final[f"{split}_acc"] = accuracy(out, y, data.n_classes)
        if not all(math.isfinite(v) for v in final.values()):
            self._fail(track, NonFiniteLoss(f"final metrics are not finite: {final}"))
            return
        result.final = with_gaps(final)
        kinds = cohort.weight_kinds
        stats = weight_stats({n: w for n, w in saved.params.items() if n in kinds}, kinds)
        result.weight_norm, result.sparsity = stats.norm, stats.sparsity
        result.by_layer = stats.by_layer
        if self.probe is not None:
            self.probe.outputs[track.index] = cohort.slice_outputs(
                saved, self.probe.x.to(self.device)
            ).cpu()
        self._done(track)

    def _fail(self, track: _Track, err: Exception) -> None:
        log.warning(
            "trial %d seed %d failed: %s", track.result.member.trial, track.result.member.seed, err
        )
        track.result.state, track.result.error = "failed", f"{type(err).__name__}: {err}"
        self._done(track)

    def _done(self, track: _Track) -> None:
        track.result.duration_s = track.seconds
        track.done = True
        self.results[track.index] = track.result
        if self.on_result is not None:
            self.on_result(track.index, track.result)

    def _compact(self, cohort: Cohort, tracks: list[_Track]) -> None:
        live = [k for k, t in enumerate(tracks) if not t.done]
        if len(live) < len(tracks):
            if live:
                cohort.keep(live)
            tracks[:] = [tracks[k] for k in live]


def _new_track(index: int, member: Member, schedule: Schedule) -> _Track:
    """The track of a member :func:`_initial_net` accepted (its cap and patience are valid)."""
    hp = member.hparams
    stopper = (
        EarlyStopping(hp.patience, hp.min_delta, schedule.restore_best) if hp.patience else None
    )
    return _Track(
        index, MemberResult(member=member, state="complete"), last_epoch(hp, schedule), stopper
    )


def _due(epoch: int, last: int, schedule: Schedule) -> bool:
    return epoch % schedule.eval_every == 0 or epoch == last


def _report(
    data: TaskData, epoch: int, train_out: torch.Tensor, val_out: torch.Tensor
) -> EpochReport:
    """The member's evaluation from its outputs on the training and validation rows.

    Raises:
        NonFiniteLoss: A loss is NaN or infinite (the member fails, as on the reference).
    """
    train_loss = float(task_loss(train_out, data.y_train, data.n_classes))
    val_loss = float(task_loss(val_out, data.y_val, data.n_classes))
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        raise NonFiniteLoss(
            f"loss is not finite at epoch {epoch} (train {train_loss}, val {val_loss})"
        )
    classes = data.is_classification
    return EpochReport(
        epoch,
        train_loss,
        val_loss,
        accuracy(train_out, data.y_train, data.n_classes) if classes else None,
        accuracy(val_out, data.y_val, data.n_classes) if classes else None,
    )
