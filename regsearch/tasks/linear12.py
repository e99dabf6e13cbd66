"""Synthetic 12-feature linear regression from the PyTorch tutorial blog (§5)."""

from __future__ import annotations

import numpy as np

from regsearch.config import ConfigError, Linear12Task
from regsearch.tasks.bundle import TaskData, make_bundle

__all__ = ["load_linear12"]


def load_linear12(cfg: Linear12Task) -> TaskData:
    """Draw X ~ N(x_mean, 1) and y = X w + bias + N(noise_mean, noise_std^2).

    Train, validation and test are consecutive blocks of one i.i.d. draw from
    ``default_rng(data_seed)``; ``split_seed`` plays no part.

    Args:
        cfg: True weights (their count is the number of features), bias, input mean, noise
            and split sizes.

    Returns:
        Regression with ``len(cfg.weights)`` features.

    Raises:
        ConfigError: ``weights`` is empty.

    Example:
        >>> load_linear12(Linear12Task(name="linear12")).x_train.shape
        torch.Size([500, 12])
    """
    if not cfg.weights:
        raise ConfigError("task.weights=[]: give at least one weight (one per feature)")
    w = np.asarray(cfg.weights, dtype=np.float64)
    n = cfg.n_train + cfg.n_val + cfg.n_test
    rng = np.random.default_rng(cfg.data_seed)
    x = rng.normal(loc=cfg.x_mean, scale=1.0, size=(n, w.size))
    y = x @ w + cfg.bias + rng.normal(loc=cfg.noise_mean, scale=cfg.noise_std, size=n)
    a, b = cfg.n_train, cfg.n_train + cfg.n_val
    splits = {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}
    return make_bundle(cfg.name, "regression", splits, standardize=cfg.standardize)
