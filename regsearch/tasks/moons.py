"""Two interleaving half-moons: the NNDL overfitting setup (REFERENCE_EXPERIMENTS §1)."""

from __future__ import annotations

from regsearch.config import MoonsTask
from regsearch.tasks.bundle import TaskData, make_bundle, split_indices

__all__ = ["load_moons"]


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
    # Imported here: sklearn.datasets costs seconds and only this loader needs it.
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=cfg.n_samples, noise=cfg.noise, random_state=cfg.data_seed)
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
