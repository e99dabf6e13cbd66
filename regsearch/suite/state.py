"""The suite folder's memory (``suite.json``): which data sets are done, where, with which config.

A suite is resumable data set by data set: a data set marked ``done`` whose run folder is still
there is not run again. The folder remembers a fingerprint of every setting that shapes the
trials (task, model, train, search, sweep, seed; not where things are written), so a rerun with
another budget is refused instead of mixing two budgets in one table; the fingerprint also
names the data sets' Optuna studies, so the same command on several machines with one shared
storage joins the same studies.

Example:
    >>> fp = suite_fingerprint(resolved_config)  # doctest: +SKIP
    >>> state = open_state(Path("sweeps/suite-keel12"), "keel12", fp)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from regsearch.config import ConfigError
from regsearch.fingerprint import Fingerprint, fingerprint
from regsearch.outputs import write_json

__all__ = ["STATE_FILE", "SuiteState", "open_state", "suite_fingerprint"]

STATE_FILE = "suite.json"
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
    "search.population",
    "suite.name",
    "suite.datasets",
    "suite.dir",
    "suite.bootstrap",
)


def suite_fingerprint(resolved: DictConfig) -> Fingerprint:
    """The fingerprint of a resolved suite config (the settings that shape its trials).

    Example:
        >>> suite_fingerprint(OmegaConf.create({"seed": 0, "paths": {"root": "x"}})).settings
        {'seed': '0'}
    """
    return fingerprint(OmegaConf.to_yaml(resolved), _IGNORED)


@dataclass
class SuiteState:
    """``suite.json`` in memory; :meth:`save` writes it atomically."""

    folder: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def datasets(self) -> dict[str, dict[str, Any]]:
        """Data set name → its entry (status, run_dir relative to the folder, wall_s, ...)."""
        found: dict[str, dict[str, Any]] = self.data.setdefault("datasets", {})
        return found

    def done(self, name: str) -> bool:
        """Finished with a comparison, and its run folder is still there."""
        entry = self.datasets.get(name, {})
        run_dir = self.run_dir(name)
        finished = entry.get("status") == "done" and run_dir is not None
        return finished and run_dir is not None and (run_dir / "summary.json").is_file()

    def run_dir(self, name: str) -> Path | None:
        """The data set's run folder, or None before it ran."""
        run_dir = self.datasets.get(name, {}).get("run_dir")
        return None if run_dir is None else self.folder / run_dir

    def mark(self, name: str, **fields: Any) -> None:
        """Update the data set's entry and save."""
        self.datasets.setdefault(name, {}).update(fields)
        self.save()

    def save(self) -> None:
        """Write ``suite.json`` (the folder is created on the first save)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.data["updated"] = datetime.now().isoformat(timespec="seconds")
        write_json(self.folder / STATE_FILE, self.data)


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
    if data.get("fingerprint") != fp.digest:
        shown = ", ".join(fp.differences(data.get("settings") or {})[:4])
        raise ConfigError(
            f"suite.dir={str(folder)!r}: this suite folder was run with other settings "
            f"({shown or 'an older version'}); rerun it with the same ones to resume, or start "
            "another with suite.name=<new name> or suite.dir=<new folder>"
        )
    return SuiteState(folder, data)
