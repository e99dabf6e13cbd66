"""Where a sweep's wall time goes: named stopwatch totals, reported in summary.json."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Clock"]


class Clock:
    """Accumulates wall seconds per named activity.

    Example:
        >>> clock = Clock()
        >>> with clock("sampler"):
        ...     pass
        >>> sorted(clock.totals())
        ['sampler']
    """

    def __init__(self) -> None:
        self._totals: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` more against ``name``."""
        self._totals[name] = self._totals.get(name, 0.0) + seconds

    def totals(self) -> dict[str, float]:
        """Seconds per activity, rounded to the millisecond."""
        return {k: round(v, 3) for k, v in self._totals.items()}
