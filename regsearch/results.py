"""Optuna studies → one tidy pandas DataFrame, one row per member (trial × seed).

The per-member numbers live on each Optuna trial (user attribute ``members``), so the table
can be rebuilt from the study storage alone, including trials of earlier, resumed runs.

Example:
    >>> frame = trials_frame([(study, "tune")], params=["dropout"])  # doctest: +SKIP
    >>> frame.groupby("trial")["val_loss"].mean()  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from regsearch.search.objective import best_index

__all__ = [
    "COMPARISON_COLUMNS",
    "METRIC_COLUMNS",
    "ORIGINAL_UNITS",
    "SweepData",
    "best_trial",
    "comparison_frame",
    "curves_frame",
    "load_sweep",
    "studies_phases",
    "summarize",
    "trials_frame",
]

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
#: Per layer type (cnn and custom nets with several), after the overall weight_norm/sparsity.
LAYER_COLUMNS = [
    f"{stat}_{kind}" for kind in ("conv", "linear", "other") for stat in ("weight_norm", "sparsity")
]
#: Regression on a z-scored target: the losses in the target's original units as well.
ORIGINAL_UNITS = ["train_loss_orig", "val_loss_orig", "test_loss_orig"]


def trials_frame(
    studies: Iterable[tuple[optuna.Study, str]], params: Sequence[str], classification: bool = True
) -> pd.DataFrame:
    """One row per member of every finished trial of ``studies`` ((study, phase) pairs).

    Columns: ``trial, seed, fold, state, family, phase``, one per searched parameter (NaN where
    a parameter did not exist in that trial, e.g. a magnitude whose flag was off), the final
    metrics of :data:`METRIC_COLUMNS` (and :data:`ORIGINAL_UNITS` where recorded) and
    ``duration_s``. ``fold`` is the cross-validation fold, -1 for the holdout split or a refit
    on the whole train+validation pool. Interrupted trials are left out.
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
                    "fold": record.get("fold", -1),
                    "state": record.get("state", STATES[trial.state]),
                    "family": trial.user_attrs.get("family", ""),
                    "phase": phase,
                }
                row.update({p: trial.params.get(p, np.nan) for p in params})
                optional = (*ORIGINAL_UNITS, *LAYER_COLUMNS)
                row.update({m: record.get(m, np.nan) for m in (*METRIC_COLUMNS, *optional)})
                row["duration_s"] = record.get("duration_s", np.nan)
                if record["state"] == "complete" and STATES[trial.state] == "pruned":
                    row["state"] = "pruned"  # repeats of a pruned trial stop with it
                rows.append(row)
    metrics = [m for m in METRIC_COLUMNS if classification or not m.endswith("_acc")]
    metrics += [
        m
        for m in (*ORIGINAL_UNITS, *LAYER_COLUMNS)
        if any(r[m] is not None and r[m] == r[m] for r in rows)
    ]
    columns = ["trial", "seed", "fold", "state", "family", "phase", *params, *metrics, "duration_s"]
    frame = pd.DataFrame(rows, columns=columns)
    for col in (*metrics, "duration_s"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def best_trial(
    frame: pd.DataFrame, metric: str, direction: str, phase: str = "tune"
) -> pd.Series | None:
    """Mean final metrics of the best trial of ``phase``, or None.

    A trial's score is its mean ``metric`` over its members, which is its objective value, and
    the best one is picked by the rule every best trial follows
    (:func:`~regsearch.search.objective.best_index`). Only trials whose members all completed
    take part, the COMPLETE trials of the studies: selection uses validation metrics, the test
    columns ride along for reporting.
    """
    rows = frame[frame["phase"] == phase]
    complete = rows.groupby(["family", "trial"])["state"].transform(
        lambda s: (s == "complete").all()
    )
    rows = rows[complete]
    if rows.empty:
        return None
    numeric = rows.select_dtypes("number").columns.difference(["trial", "seed", "fold"])
    means = rows.groupby(["family", "trial"])[list(numeric)].mean()
    position = best_index(means[metric].tolist(), direction)
    if position is None:
        return None
    family, trial = means.index[position]
    out = means.iloc[position].astype(object)
    out["family"], out["trial"] = family, trial
    mine = rows[(rows["family"] == family) & (rows["trial"] == trial)]
    out["n_seeds"] = int(mine["seed"].nunique())
    out["n_folds"] = int(mine.loc[mine["fold"] >= 0, "fold"].nunique())
    return out


def curves_frame(
    studies: Iterable[tuple[optuna.Study, str]], classification: bool = True
) -> pd.DataFrame:
    """Per-epoch curves in long form: one row per member and evaluated epoch.

    Columns: ``trial, seed, fold, family, phase, state, epoch, train_loss, val_loss, gap_loss`` (+
    ``train_acc, val_acc, gap_acc`` for classification).
    """
    keys = ["train_loss", "val_loss", "gap_loss"]
    if classification:
        keys += ["train_acc", "val_acc", "gap_acc"]
    rows: list[dict[str, Any]] = []
    for study, phase in studies:
        for trial in study.get_trials(deepcopy=False, states=tuple(STATES)):
            if trial.user_attrs.get("interrupted"):
                continue
            family = trial.user_attrs.get("family", "")
            for record in trial.user_attrs.get("members", []):
                curves = record.get("curves") or {}
                for i, epoch in enumerate(curves.get("epoch", [])):
                    row = {"trial": trial.number, "seed": record.get("seed")}
                    row.update(fold=record.get("fold", -1), family=family)
                    row.update(phase=phase, state=record.get("state"), epoch=epoch)
                    row.update({k: _at(curves.get(k), i) for k in keys})
                    rows.append(row)
    columns = ["trial", "seed", "fold", "family", "phase", "state", "epoch", *keys]
    return pd.DataFrame(rows, columns=columns)


def _at(values: list[Any] | None, i: int) -> float:
    if not values or i >= len(values) or values[i] is None:
        return float("nan")
    return float(values[i])


def summarize(static: dict[str, Any], trials: pd.DataFrame) -> dict[str, Any]:
    """The sweep summary: ``static`` facts plus the best trial and the trial counts.

    ``static`` holds what is fixed when the sweep starts (title, metric, direction, params, ...);
    the rest is derived from ``trials`` so a running sweep can be summarized too.
    """
    summary = dict(static)
    per_trial = trials[trials["phase"] == "tune"].drop_duplicates(["family", "trial"])
    best = best_trial(trials, static["metric"], static["direction"])
    summary.update(
        best=_best_dict(best, trials, list(static.get("params", []))),
        n_trials=len(per_trial),
        n_complete=int((per_trial["state"] == "complete").sum()),
        n_pruned=int((per_trial["state"] == "pruned").sum()),
        n_failed=int((per_trial["state"] == "failed").sum()),
    )
    return summary


def _best_dict(
    best: pd.Series | None, frame: pd.DataFrame, params: list[str]
) -> dict[str, Any] | None:
    if best is None:
        return None
    mask = (frame["family"] == best["family"]) & (frame["trial"] == best["trial"])
    rows = frame[mask & (frame["phase"] == "tune")]
    values = {p: _plain(rows[p].iloc[0]) for p in params if p in rows and pd.notna(rows[p].iloc[0])}
    skip = {"family", "trial", "n_seeds", "n_folds", "duration_s", *params}
    return {
        "trial": int(best["trial"]),
        "family": str(best["family"]),
        "n_seeds": int(best["n_seeds"]),
        "n_folds": int(best["n_folds"]),  # 0: the holdout split
        "params": values,
        "metrics": {m: float(best[m]) for m in best.index if m not in skip and pd.notna(best[m])},
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


@dataclass
class SweepData:
    """Everything known about one sweep, finished or still running."""

    run_dir: Path
    summary: dict[str, Any]
    trials: pd.DataFrame
    curves: pd.DataFrame
    studies: dict[str, optuna.Study] = field(default_factory=dict)  # family (or "final") → study

    @property
    def comparison(self) -> pd.DataFrame:
        """The comparison as a tidy table (:func:`comparison_frame`)."""
        return comparison_frame(self.summary)


#: The columns of :func:`comparison_frame`, in order.
COMPARISON_COLUMNS = [
    "sweep",
    "task",
    "candidate",
    "params",
    "recommended",
    "standing",
    "n_pairs",
    "metric",
    "mean",
    "effect",
    "ci_low",
    "ci_high",
    "p",
    "p_adjusted",
    "p_better",
    "p_equivalent",
    "p_worse",
    "diagnosis",
    "test",
    "tier",
    "rule",
    "adjustment",
    "method",
    "margin",
]


def comparison_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """The sweep's comparison (``summary["verdict"]``) as a tidy table, one row per candidate:
    its standing, mean, paired effect against the baseline with its 95% interval, raw and
    adjusted p, posterior probabilities, gap diagnosis and test confirmation; the verdict's
    tier, rule, adjustment, test and margin repeat on every row. Empty without a comparison.

    Example:
        >>> comparison_frame(load_sweep(run_dir).summary)[["candidate", "effect"]]  # doctest: +SKIP
    """
    verdict = summary.get("verdict") or {}
    rows = []
    for name, c in (verdict.get("candidates") or {}).items():
        effect = c.get("effect") or [None, None, None]
        rows.append(
            {
                "sweep": summary.get("sweep"),
                "task": summary.get("task"),
                "candidate": name,
                "params": _setting(c.get("params") or {}),
                "recommended": name == verdict.get("recommended"),
                **{k: c.get(k) for k in ("standing", "n_pairs")},
                "metric": verdict.get("metric"),
                "mean": c.get("mean"),
                "effect": effect[0],
                "ci_low": effect[1],
                "ci_high": effect[2],
                **{k: c.get(k) for k in ("p", "p_adjusted", "p_better", "p_equivalent")},
                **{k: c.get(k) for k in ("p_worse", "diagnosis", "test")},
                **{k: verdict.get(k) for k in ("tier", "rule", "adjustment", "method", "margin")},
            }
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _setting(params: dict[str, Any]) -> str:
    """``"l2=0.01568, lr=0.3"``: a candidate's parameters, 4 significant digits."""
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def studies_phases(studies: dict[str, optuna.Study]) -> list[tuple[optuna.Study, str]]:
    """(study, phase) pairs: the ``final`` study holds re-evaluations, the others tuning."""
    return [(s, "final" if key == "final" else "tune") for key, s in studies.items()]


def load_sweep(run_dir: Path) -> SweepData:
    """Load a sweep's run folder and its Optuna studies into tidy frames.

    Works while the sweep is still running: the tables then hold the trials told so far and
    ``summary["partial"]`` stays true.

    Example:
        >>> data = load_sweep(Path("sweeps/dropout-moons/20261122-205932"))  # doctest: +SKIP
        >>> data.trials.groupby("trial")["gap_acc"].mean().sort_values().head()  # doctest: +SKIP

    Raises:
        FileNotFoundError: The folder or its summary.json does not exist.
    """
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no summary.json (is this a regsearch run folder?)")
    static = json.loads(path.read_text())
    storage = static.get("storage_resolved") or static["storage"]
    from regsearch.search.storage import get_storage  # the drivers and retries of the sweep

    studies = {
        key: optuna.load_study(study_name=name, storage=get_storage(storage))
        for key, name in static.get("studies", {}).items()
    }
    classification = static.get("kind") == "classification"
    phases = studies_phases(studies)
    trials = trials_frame(phases, static.get("params", []), classification)
    curves = curves_frame(phases, classification)
    return SweepData(Path(run_dir), summarize(static, trials), trials, curves, studies)
