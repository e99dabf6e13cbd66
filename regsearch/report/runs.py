"""MLflow run ids for the report: the sweep's parent run and the runs of its best trials.

The lookup is best effort: a report must never fail because the tracking store moved, is
served by a host that is down, or has not received a trial yet. Every problem becomes a note.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regsearch.urls import DEFAULT_UI_PORT, browse_command, sqlite_path

__all__ = [
    "MlflowView",
    "RunView",
    "linked_runs_only",
    "missing_sqlite",
    "mlflow_view",
    "wanted_runs",
]

# Keep an unreachable tracking server from stalling the report with retries.
_HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


@dataclass(frozen=True)
class RunView:
    """One child run found (or not) in the tracking store."""

    label: str  # what the run is, e.g. "dropout (final)"
    run_id: str  # empty when not found
    run_name: str = ""
    status: str = ""


@dataclass(frozen=True)
class MlflowView:
    """The MLflow section: where the store is, the parent run and the looked-up children."""

    uri: str
    experiment_id: str
    parent_run_id: str
    command: str
    runs: list[RunView] = field(default_factory=list)
    note: str = ""


def wanted_runs(
    summary: dict[str, Any], candidates: Sequence[str]
) -> list[tuple[str, dict[str, str]]]:
    """(label, tags) of the child runs to look up: each final candidate, then the best trial.

    Example:
        >>> wanted_runs({"best": {"trial": 3, "family": "l2"}}, ["baseline"])
        [('baseline (final)', {'regsearch.family': 'baseline', 'regsearch.phase': 'final'}), \
('best trial 3 (l2)', {'optuna.trial_number': '3', 'regsearch.family': 'l2', \
'regsearch.phase': 'tune'})]
    """
    wanted = [
        (f"{name} (final)", {"regsearch.family": name, "regsearch.phase": "final"})
        for name in candidates
    ]
    best = summary.get("best")
    if isinstance(best, dict) and best.get("trial") is not None:
        family = str(best.get("family") or "")
        tags = {"optuna.trial_number": str(best["trial"]), "regsearch.family": family}
        tags["regsearch.phase"] = "tune"
        wanted.append((f"best trial {best['trial']} ({family})", tags))
    return wanted


def linked_runs_only(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary with ``mlflow.runs`` (every child run the recorder logged) cut to those a
    report links: the final phase's and the best trial's (a sweep may log thousands).

    Example:
        >>> runs = [{"run_id": str(n), "tags": {"optuna.trial_number": str(n),
        ...          "regsearch.family": "l2", "regsearch.phase": "tune"}} for n in range(3)]
        >>> s = linked_runs_only({"best": {"trial": 1, "family": "l2"}, "mlflow": {"runs": runs}})
        >>> [r["run_id"] for r in s["mlflow"]["runs"]]
        ['1']
    """
    info = summary.get("mlflow")
    if not isinstance(info, dict) or "runs" not in info:
        return summary
    finals = {r["tags"]["regsearch.family"] for r in info["runs"] if _is_final(r)}
    wanted = [tags for _, tags in wanted_runs(summary, sorted(finals))]
    kept = [r for r in info["runs"] if any(_matches(r, tags) for tags in wanted)]
    return {**summary, "mlflow": {**info, "runs": kept}}


def _is_final(run: dict[str, Any]) -> bool:
    return run["tags"].get("regsearch.phase") == "final"


def _matches(run: dict[str, Any], tags: dict[str, str]) -> bool:
    return all(run["tags"].get(key) == value for key, value in tags.items())


def _known(runs: list[dict[str, Any]], label: str, tags: dict[str, str]) -> RunView | None:
    """The newest recorded run with ``tags`` (as the store's search would order them)."""
    found = [r for r in runs if _matches(r, tags)]
    if not found:
        return None
    run = found[-1]
    return RunView(label, run["run_id"], run.get("run_name", ""), run.get("status", ""))


def mlflow_view(summary: dict[str, Any], candidates: Sequence[str] = ()) -> MlflowView | None:
    """The MLflow section of a sweep that was tracked; None when tracking was off.

    Takes each wanted run from ``mlflow.runs`` (what the recorder logged) or, when one is not
    there (a resumed sweep's earlier runs), looks them up with ``MlflowClient.search_runs``
    filtered on the parent run id and the trial's tags. A sqlite store that does not exist
    from the current directory is not opened (that would create an empty one); any error
    leaves the ids empty with a note.
    """
    info = summary.get("mlflow")
    if not isinstance(info, dict) or not info.get("uri"):
        return None
    uri, parent = str(info["uri"]), str(info.get("parent_run_id") or "")
    experiment = str(info.get("experiment_id") or "")
    wanted = wanted_runs(summary, candidates)
    view = MlflowView(
        uri=uri,
        experiment_id=experiment,
        parent_run_id=parent,
        command=browse_command(uri, experiment, int(info.get("ui_port") or DEFAULT_UI_PORT)),
    )
    known = [_known(info.get("runs") or [], label, tags) for label, tags in wanted]
    if wanted and all(known):  # no need to open the store (nor to find it from here)
        return _with(view, [run for run in known if run is not None], "")
    missing = missing_sqlite(uri)
    if missing:
        note = f"{missing} not found from {Path.cwd()}; run ids of the trials not looked up."
        return _with(view, [RunView(label, "") for label, _ in wanted], note)
    if not parent or not experiment or not wanted:
        return view
    try:
        runs = _search(uri, experiment, parent, wanted)
    except Exception as exc:  # any store problem: the report still gets written
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        note = f"MLflow store not readable ({first[:200]}); run ids not looked up."
        return _with(view, [RunView(label, "") for label, _ in wanted], note)
    note = "" if all(r.run_id for r in runs) else "Runs without an id were not (yet) recorded."
    return _with(view, runs, note)


def _with(view: MlflowView, runs: list[RunView], note: str) -> MlflowView:
    return MlflowView(view.uri, view.experiment_id, view.parent_run_id, view.command, runs, note)


def missing_sqlite(uri: str) -> str:
    """The sqlite file a URI names when that file does not exist, else ``""``."""
    path = sqlite_path(uri)
    return str(path) if path is not None and not path.exists() else ""


def _search(
    uri: str, experiment: str, parent: str, wanted: list[tuple[str, dict[str, str]]]
) -> list[RunView]:
    with _quiet_http():
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        found = []
        for label, tags in wanted:
            if any("'" in v for v in tags.values()):
                found.append(RunView(label, ""))  # no quoting in MLflow's filter language
                continue
            clauses = [f"tags.mlflow.parentRunId = '{parent}'"]
            clauses += [f"tags.`{k}` = '{v}'" for k, v in tags.items()]
            runs = client.search_runs(
                [experiment],
                " AND ".join(clauses),
                max_results=1,
                order_by=["attributes.start_time DESC"],
            )
            if runs:
                info = runs[0].info
                found.append(RunView(label, info.run_id, info.run_name or "", info.status))
            else:
                found.append(RunView(label, ""))
    return found


@contextmanager
def _quiet_http() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in _HTTP_ENV}
    os.environ.update({k: v for k, v in _HTTP_ENV.items() if saved[k] is None})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
