"""A sweep's run folder: config, summary, tables (CSV + Parquet), boundaries and the report.

Everything here reads the finished stores (or the plan) and writes files; nothing trains
except the decision-boundary retraining of 2-D tasks.

Example:
    >>> result = write_outputs(plan, studies, static, run_dir, partial=False)  # doctest: +SKIP
    >>> sorted(result.files)  # doctest: +SKIP
    ['config', 'curves', 'report', 'summary', 'trials']
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from regsearch.architecture import describe
from regsearch.boundaries import boundaries_reason
from regsearch.constant import constant_scores
from regsearch.final import FINAL_SEED_OFFSET, final_seeds
from regsearch.plan import Plan
from regsearch.report.runs import linked_runs_only
from regsearch.results import curves_frame, studies_phases, summarize, trials_frame
from regsearch.search.space import SearchSpace
from regsearch.urls import absolute_sqlite

if TYPE_CHECKING:
    from regsearch.comparison import Comparison

__all__ = [
    "SweepResult",
    "flat_params",
    "make_run_dir",
    "static_summary",
    "write_json",
    "write_outputs",
]


@dataclass
class SweepResult:
    """What a finished (or interrupted) sweep produced.

    ``trials`` has one row per member (as ``trials.csv``), ``curves`` one per member and
    evaluated epoch (``curves.csv``); :attr:`comparison` is the final phase's verdict.
    """

    run_dir: Path
    study_names: list[str]
    trials: pd.DataFrame
    summary: dict[str, Any]
    interrupted: bool = False
    files: dict[str, Path] = field(default_factory=dict)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)

    @cached_property
    def comparison(self) -> Comparison | None:
        """The head-to-head comparison of the final phase (None when there was none); worked
        out once, for the report, the console and the verdict."""
        from regsearch.comparison import compare_sweep

        return compare_sweep(self.trials, self.summary) if not self.trials.empty else None

    @property
    def verdict(self) -> str:
        """The verdict sentence, or an empty string for a sweep without a final phase."""
        found = self.comparison
        return found.verdict if found is not None else ""


def make_run_dir(root: Path, stamp: str) -> Path:
    """A new folder ``root/stamp`` (``stamp-2``, ... when it exists)."""
    path = root / stamp
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{stamp}-{suffix}"
    path.mkdir(parents=True)
    return path


def _columns(plan: Plan) -> tuple[list[str], list[str]]:
    cols: list[str] = []
    logs: list[str] = []
    for fam in plan.families.values():
        space = SearchSpace(dict(fam.params))
        cols.extend(c for c in space.columns if c not in cols)
        logs.extend(c for c in space.log_params if c not in logs)
    for values in plan.settings.values():
        cols.extend(c for c in values if c not in cols)
    return cols, logs


def _ranges(plan: Plan) -> dict[str, dict[str, list[Any]]]:
    """Each family's numeric searched ranges, ``{family: {param: [low, high, log]}}`` (read
    back by :func:`regsearch.comparison.ranges.ranges_from_summary`)."""
    return {
        name: {
            p: [spec.low, spec.high, spec.log]
            for p, spec in fam.params.items()
            if spec.type in ("float", "int") and spec.low is not None and spec.high is not None
        }
        for name, fam in plan.families.items()
    }


def _random_search(plan: Plan) -> list[str]:
    """Families whose every trial was proposed before the sampler saw a result: a sampler
    that does not model (random, grid, qmc), or a budget within its start-up trials or one
    batch (``search.population``)."""
    search = plan.cfg.search
    modelling = search.sampler in ("tpe", "cmaes", "nsga2")
    return [
        name
        for name, fam in plan.families.items()
        if fam.params
        and (not modelling or fam.n_trials <= max(search.n_startup_trials, search.population))
    ]


def _cv_block(plan: Plan) -> dict[str, Any] | None:
    """How the candidates were validated: K folds of the pool, or None for the holdout split."""
    task = plan.task
    if not task.folds:
        return None
    view = task.member_data(0, plan.cfg.seed)
    return {
        "folds": task.folds,
        "pool_rows": len(task.x_train) + len(task.x_val),
        "n_train": len(view.x_train),
        "n_val": len(view.x_val),
        "stratified": task.is_classification,
    }


def static_summary(plan: Plan, studies: dict[str, optuna.Study]) -> dict[str, Any]:
    """What is fixed when the sweep starts; results.summarize adds the rest."""
    params, log_params = _columns(plan)
    seeds = final_seeds(plan) if "final" in studies else []
    decided = plan.for_final() if "final" in studies else plan
    return {
        "title": f"{plan.sweep_name} on {plan.task.name}",
        "sweep": plan.sweep_name,
        "task": plan.task.name,
        "description": plan.cfg.sweep.description if plan.cfg.sweep else "",
        "kind": plan.task.kind,
        # A user's table: each column's model inputs and imputed cells, the columns left out.
        "data": None if plan.task.table is None else asdict(plan.task.table),
        "input_shape": list(plan.task.shape),
        "architecture": asdict(describe(plan.spec, plan.cfg.model.batch_norm)),
        # Figures the report leaves out, each with its reason.
        "not_drawn": _not_drawn(plan),
        "metric": plan.objective.metrics[0],
        "direction": plan.objective.directions[0],
        "params": params,
        "log_params": log_params,
        "cv": _cv_block(decided),  # the folds the verdict rests on
        "tuning_cv": _cv_block(plan),
        "tuning_seeds": [plan.cfg.seed + r for r in range(plan.cfg.search.repeats)],
        "final_seeds": seeds,
        "tune_lr": bool(plan.cfg.sweep and plan.cfg.sweep.tune_lr and len(plan.families) > 1),
        "left_out": dict(plan.left_out),  # optional families that cannot apply to the model
        "ranges": _ranges(plan),
        "random_search": _random_search(plan),
        "constant_predictor": constant_scores(decided.task, seeds[0] if seeds else plan.cfg.seed),
        "target_scale": plan.task.target_scale if plan.task.target_standardized else None,
        "studies": {key: s.study_name for key, s in studies.items()},
        "study_name": ", ".join(s.study_name for s in studies.values()),
        "storage": plan.cfg.search.storage,
        "storage_resolved": absolute_sqlite(plan.cfg.search.storage),
        "mlflow": None,  # filled in once the recorder has opened the parent run
        "engine": plan.engine_name,
        "device": plan.device,
        "duration_s": 0.0,
    }


def _not_drawn(plan: Plan) -> dict[str, str]:
    reason = boundaries_reason(plan.task)
    return {"decision boundaries": reason} if reason and plan.cfg.report else {}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically: a report rebuilt mid-run never reads half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def write_outputs(
    plan: Plan,
    studies: dict[str, optuna.Study],
    static: dict[str, Any],
    run_dir: Path,
    partial: bool,
) -> SweepResult:
    """Tables, summary, boundaries and report of the sweep, read back from ``studies``."""
    phases = studies_phases(studies)
    classification = plan.task.is_classification
    frame = trials_frame(phases, static["params"], classification)
    curves = curves_frame(phases, classification)
    for name, table in (("trials", frame), ("curves", curves)):
        table.to_csv(run_dir / f"{name}.csv", index=False)
        table.to_parquet(run_dir / f"{name}.parquet", index=False)  # typed, for pandas users
    summary = linked_runs_only(summarize({**static, "partial": partial}, frame))
    result = SweepResult(run_dir, [s.study_name for s in studies.values()], frame, summary)
    if result.comparison is not None:
        summary["verdict"] = result.comparison.as_summary()
    write_json(run_dir / "summary.json", summary)
    files = {
        "config": run_dir / "config.yaml",
        "trials": run_dir / "trials.csv",
        "curves": run_dir / "curves.csv",
        "summary": run_dir / "summary.json",
    }
    boundaries = boundaries_reason(plan.task)
    if plan.cfg.report and not boundaries:
        files["boundaries"] = _write_boundaries(plan, studies, summary, run_dir)
    result.interrupted, result.files, result.curves = partial, files, curves
    if plan.cfg.report:
        from regsearch.report import write_report

        config_text = (run_dir / "config.yaml").read_text()
        tuned = {k: s for k, s in studies.items() if k != "final"}
        files["report"] = write_report(
            run_dir,
            frame,
            summary,
            config_text,
            curves=curves,
            studies=tuned,
            comparison=result.comparison,
        )
    return result


def _write_boundaries(
    plan: Plan, studies: dict[str, optuna.Study], summary: dict[str, Any], run_dir: Path
) -> Path:
    """Decision-boundary grids of the candidates (2-D tasks): retrained once on one seed."""
    from regsearch.boundaries import boundary_grids, save_boundaries
    from regsearch.records import Member, lr_control_of

    if "final" in studies:
        seed = plan.cfg.seed + FINAL_SEED_OFFSET
        complete = studies["final"].get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        chosen = {t.user_attrs.get("family", str(t.number)): dict(t.params) for t in complete}
        chosen = {k: v for k, v in chosen.items() if lr_control_of(k) is None}
    else:
        seed = plan.cfg.seed
        best = summary.get("best")
        chosen = {"baseline": {}, **({"best": dict(best["params"])} if best else {})}
    # The task's own train split: boundaries are drawn over its points.
    members = {name: Member(0, seed, plan.hparams(values)) for name, values in chosen.items()}
    grids = boundary_grids(plan.task, plan.spec, plan.schedule, members)
    return save_boundaries(run_dir / "boundaries.npz", grids)


def flat_params(config_yaml: str) -> dict[str, Any]:
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
