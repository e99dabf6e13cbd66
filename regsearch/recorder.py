"""The sweep's recorder: a child process that writes finished trials to both stores.

Each population batch hands its finished trials over in one message; the recorder writes them
to the durable Optuna storage (one ``create_new_trial`` per trial) and then, on a thread of its
own, logs them to MLflow (one child run each) with the numbers the durable study gave them.
Both are SQLAlchemy ORM work, ~7 ms (Optuna) + ~22 ms (MLflow, WAL) of pure-Python CPU per
trial on sqlite. In the sweep's process that time would hold the GIL the training loop needs
(the population engine is dispatch-bound at small sizes); in a separate process it runs on
another core while the next batch trains, and the MLflow store is opened (2–4 s for a new
sqlite file) while the first batch trains.

The recorder ignores SIGINT: on Ctrl-C the sweep flushes it, so every finished trial is
written and the parent run is closed KILLED.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import os
import queue
import signal
import sqlite3
import sys
import threading
import types
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial

from regsearch.search.study import TrialOutcome

__all__ = ["Recorder", "RecorderError", "TrackingTarget"]

log = logging.getLogger(__name__)
POLL_S = 0.5  # how often a waiting sweep checks that the recorder is still alive


class RecorderError(RuntimeError):
    """The recorder could not write to the Optuna storage, or died."""


@dataclass(frozen=True)
class TrackingTarget:
    """Where the recorder logs to MLflow (``None`` in its place: ``tracking=none``)."""

    uri: str
    artifact_root: str
    experiment: str


@dataclass
class RecorderState:
    """What the recorder reports back at each flush."""

    parent_run_id: str | None = None
    experiment_id: str = ""
    written: int = 0  # trials persisted to the Optuna storage


class Recorder:
    """Main-process handle of the recorder process.

    Example:
        >>> rec = Recorder("sqlite:///optuna.db", None)  # doctest: +SKIP
        >>> rec.record("my-study", [(frozen_trial, outcome)])  # doctest: +SKIP
        >>> rec.flush().written  # doctest: +SKIP
    """

    def __init__(self, storage_url: str, tracking: TrackingTarget | None) -> None:
        ctx = mp.get_context("spawn")  # fork after torch started its thread pools is unsafe
        self.tracking = tracking
        self._inbox: mp.Queue[tuple[Any, ...]] = ctx.Queue()
        self._outbox: mp.Queue[tuple[Any, ...]] = ctx.Queue()
        self._tokens = itertools.count()
        self._process = ctx.Process(
            target=_serve,
            args=(self._inbox, self._outbox, storage_url, tracking),
            name="regsearch-recorder",
            daemon=True,
        )
        with _main_module_hidden():
            self._process.start()
        self.state = RecorderState()

    @property
    def uri(self) -> str | None:
        return self.tracking.uri if self.tracking else None

    def start(
        self, run_name: str, params: dict[str, Any], tags: dict[str, str], config_yaml: str
    ) -> None:
        """Open the sweep's parent run (asynchronously)."""
        self._inbox.put(("start", run_name, params, tags, config_yaml))

    def record(self, study: str, pairs: list[tuple[FrozenTrial, TrialOutcome]]) -> None:
        """Persist each finished trial to the durable study ``study``, then log its outcome.

        The recorder sets each outcome's ``number`` to the one the durable study assigned.
        """
        if pairs:
            self._inbox.put(("trials", study, pairs))

    def flush(self) -> RecorderState:
        """Wait until everything sent so far is written.

        Raises:
            RecorderError: A trial could not be written to the Optuna storage, or the recorder
                died.
        """
        token = next(self._tokens)
        self._inbox.put(("flush", token))
        reply = self._wait("flushed", token)
        return self._update(reply)

    def finish(
        self,
        status: str,
        metrics: dict[str, float],
        params: dict[str, Any],
        artifacts: Iterable[Path] = (),
    ) -> RecorderState:
        """Close the parent run with the sweep's best values and stop the recorder."""
        token = next(self._tokens)
        self._inbox.put(("finish", token, status, metrics, params, [str(p) for p in artifacts]))
        try:
            reply = self._wait("finished", token)
        finally:
            self.close()
        return self._update(reply)

    def close(self) -> None:
        """Stop the recorder process (waits briefly, then terminates it)."""
        if self._process.is_alive():
            self._inbox.put(("stop",))
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout=5)

    def _update(self, reply: dict[str, Any]) -> RecorderState:
        for warning in reply["warnings"]:
            log.warning("%s", warning)
        self.state = RecorderState(reply["parent_run_id"], reply["experiment_id"], reply["written"])
        if reply["errors"]:
            raise RecorderError(reply["errors"][0])
        return self.state

    def _wait(self, kind: str, token: int) -> dict[str, Any]:
        while True:
            try:
                message = self._outbox.get(timeout=POLL_S)
            except queue.Empty:
                if not self._process.is_alive():
                    raise RecorderError(
                        f"the recorder process exited with code {self._process.exitcode} "
                        "before writing every trial"
                    ) from None
                continue
            if message[0] == kind and message[1] == token:
                reply: dict[str, Any] = message[2]
                return reply


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start a spawned child without re-running the caller's ``__main__``.

    spawn normally re-imports the parent's main script in the child, which fails (or reruns
    the sweep) for a plain script or notebook that calls :func:`run_sweep` without an
    ``if __name__ == "__main__":`` guard. The recorder needs nothing from ``__main__``.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _serve(
    inbox: mp.Queue[tuple[Any, ...]],
    outbox: mp.Queue[tuple[Any, ...]],
    storage_url: str,
    tracking: TrackingTarget | None,
) -> None:
    """The recorder's loop (runs in the child process).

    Optuna rows are written on this loop; MLflow runs on a thread of their own, so the durable
    study (what other workers and mid-run reports read) never waits behind MLflow's start-up
    (importing mlflow, creating a store: seconds) or its ~22 ms per run.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sweep decides when the recorder stops
    import optuna

    from regsearch.search.study import get_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _use_wal_for_sqlite()
    storage: optuna.storages.BaseStorage | None = None  # opened at first use: the sweep
    # creates it first, and two processes creating one sqlite schema at once would race.
    warnings: list[str] = []
    errors: list[str] = []
    mlflow = _MlflowWriter(tracking, warnings)
    study_ids: dict[str, int] = {}
    written = 0

    def reply(kind: str, token: int) -> None:
        mlflow.todo.join()  # everything queued so far is logged
        outbox.put(
            (
                kind,
                token,
                {
                    "parent_run_id": mlflow.tracker.parent_run_id,
                    "experiment_id": mlflow.tracker.experiment_id,
                    "written": written,
                    "warnings": list(warnings),
                    "errors": list(errors),
                },
            )
        )
        warnings.clear()

    while True:
        message = inbox.get()
        kind = message[0]
        if kind == "start":
            mlflow.todo.put(message)
        elif kind == "trials":
            _, study, pairs = message
            try:
                storage = storage or get_storage(storage_url)
                if study not in study_ids:
                    study_ids[study] = storage.get_study_id_from_name(study)
            except Exception as err:
                errors.append(f"Optuna storage {storage_url}: study {study!r}: {err}")
                continue
            for trial, outcome in pairs:
                try:
                    trial_id = storage.create_new_trial(study_ids[study], template_trial=trial)
                    outcome.number = storage.get_trial_number_from_id(trial_id)
                    written += 1
                except Exception as err:
                    errors.append(f"Optuna storage {storage_url}: trial not written: {err}")
                    continue
                mlflow.todo.put(("trial", outcome))
        elif kind == "flush":
            reply("flushed", message[1])
        elif kind == "finish":
            mlflow.todo.put(("finish", *message[2:]))
            reply("finished", message[1])
            _exit(outbox)
        elif kind == "stop":
            _exit(outbox)


class _MlflowWriter:
    """The recorder's MLflow thread: opens the store, then logs what is queued, in order."""

    def __init__(self, tracking: TrackingTarget | None, warnings: list[str]) -> None:
        from regsearch.tracking import NullTracker, Tracker

        self.tracker: Tracker = NullTracker()
        self.todo: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._target, self._warnings = tracking, warnings
        threading.Thread(target=self._run, name="mlflow", daemon=True).start()

    def _run(self) -> None:
        from regsearch.tracking import MlflowTracker, NullTracker

        if self._target is not None:
            t = self._target
            try:
                self.tracker = MlflowTracker(t.uri, t.artifact_root, t.experiment)
            except Exception as err:  # the sweep's results must not depend on MLflow being up
                self._warnings.append(f"MLflow store {t.uri} unavailable, not tracking: {err}")
        while True:
            item = self.todo.get()
            try:
                if item[0] == "start":
                    self.tracker.start(*item[1:])
                elif item[0] == "trial":
                    self.tracker.log_trial(item[1])
                elif item[0] == "finish":
                    status, metrics, params, artifacts = item[1:]
                    self.tracker.finish(status, metrics, params, [Path(p) for p in artifacts])
            except Exception as err:  # a tracking failure must not lose the sweep
                self._warnings.append(f"MLflow could not record {item[0]}: {err}")
                if item[0] == "start":
                    self.tracker = NullTracker()  # no parent run: no children either
            finally:
                self.todo.task_done()


def _use_wal_for_sqlite() -> None:
    """Open this process's sqlite stores in WAL mode with synchronous=NORMAL.

    An MLflow child run then costs ~22 ms of CPU instead of ~33 ms (benchmarks/README.md), and
    readers (``mlflow ui``, a report rebuilt mid-run, other workers) no longer block the
    writer. WAL is a property of the file: ``-wal``/``-shm`` files appear beside it, and like
    any sqlite file it does not belong on a network file system.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        if not isinstance(connection, sqlite3.Connection):
            return
        cursor = connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError:
            pass  # another process holds the file right now; rollback journal still works
        finally:
            cursor.close()


def _exit(outbox: mp.Queue[tuple[Any, ...]]) -> None:
    """Leave at once once the replies are out: every write is committed, and a normal
    interpreter teardown with MLflow and SQLAlchemy loaded takes ~0.8 s the sweep would wait."""
    outbox.close()
    outbox.join_thread()
    os._exit(0)
