"""The one bundle every task returns, and the split/standardize steps they share."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from regsearch.errors import ConfigError
from regsearch.records import REFIT
from regsearch.tasks.folds import column_scale, fold_rows, restandardize

__all__ = [
    "REFIT",
    "InputColumn",
    "LeftOut",
    "TableRecord",
    "TaskData",
    "make_bundle",
    "split_indices",
]

#: Bytes of fold views one bundle keeps (least recently used dropped first): enough for every
#: (fold, seed) view of a sweep on the small tasks, bounded on MNIST-sized ones.
_VIEW_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class InputColumn:
    """One column of a user's table as the model sees it."""

    name: str
    kind: str  # "number" (one input) or "text" (one-hot: one input per training category)
    width: int  # model inputs the column became
    imputed: int  # cells filled by task.impute, over all rows (0 without imputation)


@dataclass(frozen=True)
class LeftOut:
    """A column of a user's table that is not a feature, and why."""

    name: str
    why: str  # "task.drop", "not in task.features", or why it looks like an ID


@dataclass(frozen=True)
class TableRecord:
    """How a user's table (``task=csv``) became model inputs; the report's setup lists it."""

    path: str
    rows: int
    inputs: tuple[InputColumn, ...]  # in the order of the model's inputs
    left_out: tuple[LeftOut, ...] = ()

    @property
    def n_inputs(self) -> int:
        return sum(column.width for column in self.inputs)


@dataclass(frozen=True)
class TaskData:
    """Train/validation/test tensors of one task, ready for the engines.

    Features are float32 ``[n, d]``, flat whatever their shape; ``input_shape`` is the shape
    of one example (``(1, 8, 8)`` for an 8×8 image, ``(40,)`` for a sequence), which a
    convolutional or user model reshapes each row to. Targets are float32 ``[n, 1]`` for
    regression and binary classification (0/1 labels, one logit) and int64 ``[n]`` for
    multi-class classification.
    Selection uses ``val`` only; ``test`` is touched once for the final numbers.

    With ``folds`` = K >= 2, members are cross-validated on the *pool* (train rows followed
    by val rows): :meth:`member_data` gives the bundle each member trains on.
    """

    name: str
    kind: str  # "classification" or "regression"
    n_classes: int  # 0 for regression, 2 for binary (one logit), >2 for softmax
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    feature_names: list[str] = field(default_factory=list)
    folds: int = 0  # K of K-fold cross-validation on the pool; 0 = no CV (train/val split)
    standardized: bool = False  # features z-scored with the training rows' mean/std
    target_scale: float = 1.0  # std of the training targets in original units (regression)
    target_standardized: bool = False  # regression targets z-scored like the features
    table: TableRecord | None = None  # a user's table: its columns as inputs (None: built-in)
    # One example's shape, its product n_features; () = a flat vector (n_features,).
    input_shape: tuple[int, ...] = ()
    # (fold, seed) -> view, least recently used first; not part of the bundle's value.
    _views: OrderedDict[tuple[int, int], TaskData] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def shape(self) -> tuple[int, ...]:
        """One example's shape: ``input_shape``, or ``(n_features,)`` for a flat vector."""
        return self.input_shape or (self.n_features,)

    @property
    def n_outputs(self) -> int:
        """Width of the model's last layer: one logit/value, or one per class."""
        return self.n_classes if self.n_classes > 2 else 1

    @property
    def is_classification(self) -> bool:
        return self.kind == "classification"

    def to(self, device: torch.device | str) -> TaskData:
        """The same bundle with every tensor on ``device`` (``self`` when already there, so
        its cached fold views are kept)."""
        names = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        moved = {k: getattr(self, k).to(device) for k in names}
        if all(moved[k] is getattr(self, k) for k in names):
            return self
        return dataclasses.replace(self, **moved)

    def member_data(self, fold: int | None, seed: int) -> TaskData:
        """The bundle a member with ``fold`` and ``seed`` trains on (computed once, cached).

        ``None`` is this bundle; ``0..folds-1`` is that fold of the pool partition seeded
        by ``seed`` (train = the other folds, val = this fold); :data:`REFIT` trains on the
        whole pool (its "val" is the pool itself). Test rows are this bundle's. Views have
        ``folds=0`` and, when this bundle is standardized, are re-standardized with their
        own training rows (see :func:`_fold_view`).

        Example:
            >>> view = dataclasses.replace(task, folds=5).member_data(0, seed=3)  # doctest: +SKIP
            >>> len(view.x_train) + len(view.x_val) == len(task.x_train) + len(task.x_val)
            ... # doctest: +SKIP
            True

        Raises:
            ValueError: A fold outside 0..folds-1 and not REFIT, or folds the pool cannot
                have.
        """
        if fold is None:
            return self
        key = (fold, seed)
        view = self._views.get(key)
        if view is None:
            view = _fold_view(self, fold, seed)
            self._views[key] = view
            self._evict()
        self._views.move_to_end(key)
        return view

    def _evict(self) -> None:
        """Drop least recently used views beyond the byte budget, keeping the newest."""
        sizes = {key: _nbytes(view) for key, view in self._views.items()}
        total = sum(sizes.values())
        for key in list(self._views)[:-1]:
            if total <= _VIEW_CACHE_BYTES:
                break
            total -= sizes[key]
            del self._views[key]


def _fold_view(task: TaskData, fold: int, seed: int) -> TaskData:
    """The bundle a member of ``fold`` (0..K-1 or :data:`REFIT`) with ``seed`` trains on.

    Rows come from :func:`regsearch.tasks.folds.fold_rows`; test rows are the task's.
    Standardized features (and standardized regression targets) are re-standardized with the
    view's training rows only, so no statistic of a validation fold reaches training.
    """
    x_pool = torch.cat([task.x_train, task.x_val])
    y_pool = torch.cat([task.y_train, task.y_val])
    train_rows, val_rows = fold_rows(y_pool, fold, task.folds, seed, task.is_classification)
    x_tr, x_va, x_te = x_pool[train_rows], x_pool[val_rows], task.x_test
    if task.standardized:
        x_tr, x_va, x_te = restandardize(x_tr, x_tr, x_va, x_te)
    y_tr, y_va, y_te = y_pool[train_rows], y_pool[val_rows], task.y_test
    target_scale = task.target_scale
    if task.target_standardized and not task.is_classification:
        # MSE in original units = MSE x target_scale**2 keeps holding in the view.
        target_scale *= float(column_scale(y_tr).reshape(-1)[0])
        y_tr, y_va, y_te = restandardize(y_tr, y_tr, y_va, y_te)
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


def _nbytes(task: TaskData) -> int:
    tensors = (task.x_train, task.y_train, task.x_val, task.y_val, task.x_test, task.y_test)
    return sum(t.element_size() * t.nelement() for t in tensors)


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` and cut off ``fraction`` of it (at least one row).

    Returns:
        (kept, held_out) index arrays, each sorted so row order stays stable.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_out = min(max(1, round(n * fraction)), n - 1)
    return np.sort(order[n_out:]), np.sort(order[:n_out])


_SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}
_SPLIT_KEYS = "task.test_fraction / task.val_fraction (or the task's row counts)"


def _check_splits(name: str, kind: str, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Every split has rows, a classifier sees two classes, and features are finite.

    Data that fails here trains to nan or to a constant and "wins" nothing; refusing it
    names the split and its size instead.
    """
    sizes = {part: len(splits[part][0]) for part in ("train", "val", "test")}
    shown = ", ".join(f"{_SPLIT_NAMES[p]} {n}" for p, n in sizes.items())
    for part, n in sizes.items():
        if n == 0:
            raise ConfigError(
                f"task {name!r}: the {_SPLIT_NAMES[part]} split is empty (rows: {shown}); every "
                f"split needs at least one row: change {_SPLIT_KEYS} or give more rows"
            )
    if kind == "classification":
        classes = np.unique(np.asarray(splits["train"][1]))
        if len(classes) < 2:
            raise ConfigError(
                f"task {name!r}: the training split ({sizes['train']} rows) holds only class "
                f"{classes[0].item()!r}; a classifier needs two: change {_SPLIT_KEYS} "
                "or task.split_seed"
            )
    for part in sizes:
        x = np.asarray(splits[part][0], dtype=np.float64)
        if not np.isfinite(x).all():
            n_bad = int(np.sum(~np.isfinite(x)))
            raise ConfigError(
                f"task {name!r}: {n_bad} feature values of the {_SPLIT_NAMES[part]} split are "
                "not finite (nan or inf); clean the data"
            )


def _feature_scaling(
    x_train: np.ndarray, standardize: bool
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(mean, std) that z-score the features with the training rows, or (0, 1)."""
    if not standardize:
        return 0.0, 1.0
    x = np.asarray(x_train, dtype=np.float64)
    std = x.std(axis=0)
    # A constant column (e.g. a blank pixel) would divide by zero; leave it centred.
    return x.mean(axis=0), np.where(std > 1e-12, std, 1.0)


def _target_scaling(y_train: np.ndarray, standardize: bool) -> tuple[float, float]:
    """(shift, scale) that z-score regression targets with the training rows, or (0, 1)."""
    if not standardize:
        return 0.0, 1.0
    y = np.asarray(y_train, dtype=np.float64)
    return float(y.mean()), float(y.std()) or 1.0


def make_bundle(
    name: str,
    kind: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    standardize: bool,
    feature_names: list[str] | None = None,
    standardize_target: bool = False,
    input_shape: tuple[int, ...] = (),
) -> TaskData:
    """Build a TaskData from numpy splits ``{"train"|"val"|"test": (x, y)}``.

    Standardization statistics come from the training split only, so nothing about validation
    or test rows leaks into the features. ``standardize_target`` (regression only) z-scores
    the target the same way, so learning rates and penalties mean the same on every data set;
    ``target_scale`` keeps the training std to report losses in original units.
    Classification labels must be 0..k-1 integers. ``input_shape`` is one example's shape
    (its product the number of features); features stay flat ``[n, d]`` either way.

    Raises:
        ConfigError: A split without rows, a classification training split with one class,
            or features that are not finite numbers.
    """
    _check_splits(name, kind, splits)
    mean, std = _feature_scaling(splits["train"][0], standardize)
    scaled_target = standardize_target and kind == "regression"
    y_shift, y_scale = _target_scaling(splits["train"][1], scaled_target)
    n_classes = 0
    if kind == "classification":
        labels = np.concatenate([np.asarray(splits[s][1]) for s in ("train", "val", "test")])
        n_classes = max(int(labels.max()) + 1, 2)

    def tensors(part: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = splits[part]
        xt = torch.as_tensor((np.asarray(x, dtype=np.float64) - mean) / std, dtype=torch.float32)
        if kind == "classification" and n_classes > 2:
            yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
        else:
            y64 = (np.asarray(y, dtype=np.float64) - y_shift) / y_scale
            yt = torch.as_tensor(y64, dtype=torch.float32).reshape(-1, 1)
        return xt, yt

    (xa, ya), (xv, yv), (xs, ys) = (tensors(p) for p in ("train", "val", "test"))
    names = feature_names or [f"x{i}" for i in range(xa.shape[1])]
    return TaskData(
        name,
        kind,
        n_classes,
        xa,
        ya,
        xv,
        yv,
        xs,
        ys,
        names,
        standardized=standardize,
        target_scale=y_scale,
        target_standardized=scaled_target,
        input_shape=tuple(input_shape),
    )
