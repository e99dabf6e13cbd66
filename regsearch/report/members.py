"""Which rows and columns of the trial table the figures read.

Example:
    >>> trials = pd.DataFrame({"state": ["complete", "failed"], "phase": "tune"})
    >>> len(complete_rows(trials)), gap_column("regression"), val_column("regression")
    (1, 'gap_loss', 'val_loss')
"""

from __future__ import annotations

import pandas as pd

__all__ = ["complete_rows", "gap_column", "val_column"]


def gap_column(kind: str) -> str:
    """Name of the train/validation gap column for a task kind.

    Args:
        kind: ``"classification"`` or ``"regression"``.

    Returns:
        ``"gap_acc"`` for classification, else ``"gap_loss"``.

    Example:
        >>> gap_column("classification")
        'gap_acc'
    """
    return "gap_acc" if kind == "classification" else "gap_loss"


def val_column(kind: str) -> str:
    """Name of the validation metric used to colour points for a task kind.

    Example:
        >>> val_column("regression")
        'val_loss'
    """
    return "val_acc" if kind == "classification" else "val_loss"


def complete_rows(trials: pd.DataFrame, phase: str = "tune") -> pd.DataFrame:
    """Complete members of one phase; frames without a ``phase`` column count as all tune.

    Example:
        >>> complete_rows(pd.DataFrame({"state": ["complete", "failed"]})).shape[0]
        1
    """
    if trials.empty or "state" not in trials.columns:
        return trials.iloc[0:0]
    keep = trials["state"] == "complete"
    if "phase" in trials.columns:
        keep &= trials["phase"].fillna("tune") == phase
    elif phase != "tune":
        return trials.iloc[0:0]
    return trials.loc[keep]
