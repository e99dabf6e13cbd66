"""The torch.func population engine (cnn, custom) against the reference engine, its oracle:
the same numbers member for member (dropout masks included), members that do not depend on
their cohort, per-member failure, pruning, early stopping, refill, and the fallback for a
network vmap cannot run."""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from regsearch.config import SklearnTask
from regsearch.convnets import CnnSpec
from regsearch.engine import functional, reference
from regsearch.engine.members import Probe, Schedule
from regsearch.records import EpochReport, Hyperparams, Member, MemberResult
from regsearch.tasks import TaskData, load_task
from regsearch.usernets import CustomSpec

TOL = 1e-5

USER_NETS = '''
from torch import nn


def net(input_shape, n_outputs, batch_norm=False):
    """A user's CNN with dropout in two places and optional batch norm."""
    return nn.Sequential(
        nn.Conv2d(input_shape[0], 3, 3, padding=1),
        nn.BatchNorm2d(3) if batch_norm else nn.Identity(),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(3 * input_shape[1] * input_shape[2], 12),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(12, n_outputs),
    )


def channel_dropout(input_shape, n_outputs):
    """nn.Dropout2d draws from torch's global generator: vmap cannot stack it."""
    return nn.Sequential(
        nn.Conv2d(input_shape[0], 2, 3, padding=1),
        nn.Dropout2d(0.2),
        nn.Flatten(),
        nn.Linear(2 * input_shape[1] * input_shape[2], n_outputs),
    )
'''


@pytest.fixture(scope="module")
def digits() -> TaskData:
    task = load_task(SklearnTask(name="digits"))
    assert task.shape == (1, 8, 8)
    return task


@pytest.fixture(scope="module")
def user_nets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("user_nets")
    (folder / "func_user_nets.py").write_text(USER_NETS)
    sys.path.insert(0, str(folder))
    yield "func_user_nets"
    sys.path.remove(str(folder))
    sys.modules.pop("func_user_nets", None)


CNN = CnnSpec((1, 8, 8), 10, channels=(4, 4), head=(16,))


def member(trial: int, seed: int, fold: int | None = None, **hparams: Any) -> Member:
    return Member(trial, seed, Hyperparams(**{"lr": 0.05, **hparams}), fold=fold)


def mixed() -> list[Member]:
    """Every regularizer, batch norm on and off, two seeds, an early stop and a cap."""
    return [
        member(0, 3, l2=1e-3, weight_decay=1e-3, dropout=(0.1, 0.1, 0.2), batch_norm=True),
        member(1, 4, l1=1e-4, dropout=(0.0, 0.3, 0.0), momentum=0.9, patience=1),
        member(2, 3, lr=0.1),
        member(3, 4, batch_norm=True, max_epochs=2),
        member(4, 3, dropout=(0.2, 0.2, 0.2), patience=2, min_delta=1e-3),
    ]


def assert_same(a: MemberResult, b: MemberResult) -> None:
    """Same state, epochs and stops; curves, final metrics and norms within TOL."""
    assert (a.state, a.epochs, a.best_epoch, a.stopped_epoch) == (
        b.state,
        b.epochs,
        b.best_epoch,
        b.stopped_epoch,
    ), a.member
    for key, curve in a.curves.items():
        assert curve == pytest.approx(b.curves[key], abs=TOL), (a.member, key)
    assert a.final.keys() == b.final.keys()
    for key, value in a.final.items():
        assert value == pytest.approx(b.final[key], abs=TOL), (a.member, key)
    assert a.weight_norm == pytest.approx(b.weight_norm, abs=TOL)


SGD = Schedule(batch_size=64, max_epochs=6, eval_every=1)


def test_cnn_matches_the_reference_member_by_member(digits: TaskData) -> None:
    members = mixed()
    stacked = functional.train(digits, CNN, members, schedule=SGD)
    alone = reference.train(digits, CNN, members, schedule=SGD)
    assert [r.member for r in stacked] == members
    assert {r.stopped_epoch for r in stacked} != {SGD.max_epochs}  # some stopped early
    for a, b in zip(stacked, alone, strict=True):
        assert_same(a, b)


def test_a_user_module_with_dropout_and_batch_norm_matches_the_reference(
    digits: TaskData, user_nets: str
) -> None:
    spec = CustomSpec(f"{user_nets}.net", digits.shape, digits.n_outputs)
    members = [
        member(0, 1, dropout=(0.3,), batch_norm=True),
        member(1, 2, dropout=(0.1,), batch_norm=True, l2=1e-3),
        member(2, 1, dropout=(0.0,), batch_norm=False, weight_decay=1e-2),
        member(3, 2, batch_norm=False, patience=1),
    ]
    stacked = functional.train(digits, spec, members, schedule=SGD)
    alone = reference.train(digits, spec, members, schedule=SGD)
    for a, b in zip(stacked, alone, strict=True):
        assert_same(a, b)
    assert stacked[0].final != stacked[2].final


def test_adam_matches_the_reference(digits: TaskData) -> None:
    """torch.optim.Adam's update, per member. (A bias right before batch norm gets a zero
    gradient up to rounding, which Adam's normalization amplifies: no bias here.)"""
    spec = dataclasses.replace(CNN, bias=False)
    adam = dataclasses.replace(SGD, optimizer="adam")
    members = [
        member(0, 3, lr=3e-3, batch_norm=True, dropout=(0.2, 0.0, 0.1)),
        member(1, 4, lr=1e-3, weight_decay=1e-2),
        member(2, 3, lr=2e-3, l2=1e-3, max_epochs=3),
    ]
    stacked = functional.train(digits, spec, members, schedule=adam)
    for a, b in zip(stacked, reference.train(digits, spec, members, schedule=adam), strict=True):
        assert_same(a, b)


def test_fold_members_match_the_reference(digits: TaskData) -> None:
    task = dataclasses.replace(digits, folds=3)
    members = [member(t, seed, fold) for t, (seed, fold) in enumerate([(0, 0), (0, 1), (1, 0)])]
    members.append(member(3, 0, fold=-1, max_epochs=3))  # a refit on the whole pool
    schedule = dataclasses.replace(SGD, max_epochs=3)
    stacked = functional.train(task, CNN, members, schedule=schedule)
    for a, b in zip(stacked, reference.train(task, CNN, members, schedule=schedule), strict=True):
        assert_same(a, b)


def test_pruning_failure_and_refill_leave_the_others_as_if_alone(digits: TaskData) -> None:
    """A pruned, a diverging and an invalid member; members handed in mid-run start at their
    own epoch 0. Everyone's numbers are those it gets trained alone."""
    first = [*mixed()[:3], member(5, 1, lr=math.inf)]
    queue = [member(6, 0, dropout=(0.3, 0.3, 0.3)), member(7, 2, lr=-1.0), member(8, 1)]
    calls: list[int] = []

    def refill(free: int) -> list[Member]:
        calls.append(free)
        taken, queue[:] = queue[:2], queue[2:]
        return taken

    def on_epoch(index: int, report: EpochReport) -> bool:
        return index == 2 and report.epoch == 3

    finished: list[int] = []
    results = functional.train(
        digits,
        CNN,
        first,
        schedule=SGD,
        on_epoch=on_epoch,
        refill=refill,
        on_result=lambda index, _: finished.append(index),
    )
    assert [r.member.trial for r in results] == [0, 1, 2, 5, 6, 7, 8]
    assert sorted(finished) == list(range(7)) and calls and not queue
    states = [r.state for r in results]
    assert states == ["complete", "complete", "pruned", "failed", "complete", "failed", "complete"]
    assert "not finite" in results[3].error and "learning rate" in results[5].error
    for r in results:
        if r.state != "failed":
            [alone] = reference.train(
                digits,
                CNN,
                [r.member],
                schedule=SGD,
                on_epoch=lambda i, rep, pruned=r.member.trial == 2: pruned and on_epoch(2, rep),
            )
            assert_same(r, alone)


def test_a_probe_sees_each_members_final_weights(digits: TaskData) -> None:
    members = [member(0, 1, patience=1, lr=0.3, batch_norm=True), member(1, 2, lr=math.inf)]
    probe = Probe(digits.x_val)
    results = functional.train(digits, CNN, members, schedule=SGD, probe=probe)
    assert sorted(probe.outputs) == [0]
    check = reference.train(
        digits, CNN, members[:1], schedule=SGD, probe=(ref := Probe(digits.x_val))
    )
    assert torch.allclose(probe.outputs[0], ref.outputs[0], rtol=TOL, atol=TOL)
    assert results[0].final["val_loss"] == pytest.approx(check[0].final["val_loss"], abs=TOL)


def test_a_network_vmap_cannot_run_trains_on_the_reference_saying_so_once(
    digits: TaskData, user_nets: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = CustomSpec(f"{user_nets}.channel_dropout", digits.shape, digits.n_outputs)
    members = [member(0, 1), member(1, 2)]
    schedule = dataclasses.replace(SGD, max_epochs=2)
    with caplog.at_level(logging.WARNING, logger="regsearch.engine.functional"):
        first = functional.train(digits, spec, members, schedule=schedule)
        functional.train(digits, spec, members, schedule=schedule)
    assert caplog.text.count("cannot be stacked") == 1, caplog.text
    assert "one member at a time on the reference engine" in caplog.text
    for a, b in zip(first, reference.train(digits, spec, members, schedule=schedule), strict=True):
        assert a.final == b.final  # it is the reference engine


def test_same_seed_same_numbers_whatever_the_cohort(digits: TaskData) -> None:
    one = member(0, 7, dropout=(0.2, 0.2, 0.2), batch_norm=True)
    [alone] = functional.train(digits, CNN, [one], schedule=SGD)
    crowd = functional.train(digits, CNN, [*mixed(), one], schedule=SGD)
    assert_same(alone, crowd[-1])
