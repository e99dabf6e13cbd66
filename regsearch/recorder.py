"""The sweep's recorder: a child process that writes finished trials to both stores.

Each population batch hands its finished trials over in one message; the recorder writes them
to the durable Optuna storage (one ``create_new_trial`` per trial) and then, on a thread of its
own, logs them to MLflow (one child run each) with the numbers the durable study gave them.
Both are SQLAlchemy ORM work, ~7 ms (Optuna) + ~22 ms (MLflow, WAL) of pure-Python CPU per
trial on sqlite. In the sweep's process that time would hold the GIL the training loop needs
(the population engine is dispatch-bound at small sizes); in a separate process it runs on
another core while the next batch trains. The recorder starts with the sweep: importing MLflow
(seconds) overlaps the sweep's plan and store set-up, and the MLflow store is opened (2–4 s for
a new sqlite file) while the first batch trains.

Lifecycle (what a crash keeps, README "Stores, workers and what a crash keeps"):

- The recorder ignores SIGINT, SIGTERM and SIGHUP, which a terminal or a batch scheduler sends
  to the whole process group: the sweep handles them like Ctrl-C and flushes the recorder, so
  every finished trial is written and the parent run is closed KILLED.
- The recorder exits on its own when the sweep process dies (``kill -9``, a crash): a watchdog
  thread sees end-of-file on a pipe whose only writer is the sweep (or the recorder's parent
  pid change), the recorder writes what it already received, closes the parent run KILLED and
  exits; it gives up after ``ORPHAN_GRACE_S``. Its exit also ends multiprocessing's resource
  tracker, which holds on only while some process still has its pipe open.
- The sweep notices a dead recorder at the next batch boundary (:meth:`Recorder.record`,
  :meth:`Recorder.flush`) and raises :class:`RecorderError`; it never waits on a queue nobody
  reads. What was written stays; ``search.resume=true`` runs the rest.
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
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from regsearch.records import RunSummary, TrialOutcome

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from regsearch.config import RegsearchConfig
    from regsearch.tracking import Tracker

__all__ = ["Recorder", "RecorderError", "TrackingTarget", "recorder_for"]

log = logging.getLogger(__name__)
POLL_S = 0.5  # how often a waiting sweep (or an idle recorder) checks that the other is alive
#: Seconds an orphaned recorder may spend writing what it received before it exits regardless.
ORPHAN_GRACE_S = 60.0


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
    runs: list[dict[str, Any]] = field(default_factory=list)  # MLflow child runs logged so far


class Recorder:
    """Main-process handle of the recorder process.

    Example:
        >>> rec = Recorder("sqlite:///optuna.db", None)  # doctest: +SKIP
        >>> rec.record("my-study", [(frozen_trial, outcome)])  # doctest: +SKIP
        >>> rec.flush().written  # doctest: +SKIP
    """

    def __init__(self, storage_url: str, mlflow_uri: str | None = None) -> None:
        """Start the recorder process; it writes nothing before it is sent something.

        Args:
            storage_url: The Optuna storage the trials are written to (opened at the first).
            mlflow_uri: The MLflow store the sweep will log to (:meth:`start` names it
                again, with the experiment): the recorder imports MLflow and that store's
                client code at once, seconds of work that then overlap the sweep's own
                start-up, and opens the store only when :meth:`start` comes.
        """
        # Every multiprocessing object comes from one explicit spawn context: fork after torch
        # started its thread pools is unsafe, and the process-wide default may be a start
        # method the child cannot load (joblib's "loky" in a Hydra joblib-launcher job).
        ctx = mp.get_context("spawn")
        self.tracking: TrackingTarget | None = None  # set by start()
        self._used = False  # sent something to write: closing must let it finish
        self._inbox: mp.Queue[tuple[Any, ...]] = ctx.Queue()
        # If the recorder dies with messages still buffered, exiting must not wait for them
        # to reach a pipe nobody reads; every message that matters is acknowledged by a reply.
        self._inbox.cancel_join_thread()
        self._outbox: mp.Queue[tuple[Any, ...]] = ctx.Queue()
        self._tokens = itertools.count()
        # The recorder's lifeline: this process holds the only write end, so the child reads
        # end-of-file the moment this process dies, however it dies.
        lifeline, self._lifeline = ctx.Pipe(duplex=False)
        self._process = ctx.Process(
            target=_serve,
            args=(self._inbox, self._outbox, storage_url, mlflow_uri, lifeline, os.getpid()),
            name="regsearch-recorder",
            daemon=True,
        )
        with _spawning():
            self._process.start()
        lifeline.close()
        self._death_reported = False
        self.state = RecorderState()

    @property
    def pid(self) -> int | None:
        """The recorder process's id."""
        return self._process.pid

    @property
    def alive(self) -> bool:
        """Whether the recorder process is still running."""
        return self._process.is_alive()

    @property
    def uri(self) -> str | None:
        return self.tracking.uri if self.tracking else None

    def start(
        self,
        target: TrackingTarget | None,
        run_name: str,
        params: dict[str, Any],
        tags: dict[str, str],
        config_yaml: str,
    ) -> None:
        """Open the MLflow store ``target`` and the sweep's parent run there (asynchronously;
        ``None``: record to Optuna only)."""
        self.tracking, self._used = target, True
        self._inbox.put(("start", target, run_name, params, tags, config_yaml))

    def record(self, study: str, pairs: list[tuple[FrozenTrial, TrialOutcome]]) -> None:
        """Persist each finished trial to the durable study ``study``, then log its outcome.

        The recorder sets each outcome's ``number`` to the one the durable study assigned.
        """
        if not self.alive:  # noticed at the batch boundary, not after training the rest
            raise self._died()
        if pairs:
            self._used = True
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

    def finish(self, summary: RunSummary) -> RecorderState:
        """Close the parent run with the sweep's status and best values; stop the recorder.

        A recorder whose death was already raised is only cleaned up: its parent run is closed
        KILLED by the next sweep of the study (see :meth:`MlflowTracker.close_abandoned`).
        """
        if self._death_reported and not self.alive:
            self.close()
            return self.state
        token = next(self._tokens)
        self._inbox.put(("finish", token, summary))
        try:
            reply = self._wait("finished", token)
        finally:
            self.close()
        return self._update(reply)

    def close(self) -> None:
        """Stop the recorder process (waits briefly, then kills it: it ignores SIGTERM).

        One that was never sent anything to write is killed at once: it holds nothing, and it
        may still be importing (a sweep refused at start-up need not wait for that).
        """
        if self._process.is_alive() and self._used:
            self._inbox.put(("stop",))
            self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self._lifeline.close()

    def _update(self, reply: dict[str, Any]) -> RecorderState:
        for warning in reply["warnings"]:
            log.warning("%s", warning)
        self.state = RecorderState(
            reply["parent_run_id"],
            reply["experiment_id"],
            reply["written"],
            [*self.state.runs, *reply["runs"]],
        )
        if reply["errors"]:
            raise RecorderError(reply["errors"][0])
        return self.state

    def _wait(self, kind: str, token: int) -> dict[str, Any]:
        while True:
            try:
                message = self._outbox.get(timeout=POLL_S)
            except queue.Empty:
                if not self._process.is_alive():
                    raise self._died() from None
                continue
            if message[0] == kind and message[1] == token:
                reply: dict[str, Any] = message[2]
                return reply

    def _died(self) -> RecorderError:
        self._death_reported = True
        return RecorderError(
            f"the recorder process exited with code {self._process.exitcode} before writing "
            "every trial; what it wrote is kept, resume with search.resume=true"
        )


def recorder_for(cfg: RegsearchConfig) -> Recorder:
    """A started recorder for a sweep run with ``cfg`` (MLflow imported at once when tracked).

    Cheap to call before torch is imported: this module imports neither Optuna nor MLflow, so
    the CLI starts the recorder first and the child's imports overlap the sweep's own.
    """
    tracked = cfg.tracking.backend != "none"
    return Recorder(cfg.search.storage, cfg.tracking.uri if tracked else None)


@contextmanager
def _spawning() -> Iterator[None]:
    """Start a spawned child that needs nothing from this process's global state.

    spawn normally re-imports the parent's main script in the child, which fails (or reruns
    the sweep) for a plain script or notebook that calls :func:`run_sweep` without an
    ``if __name__ == "__main__":`` guard. It also hands the child the process-wide start method,
    which the child then sets: in a joblib (loky) worker that is "loky", a context the child
    cannot find. The recorder needs neither.
    """
    main = sys.modules["__main__"]
    method = mp.get_start_method(allow_none=True)
    sys.modules["__main__"] = types.ModuleType("__main__")
    mp.set_start_method("spawn", force=True)
    try:
        yield
    finally:
        sys.modules["__main__"] = main
        mp.set_start_method(method, force=True)


def _serve(
    inbox: mp.Queue[tuple[Any, ...]],
    outbox: mp.Queue[tuple[Any, ...]],
    storage_url: str,
    mlflow_uri: str | None,
    lifeline: Connection,
    sweep_pid: int,
) -> None:
    """The recorder's loop (runs in the child process).

    Optuna rows are written on this loop; MLflow runs on a thread of their own, so the durable
    study (what other workers and mid-run reports read) never waits behind MLflow's start-up
    (importing mlflow, creating a store: seconds) or its ~22 ms per run.
    """
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the sweep decides when the recorder stops
    orphaned = threading.Event()
    threading.Thread(
        target=_watch_sweep, args=(lifeline, sweep_pid, orphaned), name="watchdog", daemon=True
    ).start()
    _use_wal_for_sqlite()
    warnings: list[str] = []
    errors: list[str] = []
    optuna_writer = _OptunaWriter(storage_url, errors)
    mlflow = _MlflowWriter(mlflow_uri, warnings)

    def reply(kind: str, token: int) -> None:
        mlflow.todo.join()  # everything queued so far is logged
        state = {
            "parent_run_id": mlflow.tracker.parent_run_id,
            "experiment_id": mlflow.tracker.experiment_id,
            "written": optuna_writer.written,
            "runs": mlflow.tracker.take_logged(),
            "warnings": list(warnings),
            "errors": list(errors),
        }
        outbox.put((kind, token, state))
        warnings.clear()

    while True:
        try:
            message = inbox.get(timeout=POLL_S)
        except queue.Empty:
            if orphaned.is_set():  # the sweep is gone and all it sent has been read
                _exit_orphaned(mlflow, optuna_writer.written)
            continue
        kind = message[0]
        if kind == "start":
            mlflow.todo.put(message)
        elif kind == "trials":
            for outcome in optuna_writer.write(message[1], message[2]):
                mlflow.todo.put(("trial", outcome))
        elif kind == "flush":
            reply("flushed", message[1])
        elif kind == "finish":
            mlflow.todo.put(("finish", message[2]))
            reply("finished", message[1])
            _exit(outbox)
        elif kind == "stop":
            _exit(outbox)


def _watch_sweep(lifeline: Connection, sweep_pid: int, orphaned: threading.Event) -> None:
    """Set ``orphaned`` once the sweep process is gone; end the recorder if it then lingers.

    The sweep never writes to the lifeline: reading it returns end-of-file once the sweep's
    end is closed, which the kernel does when the sweep dies, however it dies. A changed parent
    pid (the recorder was re-parented) is the fallback for a sweep whose end leaked into a
    forked child that outlives it.
    """
    while os.getppid() == sweep_pid:
        try:
            if lifeline.poll(POLL_S):
                lifeline.recv_bytes()
        except (EOFError, OSError):
            break
    orphaned.set()
    time.sleep(ORPHAN_GRACE_S)  # the main loop normally exits long before
    os._exit(1)


def _exit_orphaned(mlflow: _MlflowWriter, written: int) -> None:
    """The sweep died: log what was received, close its parent run KILLED, and leave."""
    mlflow.todo.put(("finish", RunSummary("KILLED")))
    mlflow.todo.join()
    print(
        f"regsearch recorder: the sweep process died; {written} trials written, "
        "MLflow parent run closed KILLED; resume with search.resume=true",
        file=sys.stderr,
        flush=True,
    )
    os._exit(0)  # the outbox is never read again: do not wait for its feeder thread


class _OptunaWriter:
    """Persists finished trials to the durable studies, numbered as the storage assigns.

    The storage is opened at first use: the sweep creates it first, and two processes creating
    one sqlite schema at once would race. Failures are appended to ``errors`` for the next reply.
    """

    def __init__(self, storage_url: str, errors: list[str]) -> None:
        # Imported now, while the sweep itself starts (about a second), not at the first write.
        import optuna

        from regsearch.search.storage import get_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.url, self.errors = storage_url, errors
        self.written = 0  # trials persisted so far
        self._open = get_storage
        self._storage: Any = None
        self._study_ids: dict[str, int] = {}

    def write(
        self, study: str, pairs: list[tuple[FrozenTrial, TrialOutcome]]
    ) -> list[TrialOutcome]:
        """The outcomes of the trials written (their ``number`` set to the durable one)."""
        try:
            if self._storage is None:
                self._storage = self._open(self.url)
            if study not in self._study_ids:
                self._study_ids[study] = self._storage.get_study_id_from_name(study)
        except Exception as err:
            self.errors.append(f"Optuna storage {self.url}: study {study!r}: {err}")
            return []
        done = []
        for trial, outcome in pairs:
            try:
                trial_id = self._storage.create_new_trial(
                    self._study_ids[study], template_trial=trial
                )
                outcome.number = self._storage.get_trial_number_from_id(trial_id)
            except Exception as err:
                self.errors.append(f"Optuna storage {self.url}: trial not written: {err}")
                continue
            self.written += 1
            done.append(outcome)
        return done


class _MlflowWriter:
    """The recorder's MLflow thread: imports MLflow at once when it will be used, opens the
    store when the sweep starts its parent run, then logs what is queued, in order."""

    def __init__(self, uri: str | None, warnings: list[str]) -> None:
        from regsearch.tracking import NullTracker

        self.tracker: Tracker = NullTracker()
        self.todo: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._uri, self._warnings = uri, warnings
        threading.Thread(target=self._run, name="mlflow", daemon=True).start()

    def _run(self) -> None:
        from regsearch.tracking import NullTracker, import_client

        if self._uri is not None:
            # Seconds of imports, done while the sweep plans, opens its Optuna stores and
            # trains. The store itself waits for "start": nothing is written before the
            # sweep's own checks pass.
            import_client(self._uri)
        while True:
            item = self.todo.get()
            try:
                self._handle(item)
            except Exception as err:  # a tracking failure must not lose the sweep
                self._warnings.append(f"MLflow could not record {item[0]}: {err}")
                if item[0] == "start":
                    self.tracker = NullTracker()  # no parent run: no children either
            finally:
                self.todo.task_done()

    def _handle(self, item: tuple[Any, ...]) -> None:
        if item[0] == "start":
            target, *run = item[1:]
            self.tracker = self._open(target)
            self.tracker.start(*run)
        elif item[0] == "trial":
            self.tracker.log_trial(item[1])
        elif item[0] == "finish":
            self.tracker.finish(item[1])

    def _open(self, target: TrackingTarget | None) -> Tracker:
        from regsearch.tracking import MlflowTracker, NullTracker

        if target is None:
            return NullTracker()
        try:
            return MlflowTracker(target.uri, target.artifact_root, target.experiment)
        except Exception as err:  # the sweep's results must not depend on MLflow being up
            self._warnings.append(f"MLflow store {target.uri} unavailable, not tracking: {err}")
            return NullTracker()


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
