"""Polynomial regression with x^i/i! features: d2l's model-selection setup (§3).

The labels always come from the same polynomial (the true coefficients padded with zeros to
20 terms), so ``n_features`` only changes what the model sees: 4 fits, 2 underfits and 20
overfits, all on identical data.
"""

from __future__ import annotations

import math

import numpy as np

from regsearch.config import PolynomialTask
from regsearch.tasks.bundle import TaskData, make_bundle

__all__ = ["load_polynomial", "polynomial_features"]

#: Terms of the generating polynomial, as in d2l (``max_degree = 20``).
GENERATOR_TERMS = 20


def polynomial_features(x: np.ndarray, n_terms: int) -> np.ndarray:
    """Columns ``x**i / i!`` for ``i < n_terms``; the factorial keeps high powers from exploding.

    Example:
        >>> polynomial_features(np.array([2.0]), 3).tolist()
        [[1.0, 2.0, 2.0]]
    """
    powers = np.arange(n_terms)
    scale = np.array([math.gamma(i + 1) for i in powers])
    features: np.ndarray = np.power(x[:, None], powers[None, :]) / scale
    return features


def load_polynomial(cfg: PolynomialTask) -> TaskData:
    """Draw x ~ N(0, 1) and y = sum_j w_j x^j/j! + N(0, noise^2).

    Train, validation and test are consecutive blocks of one i.i.d. draw from
    ``default_rng(data_seed)``, so ``split_seed`` plays no part here.

    Args:
        cfg: True coefficients, noise, feature count and split sizes.

    Returns:
        Regression with ``n_features`` columns ``x^i/i!`` (the first is the constant 1).

    Example:
        >>> load_polynomial(PolynomialTask(name="polynomial", n_features=4)).x_train.shape
        torch.Size([100, 4])
    """
    n_terms = max(GENERATOR_TERMS, cfg.n_features, len(cfg.coefficients))
    true_w = np.zeros(n_terms)
    true_w[: len(cfg.coefficients)] = cfg.coefficients
    n = cfg.n_train + cfg.n_val + cfg.n_test
    rng = np.random.default_rng(cfg.data_seed)
    x = rng.normal(size=n)
    features = polynomial_features(x, n_terms)
    y = features @ true_w + rng.normal(scale=cfg.noise, size=n)
    seen = features[:, : cfg.n_features]
    a, b = cfg.n_train, cfg.n_train + cfg.n_val
    splits = {"train": (seen[:a], y[:a]), "val": (seen[a:b], y[a:b]), "test": (seen[b:], y[b:])}
    names = [f"x^{i}/{i}!" for i in range(cfg.n_features)]
    return make_bundle(
        cfg.name, "regression", splits, standardize=cfg.standardize, feature_names=names
    )
