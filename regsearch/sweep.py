"""One sweep end to end: the wiring of plan, tuning, final phase, recorder and outputs.

This is the only module that knows every layer; each phase lives in a module of its own
(:mod:`regsearch.plan`, :mod:`regsearch.search.study`, :mod:`regsearch.final`,
:mod:`regsearch.outputs`), and this one passes plain data between them. The Hydra entry point
(``regsearch.__main__``) calls :func:`run_sweep` with a validated config.
"""

from __future__ import annotations

import functools
import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import torch

from regsearch.clock import Clock
from regsearch.config import ConfigError, FamilyConfig, RegsearchConfig, SearchConfig
from regsearch.final import run_final_phase
from regsearch.fingerprint import Fingerprint
from regsearch.outputs import (
    SweepResult,
    flat_params,
    make_run_dir,
    static_summary,
    write_json,
    write_outputs,
)
from regsearch.plan import Plan, make_plan
from regsearch.provenance import provenance
from regsearch.recorder import Recorder, RecorderError, TrackingTarget, recorder_for
from regsearch.records import RunSummary
from regsearch.search.claims import Claim
from regsearch.search.identity import refuse_other_experiment, remember, study_fingerprint
from regsearch.search.space import SearchSpace
from regsearch.search.storage import get_storage
from regsearch.search.streams import family_seed, shared_log_values
from regsearch.search.study import (
    StudyRun,
    Tuning,
    create_or_load,
    enqueue_grid,
    make_pruner,
    make_sampler,
    run_studies,
)
from regsearch.search.working import WorkingStudy, worker_seed
from regsearch.tracking import owner_tags

__all__ = ["SweepResult", "run_sweep"]

log = logging.getLogger(__name__)


def _study_base(plan: Plan, stamp: str) -> str:
    search = plan.cfg.search
    if search.study_name:
        return search.study_name
    prefix = f"{plan.sweep_name}-{plan.task.name}"
    if not search.resume:
        # Two sweeps started in one second must not share a study: a short random suffix.
        return f"{prefix}-{stamp}-{uuid.uuid4().hex[:4]}"
    names = [s.study_name for s in get_storage(search.storage).get_all_studies()]
    bases = sorted({n.split(".", 1)[0] for n in names if n.startswith(f"{prefix}-")})
    if not bases:
        raise ConfigError(
            f"search.resume=true: no {prefix} study in {search.storage} to resume; "
            "drop search.resume or name one with search.study_name"
        )
    return bases[-1]


#: Tunes every family's study (``_tune``'s signature): the suite passes its own
#: (:func:`regsearch.suite.rounds.tune_in_rounds`, an exact budget across workers).
TuneFn = Callable[[Plan, dict[str, WorkingStudy], Recorder, Clock], None]


def run_sweep(
    cfg: RegsearchConfig,
    config_yaml: str,
    recorder: Recorder | None = None,
    tune: TuneFn | None = None,
) -> SweepResult:
    """Run the sweep described by ``cfg`` and write its run folder.

    ``recorder``: one already started for ``cfg`` (:func:`~regsearch.recorder.recorder_for`),
    which this call then owns and closes; by default one is started here. ``tune``: what
    tunes the families (default: :func:`_tune`); it leaves in each working study's ``study``
    the trials the final phase chooses from.

    Raises:
        ConfigError: Bad data or a study that cannot be created/resumed; raised before either
            store is written.
        KeyboardInterrupt: After both stores were closed consistently and partial results written.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says enough
    # The recorder starts first: its imports (Optuna's storage, MLflow: seconds) then overlap
    # the plan, the stores' set-up and the first batch. It writes nothing before it is started.
    recorder = recorder or recorder_for(cfg)
    try:
        return _sweep(cfg, config_yaml, recorder, tune or _tune)
    finally:
        recorder.close()  # a no-op after finish(); after a refusal it stops the unused recorder


def _sweep(cfg: RegsearchConfig, config_yaml: str, recorder: Recorder, tune: TuneFn) -> SweepResult:
    plan = make_plan(cfg)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    clock = Clock()
    base_name = _study_base(plan, stamp)
    with clock("open_stores"):
        working, studies = _open_all(plan, base_name, study_fingerprint(config_yaml))
    run_dir = make_run_dir(Path(cfg.paths.root) / f"{plan.sweep_name}-{plan.task.name}", stamp)
    (run_dir / "config.yaml").write_text(config_yaml)
    # Everything that can be refused was checked above; from here on both stores are written,
    # by the recorder process, while this one trains.
    static = static_summary(plan, studies)
    origin = provenance(plan.device)
    static["provenance"] = origin.as_dict()
    write_json(run_dir / "summary.json", {**static, "partial": True})
    _start_run(recorder, plan, stamp, base_name, run_dir, config_yaml, origin.tags())
    start = time.perf_counter()
    status, interrupted = "FAILED", False
    result: SweepResult | None = None
    restore_signals = _stop_signals_as_interrupt()
    try:
        phases = _run_phases(plan, working, studies, recorder, clock, run_dir, tune)
        status, interrupted, final_by = phases
        static["final_by"] = _final_by(final_by)
        try:
            with clock("recorder_wait"):
                state = recorder.flush()  # the outputs are read back from the stores
        except RecorderError:
            status = "FAILED"
            raise
        static["mlflow"] = _mlflow_block(recorder, cfg.tracking.ui_port)
        static["duration_s"] = round(time.perf_counter() - start, 2)
        static["timings"] = clock.totals()
        static["recorded_trials"] = state.written
        result = write_outputs(plan, studies, static, run_dir, interrupted)
    finally:
        _close_recorder(recorder, status, result, run_dir)
        restore_signals()
    if interrupted:
        raise KeyboardInterrupt(base_name)
    assert result is not None
    return result


def _open_all(
    plan: Plan, base_name: str, fp: Fingerprint
) -> tuple[dict[str, WorkingStudy], dict[str, optuna.Study]]:
    """The working studies of the families, and every durable study (``final`` included).

    A study that exists must have been created by the same experiment (``fp``): checked for
    all of them before any is opened, since opening one closes its stale trials (a write).
    """
    names = {
        f: (base_name if len(plan.families) == 1 else f"{base_name}.{f}") for f in plan.families
    }
    refuse_other_experiment(plan.cfg.search.storage, base_name, fp)
    working = _open_studies(plan, names, fp)
    studies = {family: w.durable for family, w in working.items()}
    assert plan.cfg.sweep is not None
    searched = any(f.params for f in plan.families.values()) and plan.cfg.sweep.final_seeds > 0
    if plan.final_candidates_known or searched:
        # Every sweep that searched something ends with its best and the unregularized
        # baseline retrained side by side on fresh seeds: that is what the verdict rests on.
        studies["final"] = _open_final(plan, f"{base_name}.final")
        remember(studies["final"], fp)
    return working, studies


def _start_run(
    recorder: Recorder,
    plan: Plan,
    stamp: str,
    base_name: str,
    run_dir: Path,
    config_yaml: str,
    provenance_tags: dict[str, str],
) -> None:
    recorder.start(  # only queued: nothing here can fail before the caller's try closes it
        _tracking_target(plan.cfg, plan),
        run_name=f"{plan.sweep_name}-{plan.task.name}-{stamp}",
        params=flat_params(config_yaml),
        tags={
            "regsearch.sweep": plan.sweep_name,
            "regsearch.study": base_name,
            "regsearch.run_dir": f"{run_dir.resolve()} on {socket.gethostname()}",
            **owner_tags(),  # lets a later sweep close this run if this process dies
            **provenance_tags,
        },
        config_yaml=config_yaml,
    )


def _run_phases(
    plan: Plan,
    working: dict[str, WorkingStudy],
    studies: dict[str, optuna.Study],
    recorder: Recorder,
    clock: Clock,
    run_dir: Path,
    tune: TuneFn,
) -> tuple[str, bool, Claim | None]:
    """Tuning, then the final phase; (MLflow status, interrupted, the claim of the other
    worker that ran the final phase, if one did)."""
    held = None
    try:
        tune(plan, working, recorder, clock)
        if "final" in studies:
            tuned = {family: w.study for family, w in working.items()}
            where = f"{run_dir.resolve()} on {socket.gethostname()}"
            with clock("final"):
                held = run_final_phase(plan, tuned, studies["final"], recorder.record, where)
    except KeyboardInterrupt:
        return "KILLED", True, held
    return "FINISHED", False, held


def _final_by(held: Claim | None) -> dict[str, str] | None:
    """Who ran the final phase, when another worker did: its run folder has the verdict."""
    if held is None:
        return None
    return {"worker": held.worker, "host": held.host, "where": held.where, "since": held.since}


def _stop_signals_as_interrupt() -> Callable[[], None]:
    """Handle SIGTERM and SIGHUP (a scheduler cancelling the job, a closed terminal) like
    Ctrl-C: the stores are flushed, the parent run closed KILLED and the resume command printed.

    A repeat of either signal is ignored while that happens. Returns what restores the previous
    handlers; outside the main thread (where Python cannot handle signals) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    stops = (signal.SIGTERM, signal.SIGHUP)

    def interrupt(signum: int, _frame: object) -> None:
        for s in stops:
            signal.signal(s, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, interrupt) for s in stops}

    def restore() -> None:
        for s, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be put back
                signal.signal(s, handler)

    return restore


def _close_recorder(
    recorder: Recorder, status: str, result: SweepResult | None, run_dir: Path
) -> None:
    """Close the parent run with the best values and the artifacts, and stop the recorder."""
    best = (result.summary.get("best") if result else None) or {}
    try:
        recorder.finish(
            RunSummary(
                status,
                metrics=dict(best.get("metrics") or {}),
                params=dict(best.get("params") or {}),
                artifacts=(run_dir / "report.html", run_dir / "trials.csv"),
                tags=_verdict_tags(result),
            )
        )
    except RecorderError as err:  # finish() stops the recorder either way
        log.warning("%s", err)  # already raised by the flush, or MLflow-only


def _verdict_tags(result: SweepResult | None) -> dict[str, str]:
    """The verdict on the parent run, so MLflow's search finds it (``tags.regsearch.tier``)."""
    found = result.comparison if result is not None else None
    if found is None:
        return {}
    chosen = found.recommended
    params = found.candidate(chosen).params if chosen else {}
    return {
        "regsearch.verdict": found.verdict,
        "regsearch.tier": found.tier,
        "regsearch.recommended": chosen or "baseline",
        "regsearch.recommended_params": ", ".join(f"{k}={v}" for k, v in params.items()),
    }


def _tracking_target(cfg: RegsearchConfig, plan: Plan) -> TrackingTarget | None:
    if cfg.tracking.backend == "none":
        return None
    return TrackingTarget(
        cfg.tracking.uri, cfg.tracking.artifact_root, cfg.tracking.experiment or plan.task.name
    )


def _mlflow_block(recorder: Recorder, ui_port: int) -> dict[str, Any] | None:
    """Where the sweep's MLflow runs are, for the summary and the report."""
    if not recorder.state.parent_run_id:
        return None
    return {
        "uri": recorder.uri,
        "ui_port": ui_port,
        "experiment_id": recorder.state.experiment_id,
        "parent_run_id": recorder.state.parent_run_id,
        "runs": recorder.state.runs,  # the report keeps those it links (report.runs)
    }


def _open_studies(plan: Plan, names: dict[str, str], fp: Fingerprint) -> dict[str, WorkingStudy]:
    """Each family's durable study (created or resumed) and its in-memory working copy."""
    search = plan.cfg.search
    worker = plan.worker
    studies = {}
    for family, fam in plan.families.items():
        space = SearchSpace(dict(fam.params))
        pruner = make_pruner(search, plan.schedule.max_epochs, plan.schedule.eval_every)
        explicit = bool(search.study_name) and len(plan.families) == 1
        durable, created = create_or_load(
            names[family],
            search.storage,
            plan.objective,
            make_sampler(search, plan.cfg.seed, space),
            pruner,
            resume=search.resume,
            must_be_new=explicit and not search.resume,
        )
        remember(durable, fp)  # at once: a worker joining a moment later checks it
        # The worker that creates a study samples with `seed` (a lone sweep is reproducible);
        # each one joining it (resume, other workers) with a stream of its own. Several
        # families: a stream per family and task (regsearch.search.streams).
        stream = plan.cfg.seed
        if len(plan.families) > 1:
            stream = family_seed(plan.cfg.seed, plan.task.name, family)
        seed = stream if created else worker_seed(stream, worker)
        sampler = make_sampler(search, seed, space)
        storage = get_storage(search.storage)
        # Keyed by what the sweep is, not by its (time-stamped) study name: Hyperband's
        # brackets hash the name, and a rerun with the same seed must prune the same trials.
        key = f"{plan.sweep_name}-{plan.task.name}.{family}"
        studies[family] = WorkingStudy(durable, storage, sampler, pruner, worker=worker, key=key)
        log.info("study %s: worker %s, sampler seed %d", durable.study_name, worker, seed)
        if search.sampler == "grid":
            # Enqueued in memory only: no WAITING trial is ever left in the durable storage.
            # Each worker walks the grid in its own order.
            enqueue_grid(studies[family].study, space, search.grid_points, seed, fam.n_trials)
        elif created and len(plan.families) > 1 and "lr" in fam.params:
            _enqueue_shared_lr(studies[family], fam, plan)
    return studies


def _enqueue_shared_lr(study: WorkingStudy, fam: FamilyConfig, plan: Plan) -> None:
    """The start-up trials of every family at the same learning rates (common random
    numbers; in memory only, like the grid), the rest of each trial left to its sampler."""
    lr = fam.params["lr"]
    assert lr.low is not None and lr.high is not None
    n = min(plan.cfg.search.n_startup_trials, fam.n_trials)
    for value in shared_log_values(lr.low, lr.high, n, plan.cfg.seed):
        study.study.enqueue_trial({"lr": value})


def _tune(plan: Plan, studies: dict[str, WorkingStudy], recorder: Recorder, clock: Clock) -> None:
    """Tune each family's study: on an accelerator all at once (each round's trials of every
    family share one engine call), on a CPU one family after another.

    Together only where it pays: an accelerator step is launch-bound, about as fast for 40
    moons members as for thousands (benchmarks/README.md, H100 table), while one CPU core is
    compute-bound from ~40 moons members, and compare's tuning measured slower with the
    families together (8.3-9.5 s against 6.2-7.7 s; mixed kinds of members split the stacks).
    Either way each study asks and tells as it would alone.
    """
    search = plan.cfg.search
    seeds = [plan.cfg.seed + r for r in range(search.repeats)]
    runs = [
        StudyRun(
            studies[family],
            SearchSpace(dict(fam.params)),
            n_trials=_budget(fam, search),
            family=family,
            build_members=lambda key, values: plan.members(key, values, seeds),
            on_batch=functools.partial(recorder.record, studies[family].name),
        )
        for family, fam in plan.families.items()
    ]
    tuning = Tuning(
        population=search.population,
        objective=plan.objective,
        train=plan.train,
        pruning=search.pruner != "none",
        report_every=search.report_every,
        timeout=search.timeout,
        progress=plan.cfg.progress,
        clock=clock,
    )
    groups = [runs] if plan.device != "cpu" else [[run] for run in runs]
    for group in groups:
        run_studies(group, tuning)


def _budget(fam: FamilyConfig, search: SearchConfig) -> int:
    """Trials to run: a grid never runs past its size."""
    if search.sampler != "grid":
        return fam.n_trials
    return min(fam.n_trials, SearchSpace(dict(fam.params)).grid_size(search.grid_points))


def _open_final(plan: Plan, name: str) -> optuna.Study:
    """The study holding re-evaluations on fresh seeds (compare) or fixed settings (experiments)."""
    study, _ = create_or_load(
        name,
        plan.cfg.search.storage,
        plan.objective,
        optuna.samplers.RandomSampler(seed=plan.cfg.seed),
        optuna.pruners.NopPruner(),
        resume=True,  # a resumed sweep keeps the candidates it already re-evaluated
        must_be_new=False,
    )
    return study
