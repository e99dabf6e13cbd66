"""Two interleaving half-moons: the NNDL overfitting setup (docs/experiments.md)."""

from __future__ import annotations

import numpy as np

from regsearch.config import MoonsTask
from regsearch.tasks.bundle import TaskData, make_bundle, split_indices

__all__ = ["load_moons", "make_moons"]


def load_moons(cfg: MoonsTask) -> TaskData:
    """Draw ``make_moons`` points; the first ``n_pool`` are train+val, the rest is test.

    ``make_moons`` shuffles its rows, so cutting at ``n_pool`` (as the book does) is a random
    split fixed by ``data_seed``; validation is then carved from the pool with ``split_seed``.

    Args:
        cfg: Sample count, noise, pool size and seeds.

    Returns:
        Binary classification (labels 0/1, one logit) on the two raw coordinates unless
        ``cfg.standardize``.

    Example:
        >>> load_moons(MoonsTask(n_samples=100, n_pool=60)).x_test.shape
        torch.Size([40, 2])
    """
    x, y = make_moons(cfg.n_samples, cfg.noise, cfg.data_seed)
    x_pool, y_pool = x[: cfg.n_pool], y[: cfg.n_pool]
    train, val = split_indices(cfg.n_pool, cfg.val_fraction, cfg.split_seed)
    splits = {
        "train": (x_pool[train], y_pool[train]),
        "val": (x_pool[val], y_pool[val]),
        "test": (x[cfg.n_pool :], y[cfg.n_pool :]),
    }
    return make_bundle(
        cfg.name, "classification", splits, standardize=cfg.standardize, feature_names=["x1", "x2"]
    )


def make_moons(n_samples: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same points as ``sklearn.datasets.make_moons(n_samples, noise=noise,
    random_state=seed)``, without importing sklearn.datasets (~1 s, paid by every moons sweep).

    tests/test_tasks.py checks that both give identical arrays.
    """
    gen = np.random.RandomState(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    outer = np.linspace(0, np.pi, n_out)
    inner = np.linspace(0, np.pi, n_in)
    x = np.vstack(
        [
            np.append(np.cos(outer), 1 - np.cos(inner)),
            np.append(np.sin(outer), 1 - np.sin(inner) - 0.5),
        ]
    ).T
    y = np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n_in, dtype=np.intp)])
    order = np.arange(n_samples)
    gen.shuffle(order)  # sklearn.utils.shuffle draws exactly this permutation
    x, y = x[order], y[order]
    if noise:
        x += gen.normal(scale=noise, size=x.shape)
    return x, y
