"""One combined summary at the end of a multirun (``python -m regsearch -m ...``).

Hydra runs one job per combination of a multirun, and each job writes its own run folder
``<paths.root>/<sweep>-<task>/<stamp>/``. :class:`MultirunSummary`, a Hydra callback that
conf/config.yaml registers under ``hydra.callbacks``, keeps a record of each job in the job's
Hydra folder (``<hydra.sweep.dir>/<N>/job.json``: its number, overrides, status and run
folder) and, when the multirun ends, writes one table of every job's verdict into the multirun
folder, ``summary.csv`` and ``summary.md``, and prints it. A job that failed is a ``failed``
row with its error; one that never started (a job before it ended the multirun) is ``not run``.

The records are files, not messages to the launching process: a launcher may run the jobs in
other processes (joblib) or on other machines (submitit), and a record written when the job
starts still tells, after a crash, that the job ran and which run folder it left.

Example:
    >>> frame, text = write_summary(Path("sweeps/multirun/20261207-205726"))  # doctest: +SKIP
    >>> frame[["job", "sweep", "task", "tier", "recommended"]]  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import json
import math
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

if TYPE_CHECKING:
    import pandas as pd
    from hydra.core.utils import JobReturn

__all__ = [
    "JOB_RECORD",
    "PLANNED_JOBS",
    "SUMMARY_COLUMNS",
    "MultirunSummary",
    "config_digest",
    "find_run_dir",
    "find_run_dirs",
    "job_rows",
    "read_job_records",
    "summary_markdown",
    "summary_text",
    "write_summary",
]

#: The record each job leaves in its Hydra job folder.
JOB_RECORD = "job.json"

#: The overrides of every job the multirun will run (Hydra's basic sweeper), in its folder: a
#: summary rebuilt later (``python -m regsearch.multirun``) still lists the jobs never run.
PLANNED_JOBS = "jobs.json"

#: The columns of ``summary.csv``, one row per job.
SUMMARY_COLUMNS = [
    "job",
    "status",
    "overrides",
    "sweep",
    "task",
    "trials",
    "tier",
    "recommended",
    "candidate",
    "setting",
    "metric",
    "effect",
    "ci_low",
    "ci_high",
    "p_adjusted",
    "verdict",
    "run_dir",
    "error",
]

#: Seconds a run folder's config.yaml may predate the job's start record and still be the
#: job's: both times come from clocks that a shared file system may not keep in step.
_CLOCK_SLACK_S = 5.0


def config_digest(config_yaml: str) -> str:
    """The SHA-256 of a job's resolved config, as the job writes it to ``config.yaml``.

    Example:
        >>> config_digest("seed: 0\\n")[:12]
        '6a5a163cfb9d'
    """
    return hashlib.sha256(config_yaml.encode()).hexdigest()


def find_run_dirs(root: Path, digest: str, since: float) -> list[Path]:
    """The run folders ``root/<sweep>-<task>/<stamp>/`` whose ``config.yaml`` has the
    :func:`config_digest` ``digest`` and was written after ``since``, oldest first.

    A job's run folder holds its resolved config, so its text finds the folder whatever its
    sweep, task or stamp. Jobs of one multirun share a config only when they are the same job
    (N copies of one worker: ``search.n_trials=40,40``).
    """
    found: list[tuple[float, Path]] = []
    for config in Path(root).glob("*/*/config.yaml"):
        try:
            written = config.stat().st_mtime
            if written >= since - _CLOCK_SLACK_S and config_digest(config.read_text()) == digest:
                found.append((written, config.parent.resolve()))
        except OSError:  # a folder another process is removing
            continue
    return [path for _, path in sorted(found)]


def find_run_dir(root: Path, digest: str, since: float) -> Path | None:
    """The run folder a job wrote: the newest of :func:`find_run_dirs`, or None."""
    found = find_run_dirs(root, digest, since)
    return found[-1] if found else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: the launching process may read the record while the job writes it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def read_job_records(multirun_dir: Path) -> list[dict[str, Any]]:
    """Every job record (``job.json``) under a multirun folder, by job number."""
    records = []
    for path in Path(multirun_dir).rglob(JOB_RECORD):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):  # half-written by a job killed mid-write: no record
            continue
        records.append({**record, "job_dir": str(path.parent)})
    return sorted(records, key=lambda r: int(r.get("job", -1)))


def _job_config_yaml(config: DictConfig) -> str:
    """The job's config as the job writes it to its run folder (Hydra's node removed)."""
    task_cfg = copy.deepcopy(config)
    with read_write(task_cfg), open_dict(task_cfg):
        task_cfg.pop("hydra", None)
    return OmegaConf.to_yaml(task_cfg, resolve=True)


def _is_multirun(config: DictConfig) -> bool:
    """Whether Hydra runs this job as part of a multirun (a single run keeps no record)."""
    mode = OmegaConf.select(config, "hydra.mode")
    return getattr(mode, "name", mode) == "MULTIRUN"  # hydra.types.RunMode, or its name


class MultirunSummary(Callback):
    """Hydra callback: a record per job, one combined summary when the multirun ends.

    Registered in conf/config.yaml (``hydra.callbacks.multirun_summary``); does nothing for a
    single run. Hydra calls ``on_multirun_end`` only when every job succeeded, so a job that
    failed or exited (``sys.exit``) ends the multirun without it: the summary is then written
    when the launching process exits, from the records the jobs left.
    """

    def __init__(self) -> None:
        self._multirun_dir: Path | None = None
        self._planned: list[list[str]] | None = None
        self._done = False

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Remember the multirun folder and the jobs it will run; arm the exit fallback."""
        self._multirun_dir = Path(str(config.hydra.sweep.dir)).resolve()
        self._planned = _planned_jobs(config)
        if self._planned is not None:
            self._multirun_dir.mkdir(parents=True, exist_ok=True)
            _write_json(self._multirun_dir / PLANNED_JOBS, {"jobs": self._planned})
        self._done = False
        atexit.register(self._at_exit)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Record that the job started, with what finds its run folder if it never ends."""
        if not _is_multirun(config):
            return
        job_dir = Path(str(config.hydra.runtime.output_dir))
        record = {
            "job": int(config.hydra.job.num),
            "overrides": list(config.hydra.overrides.task),
            # For the row of a job that fails before its run folder's summary names them.
            "sweep": OmegaConf.select(config, "sweep.name", default=None),
            "task": OmegaConf.select(config, "task.name", default=None),
            "status": "running",
            "host": socket.gethostname(),  # which machine and process ran it (launchers)
            "pid": os.getpid(),
            "started": time.time(),
            "root": str(Path(str(config.paths.root)).resolve()),
            "config_sha256": config_digest(_job_config_yaml(config)),
            "run_dir": None,
            "error": "",
        }
        job_dir.mkdir(parents=True, exist_ok=True)
        _write_json(job_dir / JOB_RECORD, record)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        """Record the job's status, its error, and its run folder."""
        if not _is_multirun(config):
            return
        path = Path(str(config.hydra.runtime.output_dir)) / JOB_RECORD
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return  # no start record (a callback added mid-run): nothing to complete
        from hydra.core.utils import JobStatus

        # Not job_return.return_value: on a failed job it prints and raises, and Hydra's
        # sweeper does both again when the batch ends.
        value = job_return._return_value
        if job_return.status == JobStatus.COMPLETED:
            record.update(status="completed", error="")
        else:
            record.update(status="failed", error=f"{type(value).__name__}: {value}")
            value = None
        # A job that returns its run folder names it; otherwise its config.yaml finds it.
        if isinstance(value, str | os.PathLike) and Path(value).is_dir():
            record.update(run_dir=str(Path(value).resolve()), run_dir_from="job")
        else:
            found = find_run_dir(Path(record["root"]), record["config_sha256"], record["started"])
            record["run_dir"] = str(found) if found else None
        record["ended"] = time.time()
        _write_json(path, record)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Write ``summary.csv`` and ``summary.md`` into the multirun folder and print them."""
        self._done = True
        atexit.unregister(self._at_exit)
        multirun_dir = Path(str(config.hydra.sweep.dir)).resolve()
        _, text = write_summary(multirun_dir, self._planned, heading="multirun done")
        print(text, flush=True)

    def _at_exit(self) -> None:
        """The multirun stopped before its end (a job failed or exited): summarize it anyway."""
        if self._done or self._multirun_dir is None or not self._multirun_dir.is_dir():
            return
        self._done = True
        try:
            heading = "multirun stopped before its end"
            _, text = write_summary(self._multirun_dir, self._planned, heading=heading)
        except Exception as err:  # at exit a traceback would hide the job's own error
            print(f"regsearch: no multirun summary: {err}", file=sys.stderr)
            return
        print(text, flush=True)


def _planned_jobs(config: DictConfig) -> list[list[str]] | None:
    """The overrides of every job, in job order, when Hydra's basic sweeper runs them."""
    from regsearch.compose import multirun_jobs

    sweeper = str(OmegaConf.select(config, "hydra.sweeper._target_", default=""))
    if not sweeper.endswith("BasicSweeper"):
        return None  # another sweeper decides its jobs as it goes
    try:
        return multirun_jobs(list(config.hydra.overrides.task))
    except Exception:  # the jobs still run; only the "not run" rows are lost
        return None


def job_rows(
    records: Sequence[dict[str, Any]],
    planned: Sequence[Sequence[str]] | None = None,
    over: bool = True,
) -> pd.DataFrame:
    """One row per job (:data:`SUMMARY_COLUMNS`): its status and its sweep's verdict.

    ``records`` are the jobs' ``job.json`` (:func:`read_job_records`); ``planned`` the
    overrides of every job the multirun meant to run (a job without a record is ``not run``).
    With ``over`` (the multirun has ended), a job still ``running`` exited before its end and
    is ``failed``. The verdict columns describe the recommended candidate, else the one the
    verdict is about (the most promising undecided, else the closest): its setting, its
    effect on the decision metric against the baseline with the 95% interval, adjusted p.
    """
    import pandas as pd

    rows = []
    by_job = {int(r["job"]): r for r in records}
    run_dirs = {job: r.get("run_dir") for job, r in by_job.items()}
    for job, started in by_job.items():
        if started.get("status", "running") == "running" and over:  # its end never came
            found = find_run_dir(
                Path(started["root"]), started["config_sha256"], started["started"]
            )
            run_dirs[job] = str(found) if found else None
    _share_out(list(by_job.values()), run_dirs)
    for job in sorted(set(by_job) | set(range(len(planned or ())))):
        record = by_job.get(job)
        if record is None:
            assert planned is not None
            rows.append(_empty_row(job, "not run", list(planned[job]), "the multirun ended first"))
            continue
        status, error = record.get("status", "running"), record.get("error", "")
        run_dir = run_dirs[job]
        if status == "running" and over:
            status, error = "failed", "exited before its end (its output says why)"
        row = _empty_row(job, status, list(record.get("overrides", [])), error)
        row.update(sweep=record.get("sweep"), task=record.get("task"))
        if run_dir:
            row.update(_verdict_columns(Path(run_dir)), run_dir=run_dir)
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _share_out(records: list[dict[str, Any]], run_dirs: dict[int, str | None]) -> None:
    """Give jobs with one config (N copies of a worker) one run folder each.

    Each such job finds the newest folder with its config, which may be another copy's when
    they run side by side; their folders go to them in the order they started (the copies
    are the same job, so only the job numbers could tell them apart).
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record.get("run_dir_from") != "job" and record.get("config_sha256"):
            groups.setdefault(record["config_sha256"], []).append(record)
    for digest, group in groups.items():
        dirs = [run_dirs[int(r["job"])] for r in group]
        if len(set(dirs)) == len(dirs):
            continue
        group.sort(key=lambda r: float(r["started"]))
        found = find_run_dirs(Path(group[0]["root"]), digest, float(group[0]["started"]))
        found = found[-len(group) :]  # an earlier run's folder may match as well
        for i, record in enumerate(group):
            run_dirs[int(record["job"])] = str(found[i]) if i < len(found) else None


def _empty_row(job: int, status: str, overrides: list[str], error: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(job=job, status=status, overrides=" ".join(overrides), error=error)
    return row


def _verdict_columns(run_dir: Path) -> dict[str, Any]:
    """The sweep, task, trial count and verdict columns from a run folder's summary.json."""
    from regsearch.results import comparison_frame

    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}  # a job that failed before its first summary, or a suite's folder
    verdict = summary.get("verdict") or {}
    out: dict[str, Any] = {
        "sweep": summary.get("sweep"),
        "task": summary.get("task"),
        "trials": summary.get("n_complete"),
        "tier": verdict.get("tier"),
        "metric": verdict.get("metric"),
        "verdict": verdict.get("text"),
    }
    if verdict:
        # None means "keep the baseline" (regsearch.comparison.Comparison.recommended).
        out["recommended"] = verdict.get("recommended") or verdict.get("baseline") or "baseline"
    frame = comparison_frame(summary)
    others = frame[frame["candidate"] != verdict.get("baseline")]
    focus = _focus(others, verdict)
    if focus is not None:
        row = others.loc[focus]
        out.update(
            candidate=row["candidate"],
            setting=row["params"],
            **{k: _number(row[k]) for k in ("effect", "ci_low", "ci_high", "p_adjusted")},
        )
    return out


def _focus(others: pd.DataFrame, verdict: dict[str, Any]) -> Any:
    """The index of the candidate the verdict is about, as ``Comparison.focus`` picks it:
    the recommended one, else the undecided one most likely better, else the closest."""
    if others.empty:
        return None
    recommended = others[others["recommended"]]
    if not recommended.empty:
        return recommended.index[0]
    undecided = others[(others["standing"] == "undecided") & others["p_better"].notna()]
    if not undecided.empty:
        return undecided["p_better"].astype(float).idxmax()
    effects = others["effect"].dropna().astype(float)
    if effects.empty:
        return others.index[0]
    # The decision metric's better direction: accuracies up, losses down.
    better_up = str(verdict.get("metric", "")).endswith("_acc")
    return effects.idxmax() if better_up else effects.idxmin()


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _cells(frame: pd.DataFrame, multirun_dir: Path, link: bool) -> list[list[str]]:
    """The shown table: the overrides that differ between jobs, the verdict in short."""
    from regsearch.comparison.formatting import signed

    varying = _varying_overrides(frame)
    cells = []
    for _, r in frame.iterrows():
        effect = ""
        if r["effect"] is not None and not _isnan(r["effect"]):
            effect = signed(r["effect"])
            if r["ci_low"] is not None and not _isnan(r["ci_low"]):
                effect += f" [{signed(r['ci_low'])}, {signed(r['ci_high'])}]"
        p = "" if r["p_adjusted"] is None or _isnan(r["p_adjusted"]) else f"{r['p_adjusted']:.2g}"
        cells.append(
            [
                str(r["job"]),
                " ".join(o for o in str(r["overrides"]).split() if o in varying),
                str(r["status"]),
                *(_text(r[k]) for k in ("sweep", "task", "tier", "recommended", "candidate")),
                _text(r["setting"]),
                _text(r["metric"]),
                effect,
                p,
                _where(r["run_dir"], multirun_dir, link),
            ]
        )
    return cells


_HEADER = [
    "job",
    "overrides",
    "status",
    "sweep",
    "task",
    "tier",
    "recommended",
    "candidate",
    "setting",
    "metric",
    "effect [95% CI]",
    "adj p",
    "run folder",
]


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _text(value: Any) -> str:
    return "" if value is None or _isnan(value) else str(value)


def _varying_overrides(frame: pd.DataFrame) -> set[str]:
    """Overrides not shared by every job: what tells the jobs apart."""
    sets = [set(str(o).split()) for o in frame["overrides"]]
    if not sets:
        return set()
    shared = sets[0].intersection(*sets[1:])
    return sets[0].union(*sets[1:]) - shared


def _common_overrides(frame: pd.DataFrame) -> list[str]:
    first = str(frame["overrides"].iloc[0]).split() if len(frame) else []
    varying = _varying_overrides(frame)
    return [o for o in first if o not in varying]


def _where(run_dir: Any, multirun_dir: Path, link: bool) -> str:
    """A run folder: a link to its report (or folder) from summary.md, else a short path."""
    if not run_dir or _isnan(run_dir):
        return ""
    path = Path(str(run_dir))
    if link:
        target = path / "report.html" if (path / "report.html").is_file() else path
        return f"[{path.parent.name}/{path.name}]({os.path.relpath(target, multirun_dir)})"
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def _counts(frame: pd.DataFrame) -> str:
    counts = frame["status"].value_counts()
    parts = [f"{counts[s]} {s}" for s in ("completed", "failed", "not run") if s in counts]
    return f"{len(frame)} job{'s' * (len(frame) != 1)} ({', '.join(parts)})"


def summary_markdown(frame: pd.DataFrame, multirun_dir: Path) -> str:
    """``summary.md``: the jobs' table with links to their reports, then any errors."""
    lines = [f"# Multirun {multirun_dir.name}: {_counts(frame)}", ""]
    common = _common_overrides(frame)
    if common:
        lines += [f"Every job: `{' '.join(common)}`", ""]
    lines += [
        "| " + " | ".join(_HEADER) + " |",
        "|" + "|".join("---" for _ in _HEADER) + "|",
    ]
    for cells in _cells(frame, multirun_dir, link=True):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    errors = _error_lines(frame)
    if errors:
        lines += ["", *(f"- {e}" for e in errors)]
    return "\n".join(lines) + "\n"


def summary_text(frame: pd.DataFrame, multirun_dir: Path, heading: str = "multirun") -> str:
    """What the multirun prints at its end: ``heading`` and the job counts, the table aligned
    in columns, then any errors."""
    rows = [_HEADER, *_cells(frame, multirun_dir, link=False)]
    shown = [i for i in range(len(_HEADER)) if any(row[i] for row in rows[1:])]
    widths = [max(len(row[i]) for row in rows) for i in shown]
    where = _where(str(multirun_dir), multirun_dir, link=False)
    lines = [f"{heading}: {_counts(frame)}; summary.csv, summary.md in {where}/"]
    for row in rows:
        text = "  ".join(f"{row[i]:<{w}}" for i, w in zip(shown, widths, strict=True))
        lines.append(("  " + text).rstrip())
    return "\n".join(lines + _error_lines(frame))


def _error_lines(frame: pd.DataFrame) -> list[str]:
    failed = frame[frame["status"] != "completed"]
    return [f"job {r['job']} {r['status']}: {r['error']}" for _, r in failed.iterrows()]


def write_summary(
    multirun_dir: Path,
    planned: Sequence[Sequence[str]] | None = None,
    heading: str = "multirun",
) -> tuple[pd.DataFrame, str]:
    """Write ``summary.csv`` and ``summary.md`` into ``multirun_dir`` from its job records.

    ``planned``: every job's overrides; by default those the multirun recorded
    (:data:`PLANNED_JOBS`), if any. Returns the table (:func:`job_rows`) and the text to print
    (:func:`summary_text`).
    """
    multirun_dir = Path(multirun_dir)
    if planned is None and (multirun_dir / PLANNED_JOBS).is_file():
        planned = json.loads((multirun_dir / PLANNED_JOBS).read_text())["jobs"]
    frame = job_rows(read_job_records(multirun_dir), planned)
    frame.to_csv(multirun_dir / "summary.csv", index=False)
    (multirun_dir / "summary.md").write_text(summary_markdown(frame, multirun_dir))
    return frame, summary_text(frame, multirun_dir, heading)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m regsearch.multirun MULTIRUN_DIR``: rewrite and print a multirun's summary
    (e.g. after a multirun that was killed, from the records its jobs left)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not Path(args[0]).is_dir():
        print("usage: python -m regsearch.multirun <paths.root>/multirun/<stamp>", file=sys.stderr)
        sys.exit(2)
    _, text = write_summary(Path(args[0]))
    print(text)


if __name__ == "__main__":
    main()
