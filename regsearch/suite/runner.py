"""Run a suite: the compare sweep on each data set of a list, one budget, resumable, then the
statistics across data sets and the suite report.

Each data set's sweep is an ordinary sweep (:func:`regsearch.sweep.run_sweep`) with the suite's
config and four keys set: ``task.dataset``, ``paths.root`` (the suite folder, so its run folder
lands there; the stores stay where the suite's config put them), ``search.study_name``
(``suite-<name>-<fingerprint>-<data set>``) and ``search.resume=true`` (a missing study is
created, an existing one continued: an interrupted data set goes on, and other machines on a
shared storage join it). Every data set's config is validated before anything is written.

Its families are tuned in rounds claimed across workers (:mod:`regsearch.suite.rounds`): each
holds exactly its budget, and the same trials whether one worker ran the suite or several.
Which data sets are done is kept in the shared storage (:mod:`regsearch.suite.shared`), so
workers on other machines (another ``paths.root``) know it too: a data set finished elsewhere
is read from the stores (nothing retrained) into this folder. Every worker writes the suite's
records and report from the data sets done in its folder; the last one to finish, or the same
command run again, has them all.

Example:
    >>> result = run_suite(typed, yaml_text)  # doctest: +SKIP
    >>> result.report  # doctest: +SKIP
    PosixPath('sweeps/suite-keel12/report.html')
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from regsearch.config import ConfigError, KeelTask, RegsearchConfig, validate
from regsearch.suite.datasets import DatasetInfo, describe, resolve_datasets
from regsearch.suite.plan import SuitePlan
from regsearch.suite.shared import DoneMark, SharedState
from regsearch.suite.state import open_state, suite_fingerprint
from regsearch.suite.stats import SuiteStats, records_frame, suite_stats
from regsearch.suite.tracking import SuiteRun

if TYPE_CHECKING:
    from regsearch.outputs import SweepResult

__all__ = ["SuitePlan", "SuiteResult", "collect_records", "plan_suite", "run_suite"]

log = logging.getLogger(__name__)
Echo = Callable[[str], None]


@dataclass
class SuiteResult:
    """What a suite run left: its folder, report, records table and statistics."""

    folder: Path
    datasets: list[str]
    records: pd.DataFrame  # one row per (data set, candidate), see suite.stats.RECORD_COLUMNS
    stats: SuiteStats | None  # None until a data set has a comparison
    report: Path | None
    ran: list[str] = field(default_factory=list)  # data sets trained by this call
    skipped: list[str] = field(default_factory=list)  # finished before this call
    mlflow_run_id: str | None = None
    mlflow_command: str = ""  # how to open the suite's MLflow experiment


def plan_suite(cfg: RegsearchConfig, config_yaml: str) -> SuitePlan:
    """Check the suite and every data set's config; read (never write) the suite folder.

    Raises:
        ConfigError: Bad ``suite.*`` values, an unknown data set, a data set's config that
            does not validate, or a suite folder run with other settings.
    """
    suite = cfg.suite
    if suite is None:
        raise ConfigError("suite: not set; run a suite with +experiment=suite")
    if cfg.task.name != "keel":
        raise ConfigError(f"task={cfg.task.name}: a suite runs KEEL data sets; use task=keel")
    if cfg.search.study_name:
        raise ConfigError(
            f"search.study_name={cfg.search.study_name!r}: a suite names each data set's "
            "studies itself (suite-<name>-<fingerprint>-<data set>); drop it"
        )
    for key, value in (("suite.bootstrap", suite.bootstrap), ("suite.n_trials", suite.n_trials)):
        if value is not None and value < 1:
            raise ConfigError(f"{key}={value}: must be >= 1")
    if cfg.search.timeout is not None:
        raise ConfigError(
            f"search.timeout={cfg.search.timeout}: a suite tunes every family's whole budget "
            "on every data set (the same for all); drop it and choose suite.n_trials instead"
        )
    if not suite.name or "/" in suite.name:
        raise ConfigError(f"suite.name={suite.name!r}: a non-empty name without '/'")
    datasets = resolve_datasets(suite.datasets)
    base = OmegaConf.create(config_yaml)
    assert isinstance(base, DictConfig)
    if suite.n_trials is not None:
        for family in base.sweep.families:
            base.sweep.families[family].n_trials = suite.n_trials
    fp = suite_fingerprint(base)
    folder = Path(suite.dir or Path(cfg.paths.root) / f"suite-{suite.name}")
    state = open_state(folder, suite.name, fp)
    experiment = cfg.tracking.experiment or f"suite-{suite.name}"
    plan = SuitePlan(cfg, base, folder, datasets, {}, state, fp.digest, experiment, config_yaml)
    assert isinstance(cfg.task, KeelTask)
    for name in datasets:
        _check_dataset(plan, name)
        plan.infos[name] = describe(name, cfg.task)
    return plan


def _check_dataset(plan: SuitePlan, dataset: str) -> None:
    """The data set's config validates, its plan builds (data, folds) and its studies, if they
    exist, were created by the same experiment: all before anything runs."""
    from regsearch.plan import make_plan
    from regsearch.search.identity import refuse_changed_resume

    typed, text = _dataset_config(plan, dataset, resume=True)
    try:
        make_plan(typed)
        refuse_changed_resume(typed, text)
    except ConfigError as err:
        raise ConfigError(f"suite data set {dataset!r}: {err}") from None


def _dataset_config(plan: SuitePlan, dataset: str, resume: bool) -> tuple[RegsearchConfig, str]:
    """The data set's sweep config: the suite's with its data set, folder and study names."""
    node = copy.deepcopy(plan.base)
    OmegaConf.update(node, "task.dataset", dataset)
    OmegaConf.update(node, "paths.root", str(plan.folder))
    OmegaConf.update(node, "search.study_name", plan.study(dataset))
    OmegaConf.update(node, "search.resume", resume)
    OmegaConf.update(node, "tracking.experiment", plan.experiment)
    try:
        typed = validate(node, check_files=True)
    except ConfigError as err:
        raise ConfigError(f"suite data set {dataset!r}: {err}") from None
    return typed, OmegaConf.to_yaml(node)


def run_suite(cfg: RegsearchConfig, config_yaml: str, *, echo: Echo | None = None) -> SuiteResult:
    """Run (or resume) the suite ``cfg.suite`` and write its folder and report.

    Args:
        cfg: A validated config with a ``suite`` section (``+experiment=suite``).
        config_yaml: Its resolved YAML (what ``compose_checked`` returns).
        echo: Where progress lines go (default: print them).

    Raises:
        ConfigError: Bad input, before anything is written.
        KeyboardInterrupt: Interrupted; the stores and ``suite.json`` are consistent and the
            same command resumes.
    """
    say = echo or _print
    plan = plan_suite(cfg, config_yaml)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # as a sweep: no line per study
    plan.state.data["shared_study"] = plan.shared_name  # where the workers' state is
    plan.state.save()
    shared = SharedState.open(cfg.search.storage, plan.shared_name, plan.state.data["settings"])
    run = SuiteRun.open(
        cfg.tracking,
        plan.experiment,
        plan.name,
        plan.state.data.get("mlflow_run_id"),
        {"suite.datasets": ",".join(plan.datasets), **plan.state.data["settings"]},
    )
    if run is not None:
        plan.state.data["mlflow_run_id"] = run.run_id
        plan.state.data["mlflow_uri"] = run.uri
        plan.state.data["mlflow_experiment_id"] = run.experiment_id
        plan.state.save()
    try:
        ran, skipped = _run_datasets(plan, shared, run, say)
        ran += [n for n in _read_finished_elsewhere(plan, shared, run, say) if n not in ran]
    except BaseException as stop:
        status = "KILLED" if isinstance(stop, KeyboardInterrupt) else "FAILED"
        try:  # the report of what did finish, and the MLflow run closed
            _finish(plan, run, status, [], [])
        except Exception as err:  # never hide the first error behind this one
            log.warning("suite report not written: %s", err)
        raise
    result = _finish(plan, run, "FINISHED", ran, skipped)
    say(_closing_line(result))
    return result


def _run_datasets(
    plan: SuitePlan, shared: SharedState, run: SuiteRun | None, say: Echo
) -> tuple[list[str], list[str]]:
    ran: list[str] = []
    skipped: list[str] = []
    start = time.perf_counter()
    for i, name in enumerate(plan.datasets, 1):
        head = f"[{i}/{len(plan.datasets)}] {name}"
        plan.state.reload()  # another process sharing this folder may have finished it
        if plan.state.done(name):
            skipped.append(name)
            say(f"{head}: done before ({plan.state.datasets[name].get('run_dir')}), not rerun")
            continue
        mark = shared.marks().get(name)
        if mark is not None:
            say(f"{head}: done by worker {mark.worker} ({mark.where}); reading it ...")
        else:
            say(f"{head}: {_info_text(plan.infos[name])}: running compare ...")
        seconds = _run_one(plan, shared, name, run)
        ran.append(name)
        total = time.perf_counter() - start
        say(f"{head}: {_outcome_text(plan, name)} ({seconds:.0f} s; suite {total / 60:.1f} min)")
    return ran, skipped


def _read_finished_elsewhere(
    plan: SuitePlan, shared: SharedState, run: SuiteRun | None, say: Echo
) -> list[str]:
    """Read the data sets other workers finished while this one ran the rest (their final
    phase outlasted this worker's wait); the last worker to finish has them all."""
    marks = shared.marks()
    todo = [n for n in plan.datasets if not plan.state.done(n) and n in marks]
    for name in todo:
        head = f"[{plan.datasets.index(name) + 1}/{len(plan.datasets)}] {name}"
        say(f"{head}: done by worker {marks[name].worker} ({marks[name].where}); reading it ...")
        seconds = _run_one(plan, shared, name, run)
        say(f"{head}: {_outcome_text(plan, name)} ({seconds:.0f} s)")
    return todo


def _run_one(plan: SuitePlan, shared: SharedState, name: str, run: SuiteRun | None) -> float:
    """Sweep one data set (or read it, when it is done); record where it went and whether
    it has its comparison, here and, when it does, in the shared storage."""
    from regsearch.suite.rounds import tune_in_rounds
    from regsearch.sweep import run_sweep

    # Always resume: the studies are created when missing and joined when an earlier run or
    # another machine made them (two machines creating one study at once are fine too).
    typed, yaml_text = _dataset_config(plan, name, resume=True)
    plan.state.mark(name, status="running", study=plan.study(name))
    start = time.perf_counter()
    try:
        result = run_sweep(typed, yaml_text, tune=tune_in_rounds)
    except KeyboardInterrupt:
        plan.state.mark(name, status="interrupted")
        raise
    seconds = time.perf_counter() - start
    done = _complete(result) and not result.interrupted
    run_dir = str(result.run_dir.relative_to(plan.folder))
    plan.state.mark(
        name,
        status="done" if done else "incomplete",
        run_dir=run_dir,
        wall_s=round(seconds, 1),
        trials=_tuning_trials(result.trials),
        final_by=result.summary.get("final_by"),
    )
    if done and name not in shared.marks():  # the first folder to have it (a fact: no race)
        shared.mark_done(DoneMark.here(name, plan.worker, str(plan.folder.resolve()), run_dir))
    mlflow = result.summary.get("mlflow") or {}
    if run is not None and mlflow.get("parent_run_id"):
        run.attach(str(mlflow["parent_run_id"]), name)
    return seconds


def _complete(result: SweepResult) -> bool:
    """Every family with a complete tuning trial has its candidate (not a final phase that
    another worker sharing the study is still recording), and so has the baseline."""
    found = result.comparison
    trials = result.trials
    tuned = trials.loc[(trials["phase"] == "tune") & (trials["state"] == "complete"), "family"]
    expected = {*map(str, tuned), "baseline"}
    return found is not None and {c.name for c in found.candidates} >= expected


def _tuning_trials(trials: pd.DataFrame) -> dict[str, int]:
    """Finished tuning trials per family, as the stores hold them (each family's budget)."""
    tuned = trials[trials["phase"] == "tune"]  # one row per member: count trial numbers
    counts = tuned.groupby("family", sort=False)["trial"].nunique()
    return {str(f): int(n) for f, n in counts.items()}


def collect_records(plan: SuitePlan, names: list[str] | None = None) -> pd.DataFrame:
    """The comparison records of the finished data sets (default: all of the suite's), read
    back from their run folders."""
    from regsearch.comparison import compare_sweep

    frames = []
    for name in plan.datasets if names is None else names:
        run_dir = plan.state.run_dir(name)
        if not plan.state.done(name) or run_dir is None:
            continue
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        trials = pd.read_csv(run_dir / "trials.csv")
        found = compare_sweep(trials, summary)
        if found is not None and found.baseline is not None:
            frames.append(records_frame(name, found))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _finish(
    plan: SuitePlan, run: SuiteRun | None, status: str, ran: list[str], skipped: list[str]
) -> SuiteResult:
    """Statistics, records table and report of what is finished; close the MLflow run."""
    from regsearch.suite.report import write_suite_report

    records = collect_records(plan)
    assert plan.cfg.suite is not None
    stats = (
        suite_stats(records, n_resamples=plan.cfg.suite.bootstrap, seed=plan.cfg.seed)
        if not records.empty
        else None
    )
    if not records.empty:
        records.to_csv(plan.folder / "records.csv", index=False)
    report = write_suite_report(plan, records, stats, run) if plan.cfg.report else None
    result = SuiteResult(plan.folder, plan.datasets, records, stats, report, ran, skipped)
    if run is not None:
        from regsearch.urls import browse_command

        result.mlflow_run_id = run.run_id
        port = plan.cfg.tracking.ui_port
        result.mlflow_command = browse_command(run.uri, run.experiment_id, port)
        files = [p for p in (report, plan.folder / "records.csv") if p is not None]
        run.close(status, _suite_metrics(stats), files)
    return result


def _suite_metrics(stats: SuiteStats | None) -> dict[str, float | None]:
    if stats is None:
        return {}
    metrics: dict[str, float | None] = {"datasets": float(len(stats.datasets))}
    for fam in stats.families:
        metrics.update(
            {
                f"{fam.name}.wins": float(fam.wins),
                f"{fam.name}.ties": float(fam.ties),
                f"{fam.name}.losses": float(fam.losses),
                f"{fam.name}.median_effect": fam.median,
                f"{fam.name}.p_holm": fam.p_holm,
                f"{fam.name}.avg_rank": fam.avg_rank,
            }
        )
    return metrics


def _info_text(info: DatasetInfo) -> str:
    rows = (
        f"{info.rows:,} rows" if info.used == info.rows else f"{info.used:,} of {info.rows:,} rows"
    )
    return f"{rows}, {info.features} features, {info.classes} classes"


def _outcome_text(plan: SuitePlan, name: str) -> str:
    entry = plan.state.datasets.get(name, {})
    if entry.get("status") != "done":
        return "no comparison yet (its final phase ran elsewhere or failed); rerun to read it"
    records = collect_records(plan, [name])
    others = records[~records["baseline"]]
    chosen = others[others["recommended"].astype(bool)]
    tier = str(others["tier"].iloc[0]) if not others.empty else "none"
    if not chosen.empty:
        row = chosen.iloc[0]
        return f"{tier}: {row['candidate']} ({row['metric']} {row['effect']:+.3g})"
    return f"{tier}: keep the baseline"


def _closing_line(result: SuiteResult) -> str:
    from regsearch.suite.verdict import suite_sentence

    lines = [f"suite: {result.folder}/"]
    if result.report is not None:
        lines.append(f"  report: {result.report}")
    if result.mlflow_run_id is not None and result.mlflow_command:
        lines.append(f"browse:  {result.mlflow_command}")
    if result.stats is not None:
        lines.append(f"verdict: {suite_sentence(result.stats)}")
    return "\n".join(lines)


def _print(line: str) -> None:
    print(line, flush=True)
