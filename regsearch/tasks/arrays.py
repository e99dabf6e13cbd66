"""The ``arrays`` task: arrays from Python, kept in one ``.npz`` file (:mod:`regsearch.arrays`).

The file holds ``x`` (``[n, *shape]``) and ``y`` (``[n]``), and optionally predefined splits
``x_val``/``y_val`` and ``x_test``/``y_test``. Splits that are not given are cut from ``x``:
the test rows first (``task.test_fraction``), then the validation rows (``task.val_fraction``)
from the rest, as for every table. One example's shape is ``x.shape[1:]``; the features the
engines see are the flattened example. An example of two dimensions is an image of one
channel (a multi-channel sequence is ``[n, C, 1, L]``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from regsearch.config import ArraysTask, ConfigError
from regsearch.config.schema import TASK_KINDS
from regsearch.tasks.bundle import TaskData, make_bundle, split_indices

__all__ = ["SPLITS", "example_shape", "load_arrays", "paired_splits"]

#: The arrays a file may hold: (x, y) of each split; only the training pool's are required.
SPLITS = {"train": ("x", "y"), "val": ("x_val", "y_val"), "test": ("x_test", "y_test")}


def load_arrays(cfg: ArraysTask) -> TaskData:
    """Load the file, cut the splits it does not hold, and bundle them.

    Raises:
        ConfigError: An unreadable file, missing or mismatched arrays, a kind that does not
            fit ``y``, or a split without rows.
    """
    if cfg.kind not in TASK_KINDS:
        raise ConfigError(f"task.kind={cfg.kind!r}: allowed: {', '.join(TASK_KINDS)}")
    given = _read(cfg.npz)
    kind = _kind(cfg, np.concatenate([y for _, y in given.values()]))
    splits = _splits(cfg, given)
    if kind == "classification":
        splits = _class_codes(splits)
    flat = {part: (x.reshape(len(x), -1), y) for part, (x, y) in splits.items()}
    return make_bundle(
        cfg.name,
        kind,
        flat,
        standardize=cfg.standardize,
        standardize_target=cfg.standardize_target,
        input_shape=example_shape(given["train"][0].shape[1:]),
    )


def example_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape a model sees: an (H, W) example is an image of one channel, (1, H, W).

    Example:
        >>> example_shape((28, 28)), example_shape((3, 32, 32)), example_shape((40,))
        ((1, 28, 28), (3, 32, 32), (40,))
    """
    dims = tuple(int(n) for n in shape)
    return (1, *dims) if len(dims) == 2 else dims


def _read(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The file's (x, y) per split it holds."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as err:
        raise ConfigError(f"task.npz={path!r}: cannot read it ({err})") from None
    return paired_splits(arrays, f"task.npz={path!r}")


def paired_splits(
    arrays: Mapping[str, np.ndarray], where: str
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(x, y) per split in ``arrays``, checked: the training pair given, every x with its y,
    ``[n, *shape]`` and ``[n]`` with one n, one example shape for all splits.

    Raises:
        ConfigError: One line starting with ``where`` (what holds the arrays).
    """
    if "x" not in arrays or "y" not in arrays:
        raise ConfigError(f"{where}: give at least x and y (the training pool)")
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part, (xk, yk) in SPLITS.items():
        if xk not in arrays and yk not in arrays:
            continue
        if xk not in arrays or yk not in arrays:
            raise ConfigError(
                f"{where}: has {xk if xk in arrays else yk} without its pair; "
                f"give both {xk} and {yk}"
            )
        x, y = arrays[xk], arrays[yk]
        if y.ndim != 1 or len(x) != len(y) or x.ndim < 2:
            raise ConfigError(
                f"{where}: {xk} {list(x.shape)} and {yk} {list(y.shape)} must be "
                "[n, *shape] and [n] with the same n"
            )
        found[part] = (x, y)
    shapes = {x.shape[1:] for x, _ in found.values()}
    if len(shapes) > 1:
        raise ConfigError(f"{where}: the splits' examples differ in shape: {sorted(shapes)}")
    return found


def _kind(cfg: ArraysTask, y: np.ndarray) -> str:
    integral = np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)
    kind = cfg.kind if cfg.kind != "auto" else ("classification" if integral else "regression")
    if kind == "regression" and not np.issubdtype(y.dtype, np.number):
        raise ConfigError(f"task.kind='regression': y of dtype {y.dtype} is not numeric")
    return kind


def _splits(
    cfg: ArraysTask, given: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The three splits: the given ones as they are, the others cut from the training pool
    (test first, then validation from the rest; the second cut seeded ``split_seed + 1``)."""
    x, y = given["train"]
    rows = np.arange(len(x))
    out = dict(given)
    if "test" not in given:
        kept, test = split_indices(len(rows), cfg.test_fraction, cfg.split_seed)
        out["test"] = (x[rows[test]], y[rows[test]])
        rows = rows[kept]
    if "val" not in given:
        kept, val = split_indices(len(rows), cfg.val_fraction, cfg.split_seed + 1)
        out["val"] = (x[rows[val]], y[rows[val]])
        rows = rows[kept]
    out["train"] = (x[rows], y[rows])
    return out


def _class_codes(
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Labels as 0..k-1: the i-th smallest value of y over all splits is class i."""
    values = np.unique(np.concatenate([y for _, y in splits.values()]))
    return {part: (x, np.searchsorted(values, y)) for part, (x, y) in splits.items()}
