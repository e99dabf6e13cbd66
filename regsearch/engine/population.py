"""The population engine: many members of one architecture trained together, vectorised.

Same contract and result semantics as :mod:`regsearch.engine.reference` (the oracle it is tested
against), but one training step serves every member of a *stack* at once (the stacked
arithmetic is :mod:`regsearch.engine.stack`). This module decides which members share a stack,
evaluates them, stops them, and reshapes stacks as members stop and new ones arrive:

- Members are split into stacks by structure (batch norm on/off), by their number of training
  rows and, on CPU, by size (see :func:`_stacks`). All stacks of a call train side by side,
  epoch by epoch; evaluation (every ``eval_every`` epochs of a member's own) is the only host
  sync and the only per-member Python loop.
- Members stop (early stopping, pruning, failure) through an active mask that freezes their
  parameters and batch-norm statistics. Stopped members then give their compute back: at an
  evaluation boundary a stack whose live share fell below ``_COMPACT_BELOW`` (or any stack
  with stopped members, when the caller wants results early or hands in new members) computes
  their final results and is rebuilt without them.
- ``refill`` lets the caller hand in new members as slots free up; they join a stack of their
  kind at its next rebuild, at epoch 0 of their own (see :mod:`regsearch.engine.members`).
- Cross-validation folds are members too: each member trains on its own view of the task
  (``task.member_data(fold, seed)``). When the members of a stack share one view, its splits
  are broadcast over the stack as ``[1, features, n]``; when they differ, each split is a real
  per-member ``[K, features, n]`` tensor (K copies of the rows) and minibatch positions index
  each member's own rows.

Differences from the reference, all by design:

- Dropout masks come from one generator per (seed, hidden layer), not torch's global RNG: a
  member's masks depend on its own seed and rate only (members sharing a seed and starting
  together get nested masks: common random numbers), so they differ from the reference's masks
  but have the same law.
- ``on_epoch`` is called epoch by epoch across all members in flight, not member after member.
- ``duration_s`` is the member's share of its stacks' time while it held a slot (each stack's
  time split evenly among the members in it).
- A training error that is not specific to one member (e.g. features that do not fit the
  model) fails every unfinished member of that stack with the error text; the reference fails
  each member alike.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch
from torch import nn

from regsearch.engine.members import (
    OnEpoch,
    OnResult,
    Probe,
    Refill,
    Schedule,
    check_optimizer_args,
    last_epoch,
)
from regsearch.engine.stack import IMPLEMENTED, Entry, Shared, Stack
from regsearch.models import ModelSpec, build_mlp
from regsearch.records import (
    EpochReport,
    Member,
    MemberResult,
    NonFiniteLoss,
    with_gaps,
)
from regsearch.regularizers import EarlyStopping
from regsearch.tasks.bundle import TaskData

__all__ = ["train"]

log = logging.getLogger(__name__)

_CPU_STACK_ELEMENTS = 1 << 18  # a CPU stack's [K, width, batch] activation (1 MiB: a core's L2)
_MIN_CPU_STACK = 16  # below this, per-op dispatch and small products cost more than cache misses
_DEVICE_STACK_ELEMENTS = 1 << 28  # an accelerator stack's activation: 1 GiB in float32
#: Rebuild a stack without its stopped members once fewer than this share of it trains on.
#: Measured (1 thread): finishing the stopped members and rebuilding cost about two steps on
#: moons (1.2 + 1.2-2.0 ms against a 0.9-1.7 ms step at K = 16-64) and a fraction of one on
#: digits (35 + 276 ms against 610 ms at K = 64), so dropping a quarter of a stack pays for
#: itself within a few epochs while single stops do not rebuild every evaluation.
_COMPACT_BELOW = 0.75

StackKey = tuple[bool, int, int]  # batch norm, training rows, validation rows


def train(
    task: TaskData,
    model: ModelSpec,
    members: list[Member],
    *,
    schedule: Schedule,
    on_epoch: OnEpoch | None = None,
    device: str | torch.device = "cpu",
    exact: bool = False,
    refill: Refill | None = None,
    on_result: OnResult | None = None,
    probe: Probe | None = None,
) -> list[MemberResult]:
    """Train all members together and return one result per member: ``members`` in input
    order, then the members ``refill`` handed in, in the order given.

    A member whose loss turns NaN/inf, or whose hyperparameters are invalid, comes back
    ``failed`` with the error text; the others are unaffected. ``refill``, ``on_result`` and
    ``probe`` follow the contract of :mod:`regsearch.engine.members`.

    A member's result does not depend on the other members of the call, nor on when stopped
    members leave its stack or new ones join: same initialization, data order and dropout
    masks, per-member arithmetic, up to float rounding that MKL's batched products vary with
    a member's position in the stack (about 1e-7 relative per step; chaotic runs such as Adam
    with a bias before batch norm can amplify it). ``exact=True`` (CPU only) makes results
    identical bit for bit wherever a member sits, at 1.6-4× the step time on the moons net
    (products then run member by member; see :func:`regsearch.engine.layout.pitch`).

    Example:
        >>> from regsearch.engine.members import Hyperparams
        >>> members = [Member(t, 0, Hyperparams(lr=0.2, l2=l2)) for t, l2 in enumerate([0, 1e-3])]
        >>> results = train(task, ModelSpec(2, 1), members,
        ...                 schedule=Schedule(max_epochs=50))  # doctest: +SKIP
    """
    if model.activation not in IMPLEMENTED:
        raise ValueError(f"{model.activation=} is not supported; allowed: {IMPLEMENTED}")
    if exact and torch.device(device).type != "cpu":
        raise ValueError(f"exact=True is possible on CPU only, not on {device=}")
    shared = Shared(task.to(device), model, schedule, device, exact)
    run = _Run(shared, on_epoch, refill, on_result, capacity=len(members), probe=probe)
    run.add(members)
    run.loop()
    return [t.result for t in run.tracks]


def _stacks(
    task: TaskData,
    spec: ModelSpec,
    schedule: Schedule,
    members: list[Member],
    indices: list[int],
    device: str | torch.device,
    exact: bool = False,
    views: dict[int, TaskData] | None = None,
) -> list[list[int]]:
    """Member indices per new stack: one structure (batch norm on/off) and one number of
    training rows each (``views``: each member's data, default ``task``), seeds contiguous.

    Members of a stack step through the same minibatch positions, so they need the same
    number of training rows; K-fold training sizes differ by at most one row, so folds fill
    at most two stacks per structure. The number of validation rows then follows (pool minus
    training rows; a refit's is the pool), and is part of the key only as a safeguard.
    Within a stack members sort by (seed, fold): members of one view sit side by side.
    Stacks are at most :func:`_stack_size` members.
    """
    groups: dict[StackKey, list[int]] = {}
    for i in indices:
        data = task if views is None else views[i]
        groups.setdefault(_key(members[i], data), []).append(i)
    stacks = []
    for (_, n, _), group in sorted(groups.items()):
        size = _stack_size(spec, schedule, n, device, exact)
        group.sort(key=lambda i: _stream_key(members[i]))
        stacks += [group[start : start + size] for start in range(0, len(group), size)]
    return stacks


def _key(member: Member, data: TaskData) -> StackKey:
    return member.hparams.batch_norm, len(data.x_train), len(data.x_val)


def _stack_size(
    spec: ModelSpec, schedule: Schedule, n_train: int, device: str | torch.device, exact: bool
) -> int:
    """Most members per stack. On CPU a stack is capped so one [K, width, batch] activation
    stays near a core's L2 cache (1 MiB here), but holds at least 16 members. Measured on this
    2-core CPU (1 thread, side by side): 150 moons fold members (2-20-3-1, 160 rows) trained
    1,000 epochs in 3.1-3.4 s as one stack, 1.7-1.8 s as two of 75, 2.0 s as four of 38;
    digits (64-128-128-10, batch 64) 128 members 1.45-1.57 s as one stack, 1.27 s as four of
    32; the MNIST-size model (784-256-256-10, batch 256) 16 members 5.8-6.1 s as one stack,
    6.5-6.8 s as four of 4 (compute-bound: the floor). Exact stacks (per-member products) hit
    the cache cliff at half the size. On an accelerator, stacks are capped only to bound
    memory."""
    on_cpu = torch.device(device).type == "cpu"
    budget = (_CPU_STACK_ELEMENTS >> exact) if on_cpu else _DEVICE_STACK_ELEMENTS
    batch = n_train if schedule.batch_size is None else min(schedule.batch_size, n_train)
    return max(_MIN_CPU_STACK if on_cpu else 1, budget // (max(spec.widths[1:]) * batch))


def _stream_key(member: Member) -> tuple[int, int]:
    """(seed, fold): None before REFIT (-1) before folds 0..K-1."""
    return member.seed, -2 if member.fold is None else member.fold


def _initial_net(spec: ModelSpec, member: Member, schedule: Schedule) -> nn.Sequential:
    """The member's initial network, validated exactly as the reference engine validates it."""
    hp = member.hparams
    net = build_mlp(
        spec,
        dropout=hp.dropout,
        batch_norm=hp.batch_norm,
        generator=torch.Generator().manual_seed(member.seed),
    )
    check_optimizer_args(hp, schedule)
    last_epoch(hp, schedule)
    if hp.patience:
        EarlyStopping(hp.patience, hp.min_delta, schedule.restore_best)
    return net


def _failed(member: Member, err: Exception) -> MemberResult:
    log.warning("trial %d seed %d failed: %s", member.trial, member.seed, err)
    return MemberResult(member=member, state="failed", error=f"{type(err).__name__}: {err}")


# --------------------------------------------------------------------------- bookkeeping


@dataclass
class _Track:
    """Per-member bookkeeping (host side), from its arrival to its final result."""

    index: int  # position in the results (what on_epoch and on_result receive)
    result: MemberResult
    stopper: EarlyStopping | None = None
    last: int = 0  # last epoch to train (schedule.max_epochs, or the member's own cap)
    born: int = 0  # its stack's epoch when it joined: its own epoch is the stack's minus this
    best_val: float = math.inf
    active: bool = True
    done: bool = False  # its result is final
    seconds: float = 0.0  # its share of stack time so far
    mark: float = 0.0  # its stack's per-member time when last settled

    @property
    def restores(self) -> bool:
        s = self.stopper
        return s is not None and s.restore_best and s.best_epoch >= 0

    def stop(self, epoch: int, state: str = "complete") -> None:
        self.active = False
        self.result.state = state
        self.result.stopped_epoch = epoch

    def fail(self, err: Exception) -> None:
        self.result = _failed(self.result.member, err)
        self.active = False

    def prune(self, on_epoch: OnEpoch, report: EpochReport) -> bool:
        """Ask the caller; an error it raises fails this member alone, as in the reference."""
        try:
            return bool(on_epoch(self.index, report))
        except (RuntimeError, ValueError) as err:
            self.fail(err)
            return False


@dataclass(frozen=True)
class _Arrival:
    """A member on its way into a stack."""

    track: _Track
    net: nn.Sequential  # its initial network
    view: TaskData  # its data

    @property
    def member(self) -> Member:
        return self.track.result.member


@dataclass
class _Live:
    """A stack in flight with its members' tracks (in stack order) and pending changes."""

    stack: Stack
    tracks: list[_Track]
    key: StackKey
    size: int  # most members it may hold
    seconds: float = 0.0  # running sum of (stack time / members) since it started
    drop: list[int] = field(default_factory=list)  # positions with a final result
    joining: list[_Arrival] = field(default_factory=list)

    @property
    def room(self) -> int:
        return self.size - len(self.tracks) + len(self.drop) - len(self.joining)

    def timed(self, started: float) -> None:
        """Add the time since ``started`` to every member's share."""
        self.seconds += (time.perf_counter() - started) / len(self.tracks)

    def settle(self) -> None:
        """Credit each member with its share of the stack's time since the last settle."""
        for t in self.tracks:
            t.seconds += self.seconds - t.mark
            t.mark = self.seconds


def _stopper(member: Member, schedule: Schedule) -> EarlyStopping | None:
    hp = member.hparams
    return EarlyStopping(hp.patience, hp.min_delta, schedule.restore_best) if hp.patience else None


def _due(epoch: int, last: int, every: int) -> bool:
    """Whether a member at its own ``epoch`` is evaluated now."""
    return epoch % every == 0 or epoch == last


# --------------------------------------------------------------------------- one engine call


class _Run:
    """One engine call: every member's track, the stacks in flight and the caller's hooks."""

    def __init__(
        self,
        shared: Shared,
        on_epoch: OnEpoch | None,
        refill: Refill | None,
        on_result: OnResult | None,
        capacity: int,
        probe: Probe | None = None,
    ) -> None:
        self.shared, self.probe = shared, probe
        self.on_epoch, self.refill, self.on_result = on_epoch, refill, on_result
        self.capacity = capacity  # members in flight that refill tops up to
        self.tracks: list[_Track] = []  # every member of the call, in result order
        self.live: list[_Live] = []
        self.views: dict[tuple[int | None, int], TaskData] = {}
        # A caller who takes results as they come, or hands in new members, wants stopped
        # members finished (and their slots freed) at once, not when compaction pays.
        self.eager = refill is not None or on_result is not None

    def loop(self) -> None:
        """Train epoch by epoch until no member is in flight and ``refill`` has no more."""
        every = self.shared.schedule.eval_every
        while self.live or self._restart():
            for live in list(self.live):
                self._timed(live, live.stack.train_epoch)
            evaluated = False
            for live in list(self.live):
                epoch = live.stack.epoch
                due = [t.active and _due(epoch - t.born, t.last, every) for t in live.tracks]
                if any(due):
                    self._timed(live, partial(self._evaluate, live, due))
                    evaluated = True
            if evaluated:
                self._boundary()

    def _timed(self, live: _Live, work: Callable[[], object]) -> None:
        """Run ``work()`` for ``live``, credit its members with the time, and fail the stack
        on an error that is not one member's."""
        started = time.perf_counter()
        try:
            work()
        except (RuntimeError, ValueError) as err:
            self._fail_stack(live, err)
            return
        live.timed(started)

    def _restart(self) -> bool:
        """With nothing in flight, ask ``refill`` for a full population; False when none."""
        if self.refill is None or self.capacity < 1:
            return False
        members = self.refill(self.capacity)
        self.add(members)
        return bool(members)

    # ------------------------------------------------------------------ arrivals

    def add(self, members: list[Member]) -> None:
        """Give each member its result slot and a place: a live stack of its kind with room
        (joining at the next rebuild), else new stacks. Invalid members fail at once."""
        schedule = self.shared.schedule
        arrivals: list[_Arrival] = []
        for member in members:
            track = _Track(len(self.tracks), MemberResult(member=member, state="complete"))
            self.tracks.append(track)
            try:
                net = _initial_net(self.shared.spec, member, schedule)
                view = self._view(member)
            except ValueError as err:
                track.fail(err)
                self._done(track)
                continue
            track.stopper, track.last = (
                _stopper(member, schedule),
                last_epoch(member.hparams, schedule),
            )
            arrivals.append(_Arrival(track, net, view))
        rest: list[_Arrival] = []
        for arrival in arrivals:
            key = _key(arrival.member, arrival.view)
            # A stack still at epoch 0 is left alone: its members' streams would interleave.
            live = next(
                (s for s in self.live if s.key == key and s.room > 0 and s.stack.epoch), None
            )
            (live.joining if live is not None else rest).append(arrival)
        self._start_stacks(rest)

    def _view(self, member: Member) -> TaskData:
        """The member's data; members sharing a (fold, seed) get the very same tensors, so a
        stack of them keeps the broadcast path (even if the task's bounded cache dropped it)."""
        key = (member.fold, member.seed)
        if key not in self.views:
            self.views[key] = self.shared.task.member_data(*key)
        return self.views[key]

    def _start_stacks(self, arrivals: list[_Arrival]) -> None:
        s = self.shared
        members = [a.member for a in arrivals]
        views = {i: a.view for i, a in enumerate(arrivals)}
        indices = list(range(len(arrivals)))
        for group in _stacks(
            s.task, s.spec, s.schedule, members, indices, s.device, s.exact, views
        ):
            items = [arrivals[i] for i in group]
            tracks = [a.track for a in items]
            try:
                stack = Stack(s, [Entry(a.member, a.view) for a in items], [a.net for a in items])
            except (RuntimeError, ValueError) as err:
                for track in tracks:
                    track.fail(err)
                    self._done(track)
                continue
            key = _key(items[0].member, items[0].view)
            size = _stack_size(s.spec, s.schedule, key[1], s.device, s.exact)
            self.live.append(_Live(stack, tracks, key, size))

    # ------------------------------------------------------------------ evaluation

    def _evaluate(self, live: _Live, due: list[bool]) -> None:
        """Record one evaluation per ``due`` member; stop, prune or fail members."""
        values = live.stack.evaluate()
        improved = [False] * len(live.tracks)
        for k, t in enumerate(live.tracks):
            if due[k]:
                row = {key: column[k] for key, column in values.items()}
                improved[k] = self._judge(t, live.stack.epoch - t.born, row)
        if live.stack.best is not None and any(improved):
            live.stack.snapshot(improved)
        live.stack.set_active([t.active for t in live.tracks])

    def _judge(self, t: _Track, epoch: int, row: dict[str, float]) -> bool:
        """Record a member's evaluation at its own ``epoch``, then stop, prune or fail it (or
        stop it at its last epoch, the reference's loop end). True when its early-stopping
        best improved (its weights are then saved)."""
        train_loss, val_loss = row["train_loss"], row["val_loss"]
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            t.fail(
                NonFiniteLoss(
                    f"loss is not finite at epoch {epoch} (train {train_loss}, val {val_loss})"
                )
            )
            return False
        report = EpochReport(epoch, train_loss, val_loss, row.get("train_acc"), row.get("val_acc"))
        t.result.record(report)
        if val_loss < t.best_val:
            t.best_val, t.result.best_epoch = val_loss, epoch
        improved = False
        if t.stopper is not None:
            stop = t.stopper.update(val_loss, epoch)
            improved = t.stopper.best_epoch == epoch
            if stop:
                t.stop(epoch)
                return improved
        if self.on_epoch is not None and t.prune(self.on_epoch, report):
            t.stop(epoch, "pruned")
        elif t.active and epoch == t.last:
            t.stop(epoch)
        return improved

    # ------------------------------------------------------------------ departures

    def _boundary(self) -> None:
        """After an evaluation: finish stopped members where that pays (or is wanted), let
        ``refill`` fill the free slots, and rebuild the stacks that changed."""
        for live in list(self.live):
            stopped = [i for i, t in enumerate(live.tracks) if not t.active]
            running = len(live.tracks) - len(stopped)
            shrink = running == 0 or running < _COMPACT_BELOW * len(live.tracks)
            if stopped and (self.eager or shrink):
                self._timed(live, partial(self._finish, live, stopped))
        if self.refill is not None:
            free = self.capacity - sum(t.active for live in self.live for t in live.tracks)
            if free > 0:
                self.add(self.refill(free))
        for live in list(self.live):
            if live.drop or live.joining:
                self._timed(live, partial(self._rebuild, live))

    def _finish(self, live: _Live, positions: list[int]) -> None:
        """Final metrics of the members at ``positions`` (the restored best where early
        stopping restores); their results are then final and they leave at the rebuild."""
        restore = [t.restores for t in live.tracks]
        values, norms, sparsity = live.stack.final(restore)
        outputs = live.stack.outputs(self.probe.x, restore).cpu() if self.probe else None
        live.settle()
        for k in positions:
            t = live.tracks[k]
            if t.result.state != "failed":
                if t.stopper is not None:
                    t.result.best_epoch = t.stopper.best_epoch
                final = {key: column[k] for key, column in values.items()}
                if all(math.isfinite(v) for v in final.values()):
                    t.result.final = with_gaps(final)
                    t.result.weight_norm, t.result.sparsity = norms[k], sparsity[k]
                    if self.probe is not None and outputs is not None:
                        self.probe.outputs[t.index] = outputs[k]
                else:
                    t.fail(NonFiniteLoss(f"final metrics are not finite: {final}"))
            self._done(t)
        live.drop = positions

    def _rebuild(self, live: _Live) -> None:
        """The stack without its finished members, with the joining ones at epoch 0."""
        live.settle()
        dropped = set(live.drop)
        keep = [i for i in range(len(live.tracks)) if i not in dropped]
        # Joining members form new dropout streams after the kept ones; sorted by (seed,
        # fold), each stream's members sit side by side.
        joining = sorted(live.joining, key=lambda a: _stream_key(a.member))
        live.drop, live.joining = [], []
        if not keep and not joining:
            self.live.remove(live)
            return
        tracks = [live.tracks[i] for i in keep] + [a.track for a in joining]
        for a in joining:
            a.track.born, a.track.mark = live.stack.epoch, live.seconds
        live.tracks = tracks  # before the rebuild: an error fails the joining members too
        log.debug("stack rebuilt: %d -> %d members", live.stack.k, len(tracks))
        new = [Entry(a.member, a.view) for a in joining]
        live.stack = live.stack.rebuilt(keep, new, [a.net for a in joining])
        live.stack.set_active([t.active for t in tracks])

    def _fail_stack(self, live: _Live, err: Exception) -> None:
        """An error of the whole stack fails every member of it without a final result."""
        log.warning("a stack of %d members failed: %s", len(live.tracks), err)
        for t in [*live.tracks, *(a.track for a in live.joining)]:
            if not t.done:
                t.fail(err)
                self._done(t)
        if live in self.live:
            self.live.remove(live)

    def _done(self, t: _Track) -> None:
        t.done = True
        t.result.duration_s = t.seconds
        if self.on_result is not None:
            self.on_result(t.index, t.result)
