"""The suite folder's memory (``suite.json``): which data sets are done, where, with which config.

A suite is resumable data set by data set: a data set marked ``done`` whose run folder is still
there is not run again. The folder remembers a fingerprint of every setting that shapes the
trials (task, model, train, search, sweep, seed, and how the suite tunes; not where things are
written), so a rerun with another budget is refused instead of mixing two budgets in one table;
the fingerprint also names the data sets' Optuna studies, so the same command on several
machines with one shared storage joins the same studies.

Which data sets are done *across workers* lives in the shared storage
(:mod:`regsearch.suite.shared`); ``suite.json`` is this folder's mirror of it, with the run
folders that are here. Several processes may share one folder: every write re-reads the file
under an exclusive lock and changes only the entries this process touched, and an entry that is
done (its run folder holds the comparison) is never set back by another process's "running".

Example:
    >>> fp = suite_fingerprint(resolved_config)  # doctest: +SKIP
    >>> state = open_state(Path("sweeps/suite-keel12"), "keel12", fp)  # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from regsearch.config import ConfigError
from regsearch.fingerprint import Fingerprint, fingerprint
from regsearch.outputs import write_json

__all__ = ["STATE_FILE", "TUNING", "SuiteState", "open_state", "suite_fingerprint"]

STATE_FILE = "suite.json"
#: The lock that serializes writes of ``suite.json`` by processes sharing the folder.
LOCK_FILE = ".suite.lock"
#: How the suite tunes: rounds of ``search.population`` trials, each claimed once across
#: workers (:mod:`regsearch.suite.rounds`). Fingerprinted, with ``search.population`` (the
#: round size decides which trials each proposal sees): a suite tuned before rounds existed,
#: or with other rounds, is not continued with these.
TUNING = "rounds-1"
#: Settings that do not change what a trial computes: where things are written, how it is
#: shown, which device and engine train it (same numbers), and the suite's own bookkeeping.
_IGNORED = (
    "paths.",
    "tracking.",
    "report",
    "progress",
    "threads",
    "engine",
    "device",
    "task.dataset",
    "task.path",
    "search.storage",
    "search.study_name",
    "search.resume",
    "suite.name",
    "suite.datasets",
    "suite.dir",
    "suite.bootstrap",
)


def suite_fingerprint(resolved: DictConfig) -> Fingerprint:
    """The fingerprint of a resolved suite config (the settings that shape its trials).

    Example:
        >>> suite_fingerprint(OmegaConf.create({"seed": 0, "paths": {"root": "x"}})).settings
        {'seed': '0', 'suite.tuning': '"rounds-1"'}
    """
    node = OmegaConf.merge(resolved, {"suite": {"tuning": TUNING}})
    return fingerprint(OmegaConf.to_yaml(node), _IGNORED)


@dataclass
class SuiteState:
    """``suite.json`` in memory; :meth:`save` merges it into the file, atomically and locked."""

    folder: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def datasets(self) -> dict[str, dict[str, Any]]:
        """Data set name → its entry (status, run_dir relative to the folder, wall_s, ...)."""
        found: dict[str, dict[str, Any]] = self.data.setdefault("datasets", {})
        return found

    def done(self, name: str) -> bool:
        """Finished with a comparison, and its run folder is still there."""
        return self._is_done(self.datasets.get(name, {}))

    def run_dir(self, name: str) -> Path | None:
        """The data set's run folder, or None before it ran."""
        run_dir = self.datasets.get(name, {}).get("run_dir")
        return None if run_dir is None else self.folder / run_dir

    def mark(self, name: str, **fields: Any) -> None:
        """Update the data set's entry and save."""
        self.datasets.setdefault(name, {}).update(fields)
        self.save(name)

    def save(self, *names: str) -> None:
        """Write the top-level keys and the entries of ``names`` into ``suite.json``, as it is
        on disk now, and read the result back: other processes' entries stay theirs (the
        folder is created on the first save)."""
        self.data["updated"] = datetime.now().isoformat(timespec="seconds")
        with _locked(self.folder):
            merged = self._merged(_read(self.folder / STATE_FILE), names)
            write_json(self.folder / STATE_FILE, merged)
        self.data = merged

    def reload(self) -> None:
        """Read the entries other processes sharing the folder wrote since."""
        with _locked(self.folder):
            self.data = _read(self.folder / STATE_FILE) or self.data

    def _merged(self, disk: dict[str, Any] | None, names: tuple[str, ...]) -> dict[str, Any]:
        """The file's content with this process's top-level keys and the entries of ``names``
        on top; an entry done there stays unless this process has it done too."""
        if disk is None:
            return self.data
        merged = {**disk, **{k: v for k, v in self.data.items() if k != "datasets"}}
        entries = dict(disk.get("datasets") or {})
        for name in names:
            mine = self.datasets.get(name, {})
            theirs = entries.get(name)
            keep = theirs is not None and self._is_done(theirs) and not self._is_done(mine)
            entries[name] = theirs if keep else mine
        merged["datasets"] = entries
        return merged

    def _is_done(self, entry: dict[str, Any]) -> bool:
        run_dir = entry.get("run_dir")
        summary = None if run_dir is None else self.folder / run_dir / "summary.json"
        return entry.get("status") == "done" and summary is not None and summary.is_file()


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder's ``suite.json`` for the block (POSIX ``flock``)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path) -> dict[str, Any] | None:
    """``suite.json`` as written (None before the first save)."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def open_state(folder: Path, name: str, fp: Fingerprint) -> SuiteState:
    """The suite folder's state, new or read back; nothing is written here.

    Raises:
        ConfigError: The folder holds a suite run with other settings (the message names the
            first that differ), or an unreadable ``suite.json``.
    """
    path = folder / STATE_FILE
    if not path.is_file():
        created = datetime.now().isoformat(timespec="seconds")
        new: dict[str, Any] = {"name": name, "fingerprint": fp.digest, "settings": fp.settings}
        return SuiteState(folder, {**new, "created": created})
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"suite.dir={str(folder)!r}: cannot read {STATE_FILE} ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"suite.dir={str(folder)!r}: {STATE_FILE} is not a JSON object")
    stored = data.get("settings") or {}
    if data.get("fingerprint") != fp.digest and "suite.tuning" not in stored:
        raise ConfigError(
            f"suite.dir={str(folder)!r}: this suite folder was tuned by an older regsearch "
            "(without rounds claimed across workers), which this one does not continue; start "
            "another with suite.name=<new name> or suite.dir=<new folder>"
        )
    if data.get("fingerprint") != fp.digest:
        shown = ", ".join(fp.differences(stored)[:4])
        raise ConfigError(
            f"suite.dir={str(folder)!r}: this suite folder was run with other settings "
            f"({shown or 'an older version'}); rerun it with the same ones to resume, or start "
            "another with suite.name=<new name> or suite.dir=<new folder>"
        )
    return SuiteState(folder, data)
