"""Small real data sets bundled with scikit-learn (no download): digits, breast cancer, wine,
diabetes; and the test-then-validation split and bundling that every table task shares."""

from __future__ import annotations

import dataclasses

import numpy as np

from regsearch.config import ConfigError, SklearnTask, TableTask
from regsearch.tasks.bundle import TaskData, make_bundle, split_indices

__all__ = [
    "IMAGE_SHAPES",
    "SKLEARN_SETS",
    "bundle_table",
    "load_sklearn",
    "split_rows",
    "three_way_split",
]

#: Task name -> (sklearn.datasets loader, kind).
SKLEARN_SETS: dict[str, tuple[str, str]] = {
    "digits": ("load_digits", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}

#: Task name -> the shape of one example, for the data sets that are images.
IMAGE_SHAPES: dict[str, tuple[int, ...]] = {"digits": (1, 8, 8)}


def three_way_split(
    n: int, test_fraction: float, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hold out ``test_fraction`` of ``range(n)`` as test, then ``val_fraction`` of the rest.

    The second cut uses ``seed + 1`` so that it is not the same permutation as the first.

    Returns:
        (train, val, test) sorted row indices that partition ``range(n)``.

    Example:
        >>> [len(part) for part in three_way_split(100, 0.2, 0.25, seed=0)]
        [60, 20, 20]
    """
    rest, test = split_indices(n, test_fraction, seed)
    train, val = split_indices(len(rest), val_fraction, seed + 1)
    return rest[train], rest[val], test


def split_rows(cfg: TableTask, n: int) -> dict[str, np.ndarray]:
    """Row indices of the ``train``, ``val`` and ``test`` splits of a table of ``n`` rows.

    Example:
        >>> {part: len(rows) for part, rows in split_rows(TableTask(), 100).items()}
        {'train': 60, 'val': 20, 'test': 20}
    """
    train, val, test = three_way_split(n, cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
    return {"train": train, "val": val, "test": test}


def bundle_table(
    cfg: TableTask,
    kind: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    feature_names: list[str],
) -> TaskData:
    """The bundle of a table task's splits, standardized as ``cfg`` says (training rows only)."""
    return make_bundle(
        cfg.name,
        kind,
        splits,
        standardize=cfg.standardize,
        feature_names=feature_names,
        standardize_target=cfg.standardize_target,
    )


def load_sklearn(cfg: SklearnTask) -> TaskData:
    """Load one of :data:`SKLEARN_SETS` and split it with :func:`three_way_split`.

    Args:
        cfg: Task name, split fractions, split seed and whether to standardize.

    Returns:
        Digits (10 classes, 64 pixels), breast cancer (binary, 30 features), wine (3 classes,
        13 features) or diabetes (regression, 10 features; target z-scored with training
        statistics unless ``standardize_target`` is off).

    Raises:
        ConfigError: ``cfg.name`` is not one of :data:`SKLEARN_SETS`.

    Example:
        >>> load_sklearn(SklearnTask(name="wine")).n_classes
        3
    """
    if cfg.name not in SKLEARN_SETS:
        raise ConfigError(f"task.name={cfg.name!r}: allowed: {', '.join(SKLEARN_SETS)}")
    # Imported here: sklearn.datasets costs seconds and only these tasks need it.
    import sklearn.datasets

    loader, kind = SKLEARN_SETS[cfg.name]
    data = getattr(sklearn.datasets, loader)()
    x, y = np.asarray(data.data, dtype=np.float64), np.asarray(data.target)
    splits = {part: (x[rows], y[rows]) for part, rows in split_rows(cfg, len(x)).items()}
    bundle = bundle_table(cfg, kind, splits, [str(name) for name in data.feature_names])
    # Digits are 8×8 images: a convolutional model sees them as one channel of 8×8 pixels.
    shape = IMAGE_SHAPES.get(cfg.name, ())
    return dataclasses.replace(bundle, input_shape=shape) if shape else bundle
