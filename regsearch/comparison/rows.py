"""The final-phase rows of a trials frame, read into the tables the comparison pairs on.

The final phase re-evaluates every candidate on the same fresh seeds, in one of two layouts
(the ``fold`` column says which; frames written before it existed load as ``fold = -1``):

- holdout: one row per ``(seed, fold=-1)`` with train, validation, test and gap metrics;
- cross-validation: one row per ``(seed, fold=0..K-1)`` whose train/validation/gap metrics
  decide (their test columns are ignored), plus one refit row per ``(seed, fold=-1)`` trained
  on the whole train+validation pool that alone carries the test metrics.

So the *decision table* holds the rows with a finite decision metric, indexed by
``(seed, fold)``, and the *test table* the ``fold == -1`` rows with a finite test metric,
indexed by seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "METRIC_COLUMNS",
    "NOT_PARAMS",
    "confirmation_table",
    "decision_table",
    "final_rows",
    "n_failed",
    "param_columns",
    "param_values",
]

SPLITS = ("train", "val", "test", "gap")
BASES = ("loss", "acc")
METRIC_COLUMNS = tuple(f"{s}_{b}" for b in BASES for s in SPLITS)
NO_FOLD = -1
# Columns of trials.csv that are not searched parameters (see results.trials_frame).
NOT_PARAMS = frozenset(
    {
        "trial",
        "seed",
        "fold",
        "state",
        "family",
        "phase",
        "duration_s",
        "best_epoch",
        "stopped_epoch",
        "weight_norm",
        "sparsity",
        *METRIC_COLUMNS,
    }
)


def final_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """The ``phase == "final"`` rows, with an int ``fold`` column (-1 where absent or empty)."""
    if trials.empty or "phase" not in trials.columns:
        return trials.iloc[0:0]
    final = trials.loc[trials["phase"] == "final"].copy()
    fold = final["fold"] if "fold" in final.columns else pd.Series(NO_FOLD, index=final.index)
    final["fold"] = pd.to_numeric(fold, errors="coerce").fillna(NO_FOLD).astype(int)
    return final


def decision_table(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Complete rows with a finite ``metric``, one per ``(seed, fold)``, indexed by that pair."""
    done = _complete(rows)
    done = done.loc[np.isfinite(pd.to_numeric(done[metric], errors="coerce"))]
    return done.drop_duplicates(["seed", "fold"]).set_index(["seed", "fold"]).sort_index()


def confirmation_table(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Complete ``fold == -1`` rows with a finite test ``metric``, one per seed, by seed."""
    if metric not in rows.columns:
        return rows.iloc[0:0].set_index("seed")
    done = _complete(rows)
    done = done.loc[(done["fold"] == NO_FOLD) & np.isfinite(pd.to_numeric(done[metric]))]
    return done.drop_duplicates("seed").set_index("seed").sort_index()


def n_failed(rows: pd.DataFrame) -> int:
    """Members left out of every number: not complete, or without any final metric."""
    present = [c for c in METRIC_COLUMNS if c in rows.columns and not c.startswith("gap_")]
    state = rows["state"].astype(str) if "state" in rows.columns else None
    has_metric = rows[present].notna().any(axis=1) if present else rows.index.to_series() < 0
    ok = has_metric if state is None else has_metric & (state == "complete")
    return int((~ok).sum())


def param_columns(rows: pd.DataFrame) -> list[str]:
    """Every column that is neither bookkeeping nor a metric: the searched parameters."""
    return [str(c) for c in rows.columns if c not in NOT_PARAMS]


def param_values(rows: pd.DataFrame, params: list[str]) -> dict[str, Any]:
    """The candidate's parameter values (from its first row; they are equal on every row)."""
    if rows.empty:
        return {}
    first = rows.iloc[0]
    return {p: _plain(first[p]) for p in params if p in rows.columns and pd.notna(first[p])}


def _complete(rows: pd.DataFrame) -> pd.DataFrame:
    if "state" in rows.columns:
        return rows.loc[rows["state"].astype(str) == "complete"]
    return rows


def _plain(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # CSV round trips turn flags into text
    return value
