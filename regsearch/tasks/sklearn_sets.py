"""Small real data sets bundled with scikit-learn (no download): digits, breast cancer, wine,
diabetes; and the test-then-validation split that every real-data task shares."""

from __future__ import annotations

import numpy as np

from regsearch.config import ConfigError, SklearnTask
from regsearch.tasks.bundle import TaskData, make_bundle, split_indices

__all__ = ["SKLEARN_SETS", "load_sklearn", "three_way_split"]

#: Task name -> (sklearn.datasets loader, kind).
SKLEARN_SETS: dict[str, tuple[str, str]] = {
    "digits": ("load_digits", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}


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
    train, val, test = three_way_split(len(x), cfg.test_fraction, cfg.val_fraction, cfg.split_seed)
    splits = {
        part: (x[idx], y[idx]) for part, idx in (("train", train), ("val", val), ("test", test))
    }
    names = [str(name) for name in data.feature_names]
    return make_bundle(
        cfg.name,
        kind,
        splits,
        standardize=cfg.standardize,
        feature_names=names,
        standardize_target=cfg.standardize_target,
    )
