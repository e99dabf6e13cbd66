"""The engine contract: what goes in (members) and what comes out (results).

Every engine implements::

    train(task, model, members, *, schedule, on_epoch=None, device="cpu") -> list[MemberResult]

A :class:`~regsearch.records.Member` is one (trial, seed) pair with its own hyperparameters,
and with cross-validation one fold of the task's train+val pool (its own training and
validation rows, see :meth:`regsearch.tasks.bundle.TaskData.member_data`). ``on_epoch`` is
called after each evaluation with the member's index and an
:class:`~regsearch.records.EpochReport`; returning True stops that member (pruned). The
records themselves live in :mod:`regsearch.records`; this module holds what only engines
share: the schedule and the stopping epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from regsearch.records import EpochReport, Hyperparams

__all__ = ["OnEpoch", "Schedule", "last_epoch"]


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


OnEpoch = Callable[[int, EpochReport], bool]
