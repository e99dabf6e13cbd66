"""Optuna studies → one tidy pandas DataFrame, one row per member (trial × seed).

The per-member numbers live on each Optuna trial (user attribute ``members``), so the table
can be rebuilt from the study storage alone, including trials of earlier, resumed runs.

Example:
    >>> frame = trials_frame([(study, "tune")], params=["dropout"])  # doctest: +SKIP
    >>> frame.groupby("trial")["val_loss"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

__all__ = ["METRIC_COLUMNS", "best_trial", "trials_frame"]

STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
#: Final-metric columns of trials.csv, in order (accuracy columns only for classification).
METRIC_COLUMNS = [
    "train_loss",
    "val_loss",
    "test_loss",
    "gap_loss",
    "train_acc",
    "val_acc",
    "test_acc",
    "gap_acc",
    "best_epoch",
    "stopped_epoch",
    "weight_norm",
    "sparsity",
]


def trials_frame(
    studies: Iterable[tuple[optuna.Study, str]], params: Sequence[str], classification: bool = True
) -> pd.DataFrame:
    """One row per member of every finished trial of ``studies`` ((study, phase) pairs).

    Columns: ``trial, seed, state, family, phase``, one per searched parameter (NaN where a
    parameter did not exist in that trial, e.g. a magnitude whose flag was off), the final
    metrics of :data:`METRIC_COLUMNS` and ``duration_s``. Interrupted trials are left out.
    """
    rows: list[dict[str, Any]] = []
    for study, phase in studies:
        for trial in study.get_trials(deepcopy=False, states=tuple(STATES)):
            if trial.user_attrs.get("interrupted"):
                continue
            for record in trial.user_attrs.get("members", []):
                row = {
                    "trial": trial.number,
                    "seed": record.get("seed"),
                    "state": record.get("state", STATES[trial.state]),
                    "family": trial.user_attrs.get("family", ""),
                    "phase": phase,
                }
                row.update({p: trial.params.get(p, np.nan) for p in params})
                row.update({m: record.get(m, np.nan) for m in METRIC_COLUMNS})
                row["duration_s"] = record.get("duration_s", np.nan)
                if record["state"] == "complete" and STATES[trial.state] == "pruned":
                    row["state"] = "pruned"  # repeats of a pruned trial stop with it
                rows.append(row)
    metrics = [m for m in METRIC_COLUMNS if classification or not m.endswith("_acc")]
    columns = ["trial", "seed", "state", "family", "phase", *params, *metrics, "duration_s"]
    frame = pd.DataFrame(rows, columns=columns)
    for col in (*metrics, "duration_s"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def best_trial(
    frame: pd.DataFrame, metric: str, direction: str, phase: str = "tune"
) -> pd.Series | None:
    """Mean final metrics of the best trial (by its mean ``metric`` over seeds), or None.

    Only trials whose members all completed take part: selection uses validation metrics, the
    test columns ride along for reporting.
    """
    rows = frame[frame["phase"] == phase]
    complete = rows.groupby(["family", "trial"])["state"].transform(
        lambda s: (s == "complete").all()
    )
    rows = rows[complete]
    if rows.empty:
        return None
    numeric = rows.select_dtypes("number").columns.difference(["trial", "seed"])
    means = rows.groupby(["family", "trial"])[list(numeric)].mean()
    scores = means[metric]
    position = int(
        scores.to_numpy().argmax() if direction == "maximize" else scores.to_numpy().argmin()
    )
    family, trial = means.index[position]
    out = means.iloc[position].astype(object)
    out["family"], out["trial"] = family, trial
    out["n_seeds"] = int(((rows["family"] == family) & (rows["trial"] == trial)).sum())
    return out
