"""The suite report: one self-contained HTML page with the answer across data sets first.

Same conventions as the sweep report (:mod:`regsearch.report.html`): figures are base64 data URIs
(also saved under ``figures/``), CSS is inline, and a Content-Security-Policy forbids every
network request. Sections: verdict, wins/ties/losses, critical-difference diagram, heat map of
effects, data sets (with relative links to each data set's own report), setup, MLflow.

Example:
    >>> write_suite_report(plan, records, stats, run)  # doctest: +SKIP
    PosixPath('sweeps/suite-keel12/report.html')
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.figure import Figure

from regsearch.comparison.formatting import format_p, signed
from regsearch.report.page import environment, save_figure
from regsearch.suite import figures
from regsearch.suite.stats import SuiteStats
from regsearch.suite.verdict import MIN_WILCOXON, family_text, suite_rule, suite_sentence

if TYPE_CHECKING:
    from regsearch.suite.plan import SuitePlan
    from regsearch.suite.tracking import SuiteRun

__all__ = ["write_suite_report"]

TEMPLATE = "template.html.j2"


def write_suite_report(
    plan: SuitePlan, records: pd.DataFrame, stats: SuiteStats | None, run: SuiteRun | None
) -> Path:
    """Write ``report.html`` (and ``figures/*.png``) into the suite folder.

    Args:
        plan: The suite (folder, data sets, their facts and state).
        records: The finished data sets' comparison records (may be empty).
        stats: Their statistics, or None when no data set has finished.
        run: The suite's MLflow run, or None.

    Returns:
        The report's path.
    """
    fig_dir = plan.folder / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    figs = [save_figure(fig_dir, *spec) for spec in _figure_specs(plan, records, stats)]
    done = sum(plan.state.done(d) for d in plan.datasets)
    html = (
        environment(Path(__file__).parent)
        .get_template(TEMPLATE)
        .render(
            title=f"Suite {plan.name}: which regularizer wins across data sets",
            progress=f"{done} of {len(plan.datasets)} data sets finished",
            partial=done < len(plan.datasets),
            verdict=suite_sentence(stats) if stats is not None else "",
            rule=suite_rule(stats) if stats is not None else "",
            few=stats is not None and len(stats.datasets) < MIN_WILCOXON,
            families=_family_rows(stats),
            friedman=_friedman_text(stats),
            figures={f.name: f for f in figs},
            datasets=_dataset_rows(plan, records),
            setup=_setup(plan),
            config_yaml=plan.yaml_text,
            mlflow=_mlflow(run, plan),
        )
    )
    path = plan.folder / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


FigureSpec = tuple[str, str, str, Callable[[], Figure]]


def _figure_specs(
    plan: SuitePlan, records: pd.DataFrame, stats: SuiteStats | None
) -> list[FigureSpec]:
    if stats is None or records.empty:
        return []
    specs: list[FigureSpec] = []
    if len(stats.ranks) >= 2:
        n = len(stats.ranked)
        specs.append(
            (
                "cd_diagram",
                "Critical-difference diagram",
                f"Average rank on {stats.metric} over the {n} data sets every candidate finished "
                "(1 = best; the baseline included). Bars join candidates whose average ranks "
                f"differ by less than the Nemenyi critical difference (CD, α={stats.alpha}): "
                "the test cannot tell those apart.",
                lambda: figures.cd_diagram(stats.ranks, stats.cd),
            )
        )
    families = [f.name for f in stats.families]
    specs.append(
        (
            "effects_heatmap",
            "Effects per data set",
            f"Each cell: that data set's paired effect (candidate − {stats.baseline}) on "
            f"{stats.metric}. Green: better than the baseline; pink: worse. Bold: a win or a "
            "loss (its 95% interval excludes 0); plain: a tie.",
            lambda: figures.effects_heatmap(records, plan.datasets, families),
        )
    )
    return specs


def _family_rows(stats: SuiteStats | None) -> list[dict[str, Any]]:
    if stats is None:
        return []
    rows = []
    base_rank = stats.ranks.get(stats.baseline) if len(stats.ranks) else None
    for fam in stats.families:
        interval = (
            f"[{signed(fam.low)}, {signed(fam.high)}]"
            if fam.low is not None and fam.high is not None
            else ""
        )
        rows.append(
            {
                "name": fam.name,
                "baseline": False,
                "wins": fam.wins,
                "ties": fam.ties,
                "losses": fam.losses,
                "n": fam.n,
                "median": signed(fam.median) if fam.median is not None else "",
                "interval": interval,
                "p": format_p(fam.p).removeprefix("p="),
                "p_holm": format_p(fam.p_holm).removeprefix("p="),
                "rank": f"{fam.avg_rank:.2f}" if fam.avg_rank is not None else "",
                "better": fam.better,
                "worse": fam.worse,
                "text": family_text(fam),
            }
        )
    if base_rank is not None:
        rows.append({"name": stats.baseline, "baseline": True, "rank": f"{base_rank:.2f}"})
    return rows


def _friedman_text(stats: SuiteStats | None) -> str:
    if stats is None or stats.friedman is None:
        return "Too few data sets or candidates for the Friedman test (it needs 2 and 3)."
    chi2, p = stats.friedman
    cd = f"; Nemenyi CD = {stats.cd:.2f}" if stats.cd is not None else ""
    k, n = len(stats.ranks), len(stats.ranked)
    return (
        f"Friedman χ² = {chi2:.3g} over {n} data sets and {k} candidates, {format_p(p)}{cd} "
        "(scipy.stats.friedmanchisquare; critical difference from scipy.stats.studentized_range)."
    )


def _dataset_rows(plan: SuitePlan, records: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for name in plan.datasets:
        info = plan.infos[name]
        entry = plan.state.datasets.get(name, {})
        run_dir = plan.state.run_dir(name)
        summary = _summary(run_dir) if plan.state.done(name) and run_dir is not None else {}
        mine = records[records["dataset"] == name] if not records.empty else records
        rows.append(
            {
                "name": name,
                "rows": f"{info.used:,}" + (f" of {info.rows:,}" if info.used < info.rows else ""),
                "features": info.features,
                "nominal": info.nominal,
                "classes": info.classes,
                "majority": f"{info.majority:.2f}",
                "validation": _validation(summary),
                "status": entry.get("status", "not run"),
                "baseline": _baseline_text(mine),
                "winner": _winner_text(mine),
                "trials": _trials_text(entry.get("trials") or {}),
                "wall": f"{entry['wall_s']:.0f} s" if "wall_s" in entry else "",
                "link": f"{entry['run_dir']}/report.html" if summary else "",
            }
        )
    return rows


def _trials_text(counts: dict[str, int]) -> str:
    """Tuning trials per family as the data set's stores hold them: one number when every
    family had the same (the suite's rounds make it so), else each family's."""
    if not counts:
        return ""
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values()))} per family"
    return ", ".join(f"{family} {n}" for family, n in counts.items())


def _summary(run_dir: Path) -> dict[str, Any]:
    try:
        found = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _validation(summary: dict[str, Any]) -> str:
    if not summary:
        return ""
    cv = summary.get("cv")
    if isinstance(cv, dict) and cv.get("folds"):
        return f"{cv['folds']}-fold CV"
    return "holdout"


def _baseline_text(rows: pd.DataFrame) -> str:
    base = rows[rows["baseline"].astype(bool)] if not rows.empty else rows
    if base.empty:
        return ""
    row = base.iloc[0]
    flag = "" if bool(row["learnable"]) else " (not better than constant)"
    return f"{row['mean']:.3g}{flag}"


def _winner_text(rows: pd.DataFrame) -> str:
    """The data set's own verdict: its tier and the candidate it recommends, with Δ."""
    if rows.empty:
        return ""
    tier = str(rows["tier"].iloc[0])
    chosen = rows[rows["recommended"].astype(bool)]
    if chosen.empty:
        return f"{tier}: keep baseline"
    row = chosen.iloc[0]
    return f"{tier}: {row['candidate']} ({signed(float(row['effect']))})"


def _setup(plan: SuitePlan) -> list[tuple[str, str]]:
    cfg = plan.cfg
    assert cfg.sweep is not None
    families = dict(cfg.sweep.families)
    trials = sorted({plan.base.sweep.families[f].n_trials for f in families})
    budget = "/".join(str(t) for t in trials)
    return [
        ("data sets", ", ".join(plan.datasets)),
        ("families", f"baseline (lr only) + {', '.join(families)}; each tunes lr too"),
        (
            "budget",
            f"{budget} tuning trials per family on every data set (rounds of "
            f"{cfg.search.population}, each claimed once across workers), "
            f"{cfg.sweep.final_seeds} fresh seeds",
        ),
        ("validation", f"search.cv={cfg.search.cv} (auto: 5 folds below 2,000 pool rows)"),
        (
            "model",
            f"MLP {list(cfg.model.hidden)} {cfg.model.activation}, {cfg.train.optimizer} "
            f"lr {cfg.train.lr:g} (tuned ×{cfg.sweep.lr_range}), momentum {cfg.train.momentum:g}, "
            f"{cfg.train.max_epochs} epochs"
            + (
                " full batch" if cfg.train.batch_size is None else f", batch {cfg.train.batch_size}"
            ),
        ),
        ("rows", _rows_text(getattr(cfg.task, "max_rows", None))),
        ("seed", f"{cfg.seed}; bootstrap {cfg.suite.bootstrap if cfg.suite else ''} resamples"),
        ("studies", f"{plan.study('<data set>')}.<family> in {cfg.search.storage}"),
        ("folder", str(plan.folder)),
    ]


def _rows_text(max_rows: int | None) -> str:
    if max_rows is None:
        return "every row of every data set"
    return f"larger data sets subsampled (stratified, seeded) to {max_rows:,} rows"


def _mlflow(run: SuiteRun | None, plan: SuitePlan) -> dict[str, str] | None:
    from regsearch.urls import browse_command

    if run is None:
        return None
    command = browse_command(run.uri, run.experiment_id, plan.cfg.tracking.ui_port)
    return {"run_id": run.run_id, "uri": run.uri, "experiment": plan.experiment, "command": command}
