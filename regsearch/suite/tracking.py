"""The suite's MLflow parent run: one per suite folder, the data sets' sweeps nested under it.

Each data set's sweep logs as usual (its own parent run with one child run per trial) into the
suite's experiment; once it has finished, its parent run gets the tags ``mlflow.parentRunId``
(the suite run: MLflow's UI then nests it) and ``regsearch.suite``. The suite run's id is kept in
the suite folder, so a resumed suite reopens the same run. Plain ``MlflowClient`` calls, from
this process: a suite writes a handful of records, not one per trial.

Example:
    >>> run = SuiteRun.open(cfg.tracking, "suite-keel12", "keel12", None, {})  # doctest: +SKIP
    >>> run.attach(sweep_parent_run_id, "sonar")  # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regsearch.config import TrackingConfig
from regsearch.tracking import EXPERIMENT_KIND, MODEL_TRAINING
from regsearch.urls import sqlite_path

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["SUITE_TAG", "SuiteRun"]

#: Tag on the suite run and on every data set's sweep run: the suite's name.
SUITE_TAG = "regsearch.suite"
_MAX_BATCH = 100  # MLflow's log_batch takes at most 100 params (1,000 metrics) per call


class SuiteRun:
    """An open suite run (``tracking=mlflow``); :meth:`open` returns None for ``tracking=none``."""

    def __init__(
        self, client: MlflowClient, uri: str, experiment_id: str, run_id: str, suite: str
    ) -> None:
        self.client = client
        self.uri = uri
        self.experiment_id = experiment_id
        self.run_id = run_id
        self.suite = suite

    @classmethod
    def open(
        cls,
        tracking: TrackingConfig,
        experiment: str,
        suite: str,
        run_id: str | None,
        params: dict[str, Any],
    ) -> SuiteRun | None:
        """Reopen run ``run_id`` (a resumed suite) or create ``suite-<suite>`` in ``experiment``."""
        if tracking.backend != "mlflow":
            return None
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        if (path := sqlite_path(tracking.uri)) is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        client = MlflowClient(tracking_uri=tracking.uri)
        location = Path(tracking.artifact_root or "mlartifacts").resolve().as_uri()
        exp_id = _experiment(client, experiment, location)
        if run_id is not None:
            try:
                client.update_run(run_id, status="RUNNING")
                return cls(client, tracking.uri, exp_id, run_id, suite)
            except MlflowException:
                pass  # the store was replaced: start a new run
        run = client.create_run(exp_id, run_name=f"suite-{suite}", tags={SUITE_TAG: suite})
        new = cls(client, tracking.uri, exp_id, run.info.run_id, suite)
        new.log_params(params)
        return new

    def log_params(self, params: dict[str, Any]) -> None:
        """Log ``params`` (values as text, cut to MLflow's length limit)."""
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), _MAX_BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + _MAX_BATCH])

    def attach(self, sweep_run_id: str, dataset: str) -> None:
        """Nest a data set's sweep run under the suite run and tag it with the suite."""
        self.client.set_tag(sweep_run_id, "mlflow.parentRunId", self.run_id)
        self.client.set_tag(sweep_run_id, SUITE_TAG, self.suite)
        self.client.set_tag(sweep_run_id, "regsearch.dataset", dataset)

    def close(self, status: str, metrics: dict[str, float | None], artifacts: list[Path]) -> None:
        """Log the suite's numbers and files, then end the run FINISHED, FAILED or KILLED."""
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        clean = [
            Metric(k, float(v), now, 0)
            for k, v in metrics.items()
            if v is not None and math.isfinite(v)
        ]
        for start in range(0, len(clean), 1000):
            self.client.log_batch(self.run_id, metrics=clean[start : start + 1000])
        for path in artifacts:
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status)


def _experiment(client: MlflowClient, name: str, location: str) -> str:
    """The experiment's id, created as a model-training experiment (MLflow 3's runs view)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return str(
                client.create_experiment(
                    name, artifact_location=location, tags={EXPERIMENT_KIND: MODEL_TRAINING}
                )
            )
        except MlflowException:  # created by another process a moment ago
            found = client.get_experiment_by_name(name)
            assert found is not None
    return str(found.experiment_id)
