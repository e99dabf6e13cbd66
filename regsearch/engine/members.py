"""The engine contract: what goes in (members) and what comes out (results).

Every engine implements::

    train(task, model, members, *, schedule, on_epoch=None, device="cpu",
          refill=None, on_result=None, probe=None) -> list[MemberResult]

A :class:`~regsearch.records.Member` is one (trial, seed) pair with its own hyperparameters,
and with cross-validation one fold of the task's train+val pool (its own training and
validation rows, see :meth:`regsearch.tasks.bundle.TaskData.member_data`). The records
themselves live in :mod:`regsearch.records`; this module holds what only engines share: the
schedule, the stopping epoch and the hooks.

Indices. Every member of a call has an index: ``members`` are ``0..len(members)-1``, members
handed in by ``refill`` follow in the order given. The returned list holds one result per
index, in index order; the hooks receive these indices.

``on_epoch(index, report)`` (:data:`OnEpoch`) is called after each evaluation of a member;
returning True stops it (``pruned``). An error it raises (RuntimeError, ValueError) fails
that member alone.

``on_result(index, result)`` (:data:`OnResult`) is called once per member as soon as its
result is final (state, curves, final metrics, duration): a failed member at once, a stopped
one at the next evaluation boundary, at the latest before ``train`` returns. The object is
the one ``train`` returns.

``refill(free)`` (:data:`Refill`) hands the engine new members while it trains: it is called
at evaluation boundaries (after the stopped members' results went to ``on_result``) whenever
fewer than ``len(members)`` members are in flight, with ``free`` = ``len(members)`` minus the
members in flight, and once more with ``free = len(members)`` whenever nothing is left in
flight. It returns the new members (``[]`` for none; more than ``free`` are accepted but
overfill the population). A new member starts at epoch 0 of its own, with its own seed:
initialization, dropout masks, minibatch order, optimizer state and evaluation epochs are those
it would have if it were trained alone; ``report.epoch`` counts its own epochs. The call ends
when nothing is in flight and ``refill`` returns ``[]``; a caller that never returns ``[]``
never lets it end. ``refill`` never sees an index: the indices it creates are assigned in
order, after every index given out before.

``probe`` (:class:`Probe`) asks for each member's raw outputs on given rows at its final
weights (the restored best where early stopping restores), in evaluation mode: what a
decision-boundary plot needs, without keeping networks around.

Example (a loop that keeps 4 members in flight until 10 have been trained):
    >>> queue = [Member(t, 0, Hyperparams(lr=0.1)) for t in range(10)]
    >>> def refill(free: int) -> list[Member]:
    ...     taken, queue[:] = queue[:free], queue[free:]
    ...     return taken
    >>> first = refill(4)
    >>> results = train(task, spec, first, schedule=Schedule(), refill=refill)  # doctest: +SKIP
    >>> [r.member.trial for r in results]  # doctest: +SKIP
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from regsearch.records import EpochReport, Hyperparams, Member, MemberResult

if TYPE_CHECKING:  # the schedule and hooks are needed where torch is not (config, search)
    import torch

__all__ = [
    "OnEpoch",
    "OnResult",
    "Probe",
    "Refill",
    "Schedule",
    "check_optimizer_args",
    "last_epoch",
]


@dataclass(frozen=True)
class Schedule:
    """Training settings every member of one engine call shares."""

    optimizer: str = "sgd"  # sgd | adam | adamw (decay is decoupled for all three)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    batch_size: int | None = None  # None = full batch
    max_epochs: int = 1000
    eval_every: int = 10
    decay_all: bool = False  # decay biases and BN parameters too
    restore_best: bool = True
    order_seed: int = 0  # minibatch order, shared by all members (common random numbers)


@dataclass
class Probe:
    """Rows to run every member on at its final weights; the engine fills ``outputs``.

    ``x`` is ``[n, features]`` in the coordinates of the members' data (a member on a
    re-standardized fold view sees the rows as given). When a member's result is final and
    not failed, ``outputs[index]`` holds its raw outputs ``[n, out_features]`` on the CPU
    (logits for classification), in evaluation mode: no dropout, batch norm from its running
    statistics.

    Example:
        >>> import torch
        >>> probe = Probe(torch.zeros(5, 2))
        >>> # train(task, spec, members, schedule=schedule, probe=probe)
        >>> probe.outputs
        {}
    """

    x: torch.Tensor
    outputs: dict[int, torch.Tensor] = field(default_factory=dict)


def last_epoch(hparams: Hyperparams, schedule: Schedule) -> int:
    """The epoch a member stops at unless stopped earlier: the schedule's, or its own cap.

    Raises:
        ValueError: A cap below one epoch.
    """
    if hparams.max_epochs is None:
        return schedule.max_epochs
    if hparams.max_epochs < 1:
        raise ValueError(f"Hyperparams.max_epochs={hparams.max_epochs}: allowed: >= 1 or None")
    return min(schedule.max_epochs, hparams.max_epochs)


def check_optimizer_args(hp: Hyperparams, schedule: Schedule) -> None:
    """torch.optim's argument checks, with its messages, so both engines fail a member alike.

    Constructing a torch optimizer just for its checks would import torch._dynamo (~2 s).
    """
    if hp.lr < 0.0:
        raise ValueError(f"Invalid learning rate: {hp.lr}")
    if schedule.optimizer == "sgd":
        if hp.momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {hp.momentum}")
        return
    if schedule.eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {schedule.eps}")
    for index, beta in enumerate(schedule.betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")


OnEpoch = Callable[[int, EpochReport], bool]
"""``on_epoch(index, report)``: True stops (prunes) that member."""

OnResult = Callable[[int, MemberResult], None]
"""``on_result(index, result)``: a member's result is final."""

Refill = Callable[[int], list[Member]]
"""``refill(free)``: new members to train, ``[]`` for none."""
