"""The reference engine on real tasks: the result contract, evaluation mode, reproducibility,
early stopping with restore-best, failure isolation, pruning and minibatches."""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import pytest
import torch
from torch import nn

from regsearch.config import HighdimLinearTask, MoonsTask
from regsearch.engine.members import Schedule
from regsearch.engine.metrics import loss as task_loss
from regsearch.engine.metrics import split_metrics
from regsearch.engine.reference import fit, train
from regsearch.models import ModelSpec, build_mlp
from regsearch.records import REFIT, EpochReport, Hyperparams, Member, MemberResult
from regsearch.regularizers import split_decay_params
from regsearch.tasks import TaskData, load_task
from regsearch.tasks.folds import fold_indices

SPEC = ModelSpec(2, 1, hidden=(20, 3), init="normal")
LINEAR = ModelSpec(200, 1, hidden=())
CLASSIFICATION_KEYS = {"train_loss", "val_loss", "gap_loss", "train_acc", "val_acc", "gap_acc"}
REGRESSION_KEYS = {"train_loss", "val_loss", "gap_loss"}


@pytest.fixture(scope="module")
def moons() -> TaskData:
    return load_task(MoonsTask(name="moons"))


@pytest.fixture(scope="module")
def highdim() -> TaskData:
    return load_task(HighdimLinearTask(name="highdim_linear"))


def member(trial: int = 0, seed: int = 0, **hparams: Any) -> Member:
    hp: dict[str, Any] = {"lr": 0.1, **hparams}
    return Member(trial, seed, Hyperparams(**hp))


def same_outcome(a: MemberResult, b: MemberResult) -> bool:
    return (a.state, a.epochs, a.curves, a.final, a.best_epoch, a.stopped_epoch) == (
        b.state,
        b.epochs,
        b.curves,
        b.final,
        b.best_epoch,
        b.stopped_epoch,
    )


# --------------------------------------------------------------------------- the result contract

MEMBERS = [
    member(0, 0),
    member(1, 3, l2=0.01, weight_decay=0.001),
    member(2, 1, dropout=(0.2, 0.0), l1=0.001),
    member(3, 2, batch_norm=True, momentum=0.9, lr=0.05),
]


@pytest.mark.parametrize(
    ("max_epochs", "eval_every", "epochs"),
    [(50, 10, [10, 20, 30, 40, 50]), (25, 10, [10, 20, 25]), (3, 1, [1, 2, 3])],
)
def test_results_follow_the_contract(
    moons: TaskData, max_epochs: int, eval_every: int, epochs: list[int]
) -> None:
    results = train(
        moons, SPEC, MEMBERS, schedule=Schedule(max_epochs=max_epochs, eval_every=eval_every)
    )
    assert [r.member for r in results] == MEMBERS
    for r in results:
        assert (r.state, r.error) == ("complete", "")
        assert r.epochs == epochs
        assert r.stopped_epoch == max_epochs
        assert set(r.curves) == CLASSIFICATION_KEYS
        assert all(len(values) == len(epochs) for values in r.curves.values())
        c = r.curves
        for i in range(len(epochs)):
            assert c["gap_loss"][i] == pytest.approx(c["val_loss"][i] - c["train_loss"][i])
            assert c["gap_acc"][i] == pytest.approx(c["train_acc"][i] - c["val_acc"][i])
            assert 0.0 <= c["train_acc"][i] <= 1.0
        assert r.best_epoch == epochs[c["val_loss"].index(min(c["val_loss"]))]
        assert set(r.final) == CLASSIFICATION_KEYS | {"test_loss", "test_acc"}
        assert all(math.isfinite(v) for v in r.final.values())
        assert r.final["gap_loss"] == pytest.approx(r.final["val_loss"] - r.final["train_loss"])
        assert r.final["gap_acc"] == pytest.approx(r.final["train_acc"] - r.final["val_acc"])
        # without early stopping the final weights are the last epoch's
        assert r.final["train_loss"] == pytest.approx(c["train_loss"][-1], abs=1e-7)
        assert r.final["val_loss"] == pytest.approx(c["val_loss"][-1], abs=1e-7)
        assert math.isfinite(r.weight_norm) and r.weight_norm > 0
        assert 0.0 <= r.sparsity <= 1.0
        assert r.duration_s > 0


def test_regression_has_loss_keys_only(highdim: TaskData) -> None:
    [r] = train(highdim, LINEAR, [member(lr=0.01)], schedule=Schedule(max_epochs=20))
    assert r.state == "complete"
    assert set(r.curves) == REGRESSION_KEYS
    assert set(r.final) == REGRESSION_KEYS | {"test_loss"}


def test_empty_member_list_gives_no_results(moons: TaskData) -> None:
    assert train(moons, SPEC, [], schedule=Schedule(max_epochs=5)) == []


# --------------------------------------------------------------------------- replaying a member


def replay(
    task: TaskData, spec: ModelSpec, m: Member, schedule: Schedule, epochs: int
) -> nn.Module:
    """Full-batch training written from the textbook formulas, independent of the engine's loop.

    SGD: θ ← θ − lr·(g + wd·θ) with g the gradient of loss + l1·Σ|W| + (l2/2)·ΣW²; Adam(W):
    torch.optim.AdamW with wd on the decayed group only.
    """
    hp = m.hparams
    net = build_mlp(
        spec,
        dropout=hp.dropout,
        batch_norm=hp.batch_norm,
        generator=torch.Generator().manual_seed(m.seed),
    )
    torch.manual_seed(m.seed)
    decayed, kept = split_decay_params(net, schedule.decay_all)
    adamw = torch.optim.AdamW(
        [
            {"params": decayed, "weight_decay": hp.weight_decay},
            {"params": kept, "weight_decay": 0.0},
        ],
        lr=hp.lr,
        betas=schedule.betas,
        eps=schedule.eps,
    )
    decayed_ids = {id(p) for p in decayed}
    net.train()
    for _ in range(epochs):
        total = task_loss(net(task.x_train), task.y_train, task.n_classes)
        for layer in net.modules():
            if isinstance(layer, nn.Linear):
                w = layer.weight
                total = total + hp.l1 * w.abs().sum() + 0.5 * hp.l2 * w.pow(2).sum()
        net.zero_grad(set_to_none=True)
        total.backward()
        if schedule.optimizer == "sgd":
            with torch.no_grad():
                for p in net.parameters():
                    assert p.grad is not None
                    wd = hp.weight_decay if id(p) in decayed_ids else 0.0
                    p.sub_(hp.lr * (p.grad + wd * p))
        else:
            adamw.step()
    return net.eval()


REPLAYS = [
    ("sgd", False, {"l2": 0.05}),
    ("sgd", False, {"l1": 0.01, "weight_decay": 0.5}),
    ("sgd", True, {"weight_decay": 0.5, "batch_norm": True}),
    ("adam", False, {"weight_decay": 0.3, "l2": 0.01, "lr": 0.01}),
    ("adamw", True, {"weight_decay": 0.3, "lr": 0.01, "batch_norm": True}),
]


@pytest.mark.parametrize(("optimizer", "decay_all", "hparams"), REPLAYS)
def test_training_matches_the_textbook_update(
    moons: TaskData, optimizer: str, decay_all: bool, hparams: dict[str, Any]
) -> None:
    schedule = Schedule(optimizer=optimizer, decay_all=decay_all, max_epochs=5, eval_every=5)
    m = member(seed=4, **hparams)
    [r] = train(moons, SPEC, [m], schedule=schedule)
    net = replay(moons, SPEC, m, schedule, epochs=5)
    for split in ("train", "val", "test"):
        value, acc = split_metrics(net, moons, split)
        assert r.final[f"{split}_loss"] == pytest.approx(value, rel=1e-5), split
        assert r.final[f"{split}_acc"] == acc, split


def test_train_metrics_are_measured_in_eval_mode(moons: TaskData) -> None:
    schedule = Schedule(max_epochs=30, eval_every=10)
    m = member(seed=5, dropout=(0.5, 0.5))
    [r] = train(moons, SPEC, [m], schedule=schedule)
    net = replay(moons, SPEC, m, schedule, epochs=30)
    eval_loss, eval_acc = split_metrics(net, moons, "train")
    assert r.curves["train_loss"][-1] == pytest.approx(eval_loss, rel=1e-5)
    assert r.final["train_loss"] == pytest.approx(eval_loss, rel=1e-5)
    assert r.curves["train_acc"][-1] == r.final["train_acc"] == eval_acc
    net.train()  # with the dropout masks on, the loss is a different number
    torch.manual_seed(0)
    train_mode_loss, _ = split_metrics(net, moons, "train")
    assert abs(train_mode_loss - eval_loss) > 1e-3


# --------------------------------------------------------------------------- reproducibility

REPRO_SCHEDULE = Schedule(max_epochs=10, eval_every=5, batch_size=32)


def test_same_member_twice_gives_identical_results(moons: TaskData) -> None:
    m = member(seed=7, dropout=(0.3, 0.3))
    a, b = train(moons, SPEC, [m, m], schedule=REPRO_SCHEDULE)
    assert same_outcome(a, b)
    [c] = train(moons, SPEC, [m], schedule=REPRO_SCHEDULE)
    assert same_outcome(a, c)


def test_different_seeds_differ(moons: TaskData) -> None:
    a, b = train(moons, SPEC, [member(seed=0), member(seed=1)], schedule=REPRO_SCHEDULE)
    assert a.curves["train_loss"] != b.curves["train_loss"]
    assert a.final != b.final


def test_a_member_does_not_depend_on_its_neighbours(moons: TaskData) -> None:
    m = member(2, 11, dropout=(0.3, 0.2), batch_norm=True)
    others = [
        member(0, 1, dropout=(0.5, 0.5), lr=0.3),
        member(1, 2, l2=0.1, momentum=0.9, patience=1),
    ]
    [alone] = train(moons, SPEC, [m], schedule=REPRO_SCHEDULE)
    together = train(moons, SPEC, [others[0], m, others[1]], schedule=REPRO_SCHEDULE)
    assert same_outcome(alone, together[1])
    torch.manual_seed(123)  # the caller's global RNG state does not leak in either
    [again] = train(moons, SPEC, [m], schedule=REPRO_SCHEDULE)
    assert same_outcome(alone, again)


# --------------------------------------------------------------------------- early stopping

STOPPERS = [
    # (lr, patience, min_delta, eval_every)
    (0.1, 2, 0.0, 5),
    (0.1, 3, 0.0, 5),
    (0.5, 2, 0.0, 10),
    (0.1, 3, 0.003, 5),  # min_delta: the restored weights are not those of the lowest val loss
    (0.02, 3, 0.01, 5),
]


@pytest.mark.parametrize(("lr", "patience", "min_delta", "eval_every"), STOPPERS)
def test_early_stopping_stops_after_patience_and_restores_the_best(
    moons: TaskData, lr: float, patience: int, min_delta: float, eval_every: int
) -> None:
    schedule = Schedule(max_epochs=300, eval_every=eval_every)
    [r] = train(
        moons, SPEC, [member(lr=lr, patience=patience, min_delta=min_delta)], schedule=schedule
    )
    assert r.state == "complete"
    assert r.stopped_epoch < schedule.max_epochs, "this case is meant to stop early"
    assert r.epochs[-1] == r.stopped_epoch
    assert r.stopped_epoch - r.best_epoch == patience * eval_every
    best = r.epochs.index(r.best_epoch)
    for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
        assert r.final[key] == pytest.approx(r.curves[key][best], abs=1e-7), key
    if min_delta == 0:
        assert r.final["val_loss"] == pytest.approx(min(r.curves["val_loss"]), abs=1e-7)


def test_without_restore_best_the_final_weights_are_the_last(moons: TaskData) -> None:
    schedule = Schedule(max_epochs=300, eval_every=5, restore_best=False)
    [r] = train(moons, SPEC, [member(patience=2)], schedule=schedule)
    assert r.stopped_epoch < schedule.max_epochs
    assert r.stopped_epoch - r.best_epoch == 2 * 5
    assert r.final["val_loss"] == pytest.approx(r.curves["val_loss"][-1], abs=1e-7)
    assert r.final["val_loss"] > min(r.curves["val_loss"])


# --------------------------------------------------------------------------- failures and pruning


def test_a_diverging_member_fails_alone(highdim: TaskData) -> None:
    members = [member(0, lr=0.01), member(1, lr=1e6), member(2, lr=0.01, l2=0.1)]
    results = train(highdim, LINEAR, members, schedule=Schedule(max_epochs=30, eval_every=10))
    assert [r.state for r in results] == ["complete", "failed", "complete"]
    failed = results[1]
    assert failed.error
    assert failed.member == members[1]
    assert failed.final == {}
    for r in (results[0], results[2]):
        assert r.error == ""
        assert r.epochs == [10, 20, 30]
        assert all(math.isfinite(v) for v in r.final.values())
    [alone] = train(highdim, LINEAR, [members[2]], schedule=Schedule(max_epochs=30, eval_every=10))
    assert same_outcome(alone, results[2])


def test_a_member_that_raises_fails_alone(moons: TaskData) -> None:
    bad = member(1, dropout=(0.5,))  # one rate for two hidden layers
    results = train(moons, SPEC, [member(0), bad], schedule=Schedule(max_epochs=10))
    assert [r.state for r in results] == ["complete", "failed"]
    assert "ValueError" in results[1].error


def test_on_epoch_sees_every_evaluation_and_can_prune(moons: TaskData) -> None:
    seen: list[tuple[int, EpochReport]] = []

    def on_epoch(index: int, report: EpochReport) -> bool:
        seen.append((index, copy.copy(report)))
        return index == 1 and report.epoch >= 20

    members = [member(0), member(1), member(2)]
    schedule = Schedule(max_epochs=50, eval_every=10)
    results = train(moons, SPEC, members, schedule=schedule, on_epoch=on_epoch)
    assert [r.state for r in results] == ["complete", "pruned", "complete"]
    pruned = results[1]
    assert (pruned.epochs, pruned.stopped_epoch) == ([10, 20], 20)
    assert set(pruned.final) >= {"val_loss", "test_loss"}
    assert [i for i, _ in seen] == [0] * 5 + [1] * 2 + [2] * 5
    for index, r in enumerate(results):
        reports = [rep for i, rep in seen if i == index]
        assert [rep.epoch for rep in reports] == r.epochs
        assert [rep.train_loss for rep in reports] == r.curves["train_loss"]
        assert [rep.val_loss for rep in reports] == r.curves["val_loss"]
        assert [rep.train_acc for rep in reports] == r.curves["train_acc"]
        assert [rep.val_acc for rep in reports] == r.curves["val_acc"]
    # pruning member 1 changes nothing for member 2
    [alone] = train(moons, SPEC, [members[2]], schedule=schedule)
    assert same_outcome(alone, results[2])


# --------------------------------------------------------------------------- minibatches


@pytest.mark.parametrize("batch_norm", [False, True])
@pytest.mark.parametrize("batch_size", [32, 149])  # 149 leaves one lone row out of 150
def test_minibatch_training(moons: TaskData, batch_norm: bool, batch_size: int) -> None:
    schedule = Schedule(max_epochs=20, eval_every=5, batch_size=batch_size)
    m = member(seed=3, lr=0.05, batch_norm=batch_norm, dropout=(0.1, 0.1))
    [r] = train(moons, SPEC, [m], schedule=schedule)
    assert (r.state, r.error) == ("complete", "")
    assert r.epochs == [5, 10, 15, 20]
    assert all(math.isfinite(v) for v in r.final.values())
    [full] = train(moons, SPEC, [m], schedule=Schedule(max_epochs=20, eval_every=5))
    assert r.curves["train_loss"] != full.curves["train_loss"]


def test_minibatch_order_follows_the_order_seed(moons: TaskData) -> None:
    m = member(seed=3, lr=0.05)
    a, b = (
        train(moons, SPEC, [m], schedule=Schedule(max_epochs=10, batch_size=32, order_seed=s))[0]
        for s in (0, 1)
    )
    assert a.curves["train_loss"] != b.curves["train_loss"]


# --------------------------------------------------------------------------- folds and caps


def by_hand(task: TaskData, train_rows: Any, val_rows: Any) -> TaskData:
    """A bundle built from pool rows directly (moons is not standardized: rows as they are)."""
    x = torch.cat([task.x_train, task.x_val])
    y = torch.cat([task.y_train, task.y_val])
    return TaskData(
        task.name,
        task.kind,
        task.n_classes,
        x[train_rows],
        y[train_rows],
        x[val_rows],
        y[val_rows],
        task.x_test,
        task.y_test,
    )


@pytest.mark.parametrize("batch_size", [None, 32])
def test_a_fold_member_trains_on_that_folds_rows(moons: TaskData, batch_size: int | None) -> None:
    task = dataclasses.replace(moons, folds=4)
    schedule = Schedule(max_epochs=20, eval_every=5, batch_size=batch_size)
    y = torch.cat([task.y_train, task.y_val]).reshape(-1).numpy()
    folds = fold_indices(y, 4, seed=6, stratified=True)
    members = [Member(0, 6, Hyperparams(lr=0.1, batch_norm=True), fold=f) for f in (1, 3)]
    results = train(task, SPEC, members, schedule=schedule)
    for m, r in zip(members, results, strict=True):
        assert m.fold is not None
        _, expected = fit(by_hand(task, *folds[m.fold]), SPEC, m, schedule)
        assert same_outcome(r, expected)
    [refit] = train(task, SPEC, [member(0, 6)], schedule=schedule)  # fold None: the split
    assert not same_outcome(refit, results[0])
    [whole] = train(task, SPEC, [Member(0, 6, Hyperparams(lr=0.1), fold=REFIT)], schedule=schedule)
    every = torch.arange(len(task.x_train) + len(task.x_val))
    _, expected = fit(by_hand(task, every, every), SPEC, member(0, 6), schedule)
    assert same_outcome(whole, expected)


def test_max_epochs_stops_a_member_at_its_cap(moons: TaskData) -> None:
    m = member(0, 2, max_epochs=20, l2=0.01)
    [capped] = train(moons, SPEC, [m], schedule=Schedule(max_epochs=50, eval_every=5))
    assert (capped.state, capped.stopped_epoch, capped.epochs) == ("complete", 20, [5, 10, 15, 20])
    [short] = train(moons, SPEC, [m], schedule=Schedule(max_epochs=20, eval_every=5))
    assert same_outcome(capped, short)
    [uncapped] = train(moons, SPEC, [m], schedule=Schedule(max_epochs=10, eval_every=5))
    assert uncapped.stopped_epoch == 10  # the schedule's max_epochs still bounds it


def test_refill_and_on_result_follow_the_engine_contract(moons: TaskData) -> None:
    """Members to train count as in flight: refill is asked after each member that leaves
    fewer than the population to go, and once more with a whole population at the end."""
    schedule = Schedule(max_epochs=10, eval_every=5)
    members = [member(t, t, lr=0.05 * (1 + t)) for t in range(5)]
    queue = members[2:]
    calls: list[int] = []
    finals: list[tuple[int, MemberResult]] = []

    def refill(free: int) -> list[Member]:
        calls.append(free)
        taken = queue[:1]
        del queue[:1]
        return taken

    results = train(
        moons,
        SPEC,
        members[:2],
        schedule=schedule,
        refill=refill,
        on_result=lambda index, result: finals.append((index, result)),
    )
    assert [r.member for r in results] == members
    assert [(i, r) for i, r in finals] == list(enumerate(results))
    assert calls == [1, 1, 1, 1, 2]  # one to go after each; none left at the end
    alone = train(moons, SPEC, members, schedule=schedule)
    assert all(same_outcome(a, b) for a, b in zip(alone, results, strict=True))
