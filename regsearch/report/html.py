"""The sweep's HTML report: one self-contained file with the verdict, evidence and every trial.

The page makes no network request of any kind (figures are base64 data URIs, CSS and the small
table-sorting script are inline, and a Content-Security-Policy forbids anything else), so it can
be mailed, archived or opened offline and still look the same. Sections, top to bottom: verdict,
setup, comparison, figures, trials, MLflow runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from regsearch.comparison import Comparison, compare_sweep
from regsearch.report import runs, views
from regsearch.report.figure_specs import figure_specs
from regsearch.report.page import FigureView, environment, save_figure
from regsearch.report.views import format_value

if TYPE_CHECKING:
    import optuna

__all__ = ["build_report", "format_value", "write_report"]

log = logging.getLogger(__name__)

TEMPLATE = "template.html.j2"
_KINDS = ("classification", "regression")
_DIRECTIONS = ("minimize", "maximize")
#: Trial rows shown before "Show all": a sweep of hundreds of members would bury the page.
PAGE_SIZE = 50


@dataclass(frozen=True)
class _Cell:
    text: str
    # Raw number for the sorting script; None sorts as text (or last, when empty).
    sort: float | None


def write_report(
    run_dir: Path,
    trials: pd.DataFrame,
    summary: dict[str, Any],
    config_yaml: str,
    *,
    curves: pd.DataFrame | None = None,
    studies: Mapping[str, optuna.Study] | None = None,
    notes: Sequence[str] = (),
    comparison: Comparison | None = None,
) -> Path:
    """Save the figures under ``run_dir/figures/`` and write ``run_dir/report.html``.

    Args:
        run_dir: The sweep's run folder; created if missing. A ``boundaries.npz`` there adds
            the decision-boundary figure.
        trials: One row per member, as in ``trials.csv``.
        summary: The sweep summary, as in ``summary.json``.
        config_yaml: The resolved config, shown verbatim.
        curves: Per-epoch curves (``results.curves_frame``); read from ``run_dir/curves.csv``
            when None and that file exists.
        studies: The sweep's Optuna studies by key (``SweepData.studies``), for the
            hyperparameter-importance figures; skipped when None.
        notes: Extra lines for the banner at the top (e.g. where the data came from).
        comparison: The final phase's comparison when the caller already has it
            (``SweepResult.comparison``); worked out from ``trials`` when None.

    Returns:
        Path of the written ``report.html``.

    Raises:
        ValueError: ``summary`` has a ``kind`` or ``direction`` that is not allowed.

    Example:
        >>> import tempfile
        >>> trials = pd.DataFrame({"trial": [0, 1], "seed": 0, "state": "complete",
        ...                        "dropout": [0.1, 0.4], "train_loss": [0.3, 0.35],
        ...                        "val_loss": [0.5, 0.4], "gap_loss": [0.2, 0.05]})
        >>> summary = {"title": "dropout on moons", "kind": "regression", "params": ["dropout"]}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = write_report(Path(tmp) / "run", trials, summary, "seed: 0\\n")
        ...     print(path.name, sorted(p.name for p in (path.parent / "figures").iterdir()))
        report.html ['gap_vs_params.png', 'val_metric_history.png']
    """
    _check_summary(summary)
    run_dir = Path(run_dir)
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    if curves is None:
        curves = _read_csv(run_dir / "curves.csv")
    if comparison is None and not trials.empty:
        comparison = compare_sweep(trials, summary)
    specs = figure_specs(run_dir, trials, summary, curves, comparison, studies or {})
    drawn = [save_figure(fig_dir, *spec) for spec in specs]
    html = _render(trials, summary, config_yaml, comparison, drawn, notes)
    path = run_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def _render(
    trials: pd.DataFrame,
    summary: dict[str, Any],
    config_yaml: str,
    comparison: Comparison | None,
    drawn: list[FigureView],
    notes: Sequence[str],
) -> str:
    """The page: the template filled with the views of the sweep's parts."""
    columns, rows = _table(trials)
    candidates = [c.name for c in comparison.candidates] if comparison else []
    return (
        environment(Path(__file__).parent)
        .get_template(TEMPLATE)
        .render(
            title=str(summary.get("title") or f"{summary.get('sweep', 'sweep')} report"),
            description=str(summary.get("description") or ""),
            partial=bool(summary.get("partial")),
            notes=[str(n) for n in notes],
            verdict=views.verdict(comparison, summary, trials),
            best=views.best_view(summary),
            setup=views.setup_cards(summary, config_yaml),
            comparison=_comparison_view(comparison, summary),
            other=_other_view(comparison, trials),
            figures=drawn,
            not_drawn=sorted((summary.get("not_drawn") or {}).items()),
            columns=columns,
            rows=rows,
            page_size=PAGE_SIZE,
            config_yaml=config_yaml,
            mlflow=runs.mlflow_view(summary, candidates),
        )
    )


def build_report(run_dir: Path) -> Path:
    """Rebuild ``report.html`` of a sweep, finished or still running, from its stores.

    The trials and curves come from the Optuna studies named in ``summary.json``
    (:func:`regsearch.results.load_sweep`), so a running sweep gets a partial report. When the
    storage cannot be read (moved, deleted, or a relative sqlite path seen from another
    directory), the report falls back to ``trials.csv`` and ``curves.csv`` and says so.

    Args:
        run_dir: A sweep's run folder.

    Returns:
        Path of the written ``report.html``.

    Raises:
        FileNotFoundError: ``run_dir``, its ``summary.json`` or ``config.yaml`` is missing, or
            the stores are unreadable and there is no ``trials.csv``.
        ValueError: ``summary.json`` is not a JSON object or has a bad ``kind``/``direction``.

    Example:
        Without readable Optuna studies the report comes from the folder's CSV files:

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     run_dir = Path(tmp)
        ...     _ = (run_dir / "summary.json").write_text('{"kind": "regression"}')
        ...     _ = (run_dir / "config.yaml").write_text("seed: 0\\n")
        ...     trials = pd.DataFrame({"trial": [0], "state": "complete", "val_loss": [0.4]})
        ...     trials.to_csv(run_dir / "trials.csv", index=False)
        ...     print(build_report(run_dir).relative_to(run_dir))
        report.html
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    for name in ("summary.json", "config.yaml"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{name} not found in {run_dir}")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    if not isinstance(summary, dict):
        # Bad file content, like malformed JSON (itself a ValueError), not a caller's type bug.
        raise ValueError(f"{run_dir / 'summary.json'} must hold a JSON object")
    _check_summary(summary)
    config_yaml = (run_dir / "config.yaml").read_text(encoding="utf-8")
    data, note = _from_stores(run_dir, summary)
    if data is not None:
        trials, curves, studies, summary = data
        return write_report(run_dir, trials, summary, config_yaml, curves=curves, studies=studies)
    if not (run_dir / "trials.csv").is_file():
        raise FileNotFoundError(f"trials.csv not found in {run_dir} ({note or 'no stores'})")
    csv_trials = _read_csv(run_dir / "trials.csv")
    assert csv_trials is not None  # checked above
    notes = [note] if note else []
    return write_report(run_dir, csv_trials, summary, config_yaml, notes=notes)


_Loaded = tuple[pd.DataFrame, pd.DataFrame, dict[str, "optuna.Study"], dict[str, Any]]


def _from_stores(run_dir: Path, summary: dict[str, Any]) -> tuple[_Loaded | None, str]:
    """The sweep from its Optuna studies, or None and why not (empty: no studies named)."""
    storage = summary.get("storage_resolved") or summary.get("storage")
    names = summary.get("studies")
    if not storage or not isinstance(names, dict) or not names:
        return None, ""
    missing = runs.missing_sqlite(str(storage))
    if missing:
        return None, f"Optuna storage {missing} not found from {Path.cwd()}: rebuilt from CSV."
    from regsearch.results import load_sweep

    try:
        data = load_sweep(run_dir)
    except Exception as exc:  # any storage problem: the CSV files still tell the story
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        log.warning("could not load the studies of %s: %s", run_dir, first)
        return None, f"Optuna studies not readable ({first}): rebuilt from CSV."
    csv = run_dir / "trials.csv"
    if data.trials.empty and csv.is_file() and csv.stat().st_size > 200:
        return None, "The Optuna studies hold no trials: rebuilt from CSV."
    return (data.trials, data.curves, data.studies, data.summary), ""


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _check_summary(summary: dict[str, Any]) -> None:
    kind, direction = summary.get("kind", "regression"), summary.get("direction", "minimize")
    if kind not in _KINDS:
        raise ValueError(f"summary 'kind' must be one of {_KINDS}, got {kind!r}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"summary 'direction' must be one of {_DIRECTIONS}, got {direction!r}")


def _comparison_view(
    comparison: Comparison | None, summary: dict[str, Any], basis: str | None = None
) -> dict[str, Any] | None:
    if comparison is None:
        return None
    basis = basis or comparison.basis
    return {
        "basis": basis,
        "label": "accuracy" if basis == "acc" else "loss",
        "metric": comparison.metric,
        "baseline": comparison.baseline or "baseline",
        "rows": views.compare_rows(comparison, basis),
        "diagnosis": views.diagnosis_rows(comparison),
        "facts": views.decision_facts(comparison, summary),
        "folds": any(f >= 0 for f in comparison.folds),
        "n_failed": comparison.n_failed,
        "tier": comparison.tier,
        "adjustment": comparison.adjustment,
        "margin": views.format_value(comparison.margin),
    }


def _other_view(comparison: Comparison | None, trials: pd.DataFrame) -> dict[str, Any] | None:
    """The same table in the other metric family (loss ↔ accuracy) when the trials have it."""
    if comparison is None:
        return None
    other = "acc" if comparison.basis == "loss" else "loss"
    if f"val_{other}" not in trials.columns:
        return None
    return _comparison_view(comparison, {}, other)


def _table(trials: pd.DataFrame) -> tuple[list[str], list[list[_Cell]]]:
    columns = [str(c) for c in trials.columns]
    rows = [[_cell(v) for v in record] for record in trials.itertuples(index=False, name=None)]
    return columns, rows


def _cell(value: object) -> _Cell:
    text = format_value(value)
    if isinstance(value, str) or text in ("", "true", "false"):
        return _Cell(text, None)
    try:
        return _Cell(text, float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return _Cell(text, None)
