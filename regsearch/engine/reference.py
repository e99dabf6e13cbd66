"""The reference engine: one member at a time with torch.nn and torch.optim — the oracle.

It is deliberately plain so it can be read in one sitting and trusted; the population engine
is tested against it.
"""

from __future__ import annotations

import logging
import math
import time

import torch
from torch import nn

from regsearch.dropout import seed_dropout_
from regsearch.engine.batches import epoch_batches
from regsearch.engine.members import OnEpoch, OnResult, Probe, Refill, Schedule, last_epoch
from regsearch.engine.metrics import loss as task_loss
from regsearch.engine.metrics import split_metrics
from regsearch.networks import NetSpec, build_net
from regsearch.records import EpochReport, Member, MemberResult, NonFiniteLoss, with_gaps
from regsearch.regularizers import (
    EarlyStopping,
    decay_,
    penalty,
    split_decay_params,
    weight_kinds,
    weight_matrices,
    weight_stats,
)
from regsearch.tasks.bundle import TaskData

__all__ = ["NonFiniteLoss", "fit", "train"]

log = logging.getLogger(__name__)


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
    """Train each member in turn and return one result per member, in order: ``members``,
    then those ``refill`` handed in (contract: :mod:`regsearch.engine.members`).

    Each member trains on ``task.member_data(member.fold, member.seed)``: the task's splits,
    or its cross-validation fold (see :class:`Member`). A member whose loss turns NaN/inf, or
    whose training raises, comes back ``failed`` with the error text; the others are
    unaffected. Members still to train count as in flight, so ``refill`` is asked for more
    after each member that leaves fewer than ``len(members)`` to go.

    Example:
        >>> from regsearch.engine.members import Hyperparams
        >>> from regsearch.models import ModelSpec
        >>> results = train(task, ModelSpec(2, 1), [Member(0, 0, Hyperparams(lr=0.2))],
        ...                 schedule=Schedule(max_epochs=50))  # doctest: +SKIP
    """
    task = task.to(device)
    queue = list(members)
    results: list[MemberResult] = []
    while len(results) < len(queue):
        index = len(results)
        member = queue[index]
        results.append(_train_one(task, model, member, index, schedule, on_epoch, probe, device))
        if on_result is not None:
            on_result(index, results[index])
        free = len(members) - (len(queue) - len(results))
        if refill is not None and free > 0:
            queue += refill(free)
    return results


def _train_one(
    task: TaskData,
    model: NetSpec,
    member: Member,
    index: int,
    schedule: Schedule,
    on_epoch: OnEpoch | None,
    probe: Probe | None,
    device: str | torch.device,
) -> MemberResult:
    """One member's result on its own data (and its outputs on ``probe``); a failure
    becomes a ``failed`` result."""
    start = time.perf_counter()
    try:
        data = task.member_data(member.fold, member.seed)
        net, result = fit(
            data, model, member, schedule, index=index, on_epoch=on_epoch, device=device
        )
        if probe is not None:
            with torch.no_grad():  # fit leaves the net in evaluation mode
                probe.outputs[index] = net(probe.x.to(device)).cpu()
    except (NonFiniteLoss, RuntimeError, ValueError) as err:
        log.warning("trial %d seed %d failed: %s", member.trial, member.seed, err)
        result = MemberResult(member=member, state="failed", error=f"{type(err).__name__}: {err}")
    result.duration_s = time.perf_counter() - start
    return result


def _optimizer(net: nn.Module, member: Member, schedule: Schedule) -> torch.optim.Optimizer:
    hp = member.hparams
    # Weight decay is applied by decay_ (decoupled), so the optimizers themselves never decay.
    if schedule.optimizer == "sgd":
        return torch.optim.SGD(net.parameters(), lr=hp.lr, momentum=hp.momentum)
    return torch.optim.Adam(net.parameters(), lr=hp.lr, betas=schedule.betas, eps=schedule.eps)


def _evaluate(net: nn.Module, task: TaskData, epoch: int) -> EpochReport:
    net.eval()
    train_loss, train_acc = split_metrics(net, task, "train")
    val_loss, val_acc = split_metrics(net, task, "val")
    net.train()
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        raise NonFiniteLoss(
            f"loss is not finite at epoch {epoch} (train {train_loss}, val {val_loss})"
        )
    return EpochReport(epoch, train_loss, val_loss, train_acc, val_acc)


def fit(
    task: TaskData,
    spec: NetSpec,
    member: Member,
    schedule: Schedule,
    *,
    index: int = 0,
    on_epoch: OnEpoch | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, MemberResult]:
    """Train one member and return its final network (in eval mode) with its result.

    ``task`` is the bundle the member trains on, as given: ``member.fold`` is not applied here
    (:func:`train` does that with ``task.member_data``). It must already be on ``device``.
    Raises NonFiniteLoss when the loss diverges.
    The global random state is restored afterwards: dropout draws from it, seeded per member.
    """
    dev = torch.device(device)
    cuda = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        return _fit(task, spec, member, schedule, index, on_epoch, dev)


def _fit(
    task: TaskData,
    spec: NetSpec,
    member: Member,
    schedule: Schedule,
    index: int,
    on_epoch: OnEpoch | None,
    device: torch.device,
) -> tuple[nn.Module, MemberResult]:
    hp = member.hparams
    last = last_epoch(hp, schedule)
    init_gen = torch.Generator().manual_seed(member.seed)
    net = build_net(spec, dropout=hp.dropout, batch_norm=hp.batch_norm, generator=init_gen).to(
        device
    )
    # Dropout masks: the MLP's from the global generator, any other net's from its own.
    torch.manual_seed(member.seed)
    seed_dropout_(net, member.seed, device)
    order_gen = torch.Generator().manual_seed(schedule.order_seed)
    opt = _optimizer(net, member, schedule)
    decayed, _ = split_decay_params(net, schedule.decay_all)
    weights = weight_matrices(net)
    stopper = (
        EarlyStopping(hp.patience, hp.min_delta, schedule.restore_best) if hp.patience else None
    )
    result = MemberResult(member=member, state="complete")
    best_val = math.inf
    net.train()
    for epoch in range(1, last + 1):
        for idx in epoch_batches(len(task.x_train), schedule.batch_size, order_gen, device):
            xb = task.x_train if idx is None else task.x_train[idx]
            yb = task.y_train if idx is None else task.y_train[idx]
            batch_loss = task_loss(net(xb), yb, task.n_classes) + penalty(weights, hp.l1, hp.l2)
            opt.zero_grad(set_to_none=True)
            batch_loss.backward()
            decay_(decayed, hp.lr, hp.weight_decay)
            opt.step()
        result.stopped_epoch = epoch
        if epoch % schedule.eval_every and epoch != last:
            continue
        report = _evaluate(net, task, epoch)
        result.record(report)
        if report.val_loss < best_val:
            best_val, result.best_epoch = report.val_loss, epoch
        if stopper is not None and stopper.update(report.val_loss, epoch, net):
            break
        if on_epoch is not None and on_epoch(index, report):
            result.state = "pruned"
            break
    if stopper is not None:
        # With min_delta > 0 the stopper's best can come before the lowest val loss; report the
        # epoch whose weights are restored so best_epoch and the final metrics agree.
        result.best_epoch = stopper.best_epoch
        stopper.restore(net)
    _finish(net, task, result)
    return net, result


def _finish(net: nn.Module, task: TaskData, result: MemberResult) -> None:
    """Final metrics of the final weights; the only place the test split is touched."""
    net.eval()
    final: dict[str, float] = {}
    for split in ("train", "val", "test"):
        value, acc = split_metrics(net, task, split)
        final[f"{split}_loss"] = value
        if acc is not None:
            final[f"{split}_acc"] = acc
    if not all(math.isfinite(v) for v in final.values()):
        raise NonFiniteLoss(f"final metrics are not finite: {final}")
    result.final = with_gaps(final)
    kinds = weight_kinds(net)
    stats = weight_stats({n: p for n, p in net.named_parameters() if n in kinds}, kinds)
    result.weight_norm, result.sparsity, result.by_layer = (
        stats.norm,
        stats.sparsity,
        stats.by_layer,
    )
