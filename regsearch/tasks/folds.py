"""Cross-validation folds as rows: which pool rows a (fold, seed) member trains on.

A task's *pool* is its training rows followed by its validation rows. Fold ``i`` of a K-fold
partition of the pool (seeded by the member's seed, so members with one seed see the same
rows and other seeds give repeated CV with a fresh partition) validates on fold ``i`` and
trains on the rest; :data:`REFIT` trains on the whole pool. Test rows are never in the pool.
This module knows rows and tensors only; :meth:`regsearch.tasks.bundle.TaskData.member_data`
builds a member's bundle from them.

Example:
    >>> import numpy as np
    >>> [len(val) for _, val in fold_indices(np.array([0, 1] * 5), 5, seed=0, stratified=True)]
    [2, 2, 2, 2, 2]
"""

from __future__ import annotations

import numpy as np
import torch

from regsearch.records import REFIT

__all__ = ["REFIT", "column_scale", "fold_indices", "fold_rows", "restandardize"]


def fold_indices(
    y_pool: np.ndarray, k: int, seed: int, stratified: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training rows, validation rows) of each of the ``k`` folds of a pool, sorted.

    Stratified folds keep each class's share in every fold, for classification; plain folds
    split regression pools. Both shuffle with ``seed`` and equal scikit-learn's
    ``StratifiedKFold`` / ``KFold`` (``shuffle=True, random_state=seed``) row for row.

    Args:
        y_pool: The pool's targets, one per row (class labels when ``stratified``).
        k: Number of folds, 2 <= k <= rows (and <= the smallest class when stratified).
        seed: Seed of the shuffle; taken modulo 2**32 (what scikit-learn accepts).
        stratified: Keep class proportions per fold.

    Raises:
        ValueError: ``k`` that the pool cannot be split into, naming ``search.cv``.
    """
    y = np.asarray(y_pool).reshape(len(y_pool))
    n = len(y)
    if not 2 <= k <= n:
        raise ValueError(f"search.cv={k}: allowed: 2 <= cv <= {n} (the train+val pool's rows)")
    if stratified:
        labels, counts = np.unique(y, return_counts=True)
        if counts.min() < k:
            small = labels[counts.argmin()]
            raise ValueError(
                f"search.cv={k}: class {small:g} has only {counts.min()} rows in the train+val "
                f"pool; allowed: 2 <= cv <= {counts.min()} (stratified folds need a row of "
                "every class in each fold)"
            )
    rng = np.random.RandomState(seed % 2**32)
    test_fold = _stratified_test_folds(y, k, rng) if stratified else _plain_test_folds(n, k, rng)
    rows = np.arange(n)
    return [(rows[test_fold != i], rows[test_fold == i]) for i in range(k)]


# The two fold assignments below are scikit-learn's (1.x) StratifiedKFold and KFold with
# shuffle=True, draw for draw, so folds are the ones its splitters give for the same seed
# (tests/test_folds.py compares them). Written here because importing sklearn.model_selection
# costs ~0.9 s (scipy.stats included), a fifth of a small sweep's wall time (bench_startup.py).
def _stratified_test_folds(y: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
    """Each row's validation fold: classes dealt round robin, then shuffled within class."""
    _, first_seen, inverse = np.unique(y, return_index=True, return_inverse=True)
    _, class_perm = np.unique(first_seen, return_inverse=True)
    y_encoded = class_perm[inverse]  # classes numbered in order of first appearance
    n_classes = len(first_seen)
    y_order = np.sort(y_encoded)
    allocation = np.asarray([np.bincount(y_order[i::k], minlength=n_classes) for i in range(k)])
    test_fold = np.empty(len(y), dtype="i")
    for c in range(n_classes):
        folds_for_class = np.arange(k).repeat(allocation[:, c])
        rng.shuffle(folds_for_class)
        test_fold[y_encoded == c] = folds_for_class
    return test_fold


def _plain_test_folds(n: int, k: int, rng: np.random.RandomState) -> np.ndarray:
    """Each row's validation fold: a shuffled order cut into k contiguous, near-equal parts."""
    order = np.arange(n)
    rng.shuffle(order)
    sizes = np.full(k, n // k, dtype=int)
    sizes[: n % k] += 1
    test_fold = np.empty(n, dtype="i")
    test_fold[order] = np.repeat(np.arange(k), sizes)
    return test_fold


def fold_rows(
    y_pool: torch.Tensor, fold: int, k: int, seed: int, stratified: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(training rows, validation rows) of ``fold`` as index tensors on ``y_pool``'s device.

    Fold ``i`` (0..k-1) trains on the pool minus fold ``i`` and validates on fold ``i`` of
    :func:`fold_indices`; :data:`REFIT` trains and "validates" on the whole pool.

    Example:
        >>> train, val = fold_rows(torch.tensor([0, 1] * 3), REFIT, k=0, seed=0, stratified=True)
        >>> train.tolist() == val.tolist() == [0, 1, 2, 3, 4, 5]
        True

    Raises:
        ValueError: A fold outside 0..k-1 (REFIT is always allowed), or ``k`` folds the pool
            cannot have (see :func:`fold_indices`).
    """
    device = y_pool.device
    if fold == REFIT:
        every = torch.arange(len(y_pool), device=device)
        return every, every
    if not 0 <= fold < k:
        raise ValueError(f"fold={fold}: allowed: 0..{k - 1} or REFIT ({REFIT})")
    labels = y_pool.reshape(len(y_pool), -1)[:, 0].cpu().numpy()
    train_idx, val_idx = fold_indices(labels, k, seed, stratified)[fold]
    return torch.as_tensor(train_idx, device=device), torch.as_tensor(val_idx, device=device)


def column_scale(rows: torch.Tensor) -> torch.Tensor:
    """Per-column population std of ``rows`` in float64; 1 for a constant column (as
    make_bundle does: it would divide by zero)."""
    std = rows.double().std(dim=0, correction=0)
    return torch.where(std > 1e-12, std, torch.ones_like(std))


def restandardize(fit_rows: torch.Tensor, *parts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``parts`` z-scored with the mean/std of ``fit_rows``, computed in float64.

    The task's columns are already an affine map of the raw ones, so re-standardizing them
    equals standardizing the raw columns with these rows' statistics, up to rounding.

    Example:
        >>> rows = torch.tensor([[1.0], [3.0]])
        >>> [t.tolist() for t in restandardize(rows, rows, torch.tensor([[5.0]]))]
        [[[-1.0], [1.0]], [[3.0]]]
    """
    mean, std = fit_rows.double().mean(dim=0), column_scale(fit_rows)
    return tuple(((p.double() - mean) / std).to(p.dtype) for p in parts)
