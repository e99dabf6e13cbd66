"""How strongly a trial regularizes, to pick the most weakly regularized one.

Example:
    >>> rows = pd.DataFrame({"trial": [0, 1], "state": "complete", "dropout": [0.5, 0.1]})
    >>> weakest_trial(rows, ["dropout"])
    ('', 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from regsearch.report.members import complete_rows

__all__ = ["STRENGTH_SIGN", "weakest_trial"]

#: How each regularization parameter's value maps to strength (+1: larger is stronger).
STRENGTH_SIGN = {"l1": 1, "l2": 1, "weight_decay": 1, "dropout": 1, "patience": -1}


def _strength_sign(param: str) -> int:
    """+1 when a larger value regularizes more, -1 when less, 0 when it is not a strength."""
    if param.startswith("dropout"):
        return 1
    if param.endswith("_on") or param == "batch_norm":
        return 1
    return STRENGTH_SIGN.get(param, 0)


def weakest_trial(trials: pd.DataFrame, params: Sequence[str]) -> tuple[str, int] | None:
    """``(family, trial)`` of the complete tune trial with the weakest regularization.

    Each known regularization parameter (l1, l2, weight_decay, dropout*, patience, *_on flags,
    batch_norm) ranks the trials from weakest to strongest; a missing value (the regularizer
    is off) counts as weakest. The trial with the lowest mean rank wins; ties go to the lowest
    trial number. None when no trial completed or no parameter is a known strength.

    Example:
        >>> rows = pd.DataFrame({"trial": [0, 1], "state": "complete", "l2": [0.1, 0.001]})
        >>> weakest_trial(rows, ["l2"])
        ('', 1)
    """
    rows = complete_rows(trials)
    known = [p for p in params if p in rows.columns and _strength_sign(p)]
    if rows.empty or not known or "trial" not in rows.columns:
        return None
    family = rows["family"].astype(str) if "family" in rows.columns else pd.Series("", rows.index)
    first = rows.assign(family=family).drop_duplicates(["family", "trial"])
    ranks = pd.DataFrame(index=first.index)
    for param in known:
        # Off (NaN) is weakest, below every finite strength.
        values = first[param].map(_strength_value).astype(float) * _strength_sign(param)
        ranks[param] = values.fillna(-np.inf).rank(method="min")
    score = ranks.mean(axis=1)
    order = first.assign(_score=score).sort_values(["_score", "trial"], kind="stable")
    pick = order.iloc[0]
    return str(pick["family"]), int(pick["trial"])


def _strength_value(value: object) -> float:
    if isinstance(value, str):
        return {"true": 1.0, "false": 0.0}.get(value.lower(), math.nan)
    if isinstance(value, bool | np.bool_):
        return float(value)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
