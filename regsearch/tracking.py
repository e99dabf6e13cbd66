"""MLflow tracking: one parent run per sweep, one nested child run per trial.

A trial's whole record (params, per-epoch curves, final metrics, tags) is written with one
``log_batch`` per 1,000 metrics: per-value logging on sqlite is ~30× slower (see
benchmarks/README.md). Writes are synchronous here; a sweep calls them from its recorder
process (:mod:`regsearch.recorder`), so they never sit on the training path.

A parent run carries the host and pid of the sweep process that owns it (``regsearch.host``,
``regsearch.pid``). A sweep killed together with its recorder leaves its runs RUNNING; the next
sweep of the same study closes them KILLED when it starts (:meth:`MlflowTracker.close_abandoned`).
The Optuna side needs no such cleanup: the sweep creates a durable trial only once it has
finished (the sampler works on an in-memory study), so no RUNNING Optuna trial is ever stored.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regsearch.records import REFIT, RunSummary, TrialOutcome

if TYPE_CHECKING:
    from mlflow.entities import Metric

__all__ = [
    "MlflowTracker",
    "NullTracker",
    "Tracker",
    "curve_means",
    "import_client",
    "is_abandoned",
    "owner_tags",
]

STATUS = {"complete": "FINISHED", "pruned": "FINISHED", "failed": "FAILED"}
#: The experiment tag MLflow 3's UI reads to choose its view, and the value of the classic
#: model-training view (runs table, nested child runs, metric charts).
EXPERIMENT_KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# MLflow's log_batch limits (MAX_METRICS also bounds metrics + params + tags in one call).
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
MAX_TAG_CHARS = 5000  # MLflow's tag value limit (8,000 in recent stores; 5,000 in older ones)
STUDY_TAG, HOST_TAG, PID_TAG = "regsearch.study", "regsearch.host", "regsearch.pid"


def import_client(uri: str) -> None:
    """Import everything :class:`MlflowTracker` needs for the store at ``uri``; open nothing.

    ~1.8 s for MLflow's client, ~0.9 s more for a database store's code and ~0.4 s for
    regsearch.urls (SQLAlchemy, the config package): a recorder does it while its sweep starts.
    A missing package is left for :class:`MlflowTracker` to report.
    """
    with suppress(ImportError):
        import mlflow.tracking

        import regsearch.urls  # noqa: F401

        if not uri.startswith(("http://", "https://", "databricks")):
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


def owner_tags() -> dict[str, str]:
    """Tags naming the process that owns a parent run (call it in the sweep's process)."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def is_abandoned(
    run_tags: dict[str, str],
    owner: dict[str, str],
    alive: Callable[[int], bool] = pid_alive,
) -> bool:
    """Whether a RUNNING parent run of the study has no live sweep behind it.

    Only runs started on this host can be judged: their owner's pid is dead, or is the very
    process now starting a sweep (an earlier sweep in it never closed its run). Runs without
    owner tags (older versions) and runs of other hosts are left alone.

    Example:
        >>> is_abandoned({"regsearch.host": "h", "regsearch.pid": "7"},
        ...              {"regsearch.host": "h", "regsearch.pid": "8"}, alive=lambda pid: False)
        True
    """
    pid = run_tags.get(PID_TAG, "")
    if run_tags.get(HOST_TAG) != owner.get(HOST_TAG) or not pid.isdigit():
        return False
    return pid == owner.get(PID_TAG) or not alive(int(pid))


#: The tags that identify a child run to the report (:func:`regsearch.report.runs.wanted_runs`).
LINK_TAGS = ("optuna.trial_number", "regsearch.family", "regsearch.phase")


class NullTracker:
    """``tracking=none``: records nothing."""

    parent_run_id: str | None = None
    experiment_id: str = ""
    uri: str | None = None

    def __init__(self) -> None:
        self.logged: list[dict[str, Any]] = []  # child runs logged since take_logged()

    def take_logged(self) -> list[dict[str, Any]]:
        """The child runs logged since the last call (id, name, status, :data:`LINK_TAGS`),
        so the report can link them without searching the store (importing MLflow: ~1.5 s)."""
        logged, self.logged = self.logged, []
        return logged

    def start(
        self, run_name: str, params: dict[str, Any], tags: dict[str, str], config_yaml: str
    ) -> None:
        """Open the sweep's parent run."""

    def log_trial(self, outcome: TrialOutcome) -> None:
        """Record one told trial."""

    def finish(self, summary: RunSummary) -> None:
        """Close the parent run with the sweep's status and best values."""


#: The interface the recorder writes through; NullTracker's methods define it, MlflowTracker
#: fills them in.
Tracker = NullTracker


class MlflowTracker(NullTracker):
    """Writes a sweep to an MLflow tracking store (sqlite by default).

    Example:
        >>> tracker = MlflowTracker("sqlite:///m.db", "art", "moons")  # doctest: +SKIP
        >>> tracker.start("dropout-moons", {"seed": 0}, {}, "task: ...")  # doctest: +SKIP
    """

    def __init__(self, uri: str, artifact_root: str, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        # Here, not at the top: a recorder without MLflow imports this module for NullTracker
        # alone, and regsearch.urls brings SQLAlchemy and the config package with it.
        from regsearch.urls import sqlite_path

        # First use of a store prints table-creation chatter, and a server's client two "View
        # run / View experiment" lines per run (one per trial); the sweep's own output says enough.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

        super().__init__()
        self.uri = uri
        if (path := sqlite_path(uri)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=uri)
        self.experiment_id = self._experiment(experiment, _artifact_location(uri, artifact_root))

    def _experiment(self, name: str, location: str | None) -> str:
        """The experiment's id, created (or marked) as a model-training experiment.

        MLflow 3's UI opens experiments by their ``mlflow.experimentKind`` tag; without it they
        open in the GenAI view (traces) instead of the runs table with nested child runs.
        """
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return self.client.create_experiment(
                    name, artifact_location=location, tags={EXPERIMENT_KIND: MODEL_TRAINING}
                )
            except MlflowException:  # another worker created it first
                found = self.client.get_experiment_by_name(name)
                assert found is not None
        if EXPERIMENT_KIND not in found.tags:
            self.client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND, MODEL_TRAINING)
        return str(found.experiment_id)

    def start(
        self, run_name: str, params: dict[str, Any], tags: dict[str, str], config_yaml: str
    ) -> None:
        from mlflow.entities import Param

        if STUDY_TAG in tags:
            self.close_abandoned(tags[STUDY_TAG], tags)
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        self.parent_run_id = run.info.run_id
        items = [Param(k, _param_text(v)) for k, v in params.items()]
        for chunk in _chunks(items, MAX_PARAMS):
            self.client.log_batch(self.parent_run_id, params=chunk)
        self.client.log_text(self.parent_run_id, config_yaml, "config.yaml")

    def close_abandoned(self, study: str, owner: dict[str, str]) -> list[str]:
        """Set KILLED the RUNNING parent runs of ``study`` whose sweep is gone, and their
        RUNNING child runs (children first: a parent is never closed before its children).

        ``owner`` holds the host and pid tags of the sweep now starting. Returns the ids closed.
        """
        running = self.client.search_runs(
            [self.experiment_id], "attributes.status = 'RUNNING'", max_results=10_000
        )
        parents = {
            r.info.run_id
            for r in running
            if r.data.tags.get(STUDY_TAG) == study and is_abandoned(r.data.tags, owner)
        }
        children = [
            r.info.run_id for r in running if r.data.tags.get("mlflow.parentRunId") in parents
        ]
        for run_id in [*children, *sorted(parents)]:
            self.client.set_terminated(run_id, "KILLED")
        return [*children, *sorted(parents)]

    def log_trial(self, outcome: TrialOutcome) -> None:
        from mlflow.entities import Param

        assert self.parent_run_id is not None
        tags = {
            "mlflow.parentRunId": self.parent_run_id,
            "optuna.trial_number": str(outcome.number),
            "regsearch.state": outcome.state,
            "regsearch.family": outcome.family,
            "regsearch.phase": outcome.phase,
            "regsearch.seeds": ",".join(str(r.member.seed) for r in outcome.results),
            "regsearch.folds": ",".join(_fold_text(r.member.fold) for r in outcome.results),
        }
        if outcome.error:
            tags["regsearch.error"] = outcome.error[:5000]
        name = f"{outcome.family}-{outcome.phase}-{outcome.number}"
        run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        params = [Param(k, _param_text(v)) for k, v in outcome.params.items()]
        metrics = _trial_metrics(outcome)
        if len(params) <= MAX_PARAMS and len(params) + len(metrics) <= MAX_METRICS:
            # The usual case: one transaction for the whole record (~4 ms less per trial).
            self.client.log_batch(run_id, metrics=metrics, params=params)
        else:
            for chunk in _chunks(params, MAX_PARAMS):
                self.client.log_batch(run_id, params=chunk)
            for chunk in _chunks(metrics, MAX_METRICS):
                self.client.log_batch(run_id, metrics=chunk)
        self.client.set_terminated(run_id, STATUS[outcome.state])
        link = {key: tags[key] for key in LINK_TAGS}
        self.logged.append(
            {"run_id": run_id, "run_name": name, "status": STATUS[outcome.state], "tags": link}
        )

    def finish(self, summary: RunSummary) -> None:
        """Close the parent run (FINISHED, FAILED or KILLED) with the sweep's best values."""
        from mlflow.entities import Metric, Param, RunTag

        if self.parent_run_id is None:
            return
        now = int(time.time() * 1000)
        tags = [RunTag(k, v[:MAX_TAG_CHARS]) for k, v in summary.tags.items()]
        for chunk in _chunks(tags, MAX_TAGS):
            self.client.log_batch(self.parent_run_id, tags=chunk)
        clean = [
            Metric(k, float(v), now, 0)
            for k, v in summary.metrics.items()
            if v is not None and math.isfinite(v)
        ]
        items = [Param(f"best.{k}", _param_text(v)) for k, v in summary.params.items()]
        for chunk in _chunks(items, MAX_PARAMS):
            self.client.log_batch(self.parent_run_id, params=chunk)
        if clean:
            self.client.log_batch(self.parent_run_id, metrics=clean)
        for path in summary.artifacts:
            if path.exists():
                self.client.log_artifact(self.parent_run_id, str(path))
        self.client.set_terminated(self.parent_run_id, summary.status)


def _artifact_location(uri: str, artifact_root: str) -> str | None:
    """Where a new experiment keeps its artifacts: ``artifact_root`` as a URI, except a local
    folder when the store is a server, which then decides (its ``--artifacts-destination``,
    proxied): the client's own path would scatter artifacts over the workers' disks."""
    from regsearch.urls import is_http

    if "://" in artifact_root or ":/" in artifact_root:
        return artifact_root
    if is_http(uri) or not artifact_root:
        return None
    return Path(artifact_root).resolve().as_uri()


def curve_means(outcome: TrialOutcome) -> dict[str, dict[int, float]]:
    """Per-epoch mean over the trial's members of each curve: {metric: {epoch: mean}}."""
    sums: dict[str, dict[int, list[float]]] = {}
    for result in outcome.results:
        for key, values in result.curves.items():
            for epoch, value in zip(result.epochs, values, strict=True):
                sums.setdefault(key, {}).setdefault(epoch, []).append(value)
    return {k: {e: sum(v) / len(v) for e, v in per.items()} for k, per in sums.items()}


def _trial_metrics(outcome: TrialOutcome) -> list[Metric]:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [
        Metric(key, value, now, epoch)
        for key, per_epoch in curve_means(outcome).items()
        for epoch, value in sorted(per_epoch.items())
        if math.isfinite(value)
    ]
    done = [r for r in outcome.results if r.final]
    # With folds, test numbers come from the refits on the whole pool (fold -1), not the folds.
    refit = any(r.member.fold == REFIT for r in done)
    if done:
        finals: dict[str, list[float]] = {}
        for r in done:
            extra = {
                "best_epoch": r.best_epoch,
                "weight_norm": r.weight_norm,
                "sparsity": r.sparsity,
                **r.by_layer,
            }
            for key, value in {**r.final, **extra}.items():
                if refit and key.startswith("test_") and r.member.fold != REFIT:
                    continue
                finals.setdefault(key, []).append(float(value))
        for key, values in finals.items():
            # Final train/val/gap differ from the curves' last point when early stopping
            # restored earlier weights, so they get their own names.
            name = f"final_{key}" if key.startswith(("train_", "val_", "gap_")) else key
            mean = sum(values) / len(values)
            if math.isfinite(mean):
                metrics.append(Metric(name, mean, now, 0))
    durations = sum(r.duration_s for r in outcome.results)
    metrics.append(Metric("duration_s", durations, now, 0))
    return metrics


def _fold_text(fold: int | None) -> str:
    return "holdout" if fold is None else "refit" if fold == REFIT else str(fold)


def _param_text(value: Any) -> str:
    return str(value)[:6000]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
