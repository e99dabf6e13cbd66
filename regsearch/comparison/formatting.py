"""Numbers as text for the verdict, the console table and the report."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from regsearch.comparison.stats import Difference, Estimate

__all__ = ["format_effect", "format_estimate", "format_interval", "format_p", "short", "signed"]


def format_estimate(
    est: Estimate | Difference | None, digits: int = 3, signed: bool = False
) -> str:
    """``"0.812 ± 0.021"``: the mean to ``digits`` and the half-width to 2 significant digits.

    Only the mean without an interval (one value); empty for None.

    Example:
        >>> from regsearch.comparison import mean_ci
        >>> format_estimate(mean_ci([0.8, 0.82, 0.84]))
        '0.82 ± 0.05'
    """
    if est is None:
        return ""
    sign = "+" if signed else ""
    text = f"{est.mean:{sign}.{digits}g}"
    if est.low is None or est.high is None:
        return text
    return f"{text} ± {(est.high - est.low) / 2:.2g}"


def format_p(p: float | None) -> str:
    """A p-value for a sentence: ``"p=0.037"``, ``"p<0.001"``; empty when there is none.

    Example:
        >>> format_p(0.0371), format_p(0.00002), format_p(None)
        ('p=0.037', 'p<0.001', '')
    """
    if p is None or math.isnan(p):
        return ""
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def format_interval(diff: Difference | Estimate | None) -> str:
    """``"[-0.06, -0.022]"`` (2 significant digits, signed); empty without an interval.

    Example:
        >>> format_interval(Difference(-0.041, -0.0603, -0.0221, 0.003, 5))
        '[-0.06, -0.022]'
    """
    if diff is None or diff.low is None or diff.high is None:
        return ""
    return f"[{signed(diff.low)}, {signed(diff.high)}]"


def format_effect(diff: Difference | None) -> str:
    """A paired difference with its interval: ``"-0.041 [-0.06, -0.022]"``.

    Example:
        >>> format_effect(Difference(-0.041, -0.0603, -0.0221, 0.003, 5))
        '-0.041 [-0.06, -0.022]'
    """
    if diff is None:
        return ""
    return f"{signed(diff.mean)} {format_interval(diff)}".rstrip()


def signed(value: float, resolution: float = 5e-13) -> str:
    """``"+0.021"``, ``"-0.3"``, ``"0"``: 2 significant digits with the sign.

    Values smaller than ``resolution`` (the metric's resolution; by default float noise) are
    not effects and print as ``"0"``.

    Example:
        >>> signed(0.0213), signed(-0.3), signed(1e-15), signed(1.2e-8, resolution=1e-6)
        ('+0.021', '-0.3', '0', '0')
    """
    return "0" if abs(value) < resolution else f"{value:+.2g}"


def short(value: Any) -> str:
    """A parameter or metric value: ints as ints, floats to 2 significant digits.

    Example:
        >>> short(0.3123), short(5.0), short(True), short("relu")
        ('0.31', '5', 'true', 'relu')
    """
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | float | np.number):
        number = float(value)
        return str(int(number)) if number.is_integer() else f"{number:.2g}"
    return str(value)
