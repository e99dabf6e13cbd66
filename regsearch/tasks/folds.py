"""Cross-validation folds as data views: which pool rows a (fold, seed) member trains on.

A task's *pool* is its training rows followed by its validation rows. Fold ``i`` of a K-fold
partition of the pool (seeded by the member's seed, so members with one seed see the same
rows and other seeds give repeated CV with a fresh partition) validates on fold ``i`` and
trains on the rest; :data:`REFIT` trains on the whole pool. Test rows are never in the pool.

Example:
    >>> import numpy as np
    >>> [len(val) for _, val in fold_indices(np.array([0, 1] * 5), 5, seed=0, stratified=True)]
    [2, 2, 2, 2, 2]
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch

from regsearch.records import REFIT

if TYPE_CHECKING:  # bundle.py imports this module; the view only needs TaskData's fields
    from regsearch.tasks.bundle import TaskData

__all__ = ["REFIT", "fold_indices", "fold_view"]


def fold_indices(
    y_pool: np.ndarray, k: int, seed: int, stratified: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training rows, validation rows) of each of the ``k`` folds of a pool, sorted.

    Stratified folds (scikit-learn's ``StratifiedKFold``) keep each class's share in every
    fold, for classification; ``KFold`` splits regression pools. Both shuffle with ``seed``.

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
    # Imported here: scikit-learn costs seconds to import, and only CV runs need it.
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = (StratifiedKFold if stratified else KFold)(
        n_splits=k, shuffle=True, random_state=seed % 2**32
    )
    splits = splitter.split(np.zeros((n, 1)), y)
    return [(np.sort(tr), np.sort(va)) for tr, va in splits]


def fold_view(task: TaskData, fold: int, seed: int) -> TaskData:
    """The bundle a member of ``fold`` (0..K-1 or :data:`REFIT`) with ``seed`` trains on.

    Fold ``i`` trains on the pool minus fold ``i`` and validates on fold ``i``; REFIT trains
    and "validates" on the whole pool. Test rows are the task's. Standardized features (and
    standardized regression targets) are re-standardized with the view's training rows only,
    so no statistic of a validation fold reaches training. Prefer ``task.member_data``,
    which caches views.

    Raises:
        ValueError: A fold outside 0..task.folds-1 (REFIT is always allowed), or folds the
            pool cannot have (see :func:`fold_indices`).
    """
    x_pool = torch.cat([task.x_train, task.x_val])
    y_pool = torch.cat([task.y_train, task.y_val])
    if fold == REFIT:
        train_rows = val_rows = torch.arange(len(x_pool), device=x_pool.device)
    else:
        if not 0 <= fold < task.folds:
            raise ValueError(f"fold={fold}: allowed: 0..{task.folds - 1} or REFIT ({REFIT})")
        labels = y_pool.reshape(len(y_pool), -1)[:, 0].cpu().numpy()
        train_idx, val_idx = fold_indices(labels, task.folds, seed, task.is_classification)[fold]
        train_rows = torch.as_tensor(train_idx, device=x_pool.device)
        val_rows = torch.as_tensor(val_idx, device=x_pool.device)
    x_tr, x_va, x_te = x_pool[train_rows], x_pool[val_rows], task.x_test
    if task.standardized:
        x_tr, x_va, x_te = _restandardize(x_tr, x_tr, x_va, x_te)
    y_tr, y_va, y_te = y_pool[train_rows], y_pool[val_rows], task.y_test
    target_scale = task.target_scale
    if task.target_standardized and not task.is_classification:
        # MSE in original units = MSE x target_scale**2 keeps holding in the view.
        target_scale *= float(_scale(y_tr).reshape(-1)[0])
        y_tr, y_va, y_te = _restandardize(y_tr, y_tr, y_va, y_te)
    return dataclasses.replace(
        task,
        x_train=x_tr,
        y_train=y_tr,
        x_val=x_va,
        y_val=y_va,
        x_test=x_te,
        y_test=y_te,
        folds=0,
        target_scale=target_scale,
    )


def _scale(rows: torch.Tensor) -> torch.Tensor:
    """Per-column population std of ``rows`` in float64; 1 for a constant column (as
    make_bundle does: it would divide by zero)."""
    std = rows.double().std(dim=0, correction=0)
    return torch.where(std > 1e-12, std, torch.ones_like(std))


def _restandardize(fit_rows: torch.Tensor, *parts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``parts`` z-scored with the mean/std of ``fit_rows``, computed in float64.

    The task's columns are already an affine map of the raw ones, so re-standardizing them
    equals standardizing the raw columns with these rows' statistics, up to rounding.
    """
    mean, std = fit_rows.double().mean(dim=0), _scale(fit_rows)
    return tuple(((p.double() - mean) / std).to(p.dtype) for p in parts)
