"""High-dimensional linear regression with few examples: d2l's weight-decay setup (§2)."""

from __future__ import annotations

import numpy as np

from regsearch.config import HighdimLinearTask
from regsearch.tasks.bundle import TaskData, make_bundle

__all__ = ["load_highdim_linear"]


def load_highdim_linear(cfg: HighdimLinearTask) -> TaskData:
    """Draw x ~ N(0, I_d) and y = b + sum_i w x_i + N(0, noise^2) with every w_i equal.

    With the defaults (d=200, 20 training points) an unregularized fit interpolates the
    training set; that is the point of the setup. Train, validation and test are consecutive
    blocks of one i.i.d. draw from ``default_rng(data_seed)``; ``split_seed`` plays no part.

    Args:
        cfg: Dimension, true weight and bias, noise and split sizes.

    Returns:
        Regression with ``n_features`` raw Gaussian inputs.

    Example:
        >>> load_highdim_linear(HighdimLinearTask(name="highdim_linear")).x_train.shape
        torch.Size([20, 200])
    """
    n = cfg.n_train + cfg.n_val + cfg.n_test
    rng = np.random.default_rng(cfg.data_seed)
    x = rng.normal(size=(n, cfg.n_features))
    y = cfg.true_bias + cfg.true_weight * x.sum(axis=1) + rng.normal(scale=cfg.noise, size=n)
    a, b = cfg.n_train, cfg.n_train + cfg.n_val
    splits = {"train": (x[:a], y[:a]), "val": (x[a:b], y[a:b]), "test": (x[b:], y[b:])}
    return make_bundle(cfg.name, "regression", splits, standardize=cfg.standardize)
