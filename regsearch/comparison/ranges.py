"""Where a candidate's tuned values sit in their searched ranges.

Two readings a reviewer asks for before believing a tuned comparison:

- a best value at either edge of its range means the search stopped at the range, not at an
  optimum: the note names the range to widen;
- a regularizer whose strength sits at its "off" edge (the smallest L1, L2 or weight decay,
  the lowest dropout rate of the range) is effectively the baseline at another learning rate:
  its gain belongs to the learning rate, not to the regularizer.

Example:
    >>> ranges = {"l2": SearchRange(1e-4, 1.0, True), "lr": SearchRange(0.02, 0.6, True)}
    >>> range_notes({"lr": 0.3, "l2": 1.2e-4}, ranges)
    ('l2=0.00012 sits at the low edge of its range [0.0001, 1] (widen it).',)
    >>> effectively_off({"lr": 0.3, "l2": 1.2e-4}, ranges)
    'l2'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from regsearch.comparison.formatting import short

__all__ = [
    "EDGE",
    "OFF_AT_LOW",
    "SearchRange",
    "effectively_off",
    "range_notes",
    "ranges_from_summary",
]

#: Share of a range (on its log scale when searched on one) counted as its edge.
EDGE = 0.05
#: Strength parameters whose lowest values switch the regularizer (nearly) off.
OFF_AT_LOW = ("l1", "l2", "weight_decay", "dropout")


@dataclass(frozen=True)
class SearchRange:
    """A searched numeric range (``sweep.families.<f>.params.<p>``)."""

    low: float
    high: float
    log: bool = False

    def position(self, value: float) -> float:
        """Where ``value`` sits: 0 at ``low``, 1 at ``high`` (on the log scale when ``log``)."""
        if self.high <= self.low:
            return 0.5
        if self.log and self.low > 0 and value > 0:
            lo, hi = math.log(self.low), math.log(self.high)
            return (math.log(value) - lo) / (hi - lo)
        return (value - self.low) / (self.high - self.low)


def ranges_from_summary(block: Any) -> dict[str, dict[str, SearchRange]]:
    """``summary["ranges"]``, ``{family: {param: [low, high, log]}}``, as search ranges.

    Example:
        >>> ranges_from_summary({"l2": {"l2": [0.0001, 1.0, True]}})
        {'l2': {'l2': SearchRange(low=0.0001, high=1.0, log=True)}}
    """
    if not isinstance(block, Mapping):
        return {}
    return {
        str(fam): {str(p): SearchRange(float(v[0]), float(v[1]), bool(v[2])) for p, v in ps.items()}
        for fam, ps in block.items()
        if isinstance(ps, Mapping)
    }


def range_notes(params: Mapping[str, Any], ranges: Mapping[str, SearchRange]) -> tuple[str, ...]:
    """One note per numeric value within :data:`EDGE` of either end of its range."""
    notes = []
    for name, value in params.items():
        where = _edge(name, value, ranges)
        if where is not None:
            r = ranges[name]
            notes.append(
                f"{name}={short(value)} sits at the {where} edge of its range "
                f"[{short(r.low)}, {short(r.high)}] (widen it)."
            )
    return tuple(notes)


def effectively_off(params: Mapping[str, Any], ranges: Mapping[str, SearchRange]) -> str | None:
    """The strength parameter that sits at its "off" edge, or None."""
    for name in OFF_AT_LOW:
        if name in params and _edge(name, params[name], ranges) == "low":
            return name
    return None


def _edge(name: str, value: Any, ranges: Mapping[str, SearchRange]) -> str | None:
    r = ranges.get(name)
    if r is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    spot = r.position(float(value))
    return "low" if spot <= EDGE else "high" if spot >= 1 - EDGE else None
