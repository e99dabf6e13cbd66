"""One sweep end to end: data, study, engine, tracking, results and report.

This is the only module that knows every layer; it wires them with plain data so each layer
stays testable on its own. The Hydra entry point (``regsearch.__main__``) calls
:func:`run_sweep` with a validated config.
"""

from __future__ import annotations

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

from regsearch.config import ConfigError, FamilyConfig, RegsearchConfig, SearchConfig
from regsearch.engine import Hyperparams, Member, MemberResult, OnEpoch, Schedule, resolve_engine
from regsearch.models import ModelSpec
from regsearch.results import best_trial, trials_frame
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
from regsearch.tasks import TaskData, load_task
from regsearch.tracking import MlflowTracker, NullTracker

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
    families: dict[str, FamilyConfig]
    sweep_name: str

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
    families = dict(cfg.sweep.families) or {
        cfg.sweep.name: FamilyConfig(params=dict(cfg.sweep.params), n_trials=cfg.search.n_trials)
    }
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
    studies = _open_studies(plan, names)
    run_dir = _run_dir(Path(cfg.paths.root) / f"{plan.sweep_name}-{plan.task.name}", stamp)
    (run_dir / "config.yaml").write_text(config_yaml)
    tracker = _tracker(cfg, plan)
    tracker.start(
        run_name=f"{plan.sweep_name}-{plan.task.name}-{stamp}",
        params=_flat_params(config_yaml),
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
            _tune(plan, studies, tracker)
            if cfg.sweep and cfg.sweep.families:
                studies["final"] = _final_phase(plan, studies, f"{base_name}.final", tracker)
            status = "FINISHED"
        except KeyboardInterrupt:
            status, interrupted = "KILLED", True
        result = _write_outputs(
            plan, studies, run_dir, tracker, time.perf_counter() - start, interrupted
        )
    finally:
        best = result.summary.get("best") if result else None
        tracker.finish(
            status,
            metrics={k: v for k, v in ((best or {}).get("metrics") or {}).items()},
            params=(best or {}).get("params") or {},
            artifacts=[run_dir / "report.html", run_dir / "trials.csv"],
        )
    if interrupted:
        raise KeyboardInterrupt(base_name)
    return result


def _tracker(cfg: RegsearchConfig, plan: _Plan) -> NullTracker:
    if cfg.tracking.backend == "none":
        return NullTracker()
    return MlflowTracker(
        cfg.tracking.uri, cfg.tracking.artifact_root, cfg.tracking.experiment or plan.task.name
    )


def _open_studies(plan: _Plan, names: dict[str, str]) -> dict[str, optuna.Study]:
    search = plan.cfg.search
    studies = {}
    for family, fam in plan.families.items():
        space = SearchSpace(dict(fam.params))
        sampler = make_sampler(search, plan.cfg.seed, space)
        pruner = make_pruner(search, plan.schedule.max_epochs, plan.schedule.eval_every)
        explicit = bool(search.study_name) and len(plan.families) == 1
        studies[family] = open_study(
            names[family],
            search.storage,
            plan.objective,
            sampler,
            pruner,
            resume=search.resume,
            must_be_new=explicit and not search.resume,
        )
        if search.sampler == "grid":
            enqueue_grid(studies[family], space, search.grid_points, plan.cfg.seed, fam.n_trials)
    return studies


def _tune(plan: _Plan, studies: dict[str, optuna.Study], tracker: NullTracker) -> None:
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
            on_outcome=tracker.log_trial,
            family=family,
            pruning=search.pruner != "none",
            report_every=search.report_every,
            timeout=search.timeout,
            progress=plan.cfg.progress,
        )


def _budget(fam: FamilyConfig, search: SearchConfig) -> int:
    """Trials to run: a grid never runs past its size."""
    if search.sampler != "grid":
        return fam.n_trials
    return min(fam.n_trials, SearchSpace(dict(fam.params)).grid_size(search.grid_points))


def _final_phase(
    plan: _Plan, studies: dict[str, optuna.Study], name: str, tracker: NullTracker
) -> optuna.Study:
    """compare: retrain each family's best and the baseline on fresh seeds, side by side."""
    assert plan.cfg.sweep is not None
    search = plan.cfg.search
    final = open_study(
        name,
        search.storage,
        plan.objective,
        optuna.samplers.RandomSampler(),
        optuna.pruners.NopPruner(),
        resume=True,
        must_be_new=False,
    )
    done = {t.user_attrs.get("family") for t in final.get_trials(deepcopy=False)}
    candidates: dict[str, optuna.trial.FrozenTrial | None] = {"baseline": None}
    for family, study in studies.items():
        best = _best_frozen(study, plan.objective)
        if best is not None:
            candidates[family] = best
    seeds = [plan.cfg.seed + FINAL_SEED_OFFSET + k for k in range(plan.cfg.sweep.final_seeds)]
    todo = {f: t for f, t in candidates.items() if f not in done}
    members: list[Member] = []
    for i, frozen in enumerate(todo.values()):
        members.extend(plan.members(i, dict(frozen.params) if frozen else {}, seeds))
    if not members:
        return final
    log.info("compare: retraining %d candidates on %d fresh seeds", len(todo), len(seeds))
    results = plan.train(members)
    for i, (family, frozen) in enumerate(todo.items()):
        mine = [r for r in results if r.member.trial == i]
        outcome = _add_final_trial(final, plan.objective, family, frozen, mine)
        tracker.log_trial(outcome)
    return final


def _best_frozen(study: optuna.Study, objective: Objective) -> optuna.trial.FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return None
    sign = -1.0 if objective.directions[0] == "maximize" else 1.0
    return min(complete, key=lambda t: sign * t.values[0])


def _add_final_trial(
    study: optuna.Study,
    objective: Objective,
    family: str,
    frozen: optuna.trial.FrozenTrial | None,
    results: list[MemberResult],
) -> TrialOutcome:
    failed = [r for r in results if r.state != "complete"]
    values = None if failed else objective.values(results)
    attrs = {
        "family": family,
        "members": [member_record(r) for r in results],
        "source_trial": frozen.number if frozen else None,
    }
    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL if failed else optuna.trial.TrialState.COMPLETE,
        values=values,
        params=dict(frozen.params) if frozen else {},
        distributions=dict(frozen.distributions) if frozen else {},
        user_attrs=attrs,
    )
    study.add_trial(trial)
    number = study.get_trials(deepcopy=False)[-1].number
    state = "failed" if failed else "complete"
    return TrialOutcome(
        number,
        dict(trial.params),
        state,
        values,
        results,
        family,
        phase="final",
        error=failed[0].error if failed else "",
    )


def _columns(plan: _Plan) -> tuple[list[str], list[str]]:
    cols: list[str] = []
    logs: list[str] = []
    for fam in plan.families.values():
        space = SearchSpace(dict(fam.params))
        cols.extend(c for c in space.columns if c not in cols)
        logs.extend(c for c in space.log_params if c not in logs)
    return cols, logs


def _write_outputs(
    plan: _Plan,
    studies: dict[str, optuna.Study],
    run_dir: Path,
    tracker: NullTracker,
    duration: float,
    partial: bool,
) -> SweepResult:
    params, log_params = _columns(plan)
    phases = [(s, "final" if f == "final" else "tune") for f, s in studies.items()]
    frame = trials_frame(phases, params, plan.task.is_classification)
    frame.to_csv(run_dir / "trials.csv", index=False)
    metric, direction = plan.objective.metrics[0], plan.objective.directions[0]
    best = best_trial(frame, metric, direction)
    per_trial = frame[frame["phase"] == "tune"].drop_duplicates(["family", "trial"])
    summary: dict[str, Any] = {
        "title": f"{plan.sweep_name} on {plan.task.name}",
        "sweep": plan.sweep_name,
        "task": plan.task.name,
        "description": plan.cfg.sweep.description if plan.cfg.sweep else "",
        "kind": plan.task.kind,
        "metric": metric,
        "direction": direction,
        "params": params,
        "log_params": log_params,
        "best": _best_dict(best, frame, params),
        "n_trials": len(per_trial),
        "n_complete": int((per_trial["state"] == "complete").sum()),
        "n_pruned": int((per_trial["state"] == "pruned").sum()),
        "n_failed": int((per_trial["state"] == "failed").sum()),
        "study_name": ", ".join(s.study_name for s in studies.values()),
        "storage": plan.cfg.search.storage,
        "mlflow": {
            "uri": tracker.uri,
            "experiment_id": tracker.experiment_id,
            "parent_run_id": tracker.parent_run_id,
        }
        if tracker.parent_run_id
        else None,
        "engine": plan.engine_name,
        "device": plan.device,
        "duration_s": round(duration, 2),
        "partial": partial,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    files = {
        "config": run_dir / "config.yaml",
        "trials": run_dir / "trials.csv",
        "summary": run_dir / "summary.json",
    }
    if plan.cfg.report:
        from regsearch.report import write_report

        files["report"] = write_report(
            run_dir, frame, summary, (run_dir / "config.yaml").read_text()
        )
    return SweepResult(
        run_dir, [s.study_name for s in studies.values()], frame, summary, partial, files
    )


def _best_dict(
    best: pd.Series | None, frame: pd.DataFrame, params: list[str]
) -> dict[str, Any] | None:
    if best is None:
        return None
    rows = frame[
        (frame["family"] == best["family"])
        & (frame["trial"] == best["trial"])
        & (frame["phase"] == "tune")
    ]
    values = {p: _plain(rows[p].iloc[0]) for p in params if p in rows and pd.notna(rows[p].iloc[0])}
    metric_names = [
        c
        for c in best.index
        if c not in ("family", "trial", "n_seeds", "duration_s") and c not in params
    ]
    return {
        "trial": int(best["trial"]),
        "family": str(best["family"]),
        "n_seeds": int(best["n_seeds"]),
        "params": values,
        "metrics": {m: float(best[m]) for m in metric_names if pd.notna(best[m])},
    }


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


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
