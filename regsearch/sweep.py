"""One sweep end to end: data, study, engine, tracking, results and report.

This is the only module that knows every layer; it wires them with plain data so each layer
stays testable on its own. The Hydra entry point (``regsearch.__main__``) calls
:func:`run_sweep` with a validated config.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import torch
from optuna.trial import TrialState

from regsearch.clock import Clock
from regsearch.config import ConfigError, FamilyConfig, RegsearchConfig, SearchConfig
from regsearch.engine import Hyperparams, Member, MemberResult, OnEpoch, Schedule, resolve_engine
from regsearch.models import ModelSpec
from regsearch.recorder import Recorder, RecorderError, TrackingTarget
from regsearch.results import curves_frame, studies_phases, summarize, trials_frame
from regsearch.search.space import SearchSpace, apply_params, base_hparams
from regsearch.search.study import (
    Objective,
    TrialOutcome,
    enqueue_grid,
    get_storage,
    make_pruner,
    make_sampler,
    member_record,
    open_study,
    run_trials,
)
from regsearch.search.working import WorkingStudy
from regsearch.tasks import TaskData, load_task

__all__ = ["SweepResult", "run_sweep"]

log = logging.getLogger(__name__)
FINAL_SEED_OFFSET = 1000  # compare's fresh seeds start here, far from the tuning seeds


@dataclass
class SweepResult:
    """What a finished (or interrupted) sweep produced."""

    run_dir: Path
    study_names: list[str]
    trials: pd.DataFrame
    summary: dict[str, Any]
    interrupted: bool = False
    files: dict[str, Path] = field(default_factory=dict)


@dataclass
class _Plan:
    """Everything fixed before the first trial."""

    cfg: RegsearchConfig
    task: TaskData
    spec: ModelSpec
    schedule: Schedule
    base: Hyperparams
    objective: Objective
    engine_name: str
    device: str
    families: dict[str, FamilyConfig]  # tuned one study each
    sweep_name: str
    settings: dict[str, dict[str, Any]]  # fixed named settings (experiment presets)

    @property
    def final_candidates_known(self) -> bool:
        """True for experiments: the candidates are given, nothing is tuned."""
        return bool(self.settings)

    def train(self, members: list[Member], on_epoch: OnEpoch | None = None) -> list[MemberResult]:
        _, engine = resolve_engine(self.cfg.engine)
        return engine(
            self.task,
            self.spec,
            members,
            schedule=self.schedule,
            on_epoch=on_epoch,
            device=self.device,
        )

    def members(self, trial: int, values: dict[str, Any], seeds: list[int]) -> list[Member]:
        hp = apply_params(self.base, values, len(self.spec.hidden))
        return [Member(trial=trial, seed=s, hparams=hp, repeat=r) for r, s in enumerate(seeds)]


def resolve_device(name: str) -> str:
    """``device=auto`` picks CUDA when present; asking for CUDA without one is a config error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda': no CUDA device is available here; use device=auto or cpu")
    return name


def _plan(cfg: RegsearchConfig) -> _Plan:
    assert cfg.sweep is not None
    task = load_task(cfg.task)
    engine_name, _ = resolve_engine(cfg.engine)
    n_hidden = len(cfg.model.hidden)
    spec = ModelSpec(
        in_features=task.n_features,
        out_features=task.n_outputs,
        hidden=tuple(cfg.model.hidden),
        activation=cfg.model.activation,
        bias=cfg.model.bias,
        bn_momentum=cfg.model.bn_momentum,
        bn_eps=cfg.model.bn_eps,
        init=cfg.model.init,
        init_std=cfg.model.init_std,
    )
    t = cfg.train
    schedule = Schedule(
        optimizer=t.optimizer,
        betas=(t.betas[0], t.betas[1]),
        eps=t.eps,
        batch_size=t.batch_size,
        max_epochs=t.max_epochs,
        eval_every=t.eval_every,
        decay_all=t.decay_all,
        restore_best=t.restore_best,
        order_seed=cfg.seed,
    )
    settings = {k: dict(v) for k, v in cfg.sweep.settings.items()}
    families = dict(cfg.sweep.families)
    if not families and (cfg.sweep.params or not settings):
        single = FamilyConfig(params=dict(cfg.sweep.params), n_trials=cfg.search.n_trials)
        families = {cfg.sweep.name: single}
    for fam in families.values():
        for name in fam.params:
            if name.startswith("dropout_") and int(name.split("_")[1]) > n_hidden:
                raise ConfigError(
                    f"sweep.params.{name}: the model has {n_hidden} hidden layers "
                    f"(dropout_1..dropout_{n_hidden})"
                )
            if name == "dropout" and n_hidden == 0:
                raise ConfigError(
                    "sweep.params.dropout: the model has no hidden layer to drop (model.hidden=[])"
                )
    return _Plan(
        cfg=cfg,
        task=task,
        spec=spec,
        schedule=schedule,
        base=base_hparams(cfg),
        objective=Objective.from_config(cfg.search, task.is_classification),
        engine_name=engine_name,
        device=resolve_device(cfg.device),
        families=families,
        sweep_name=cfg.sweep.name,
        settings=settings,
    )


def _run_dir(root: Path, stamp: str) -> Path:
    path = root / stamp
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{stamp}-{suffix}"
    path.mkdir(parents=True)
    return path


def _study_base(plan: _Plan, stamp: str) -> str:
    search = plan.cfg.search
    if search.study_name:
        return search.study_name
    prefix = f"{plan.sweep_name}-{plan.task.name}"
    if not search.resume:
        return f"{prefix}-{stamp}"
    names = [s.study_name for s in get_storage(search.storage).get_all_studies()]
    bases = sorted({n.split(".", 1)[0] for n in names if n.startswith(f"{prefix}-")})
    if not bases:
        raise ConfigError(
            f"search.resume=true: no {prefix} study in {search.storage} to resume; "
            "drop search.resume or name one with search.study_name"
        )
    return bases[-1]


def _check_storage(search_storage: str, resume: bool) -> None:
    """Refuse to resume from a sqlite file that does not exist (opening it would create it)."""
    if resume and search_storage.startswith("sqlite:///"):
        path = Path(search_storage[len("sqlite:///") :])
        if not path.exists():
            raise ConfigError(f"search.storage={search_storage!r}: no such database to resume from")


def run_sweep(cfg: RegsearchConfig, config_yaml: str) -> SweepResult:
    """Run the sweep described by ``cfg`` and write its run folder.

    Raises:
        ConfigError: Bad data or a study that cannot be created/resumed; raised before either
            store is written.
        KeyboardInterrupt: After both stores were closed consistently and partial results written.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the progress bar says enough
    plan = _plan(cfg)
    _check_storage(cfg.search.storage, cfg.search.resume)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base_name = _study_base(plan, stamp)
    names = {
        f: (base_name if len(plan.families) == 1 else f"{base_name}.{f}") for f in plan.families
    }
    clock = Clock()
    with clock("open_stores"):
        working = _open_studies(plan, names)
        studies = {family: w.durable for family, w in working.items()}
        assert cfg.sweep is not None
        searched = any(f.params for f in plan.families.values()) and cfg.sweep.final_seeds > 0
        if plan.final_candidates_known or searched:
            # Every sweep that searched something ends with its best and the unregularized
            # baseline retrained side by side on fresh seeds: that is what the verdict rests on.
            studies["final"] = _open_final(plan, f"{base_name}.final")
    run_dir = _run_dir(Path(cfg.paths.root) / f"{plan.sweep_name}-{plan.task.name}", stamp)
    (run_dir / "config.yaml").write_text(config_yaml)
    # Everything that can be refused was checked above; from here on both stores are written,
    # by the recorder process, while this one trains.
    static = _static_summary(plan, studies)
    _write_json(run_dir / "summary.json", {**static, "partial": True})
    parent_params = _flat_params(config_yaml)
    recorder = Recorder(cfg.search.storage, _tracking_target(cfg, plan))
    recorder.start(  # only queued: nothing here can fail before the try below closes it
        run_name=f"{plan.sweep_name}-{plan.task.name}-{stamp}",
        params=parent_params,
        tags={
            "regsearch.sweep": plan.sweep_name,
            "regsearch.study": base_name,
            "regsearch.run_dir": str(run_dir),
        },
        config_yaml=config_yaml,
    )
    start = time.perf_counter()
    status, interrupted = "FAILED", False
    result: SweepResult | None = None
    try:
        try:
            _tune(plan, working, recorder, clock)
            if "final" in studies:
                tuned = {family: w.study for family, w in working.items()}
                _final_phase(plan, tuned, studies["final"], recorder, clock)
            status = "FINISHED"
        except KeyboardInterrupt:
            status, interrupted = "KILLED", True
        try:
            with clock("recorder_wait"):
                state = recorder.flush()  # the outputs are read back from the stores
        except RecorderError:
            status = "FAILED"
            raise
        static["mlflow"] = _mlflow_block(recorder)
        static["duration_s"] = round(time.perf_counter() - start, 2)
        static["timings"] = clock.totals()
        static["recorded_trials"] = state.written
        result = _write_outputs(plan, studies, static, run_dir, interrupted)
    finally:
        best = result.summary.get("best") if result else None
        try:
            recorder.finish(
                status,
                metrics={k: v for k, v in ((best or {}).get("metrics") or {}).items()},
                params=(best or {}).get("params") or {},
                artifacts=[run_dir / "report.html", run_dir / "trials.csv"],
            )
        except RecorderError as err:  # finish() stops the recorder either way
            log.warning("%s", err)  # already raised by the flush above, or MLflow-only
    if interrupted:
        raise KeyboardInterrupt(base_name)
    assert result is not None
    return result


def _tracking_target(cfg: RegsearchConfig, plan: _Plan) -> TrackingTarget | None:
    if cfg.tracking.backend == "none":
        return None
    return TrackingTarget(
        cfg.tracking.uri, cfg.tracking.artifact_root, cfg.tracking.experiment or plan.task.name
    )


def _mlflow_block(recorder: Recorder) -> dict[str, Any] | None:
    """Where the sweep's MLflow runs are, for the summary and the report."""
    if not recorder.state.parent_run_id:
        return None
    return {
        "uri": recorder.uri,
        "experiment_id": recorder.state.experiment_id,
        "parent_run_id": recorder.state.parent_run_id,
    }


def _open_studies(plan: _Plan, names: dict[str, str]) -> dict[str, WorkingStudy]:
    """Each family's durable study (created or resumed) and its in-memory working copy."""
    search = plan.cfg.search
    studies = {}
    for family, fam in plan.families.items():
        space = SearchSpace(dict(fam.params))
        sampler = make_sampler(search, plan.cfg.seed, space)
        pruner = make_pruner(search, plan.schedule.max_epochs, plan.schedule.eval_every)
        explicit = bool(search.study_name) and len(plan.families) == 1
        durable = open_study(
            names[family],
            search.storage,
            plan.objective,
            sampler,
            pruner,
            resume=search.resume,
            must_be_new=explicit and not search.resume,
        )
        studies[family] = WorkingStudy(durable, sampler, pruner)
        if search.sampler == "grid":
            # Enqueued in memory only: no WAITING trial is ever left in the durable storage.
            enqueue_grid(
                studies[family].study, space, search.grid_points, plan.cfg.seed, fam.n_trials
            )
    return studies


def _tune(plan: _Plan, studies: dict[str, WorkingStudy], recorder: Recorder, clock: Clock) -> None:
    search = plan.cfg.search
    seeds = [plan.cfg.seed + r for r in range(search.repeats)]
    for family, fam in plan.families.items():
        run_trials(
            studies[family],
            SearchSpace(dict(fam.params)),
            n_trials=_budget(fam, search),
            population=search.population,
            objective=plan.objective,
            build_members=lambda n, v: plan.members(n, v, seeds),
            train=plan.train,
            on_batch=functools.partial(recorder.record, studies[family].name),
            family=family,
            pruning=search.pruner != "none",
            report_every=search.report_every,
            timeout=search.timeout,
            progress=plan.cfg.progress,
            clock=clock,
        )


def _budget(fam: FamilyConfig, search: SearchConfig) -> int:
    """Trials to run: a grid never runs past its size."""
    if search.sampler != "grid":
        return fam.n_trials
    return min(fam.n_trials, SearchSpace(dict(fam.params)).grid_size(search.grid_points))


def _open_final(plan: _Plan, name: str) -> optuna.Study:
    """The study holding re-evaluations on fresh seeds (compare) or fixed settings (experiments)."""
    return open_study(
        name,
        plan.cfg.search.storage,
        plan.objective,
        optuna.samplers.RandomSampler(seed=plan.cfg.seed),
        optuna.pruners.NopPruner(),
        resume=True,  # a resumed sweep keeps the candidates it already re-evaluated
        must_be_new=False,
    )


def _candidates(plan: _Plan, studies: dict[str, optuna.Study]) -> dict[str, dict[str, Any]]:
    """Name → parameter values to re-evaluate: fixed settings, or each family's best + baseline."""
    if plan.final_candidates_known:
        return {name: dict(values) for name, values in plan.settings.items()}
    candidates: dict[str, dict[str, Any]] = {"baseline": {}}
    for family, study in studies.items():
        best = _best_frozen(study, plan.objective) if family != "final" else None
        if best is not None:
            candidates[family] = dict(best.params)
    return candidates


def _final_phase(
    plan: _Plan,
    tuned: dict[str, optuna.Study],
    final: optuna.Study,
    recorder: Recorder,
    clock: Clock,
) -> None:
    """Train every candidate on the same fresh seeds, side by side, in one engine call."""
    assert plan.cfg.sweep is not None
    done = {t.user_attrs.get("family") for t in final.get_trials(deepcopy=False)}
    todo = {k: v for k, v in _candidates(plan, tuned).items() if k not in done}
    if not todo:
        return
    seeds = [plan.cfg.seed + FINAL_SEED_OFFSET + k for k in range(plan.cfg.sweep.final_seeds)]
    members: list[Member] = []
    for i, values in enumerate(todo.values()):
        members.extend(plan.members(i, values, seeds))
    log.info("retraining %d candidates on %d fresh seeds", len(todo), len(seeds))
    with clock("train"):
        results = plan.train(members)
    pairs = []
    for i, (name, values) in enumerate(todo.items()):
        mine = [r for r in results if r.member.trial == i]
        pairs.append(_final_trial(plan.objective, name, values, mine))
    recorder.record(final.study_name, pairs)


def _best_frozen(study: optuna.Study, objective: Objective) -> optuna.trial.FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None
    sign = -1.0 if objective.directions[0] == "maximize" else 1.0
    return min(complete, key=lambda t: sign * t.values[0])


def _fixed(value: Any) -> optuna.distributions.BaseDistribution:
    """A one-point distribution, so a fixed value can be stored as an Optuna param."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return optuna.distributions.CategoricalDistribution([value])
    if isinstance(value, int):
        return optuna.distributions.IntDistribution(value, value)
    return optuna.distributions.FloatDistribution(value, value)


def _final_trial(
    objective: Objective,
    name: str,
    values: dict[str, Any],
    results: list[MemberResult],
) -> tuple[optuna.trial.FrozenTrial, TrialOutcome]:
    """One re-evaluated candidate as a finished trial (numbered when the recorder writes it)."""
    failed = [r for r in results if r.state != "complete"]
    scores = None if failed else objective.values(results)
    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL if failed else optuna.trial.TrialState.COMPLETE,
        values=scores,
        params=values,
        distributions={k: _fixed(v) for k, v in values.items()},
        user_attrs={"family": name, "members": [member_record(r) for r in results]},
    )
    error = failed[0].error if failed else ""
    state = "failed" if failed else "complete"
    outcome = TrialOutcome(-1, values, state, scores, results, name, phase="final", error=error)
    return trial, outcome


def _columns(plan: _Plan) -> tuple[list[str], list[str]]:
    cols: list[str] = []
    logs: list[str] = []
    for fam in plan.families.values():
        space = SearchSpace(dict(fam.params))
        cols.extend(c for c in space.columns if c not in cols)
        logs.extend(c for c in space.log_params if c not in logs)
    for values in plan.settings.values():
        cols.extend(c for c in values if c not in cols)
    return cols, logs


def _static_summary(plan: _Plan, studies: dict[str, optuna.Study]) -> dict[str, Any]:
    """What is fixed when the sweep starts; results.summarize adds the rest."""
    params, log_params = _columns(plan)
    return {
        "title": f"{plan.sweep_name} on {plan.task.name}",
        "sweep": plan.sweep_name,
        "task": plan.task.name,
        "description": plan.cfg.sweep.description if plan.cfg.sweep else "",
        "kind": plan.task.kind,
        "metric": plan.objective.metrics[0],
        "direction": plan.objective.directions[0],
        "params": params,
        "log_params": log_params,
        "studies": {key: s.study_name for key, s in studies.items()},
        "study_name": ", ".join(s.study_name for s in studies.values()),
        "storage": plan.cfg.search.storage,
        "storage_resolved": _absolute_sqlite(plan.cfg.search.storage),
        "mlflow": None,  # filled in once the recorder has opened the parent run
        "engine": plan.engine_name,
        "device": plan.device,
        "duration_s": 0.0,
    }


def _absolute_sqlite(url: str) -> str:
    """A relative sqlite URL made absolute, so the run folder can be reopened from anywhere."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        return prefix + str(Path(url[len(prefix) :]).resolve())
    return url


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)  # a report rebuilt mid-run never reads half a file


def _write_outputs(
    plan: _Plan,
    studies: dict[str, optuna.Study],
    static: dict[str, Any],
    run_dir: Path,
    partial: bool,
) -> SweepResult:
    phases = studies_phases(studies)
    classification = plan.task.is_classification
    frame = trials_frame(phases, static["params"], classification)
    curves = curves_frame(phases, classification)
    for name, table in (("trials", frame), ("curves", curves)):
        table.to_csv(run_dir / f"{name}.csv", index=False)
        table.to_parquet(run_dir / f"{name}.parquet", index=False)  # typed, for pandas users
    summary = summarize({**static, "partial": partial}, frame)
    _write_json(run_dir / "summary.json", summary)
    files = {
        "config": run_dir / "config.yaml",
        "trials": run_dir / "trials.csv",
        "curves": run_dir / "curves.csv",
        "summary": run_dir / "summary.json",
    }
    if plan.cfg.report and plan.task.n_features == 2 and plan.task.n_classes == 2:
        files["boundaries"] = _write_boundaries(plan, studies, summary, run_dir)
    if plan.cfg.report:
        from regsearch.report import write_report

        config_text = (run_dir / "config.yaml").read_text()
        tuned = {k: s for k, s in studies.items() if k != "final"}
        files["report"] = write_report(
            run_dir, frame, summary, config_text, curves=curves, studies=tuned
        )
    names = [s.study_name for s in studies.values()]
    return SweepResult(run_dir, names, frame, summary, partial, files)


def _write_boundaries(
    plan: _Plan, studies: dict[str, optuna.Study], summary: dict[str, Any], run_dir: Path
) -> Path:
    """Decision-boundary grids of the candidates (2-D tasks): retrained once on one seed."""
    from regsearch.boundaries import boundary_grids, save_boundaries

    if "final" in studies:
        seed = plan.cfg.seed + FINAL_SEED_OFFSET
        complete = studies["final"].get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        chosen = {t.user_attrs.get("family", str(t.number)): dict(t.params) for t in complete}
    else:
        seed = plan.cfg.seed
        best = summary.get("best")
        chosen = {"baseline": {}, **({"best": dict(best["params"])} if best else {})}
    members = {name: plan.members(0, values, [seed])[0] for name, values in chosen.items()}
    grids = boundary_grids(plan.task, plan.spec, plan.schedule, members)
    return save_boundaries(run_dir / "boundaries.npz", grids)


def _flat_params(config_yaml: str) -> dict[str, Any]:
    """The resolved config as dotted keys, for the parent run's params."""
    import yaml

    def walk(node: Any, prefix: str) -> dict[str, Any]:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for k, v in node.items():
                out.update(walk(v, f"{prefix}{k}."))
            return out
        return {prefix[:-1]: node}

    return walk(yaml.safe_load(config_yaml) or {}, "")
