"""The engine contract: what goes in (members) and what comes out (results).

Every engine implements::

    train(task, model, members, *, schedule, on_epoch=None, device="cpu") -> list[MemberResult]

A :class:`Member` is one (trial, seed) pair with its own hyperparameters, and with cross-
validation one fold of the task's train+val pool (its own training and validation rows, see
:meth:`regsearch.tasks.bundle.TaskData.member_data`). ``on_epoch`` is called
after each evaluation with the member's index and an :class:`EpochReport`; returning True stops
that member (pruned).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "REFIT",
    "EpochReport",
    "Hyperparams",
    "Member",
    "MemberResult",
    "NonFiniteLoss",
    "OnEpoch",
    "Schedule",
    "last_epoch",
]


class NonFiniteLoss(ArithmeticError):
    """A member's training or validation loss became NaN or infinite (it fails alone)."""


#: The fold of a member refit on the whole train+val pool (no held-out validation rows).
REFIT = -1


@dataclass(frozen=True)
class Hyperparams:
    """Everything one member may vary. Defaults mean "regularizer off"."""

    lr: float
    momentum: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    weight_decay: float = 0.0
    dropout: tuple[float, ...] = ()  # one rate per hidden layer; () = no dropout
    batch_norm: bool = False
    patience: int | None = None  # early stopping off when None
    min_delta: float = 0.0
    # Train min(schedule.max_epochs, max_epochs) epochs, then stop (refit members, which have
    # no validation rows to stop on); callers pass a multiple of schedule.eval_every.
    max_epochs: int | None = None


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


@dataclass(frozen=True)
class Member:
    """One (trial, seed, fold): the unit an engine trains.

    ``fold`` None trains on the task's train split and validates on its val split; ``0..K-1``
    is that fold of the K-fold partition of the train+val pool seeded by ``seed``; ``REFIT``
    (:data:`REFIT`) trains on the whole pool.
    """

    trial: int
    seed: int
    hparams: Hyperparams
    repeat: int = 0  # index of this seed within its trial
    fold: int | None = None  # None = no CV; 0..K-1 = a CV fold; REFIT (-1) = whole pool


@dataclass(frozen=True)
class EpochReport:
    """One evaluation of one member, in evaluation mode on whole splits."""

    epoch: int  # 1-based number of epochs trained so far
    train_loss: float
    val_loss: float
    train_acc: float | None = None
    val_acc: float | None = None


OnEpoch = Callable[[int, EpochReport], bool]


@dataclass
class MemberResult:
    """Outcome of one member.

    ``final`` holds the metrics of the final weights (the restored best when early stopping is
    on, else the last epoch): ``train_loss``, ``val_loss``, ``test_loss``, ``gap_loss`` and for
    classification ``train_acc``, ``val_acc``, ``test_acc``, ``gap_acc``. ``curves`` holds the
    same train/val/gap keys per evaluated epoch (``epochs``).
    """

    member: Member
    state: str  # complete | pruned | failed
    epochs: list[int] = field(default_factory=list)
    curves: dict[str, list[float]] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)
    best_epoch: int = 0  # lowest val loss; with early stopping the stopper's best (min_delta)
    stopped_epoch: int = 0  # last epoch trained
    weight_norm: float = float("nan")  # L2 norm of all weight matrices
    sparsity: float = float("nan")  # fraction of weight entries with |w| < 1e-3
    duration_s: float = 0.0
    error: str = ""

    def record(self, report: EpochReport) -> None:
        """Append one evaluation to ``epochs`` and ``curves`` (gaps derived here, once)."""
        self.epochs.append(report.epoch)
        values = {
            "train_loss": report.train_loss,
            "val_loss": report.val_loss,
            "gap_loss": report.val_loss - report.train_loss,
        }
        if report.train_acc is not None and report.val_acc is not None:
            values.update(
                train_acc=report.train_acc,
                val_acc=report.val_acc,
                gap_acc=report.train_acc - report.val_acc,
            )
        for key, value in values.items():
            self.curves.setdefault(key, []).append(value)
