"""Random streams of a sweep that tunes several families (compare, the suite's data sets).

Two rules keep the arms of a comparison on equal terms:

- **Common random numbers for the learning rate.** The first trials of every family (the
  sampler's random start-up) are enqueued with the *same* learning rates, drawn once per
  sweep, stratified over the log range. No arm gets a learning rate the baseline never saw,
  and a difference between arms in those trials is the regularizer's, not the draw's.
- **A stream per family and per data set.** Every family's sampler gets a seed of its own,
  derived from the sweep's seed, the task and the family. With one shared seed, every family
  proposed the same normalized points (trial 7 was the smallest lr *and* the weakest strength
  in every family), and every data set of a suite the same ones again.

Example:
    >>> family_seed(0, "moons", "l2") == family_seed(0, "moons", "l1")
    False
    >>> [round(v, 4) for v in shared_log_values(0.02, 0.6, 4, seed=0)]
    [0.1134, 0.0203, 0.0935, 0.5571]
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

__all__ = ["family_seed", "shared_log_values"]


def family_seed(seed: int, task: str, family: str) -> int:
    """The sampler seed of ``family`` in a multi-family sweep of ``task`` with ``seed``."""
    digest = hashlib.sha256(f"{seed}:{task}:{family}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def shared_log_values(low: float, high: float, n: int, seed: int) -> list[float]:
    """``n`` values in [low, high], one per equal slice of the log range, in a seeded order
    (a one-dimensional Latin hypercube): the shared learning rates of the start-up trials.

    Raises:
        ValueError: ``low`` not in (0, high), or ``n`` < 1.
    """
    if not 0 < low < high:
        raise ValueError(f"need 0 < low < high, got {low=}, {high=}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n=}")
    rng = np.random.default_rng(seed)
    spots = (rng.permutation(n) + rng.random(n)) / n
    lo, hi = math.log(low), math.log(high)
    return [float(math.exp(lo + s * (hi - lo))) for s in spots]
