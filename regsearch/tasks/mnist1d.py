"""MNIST-1D (Greydanus & Kobak 2024): ten 1-D digit templates, padded, sheared, translated and
noised into sequences of length 40; generated offline by the ``mnist1d`` package.

Only ``make_dataset`` is called, never ``get_dataset`` (which downloads). Generation takes
about ten seconds, so the arrays are cached as ``.npz`` per generator seed.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

from regsearch.config import ConfigError, Mnist1dTask
from regsearch.tasks.bundle import TaskData, make_bundle, split_indices

__all__ = ["generate", "load_mnist1d"]


def _cache_dir(cfg: Mnist1dTask) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "regsearch" / "mnist1d"


def generate(data_seed: int) -> dict[str, np.ndarray]:
    """The data set of ``make_dataset`` with its default arguments and ``data_seed``.

    ``make_dataset`` seeds numpy's and Python's global generators; their states are put back
    so that generating the data changes no other random stream.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = data_seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(data[k]) for k in ("x", "y", "x_test", "y_test")}


def _arrays(cfg: Mnist1dTask) -> dict[str, np.ndarray]:
    """The generated arrays, from the cache when this seed was generated before."""
    path = _cache_dir(cfg) / f"mnist1d-seed{cfg.data_seed}.npz"
    if path.is_file():
        with np.load(path) as cached:
            return {k: cached[k] for k in cached.files}
    try:
        arrays = generate(cfg.data_seed)
    except ImportError:
        raise ConfigError("task=mnist1d needs the mnist1d package: pip install mnist1d") from None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)  # atomic: concurrent workers never read half a file
    except OSError:
        pass  # an unwritable cache only costs the next run the generation time
    return arrays


def load_mnist1d(cfg: Mnist1dTask) -> TaskData:
    """MNIST-1D: 4,000 training and 1,000 test sequences of length 40, 10 classes.

    The training sequences are split into train/validation by ``val_fraction``; ``n_train``
    keeps a seeded subset of them first (quick runs). The generator already z-scores the whole
    data set, so ``standardize`` is off by default. Each example has shape ``(40,)``.

    Example:
        >>> data = load_mnist1d(Mnist1dTask(name="mnist1d", n_train=500))  # doctest: +SKIP
        >>> data.shape, len(data.x_train) + len(data.x_val), len(data.x_test)  # doctest: +SKIP
        ((40,), 500, 1000)
    """
    arrays = _arrays(cfg)
    x, y = arrays["x"], arrays["y"]
    if cfg.n_train is not None and cfg.n_train < len(x):
        kept = np.random.default_rng(cfg.split_seed).permutation(len(x))[: cfg.n_train]
        x, y = x[np.sort(kept)], y[np.sort(kept)]
    train, val = split_indices(len(x), cfg.val_fraction, cfg.split_seed)
    splits = {
        "train": (x[train], y[train]),
        "val": (x[val], y[val]),
        "test": (arrays["x_test"], arrays["y_test"]),
    }
    names = [f"t{i}" for i in range(x.shape[1])]
    return make_bundle(
        cfg.name,
        "classification",
        splits,
        standardize=cfg.standardize,
        feature_names=names,
        input_shape=(x.shape[1],),
    )
