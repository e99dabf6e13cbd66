"""The record types every layer passes around: members, their results, trial outcomes.

One home for what the engines train (:class:`Member` with its :class:`Hyperparams`), what
they report (:class:`EpochReport`, :class:`MemberResult`), what the search tells and hands on
(:class:`TrialOutcome`), how a sweep ended (:class:`RunSummary`), the gap formula
(:func:`with_gaps`) and the one failure a member can have alone (:class:`NonFiniteLoss`).
Engine, search, recorder, tracking and results import these; this module imports nothing of
regsearch.

Example:
    >>> gaps = with_gaps({"train_loss": 0.25, "val_loss": 0.5, "train_acc": 1.0, "val_acc": 0.75})
    >>> gaps["gap_loss"], gaps["gap_acc"]
    (0.25, 0.25)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "LR_CONTROL",
    "REFIT",
    "EpochReport",
    "Hyperparams",
    "Member",
    "MemberResult",
    "NonFiniteLoss",
    "RunSummary",
    "TrialOutcome",
    "lr_control_of",
    "with_gaps",
]

#: The fold of a member refit on the whole train+val pool (no held-out validation rows).
REFIT = -1

#: Final-phase candidate ``baseline@<family>``: the unregularized model at the learning rate
#: ``<family>``'s best found, so the paired difference between them isolates the regularizer.
LR_CONTROL = "baseline@{}"


def lr_control_of(name: str) -> str | None:
    """The family a learning-rate control candidate stands for, or None for other names.

    Example:
        >>> lr_control_of(LR_CONTROL.format("l2")), lr_control_of("l2")
        ('l2', None)
    """
    prefix = LR_CONTROL.format("")
    return name[len(prefix) :] if name.startswith(prefix) and len(name) > len(prefix) else None


class NonFiniteLoss(ArithmeticError):
    """A member's training or validation loss became NaN or infinite (it fails alone)."""


def with_gaps(values: dict[str, float]) -> dict[str, float]:
    """``values`` plus the generalization gaps: the one definition of the gap.

    ``gap_loss = val_loss - train_loss`` and, when both accuracies are present,
    ``gap_acc = train_acc - val_acc``: positive means the model does better on its training
    rows than on held-out ones (overfitting), in both units.
    """
    out = dict(values)
    out["gap_loss"] = values["val_loss"] - values["train_loss"]
    if values.get("train_acc") is not None and values.get("val_acc") is not None:
        out["gap_acc"] = values["train_acc"] - values["val_acc"]
    return out


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
    # Per layer type, for nets with several (cnn): weight_norm_conv, sparsity_linear, ...
    by_layer: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str = ""

    def record(self, report: EpochReport) -> None:
        """Append one evaluation to ``epochs`` and ``curves``."""
        self.epochs.append(report.epoch)
        values = {"train_loss": report.train_loss, "val_loss": report.val_loss}
        if report.train_acc is not None and report.val_acc is not None:
            values.update(train_acc=report.train_acc, val_acc=report.val_acc)
        for key, value in with_gaps(values).items():
            self.curves.setdefault(key, []).append(value)


@dataclass
class TrialOutcome:
    """A told trial with its members' results, handed to tracking and results."""

    number: int
    params: dict[str, Any]
    state: str  # complete | pruned | failed
    values: list[float] | None
    results: list[MemberResult]
    family: str
    phase: str = "tune"
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSummary:
    """How a sweep ended, for its tracking parent run: the status and the best trial's values."""

    status: str  # FINISHED | FAILED | KILLED (MLflow's run statuses)
    metrics: dict[str, float] = field(default_factory=dict)  # best trial's mean final metrics
    params: dict[str, Any] = field(default_factory=dict)  # best trial's parameter values
    artifacts: tuple[Path, ...] = ()  # files attached to the run; missing ones are skipped
    tags: dict[str, str] = field(default_factory=dict)  # the verdict, searchable in MLflow
