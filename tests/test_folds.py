"""Cross-validation folds: the partition of the train+val pool and the per-member data views
(rows, standardization with the view's own training rows, refit, caching)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from regsearch.config import MoonsTask, SklearnTask
from regsearch.records import REFIT
from regsearch.records import REFIT as BUNDLE_REFIT
from regsearch.tasks import TaskData, load_task
from regsearch.tasks import bundle as bundle_module
from regsearch.tasks import folds as folds_module
from regsearch.tasks.folds import fold_indices, fold_rows, restandardize


@pytest.fixture(scope="module")
def moons() -> TaskData:
    return dataclasses.replace(load_task(MoonsTask(name="moons")), folds=4)


@pytest.fixture(scope="module")
def wine() -> TaskData:
    return dataclasses.replace(load_task(SklearnTask(name="wine")), folds=3)


@pytest.fixture(scope="module")
def diabetes() -> TaskData:
    return dataclasses.replace(load_task(SklearnTask(name="diabetes")), folds=5)


def pool(task: TaskData) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([task.x_train, task.x_val]), torch.cat([task.y_train, task.y_val])


def labels(task: TaskData) -> np.ndarray:
    _, y = pool(task)
    return y.reshape(len(y), -1)[:, 0].numpy()


def assert_partition(folds: list[tuple[np.ndarray, np.ndarray]], n: int) -> None:
    """Validation folds are disjoint and cover the pool; training rows are the rest."""
    every = np.arange(n)
    validated = np.concatenate([val for _, val in folds])
    assert np.array_equal(np.sort(validated), every)  # each row validated exactly once
    for train, val in folds:
        assert np.array_equal(train, np.sort(train)) and np.array_equal(val, np.sort(val))
        assert not np.intersect1d(train, val).size
        assert np.array_equal(np.union1d(train, val), every)


# --------------------------------------------------------------------------- the partition


@pytest.mark.parametrize("k", [2, 3, 5])
def test_stratified_folds_partition_the_pool_and_keep_class_shares(wine: TaskData, k: int) -> None:
    y = labels(wine)
    folds = fold_indices(y, k, seed=7, stratified=True)
    assert len(folds) == k
    assert_partition(folds, len(y))
    classes, counts = np.unique(y, return_counts=True)
    for _, val in folds:
        for c, count in zip(classes, counts, strict=True):
            expected = count * len(val) / len(y)
            assert abs(int((y[val] == c).sum()) - expected) <= 1, (c, len(val))


def test_kfold_partitions_a_regression_pool(diabetes: TaskData) -> None:
    y = labels(diabetes)
    folds = fold_indices(y, 5, seed=1, stratified=False)
    assert_partition(folds, len(y))
    sizes = [len(val) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1


def test_the_seed_fixes_the_partition(wine: TaskData) -> None:
    y = labels(wine)
    a, b = fold_indices(y, 3, 11, True), fold_indices(y, 3, 11, True)
    assert all(np.array_equal(v, w) for (_, v), (_, w) in zip(a, b, strict=True))
    other = fold_indices(y, 3, 12, True)
    assert any(not np.array_equal(v, w) for (_, v), (_, w) in zip(a, other, strict=True))
    # seeds past scikit-learn's 32-bit range are taken modulo 2**32
    big = fold_indices(y, 3, 2**32 + 11, True)
    assert all(np.array_equal(v, w) for (_, v), (_, w) in zip(a, big, strict=True))


@pytest.mark.parametrize("stratified", [True, False])
@pytest.mark.parametrize("seed", [0, 5, 2**32 + 3])
def test_folds_are_scikit_learns(
    wine: TaskData, diabetes: TaskData, stratified: bool, seed: int
) -> None:
    """The hand-written assignment equals StratifiedKFold / KFold(shuffle=True) row for row."""
    from sklearn.model_selection import KFold, StratifiedKFold

    rng = np.random.default_rng(seed % 97)
    pools = [labels(wine), labels(diabetes), rng.integers(0, 4, 103).astype(float)]
    if stratified:
        pools = [pools[0], pools[2], np.array(["b", "a", "c"] * 7 + ["a"] * 5)]
    for y in pools:
        for k in (2, 3, 5):
            splitter = (StratifiedKFold if stratified else KFold)(
                n_splits=k, shuffle=True, random_state=seed % 2**32
            )
            expected = list(splitter.split(np.zeros((len(y), 1)), y))
            got = fold_indices(y, k, seed, stratified)
            for (tr, va), (tr2, va2) in zip(expected, got, strict=True):
                assert np.array_equal(np.sort(tr), tr2) and np.array_equal(np.sort(va), va2)


@pytest.mark.parametrize(
    ("y", "k", "stratified", "allowed"),
    [
        (np.arange(10.0), 1, False, "2 <= cv <= 10"),
        (np.arange(10.0), 0, False, "2 <= cv <= 10"),
        (np.arange(10.0), 11, False, "2 <= cv <= 10"),
        (np.array([0] * 10 + [1] * 2), 3, True, "class 1 has only 2 rows"),
        (np.array([0] * 10 + [1] * 2), 1, True, "2 <= cv <= 12"),
    ],
)
def test_folds_the_pool_cannot_have_are_value_errors(
    y: np.ndarray, k: int, stratified: bool, allowed: str
) -> None:
    with pytest.raises(ValueError, match=f"search.cv={k}: .*allowed") as err:
        fold_indices(y, k, seed=0, stratified=stratified)
    assert allowed in str(err.value)
    assert "\n" not in str(err.value)


def test_fold_rows_are_the_partition_as_tensors(wine: TaskData) -> None:
    _, y_pool = pool(wine)
    folds = fold_indices(labels(wine), 3, seed=4, stratified=True)
    for i, (train, val) in enumerate(folds):
        rows = fold_rows(y_pool, i, 3, seed=4, stratified=True)
        assert [r.tolist() for r in rows] == [train.tolist(), val.tolist()]
    train_rows, val_rows = fold_rows(y_pool, REFIT, 0, seed=4, stratified=True)
    assert train_rows.tolist() == val_rows.tolist() == list(range(len(y_pool)))


def test_restandardize_uses_the_fit_rows_statistics_only() -> None:
    fit = torch.tensor([[1.0, 5.0], [3.0, 5.0]])  # the second column is constant
    other = torch.tensor([[2.0, 7.0]])
    z_fit, z_other = restandardize(fit, fit, other)
    assert z_fit.tolist() == [[-1.0, 0.0], [1.0, 0.0]]
    assert z_other.tolist() == [[0.0, 2.0]]  # a constant column is centred, not scaled


def test_the_folds_module_does_not_know_the_bundle() -> None:
    """folds.py knows rows and tensors; the bundle builds its views from them (no cycle)."""
    source = Path(folds_module.__file__).read_text()
    imported = {
        node.module
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported == {"__future__", "regsearch.records"}


# --------------------------------------------------------------------------- member views


def test_a_fold_view_trains_on_the_other_folds_and_validates_on_its_own(moons: TaskData) -> None:
    x_pool, y_pool = pool(moons)
    folds = fold_indices(labels(moons), moons.folds, seed=5, stratified=True)
    for i, (train, val) in enumerate(folds):
        view = moons.member_data(i, 5)
        assert torch.equal(view.x_train, x_pool[train]) and torch.equal(view.y_train, y_pool[train])
        assert torch.equal(view.x_val, x_pool[val]) and torch.equal(view.y_val, y_pool[val])
        assert view.x_test is moons.x_test and view.y_test is moons.y_test
        assert (view.folds, view.name, view.n_classes) == (0, moons.name, moons.n_classes)
    assert moons.member_data(None, 5) is moons


def test_test_rows_are_never_in_a_fold_view(moons: TaskData) -> None:
    test_rows = {tuple(row) for row in moons.x_test.tolist()}
    for seed in (0, 1):
        for fold in (*range(moons.folds), REFIT):
            view = moons.member_data(fold, seed)
            seen = view.x_train.tolist() + view.x_val.tolist()
            assert not test_rows & {tuple(row) for row in seen}, (fold, seed)


def test_views_follow_the_seed_and_are_computed_once(moons: TaskData) -> None:
    a = moons.member_data(1, seed=3)
    assert moons.member_data(1, seed=3) is a  # cached: the same tensors
    assert moons.to("cpu") is moons  # nothing to move keeps the cache
    other = moons.member_data(1, seed=4)
    assert not torch.equal(a.x_val, other.x_val)


def test_a_standardized_view_uses_its_own_training_rows(wine: TaskData) -> None:
    assert wine.standardized
    x_pool, _ = pool(wine)
    folds = fold_indices(labels(wine), wine.folds, seed=2, stratified=True)
    for i, (train, val) in enumerate(folds):
        view = wine.member_data(i, 2)
        assert view.standardized
        mean, std = view.x_train.double().mean(0), view.x_train.double().std(0, correction=0)
        assert mean.abs().max() < 1e-6
        assert (std - 1).abs().max() < 1e-5
        # the same rows, z-scored with their own statistics: mapped back they are the pool's
        rows = x_pool[train].double()
        m, s = rows.mean(0), rows.std(0, correction=0)
        for part, original in (
            (view.x_train, rows),
            (view.x_val, x_pool[val]),
            (view.x_test, wine.x_test),
        ):
            assert torch.allclose(part.double() * s + m, original.double(), atol=1e-5)
        # validation statistics are not used: the val fold is not z-scored on its own
        assert view.x_val.double().mean(0).abs().max() > 1e-3


def test_a_constant_column_keeps_unit_scale(wine: TaskData) -> None:
    x = wine.x_train.clone()
    x[:, 0] = 0.0
    task = dataclasses.replace(wine, x_train=x, x_val=torch.zeros_like(wine.x_val))
    view = task.member_data(0, 0)
    assert torch.isfinite(view.x_train).all() and torch.isfinite(view.x_test).all()


def test_refit_trains_and_validates_on_the_whole_pool(moons: TaskData, wine: TaskData) -> None:
    assert BUNDLE_REFIT == REFIT == -1
    x_pool, y_pool = pool(moons)
    view = moons.member_data(REFIT, 9)
    assert torch.equal(view.x_train, x_pool) and torch.equal(view.y_train, y_pool)
    assert torch.equal(view.x_val, x_pool) and torch.equal(view.y_val, y_pool)
    assert view.x_test is moons.x_test
    # REFIT needs no K: it is the whole pool whatever the folds
    plain = dataclasses.replace(moons, folds=0)
    assert torch.equal(plain.member_data(REFIT, 9).x_train, x_pool)
    standardized = wine.member_data(REFIT, 0)
    assert standardized.x_train.double().mean(0).abs().max() < 1e-6
    assert len(standardized.x_train) == len(standardized.x_val) == len(pool(wine)[0])


def test_standardized_targets_are_rescaled_with_the_views_rows(diabetes: TaskData) -> None:
    task = dataclasses.replace(diabetes, target_standardized=True, target_scale=2.0)
    _, y_pool = pool(task)
    train, val = fold_indices(labels(task), task.folds, seed=0, stratified=False)[3]
    view = task.member_data(3, 0)
    s = float(y_pool[train].double().std(correction=0))
    m = float(y_pool[train].double().mean())
    assert view.target_scale == pytest.approx(2.0 * s)
    assert float(view.y_train.double().mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(view.y_train.double().std(correction=0)) == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(view.y_val.double() * s + m, y_pool[val].double(), atol=1e-4)
    assert torch.allclose(view.y_test.double() * s + m, task.y_test.double(), atol=1e-4)
    # without target standardization the targets are the pool's rows, untouched
    raw = dataclasses.replace(diabetes, target_standardized=False, target_scale=1.0)
    plain = raw.member_data(3, 0)
    assert torch.equal(plain.y_train, y_pool[train]) and plain.target_scale == 1.0


@pytest.mark.parametrize(("folds", "fold"), [(4, 4), (4, -2), (0, 0)])
def test_a_fold_the_task_does_not_have_is_a_value_error(
    moons: TaskData, folds: int, fold: int
) -> None:
    with pytest.raises(ValueError, match=f"fold={fold}: allowed"):
        dataclasses.replace(moons, folds=folds).member_data(fold, 0)


def test_make_bundle_records_standardization(moons: TaskData, wine: TaskData) -> None:
    assert (moons.standardized, wine.standardized) == (False, True)
    assert (wine.target_scale, wine.target_standardized, wine.folds) == (1.0, False, 3)


def test_the_view_cache_is_bounded(moons: TaskData, monkeypatch: pytest.MonkeyPatch) -> None:
    task = dataclasses.replace(moons)  # a fresh, empty cache
    monkeypatch.setattr(bundle_module, "_VIEW_CACHE_BYTES", 1)
    first = task.member_data(0, 0)
    task.member_data(1, 0)
    assert task.member_data(1, 0) is task.member_data(1, 0)  # the newest view stays
    again = task.member_data(0, 0)  # evicted, then computed anew with the same rows
    assert again is not first and torch.equal(again.x_val, first.x_val)
