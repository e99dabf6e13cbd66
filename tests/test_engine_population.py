"""The population engine against the reference engine (the oracle): identical per-epoch losses
for members without dropout, statistically equal results with dropout, members that do not
depend on their batch mates, and per-member failure, pruning and early stopping."""

from __future__ import annotations

import copy
import dataclasses
import math
import statistics
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from regsearch.config import HighdimLinearTask, Linear12Task, MoonsTask, SklearnTask
from regsearch.engine import population, reference
from regsearch.engine.members import Probe, Refill, Schedule
from regsearch.engine.stack import IMPLEMENTED, Entry, Shared, Stack
from regsearch.models import ACTIVATIONS, ModelSpec
from regsearch.records import REFIT, EpochReport, Hyperparams, Member, MemberResult
from regsearch.tasks import TaskData, load_task

MOONS = ModelSpec(2, 1, hidden=(20, 3), init="normal")
WINE = ModelSpec(13, 3, hidden=(16,))
DIGITS = ModelSpec(64, 10, hidden=(32,))
HIGHDIM = ModelSpec(200, 1, hidden=())
LINEAR12 = ModelSpec(12, 1, hidden=(8,), activation="tanh")


@pytest.fixture(scope="module")
def tasks() -> dict[str, TaskData]:
    return {
        "moons": load_task(MoonsTask(name="moons")),
        "wine": load_task(SklearnTask(name="wine")),
        "digits": load_task(SklearnTask(name="digits")),
        "highdim": load_task(HighdimLinearTask(name="highdim_linear")),
        "linear12": load_task(Linear12Task(name="linear12")),
    }


def member(trial: int = 0, seed: int = 0, fold: int | None = None, **hparams: Any) -> Member:
    hp: dict[str, Any] = {"lr": 0.1, **hparams}
    return Member(trial, seed, Hyperparams(**hp), fold=fold)


def train_exact(
    task: TaskData, spec: ModelSpec, members: list[Member], **kwargs: Any
) -> list[MemberResult]:
    """The population engine in exact mode, for bit-for-bit comparisons between stacks."""
    return population.train(task, spec, members, exact=True, **kwargs)


def outcome(r: MemberResult) -> tuple[Any, ...]:
    """Everything a result says, bit for bit (duration aside)."""
    return (
        r.state,
        r.error,
        r.epochs,
        r.curves,
        r.final,
        r.best_epoch,
        r.stopped_epoch,
        r.weight_norm,
        r.sparsity,
    )


def assert_matches_reference(pop: MemberResult, ref: MemberResult, rel: float = 1e-5) -> None:
    assert (pop.state, pop.error) == (ref.state, ref.error)
    assert (pop.epochs, pop.best_epoch, pop.stopped_epoch) == (
        ref.epochs,
        ref.best_epoch,
        ref.stopped_epoch,
    )
    assert pop.curves.keys() == ref.curves.keys()
    assert pop.final.keys() == ref.final.keys()
    # gaps are differences of near numbers: compared through the two terms they are made of
    for key, values in ref.curves.items():
        if not key.startswith("gap"):
            assert pop.curves[key] == pytest.approx(values, rel=rel, abs=1e-7), key
    for key, value in ref.final.items():
        if not key.startswith("gap"):
            assert pop.final[key] == pytest.approx(value, rel=rel, abs=1e-7), key
    if pop.final:
        assert pop.final["gap_loss"] == pop.final["val_loss"] - pop.final["train_loss"]
    assert pop.weight_norm == pytest.approx(ref.weight_norm, rel=rel, nan_ok=True)
    assert pop.sparsity == pytest.approx(ref.sparsity, abs=0.01, nan_ok=True)


# --------------------------------------------------------------------------- equivalence

# (task, spec, schedule, hyperparameters); dropout-free, so the two engines see the same
# initialization, data order and arithmetic.
EQUIVALENCE = {
    "sgd": ("moons", MOONS, {}, {}),
    "sgd-momentum": ("moons", MOONS, {}, {"momentum": 0.9}),
    "sgd-l1": ("moons", MOONS, {}, {"l1": 0.01}),
    "sgd-l2": ("moons", MOONS, {}, {"l2": 0.05}),
    "sgd-weight-decay": ("moons", MOONS, {}, {"weight_decay": 0.5}),
    "sgd-decay-all": ("moons", MOONS, {"decay_all": True}, {"weight_decay": 0.5}),
    "sgd-mixed-minibatch": (
        "moons",
        MOONS,
        {"batch_size": 32},
        {"momentum": 0.5, "l1": 1e-3, "l2": 0.01, "weight_decay": 0.1},
    ),
    "batch-norm": ("moons", MOONS, {}, {"batch_norm": True}),
    "batch-norm-minibatch": ("moons", MOONS, {"batch_size": 32}, {"batch_norm": True}),
    "batch-norm-decay-all": (
        "moons",
        MOONS,
        {"decay_all": True},
        {"batch_norm": True, "weight_decay": 0.3, "l2": 0.01},
    ),
    "adam": ("moons", MOONS, {"optimizer": "adam"}, {"lr": 0.01}),
    "adam-l2-decay": (
        "moons",
        MOONS,
        {"optimizer": "adam"},
        {"lr": 0.01, "l2": 0.01, "weight_decay": 0.3},
    ),
    "adamw-decay-all": (
        "moons",
        MOONS,
        {"optimizer": "adamw", "decay_all": True},
        {"lr": 0.01, "weight_decay": 0.3},
    ),
    # The Linear bias before BN gets a ~0 gradient that Adam normalizes into ±lr steps driven
    # by rounding noise, which no two implementations share: compare without biases.
    "adamw-batch-norm": (
        "moons",
        ModelSpec(2, 1, hidden=(20, 3), init="normal", bias=False),
        {"optimizer": "adamw", "batch_size": 32},
        {"lr": 0.01, "weight_decay": 0.1, "batch_norm": True},
    ),
    "early-stopping": ("moons", MOONS, {"max_epochs": 300}, {"patience": 2}),
    "early-stopping-min-delta": (
        "moons",
        MOONS,
        {"max_epochs": 300},
        {"patience": 3, "min_delta": 0.003},
    ),
    "early-stopping-no-restore": (
        "moons",
        MOONS,
        {"max_epochs": 300, "restore_best": False},
        {"patience": 2},
    ),
    "tanh": ("moons", ModelSpec(2, 1, hidden=(20, 3), activation="tanh"), {}, {"l2": 0.01}),
    "elu": ("moons", ModelSpec(2, 1, hidden=(20, 3), activation="elu"), {}, {"l1": 0.01}),
    "gelu-batch-norm": (
        "moons",
        ModelSpec(2, 1, hidden=(20, 3), activation="gelu"),
        {},
        {"batch_norm": True},
    ),
    "wine-sgd": ("wine", WINE, {}, {"momentum": 0.9, "l2": 0.01}),
    "wine-adamw-minibatch": (
        "wine",
        WINE,
        {"optimizer": "adamw", "batch_size": 32},
        {"lr": 0.01, "weight_decay": 0.1, "l1": 1e-3},
    ),
    "wine-batch-norm": ("wine", WINE, {}, {"batch_norm": True, "weight_decay": 0.1}),
    "digits-adam-minibatch": (
        "digits",
        DIGITS,
        {"optimizer": "adam", "batch_size": 256, "max_epochs": 20},
        {"lr": 1e-3, "l2": 1e-3},
    ),
    "highdim-l2": ("highdim", HIGHDIM, {}, {"lr": 0.01, "l2": 3.0}),
    "highdim-weight-decay": (
        "highdim",
        HIGHDIM,
        {"decay_all": True},
        {"lr": 0.01, "weight_decay": 3.0},
    ),
    "linear12-adam-minibatch": (
        "linear12",
        LINEAR12,
        {"optimizer": "adam", "batch_size": 100},
        {"lr": 0.01, "weight_decay": 0.1},
    ),
}


@pytest.mark.parametrize(
    ("task_name", "spec", "schedule_kwargs", "hparams"),
    list(EQUIVALENCE.values()),
    ids=list(EQUIVALENCE),
)
def test_matches_the_reference_without_dropout(
    tasks: dict[str, TaskData],
    task_name: str,
    spec: ModelSpec,
    schedule_kwargs: dict[str, Any],
    hparams: dict[str, Any],
) -> None:
    schedule = Schedule(**{"max_epochs": 40, "eval_every": 5, **schedule_kwargs})
    m = member(seed=3, **hparams)
    [ref] = reference.train(tasks[task_name], spec, [m], schedule=schedule)
    [pop] = population.train(tasks[task_name], spec, [m], schedule=schedule)
    assert pop.state == "complete"
    if m.hparams.patience:
        assert pop.stopped_epoch < schedule.max_epochs, "this case is meant to stop early"
    assert_matches_reference(pop, ref)


def test_matches_the_reference_member_by_member_in_one_stack(tasks: dict[str, TaskData]) -> None:
    schedule = Schedule(max_epochs=30, eval_every=10)
    members = [
        member(0, 0),
        member(1, 1, l2=0.05, momentum=0.9),
        member(2, 2, l1=0.01, weight_decay=0.3),
        member(3, 0, lr=0.3, patience=1),
        member(4, 4, batch_norm=True),
    ]
    refs = reference.train(tasks["moons"], MOONS, members, schedule=schedule)
    pops = population.train(tasks["moons"], MOONS, members, schedule=schedule)
    assert [r.member for r in pops] == members
    for pop, ref in zip(pops, refs, strict=True):
        assert_matches_reference(pop, ref)


# --------------------------------------------------------------------------- dropout


def test_dropout_gives_the_reference_results_in_distribution(tasks: dict[str, TaskData]) -> None:
    """Masks differ (own generators), so compare over seeds: same init per seed, paired."""
    schedule = Schedule(max_epochs=100, eval_every=50)
    members = [member(0, seed, lr=0.2, dropout=(0.3, 0.3)) for seed in range(12)]
    pops = population.train(tasks["moons"], MOONS, members, schedule=schedule)
    refs = reference.train(tasks["moons"], MOONS, members, schedule=schedule)
    diffs = [p.final["val_loss"] - r.final["val_loss"] for p, r in zip(pops, refs, strict=True)]
    standard_error = statistics.stdev(diffs) / math.sqrt(len(diffs))
    assert abs(statistics.mean(diffs)) < 3 * standard_error
    # ... and dropout does act: without it the same members end elsewhere
    plain = [member(0, seed, lr=0.2) for seed in range(3)]
    for p, q in zip(
        pops, population.train(tasks["moons"], MOONS, plain, schedule=schedule), strict=False
    ):
        assert p.final["train_loss"] != pytest.approx(q.final["train_loss"], rel=1e-3)


def test_dropout_is_off_at_evaluation(tasks: dict[str, TaskData]) -> None:
    schedule = Schedule(max_epochs=30, eval_every=10)
    [r] = population.train(tasks["moons"], MOONS, [member(dropout=(0.5, 0.5))], schedule=schedule)
    # without early stopping the final (evaluation-mode) numbers are the last curve point
    assert r.final["train_loss"] == r.curves["train_loss"][-1]
    assert r.final["val_loss"] == r.curves["val_loss"][-1]


# --------------------------------------------------------------------------- isolation


@pytest.mark.parametrize(
    ("activation", "batch_size"), [("relu", None), ("relu", 32), ("tanh", 37), ("gelu", None)]
)
def test_a_member_does_not_depend_on_its_batch_mates(
    tasks: dict[str, TaskData], activation: str, batch_size: int | None
) -> None:
    spec = ModelSpec(2, 1, hidden=(20, 3), activation=activation)
    a = member(5, 3, dropout=(0.3, 0.0), l2=0.01, weight_decay=0.01, momentum=0.5)
    mates = [
        member(0, 3, lr=0.2, dropout=(0.5, 0.5)),  # same seed, other rates
        member(1, 1, lr=math.inf),  # NaN from the first step
        member(2, 9, lr=0.05, dropout=(0.2, 0.4), patience=1),  # stops early
        member(3, 3, l1=0.01),
        member(4, 0, lr=0.3, dropout=(0.1, 0.1), batch_norm=True),  # another stack
    ]
    schedule = Schedule(max_epochs=30, eval_every=5, batch_size=batch_size)
    stack = [*mates[:2], a, *mates[2:]]
    [alone] = train_exact(tasks["moons"], spec, [a], schedule=schedule)
    together = train_exact(tasks["moons"], spec, stack, schedule=schedule)
    assert outcome(together[2]) == outcome(alone)
    assert together[1].state == "failed"
    torch.manual_seed(123)  # the caller's global RNG state does not leak in either
    [again] = train_exact(tasks["moons"], spec, [a], schedule=schedule)
    assert outcome(again) == outcome(alone)
    # the default (batched) products round by stack position, no more
    [fast_alone] = population.train(tasks["moons"], spec, [a], schedule=schedule)
    fast_together = population.train(tasks["moons"], spec, stack, schedule=schedule)
    assert_matches_reference(fast_together[2], fast_alone, rel=1e-5)
    assert_matches_reference(fast_alone, alone, rel=1e-5)


@pytest.mark.parametrize(
    ("spec", "optimizer", "batch_size"),
    [
        (MOONS, "sgd", None),
        (MOONS, "adam", 32),
        (ModelSpec(2, 1, hidden=(20, 3), activation="gelu"), "sgd", 37),
    ],
)
def test_the_fast_path_agrees_with_the_exact_one(
    tasks: dict[str, TaskData], spec: ModelSpec, optimizer: str, batch_size: int | None
) -> None:
    """The default: one batched product per layer, rounding by stack position (1e-7)."""
    members = [
        member(0, 0, dropout=(0.3, 0.1), l2=0.01),
        member(1, 0, momentum=0.9, weight_decay=0.1, lr=0.05),
        member(2, 1, l1=1e-3, patience=2),
        member(3, 2, batch_norm=True, lr=0.05),
        member(4, 0, lr=math.inf),
    ]
    schedule = Schedule(optimizer=optimizer, max_epochs=20, eval_every=5, batch_size=batch_size)
    exact = train_exact(tasks["moons"], spec, members, schedule=schedule)
    fast = population.train(tasks["moons"], spec, members, schedule=schedule)
    for e, f in zip(exact, fast, strict=True):
        assert_matches_reference(f, e, rel=1e-4)
    with pytest.raises(ValueError, match="CPU only"):
        population.train(
            tasks["moons"], spec, members, schedule=schedule, device="cuda", exact=True
        )


def test_a_diverging_member_fails_alone(tasks: dict[str, TaskData]) -> None:
    members = [member(0, lr=0.01), member(1, lr=1e6), member(2, lr=0.01, l2=0.1)]
    schedule = Schedule(max_epochs=30, eval_every=10)
    results = train_exact(tasks["highdim"], HIGHDIM, members, schedule=schedule)
    assert [r.state for r in results] == ["complete", "failed", "complete"]
    failed = results[1]
    assert failed.error.startswith("NonFiniteLoss: loss is not finite at epoch 10")
    assert (failed.member, failed.final, failed.epochs) == (members[1], {}, [])
    for r in (results[0], results[2]):
        assert r.error == ""
        assert r.epochs == [10, 20, 30]
        assert all(math.isfinite(v) for v in r.final.values())
    [alone] = train_exact(tasks["highdim"], HIGHDIM, [members[2]], schedule=schedule)
    assert outcome(alone) == outcome(results[2])


def test_invalid_hyperparameters_fail_alone(tasks: dict[str, TaskData]) -> None:
    bad = [member(1, dropout=(0.5,)), member(2, patience=-1), member(3, lr=-1.0)]
    results = population.train(
        tasks["moons"], MOONS, [member(0), *bad], schedule=Schedule(max_epochs=10)
    )
    assert [r.state for r in results] == ["complete", "failed", "failed", "failed"]
    assert all("ValueError" in r.error for r in results[1:])


def test_empty_member_list_gives_no_results(tasks: dict[str, TaskData]) -> None:
    assert population.train(tasks["moons"], MOONS, [], schedule=Schedule(max_epochs=5)) == []


# --------------------------------------------------------------------------- pruning and stopping


def test_on_epoch_sees_every_evaluation_and_prunes_one_member(tasks: dict[str, TaskData]) -> None:
    seen: list[tuple[int, EpochReport]] = []

    def on_epoch(index: int, report: EpochReport) -> bool:
        seen.append((index, copy.copy(report)))
        return index == 1 and report.epoch >= 20

    members = [member(0, dropout=(0.2, 0.2)), member(1), member(2, l2=0.01)]
    schedule = Schedule(max_epochs=50, eval_every=10)
    results = train_exact(tasks["moons"], MOONS, members, schedule=schedule, on_epoch=on_epoch)
    assert [r.state for r in results] == ["complete", "pruned", "complete"]
    pruned = results[1]
    assert (pruned.epochs, pruned.stopped_epoch) == ([10, 20], 20)
    assert pruned.final["val_loss"] == pruned.curves["val_loss"][-1]  # frozen since epoch 20
    for index, r in enumerate(results):
        reports = [rep for i, rep in seen if i == index]
        assert [rep.epoch for rep in reports] == r.epochs
        assert [rep.train_loss for rep in reports] == r.curves["train_loss"]
        assert [rep.val_loss for rep in reports] == r.curves["val_loss"]
        assert [rep.val_acc for rep in reports] == r.curves["val_acc"]
    unpruned = train_exact(tasks["moons"], MOONS, members, schedule=schedule)
    assert outcome(unpruned[0]) == outcome(results[0])
    assert outcome(unpruned[2]) == outcome(results[2])


@pytest.mark.parametrize(("patience", "min_delta"), [(2, 0.0), (3, 0.003)])
def test_early_stopping_freezes_a_member_at_its_best(
    tasks: dict[str, TaskData], patience: int, min_delta: float
) -> None:
    schedule = Schedule(max_epochs=300, eval_every=5)
    stopper = member(0, 1, patience=patience, min_delta=min_delta)
    members = [member(1, 1, lr=0.05), stopper, member(2, 2, dropout=(0.2, 0.2))]
    results = train_exact(tasks["moons"], MOONS, members, schedule=schedule)
    r = results[1]
    assert r.state == "complete"
    assert r.stopped_epoch < schedule.max_epochs
    assert r.epochs[-1] == r.stopped_epoch
    assert r.stopped_epoch - r.best_epoch == patience * schedule.eval_every
    best = r.epochs.index(r.best_epoch)
    for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
        assert r.final[key] == r.curves[key][best], key
    assert [x.stopped_epoch for x in (results[0], results[2])] == [300, 300]
    [alone] = train_exact(tasks["moons"], MOONS, [stopper], schedule=schedule)
    assert outcome(alone) == outcome(r)


# --------------------------------------------------------------------------- stacks


def test_batch_norm_on_and_off_come_back_in_member_order(tasks: dict[str, TaskData]) -> None:
    members = [
        member(0, 0, batch_norm=True),
        member(1, 1),
        member(2, 0, batch_norm=True, dropout=(0.1, 0.1)),
        member(3, 2, l2=0.01),
        member(4, 5, batch_norm=True, momentum=0.9),
    ]
    schedule = Schedule(max_epochs=20, eval_every=10)
    results = train_exact(tasks["moons"], MOONS, members, schedule=schedule)
    assert [r.member for r in results] == members
    assert all(r.state == "complete" for r in results)
    for m, r in zip(members, results, strict=True):
        assert outcome(train_exact(tasks["moons"], MOONS, [m], schedule=schedule)[0]) == outcome(r)
    assert all(r.duration_s > 0 for r in results)


@pytest.mark.parametrize(
    ("n_members", "hidden", "batch_size", "device", "exact", "sizes"),
    [
        (10, (20, 3), None, "cpu", True, [5, 5]),  # batch norm on and off
        (400, (20, 3), None, "cpu", False, [87, 87, 26] * 2),  # 2**18 // (20 * 150) = 87 fit
        (400, (20, 3), None, "cpu", True, [43, 43, 43, 43, 28] * 2),  # exact: 2**17 // 3000
        (40, (4000,), None, "cpu", False, [16, 4, 16, 4]),  # never below 16 on CPU
        (600, (20, 3), 32, "cpu", True, [204, 96] * 2),  # the minibatch counts, not the split
        (200, (1000,), None, "cuda", False, [100, 100]),  # accelerators: memory bound only
    ],
)
def test_stacks_split_by_structure_and_size(
    tasks: dict[str, TaskData],
    n_members: int,
    hidden: tuple[int, ...],
    batch_size: int | None,
    device: str,
    exact: bool,
    sizes: list[int],
) -> None:
    members = [member(i, seed=i % 3, batch_norm=i % 2 == 1) for i in range(n_members)]
    schedule = Schedule(batch_size=batch_size)
    spec = ModelSpec(2, 1, hidden=hidden)
    indices = list(range(n_members))
    stacks = population._stacks(tasks["moons"], spec, schedule, members, indices, device, exact)
    assert sorted(i for stack in stacks for i in stack) == indices
    for stack in stacks:
        assert len({members[i].hparams.batch_norm for i in stack}) == 1
        seeds = [members[i].seed for i in stack]
        assert seeds == sorted(seeds)
    assert [len(s) for s in stacks] == sizes


def test_many_stacks_train_like_one(tasks: dict[str, TaskData]) -> None:
    spec = ModelSpec(2, 1, hidden=(900,))  # 16 members per exact CPU stack (the floor)
    members = [
        member(i, seed=i % 4, lr=0.01 * (1 + i % 5), dropout=(0.1 * (i % 3),)) for i in range(40)
    ]
    schedule = Schedule(max_epochs=6, eval_every=3)
    results = train_exact(tasks["moons"], spec, members, schedule=schedule)
    assert [r.member for r in results] == members
    for i in (0, 33, 39):
        [alone] = train_exact(tasks["moons"], spec, [members[i]], schedule=schedule)
        assert outcome(alone) == outcome(results[i])


def test_regression_has_loss_keys_only(tasks: dict[str, TaskData]) -> None:
    [r] = population.train(
        tasks["highdim"], HIGHDIM, [member(lr=0.01)], schedule=Schedule(max_epochs=20)
    )
    assert r.state == "complete"
    assert set(r.curves) == {"train_loss", "val_loss", "gap_loss"}
    assert set(r.final) == {"train_loss", "val_loss", "gap_loss", "test_loss"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(tasks: dict[str, TaskData]) -> None:
    members = [
        member(0, 0),
        member(1, 1, l2=0.05, momentum=0.9, patience=2),
        member(2, 0, batch_norm=True, weight_decay=0.1),
        member(3, 2, lr=math.inf),
    ]
    schedule = Schedule(max_epochs=40, eval_every=5, batch_size=32)
    cpu = population.train(tasks["moons"], MOONS, members, schedule=schedule)
    cuda = population.train(tasks["moons"], MOONS, members, schedule=schedule, device="cuda")
    for c, g in zip(cpu, cuda, strict=True):
        assert_matches_reference(g, c, rel=1e-4)
    dropout = [member(i, i, dropout=(0.3, 0.3)) for i in range(4)]
    assert all(
        r.state == "complete"
        for r in population.train(tasks["moons"], MOONS, dropout, schedule=schedule, device="cuda")
    )


# --------------------------------------------------------------------------- folds as members


def with_folds(task: TaskData, k: int) -> TaskData:
    return dataclasses.replace(task, folds=k)


@pytest.mark.parametrize(
    ("task_name", "spec", "schedule_kwargs", "hparams"),
    [
        ("moons", MOONS, {}, {"l2": 0.01}),
        ("moons", MOONS, {"batch_size": 32}, {"batch_norm": True, "momentum": 0.5}),
        ("wine", WINE, {}, {"batch_norm": True, "weight_decay": 0.1}),  # re-standardized
        ("wine", WINE, {"optimizer": "adam", "batch_size": 32}, {"lr": 0.01, "patience": 2}),
        ("linear12", LINEAR12, {"batch_size": 100}, {"lr": 0.01, "l1": 1e-3}),
    ],
    ids=["moons", "moons-bn-minibatch", "wine-bn", "wine-adam-stopping", "linear12"],
)
def test_a_fold_member_matches_the_reference(
    tasks: dict[str, TaskData],
    task_name: str,
    spec: ModelSpec,
    schedule_kwargs: dict[str, Any],
    hparams: dict[str, Any],
) -> None:
    task = with_folds(tasks[task_name], 3)
    schedule = Schedule(**{"max_epochs": 40, "eval_every": 5, **schedule_kwargs})
    members = [member(0, 4, fold, **hparams) for fold in (0, 2, REFIT)]
    refs = reference.train(task, spec, members, schedule=schedule)
    pops = population.train(task, spec, members, schedule=schedule)
    for pop, ref in zip(pops, refs, strict=True):
        assert pop.state == "complete"
        assert_matches_reference(pop, ref)
    # ... and a fold's numbers are its own: another fold's validation loss differs
    assert pops[0].final["val_loss"] != pytest.approx(pops[1].final["val_loss"], rel=1e-3)


def test_folds_and_seeds_in_one_stack_train_like_each_alone(tasks: dict[str, TaskData]) -> None:
    task = with_folds(tasks["moons"], 3)
    settings: list[dict[str, Any]] = [{"l2": 0.01}, {"lr": 0.2, "dropout": (0.2, 0.1)}]
    members = [
        member(trial, seed, fold, **hp)
        for trial, hp in enumerate(settings)
        for seed in (0, 1)
        for fold in range(3)
    ]
    schedule = Schedule(max_epochs=30, eval_every=10, batch_size=32)
    views = {i: task.member_data(m.fold, m.seed) for i, m in enumerate(members)}
    stacks = population._stacks(task, MOONS, schedule, members, list(range(12)), "cpu", True, views)
    # 200 pool rows in 3 folds: 133 or 134 training rows, so two stacks, each mixing views
    assert sorted(len(s) for s in stacks) == [4, 8]
    assert all(len({len(views[i].x_train) for i in s}) == 1 for s in stacks)
    together = train_exact(task, MOONS, members, schedule=schedule)
    for m, r in zip(members, together, strict=True):
        [alone] = train_exact(task, MOONS, [m], schedule=schedule)
        assert outcome(r) == outcome(alone)
    fast = population.train(task, MOONS, members, schedule=schedule)
    for e, f in zip(together, fast, strict=True):
        assert_matches_reference(f, e, rel=1e-4)


def test_holdout_and_fold_members_train_together(tasks: dict[str, TaskData]) -> None:
    task = with_folds(tasks["wine"], 2)
    members = [member(0, 1), member(1, 1, 0), member(2, 1, 1, batch_norm=True), member(3, 1)]
    schedule = Schedule(max_epochs=20, eval_every=10)
    refs = reference.train(task, WINE, members, schedule=schedule)
    pops = population.train(task, WINE, members, schedule=schedule)
    for pop, ref in zip(pops, refs, strict=True):
        assert_matches_reference(pop, ref)


@pytest.mark.parametrize("cap", [20, 23, 60])
def test_max_epochs_caps_a_member_like_the_reference(tasks: dict[str, TaskData], cap: int) -> None:
    task = with_folds(tasks["moons"], 3)
    members = [
        member(0, 0, REFIT, max_epochs=cap),
        member(1, 1, max_epochs=cap, batch_norm=True),
        member(2, 0, REFIT),
        member(3, 2, 1, max_epochs=cap, patience=1, lr=0.3),
    ]
    schedule = Schedule(max_epochs=40, eval_every=5)
    refs = reference.train(task, MOONS, members, schedule=schedule)
    pops = population.train(task, MOONS, members, schedule=schedule)
    for pop, ref in zip(pops, refs, strict=True):
        assert_matches_reference(pop, ref)
    last = min(cap, 40)
    for r in pops[:2]:
        assert (r.state, r.stopped_epoch, r.epochs[-1]) == ("complete", last, last)
        assert r.epochs[:-1] == list(range(5, last, 5))
    assert pops[2].epochs == list(range(5, 45, 5))  # uncapped mates evaluate as usual
    [alone] = train_exact(task, MOONS, [members[0]], schedule=schedule)
    assert outcome(alone) == outcome(train_exact(task, MOONS, members, schedule=schedule)[0])


def test_a_bad_fold_or_cap_fails_alone(tasks: dict[str, TaskData]) -> None:
    task = with_folds(tasks["moons"], 3)
    members = [member(0, 0, 0), member(1, 0, 3), member(2, 0, 1, max_epochs=0)]
    for engine in (population, reference):
        results = engine.train(task, MOONS, members, schedule=Schedule(max_epochs=10))
        assert [r.state for r in results] == ["complete", "failed", "failed"]
        assert "fold=3: allowed" in results[1].error
        assert "max_epochs=0" in results[2].error


def test_members_of_one_view_share_its_rows_and_others_get_their_own(
    tasks: dict[str, TaskData],
) -> None:
    """One view: the broadcast [1, d, n] input (no copies); several: a [K, d, n] stack."""
    task = with_folds(tasks["moons"], 3)
    schedule = Schedule(max_epochs=10)
    for members, rows in (
        ([member(0, 2, 1), member(1, 2, 1, l2=0.1)], 1),
        ([member(0, 2, 1), member(1, 5, 1)], 2),
    ):
        nets = [population._initial_net(MOONS, m, schedule) for m in members]
        entries = [Entry(m, task.member_data(m.fold, m.seed)) for m in members]
        stack = Stack(Shared(task, MOONS, schedule, "cpu"), entries, nets)
        assert stack.x_t.shape == (rows, 2, len(entries[0].view.x_train))
        assert stack.splits["val"][0].shape[0] == rows


# --------------------------------------------------------------------------- compaction


def test_every_model_activation_has_a_stacked_implementation() -> None:
    assert IMPLEMENTED == ACTIVATIONS


def mixed_members(task: TaskData, folds: bool) -> list[Member]:
    """Members that stop in every way, in two stacks (batch norm on/off), some with dropout."""
    fold = (lambda i: i % 3) if folds else (lambda i: None)
    return [
        member(0, 0, fold(0), dropout=(0.3, 0.1), l2=0.01),  # pruned at epoch 10
        member(1, 1, fold(1), patience=1, lr=0.3),  # early stopping, restores its best
        member(2, 0, fold(2), lr=math.inf),  # NaN: fails at its first evaluation
        member(3, 2, fold(3), momentum=0.9, dropout=(0.2, 0.2)),  # trains to the end
        member(4, 0, fold(4), batch_norm=True, dropout=(0.1, 0.0)),  # pruned at epoch 15
        member(5, 1, fold(5), batch_norm=True, weight_decay=0.1),  # trains to the end
        member(6, 3, fold(6), max_epochs=15, l1=1e-3),  # its own cap
        member(7, 2, fold(7), patience=2, min_delta=0.003, batch_norm=True),
    ]


def prune_some(index: int, report: EpochReport) -> bool:
    return (index, report.epoch) in {(0, 10), (4, 15)}


@pytest.mark.parametrize(
    ("optimizer", "batch_size", "folds"),
    [("sgd", None, False), ("sgd", 32, False), ("adam", 32, True), ("sgd", None, True)],
)
def test_compaction_does_not_change_any_result(
    tasks: dict[str, TaskData],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    optimizer: str,
    batch_size: int | None,
    folds: bool,
) -> None:
    """Stacks rebuilt without their stopped members give every member the numbers of a run
    where stopped members stay in the stack, bit for bit (exact mode)."""
    task = with_folds(tasks["moons"], 3) if folds else tasks["moons"]
    members = mixed_members(task, folds)
    schedule = Schedule(optimizer=optimizer, max_epochs=40, eval_every=5, batch_size=batch_size)
    kwargs: dict[str, Any] = {"schedule": schedule, "on_epoch": prune_some}
    monkeypatch.setattr(population, "_COMPACT_BELOW", 0.0)  # never rebuild
    with caplog.at_level("DEBUG", logger=population.__name__):
        kept = train_exact(task, MOONS, members, **kwargs)
    assert "rebuilt" not in caplog.text
    monkeypatch.setattr(population, "_COMPACT_BELOW", 1.0)  # rebuild whenever one stops
    with caplog.at_level("DEBUG", logger=population.__name__):
        compacted = train_exact(task, MOONS, members, **kwargs)
    assert caplog.text.count("stack rebuilt") >= 2  # members left stacks as they stopped
    states = [r.state for r in compacted]
    assert states == ["pruned", "complete", "failed", "complete", "pruned", *["complete"] * 3]
    for a, b in zip(kept, compacted, strict=True):
        assert outcome(a) == outcome(b), a.member
    # ... and a member stopped early trains no more: its last weights are the ones it stopped
    assert compacted[0].final["val_loss"] == compacted[0].curves["val_loss"][-1]


def test_results_come_as_members_stop(tasks: dict[str, TaskData]) -> None:
    """on_result hands each result over once, when it is final, and compacts at once."""
    members = mixed_members(tasks["moons"], folds=False)
    schedule = Schedule(max_epochs=40, eval_every=5)
    seen: list[tuple[int, int, MemberResult]] = []
    epochs: list[int] = []

    def on_epoch(index: int, report: EpochReport) -> bool:
        epochs.append(report.epoch)
        return prune_some(index, report)

    def on_result(index: int, result: MemberResult) -> None:
        seen.append((index, max(epochs, default=0), result))

    results = train_exact(
        tasks["moons"], MOONS, members, schedule=schedule, on_epoch=on_epoch, on_result=on_result
    )
    assert sorted(i for i, _, _ in seen) == list(range(len(members)))
    for index, latest, result in seen:
        assert result is results[index]
        # handed over at the evaluation where it stopped (failed ones: where they failed)
        assert latest == (result.stopped_epoch or 5), result.member
    plain = train_exact(tasks["moons"], MOONS, members, schedule=schedule, on_epoch=prune_some)
    for a, b in zip(plain, results, strict=True):
        assert outcome(a) == outcome(b)


# --------------------------------------------------------------------------- refill


def refill_from(queue: list[Member], per_call: int, calls: list[int]) -> Refill:
    """A refill that hands out up to ``per_call`` queued members per call."""

    def refill(free: int) -> list[Member]:
        calls.append(free)
        taken = queue[: min(free, per_call)]
        del queue[: len(taken)]
        return taken

    return refill


@pytest.mark.parametrize(
    ("optimizer", "batch_size", "folds"),
    [("sgd", None, False), ("adam", 32, False), ("sgd", 37, True)],
)
def test_a_refilled_member_trains_as_if_alone(
    tasks: dict[str, TaskData], optimizer: str, batch_size: int | None, folds: bool
) -> None:
    """Members handed in mid-run start at their own epoch 0: same results as alone."""
    task = with_folds(tasks["moons"], 3) if folds else tasks["moons"]
    first = mixed_members(task, folds)
    fold = 1 if folds else None
    later = [
        member(8, 0, fold, dropout=(0.3, 0.3), lr=0.05),  # seed 0 again: its own stream
        member(9, 4, fold, patience=1, batch_norm=True),
        member(10, 1, fold, lr=math.inf),  # fails at its first evaluation
        member(11, 0, fold, momentum=0.5, l2=0.01),
        member(12, 2, fold, dropout=(0.1, 0.2), max_epochs=25),
    ]
    schedule = Schedule(optimizer=optimizer, max_epochs=40, eval_every=5, batch_size=batch_size)
    calls: list[int] = []
    seen: list[int] = []

    def on_epoch(index: int, report: EpochReport) -> bool:
        seen.append(index)
        return prune_some(index, report) or (index == 8 and report.epoch == 20)

    results = train_exact(
        task,
        MOONS,
        first,
        schedule=schedule,
        on_epoch=on_epoch,
        refill=refill_from(list(later), 2, calls),
    )
    assert [r.member for r in results] == first + later
    assert set(seen) == set(range(len(first + later))) - {2, 10}  # the NaN ones never report
    assert all(0 < free <= len(first) for free in calls)
    assert results[8].state == "pruned" and results[8].stopped_epoch == 20
    for m, r in zip(first + later, results, strict=True):
        index = m.trial

        def alone_on_epoch(_: int, report: EpochReport, index: int = index) -> bool:
            return prune_some(index, report) or (index == 8 and report.epoch == 20)

        [alone] = train_exact(task, MOONS, [m], schedule=schedule, on_epoch=alone_on_epoch)
        assert outcome(alone) == outcome(r), m


def test_refill_keeps_the_population_in_flight_and_ends_on_empty(
    tasks: dict[str, TaskData],
) -> None:
    """Free slots are topped up at evaluations; with nothing in flight refill is asked for a
    whole population; the call ends when it hands in nothing."""
    schedule = Schedule(max_epochs=20, eval_every=5)
    queue = [member(t, t % 3, lr=0.05 * (1 + t % 4)) for t in range(4, 14)]
    calls: list[int] = []
    in_flight: list[int] = []
    done: set[int] = set()
    started: set[int] = set()

    def on_epoch(index: int, report: EpochReport) -> bool:
        started.add(index)
        in_flight.append(len(started - done))
        return report.epoch == 5 and index % 2 == 0  # half of them stop at their first evaluation

    def on_result(index: int, result: MemberResult) -> None:
        done.add(index)

    first = [member(t, t % 3) for t in range(4)]
    results = population.train(
        tasks["moons"],
        MOONS,
        first,
        schedule=schedule,
        on_epoch=on_epoch,
        refill=refill_from(queue, 99, calls),
        on_result=on_result,
    )
    assert [r.member.trial for r in results] == list(range(14))
    assert done == set(range(14)) and not queue
    assert max(in_flight) <= 4  # never more than the population at once
    assert calls[-1] == 4  # asked for a whole population once nothing was left, got nothing
    assert [r.state for r in results] == ["pruned", "complete"] * 7
    assert population.train(tasks["moons"], MOONS, [], schedule=schedule, refill=lambda n: []) == []


def test_invalid_refilled_members_fail_alone(tasks: dict[str, TaskData]) -> None:
    schedule = Schedule(max_epochs=10, eval_every=5)
    queue = [member(1, dropout=(0.5,)), member(2, lr=-1.0), member(3, 1)]
    results = population.train(
        tasks["moons"], MOONS, [member(0)], schedule=schedule, refill=refill_from(queue, 9, [])
    )
    assert [r.state for r in results] == ["complete", "failed", "failed", "complete"]
    assert all("ValueError" in r.error for r in results[1:3])


# --------------------------------------------------------------------------- probe


@pytest.mark.parametrize("engine", [population, reference])
def test_a_probe_sees_each_members_final_weights(tasks: dict[str, TaskData], engine: Any) -> None:
    """Outputs on the validation rows give back the final validation loss: the restored best
    for early stopping, running statistics for batch norm, no dropout."""
    task = tasks["moons"]
    members = [
        member(0, 1, patience=1, lr=0.3, batch_norm=True),
        member(1, 2, dropout=(0.3, 0.3)),
        member(2, 0, lr=math.inf),
        member(3, 3, l2=0.01),
    ]
    probe = Probe(task.x_val)
    schedule = Schedule(max_epochs=60, eval_every=5)
    results = engine.train(task, MOONS, members, schedule=schedule, probe=probe)
    assert results[0].best_epoch < results[0].stopped_epoch  # restored an earlier best
    assert sorted(probe.outputs) == [0, 1, 3]  # the failed member has none
    for index in (0, 1, 3):
        out = probe.outputs[index]
        assert out.shape == (len(task.x_val), 1)
        val_loss = F.binary_cross_entropy_with_logits(out.double(), task.y_val.double())
        assert float(val_loss) == pytest.approx(results[index].final["val_loss"], rel=1e-5)
