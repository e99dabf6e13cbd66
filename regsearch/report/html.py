"""The sweep's HTML report: one self-contained file with figures, facts and every trial.

The page makes no network request of any kind (figures are base64 data URIs, CSS and the small
table-sorting script are inline, and a Content-Security-Policy forbids anything else), so it can
be mailed, archived or opened offline and still look the same.
"""

from __future__ import annotations

import base64
import io
import json
import math
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from regsearch.report import figures

__all__ = ["build_report", "format_value", "write_report"]

TEMPLATE = "template.html.j2"
_INPUTS = ("trials.csv", "summary.json", "config.yaml")
_KINDS = ("classification", "regression")
_DIRECTIONS = ("minimize", "maximize")
_DPI = 110


@dataclass(frozen=True)
class _Cell:
    text: str
    # Raw number for the sorting script; None sorts as text (or last, when empty).
    sort: float | None


@dataclass(frozen=True)
class _FigureView:
    name: str
    title: str
    caption: str
    data_uri: str


def write_report(
    run_dir: Path, trials: pd.DataFrame, summary: dict[str, Any], config_yaml: str
) -> Path:
    """Save the figures under ``run_dir/figures/`` and write ``run_dir/report.html``.

    Args:
        run_dir: The sweep's run folder; created if missing.
        trials: One row per member, as in ``trials.csv``.
        summary: The sweep summary, as in ``summary.json``.
        config_yaml: The resolved config, shown verbatim.

    Returns:
        Path of the written ``report.html``.

    Raises:
        ValueError: ``summary`` has a ``kind`` or ``direction`` that is not allowed.

    Example:
        >>> path = write_report(Path("sweeps/dropout-moons/0"), trials, summary, "seed: 0\\n")
        >>> path.name
        'report.html'
    """
    _check_summary(summary)
    run_dir = Path(run_dir)
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    views = [_save_figure(fig_dir, *spec) for spec in _figure_specs(trials, summary)]
    columns, rows = _table(trials)
    html = (
        _environment()
        .get_template(TEMPLATE)
        .render(
            title=str(summary.get("title") or f"{summary.get('sweep', 'sweep')} report"),
            description=str(summary.get("description") or ""),
            partial=bool(summary.get("partial")),
            best=_best(summary),
            facts=_facts(summary),
            mlflow=_mlflow(summary.get("mlflow")),
            figures=views,
            columns=columns,
            rows=rows,
            config_yaml=config_yaml,
        )
    )
    path = run_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


def build_report(run_dir: Path) -> Path:
    """Rebuild ``report.html`` from the ``trials.csv``, ``summary.json`` and ``config.yaml`` there.

    Args:
        run_dir: A finished (or partial) sweep's run folder.

    Returns:
        Path of the written ``report.html``.

    Raises:
        FileNotFoundError: ``run_dir`` or one of its three input files is missing.
        ValueError: ``summary.json`` is not a JSON object or has a bad ``kind``/``direction``.

    Example:
        >>> build_report(Path("sweeps/dropout-moons/2024-05-01_12-00-00"))
        PosixPath('sweeps/dropout-moons/2024-05-01_12-00-00/report.html')
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder not found: {run_dir}")
    for name in _INPUTS:
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{name} not found in {run_dir}")
    try:
        trials = pd.read_csv(run_dir / "trials.csv")
    except pd.errors.EmptyDataError:
        trials = pd.DataFrame()
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    if not isinstance(summary, dict):
        # Bad file content, like malformed JSON (itself a ValueError), not a caller's type bug.
        raise ValueError(f"{run_dir / 'summary.json'} must hold a JSON object")
    config_yaml = (run_dir / "config.yaml").read_text(encoding="utf-8")
    return write_report(run_dir, trials, summary, config_yaml)


def format_value(value: object) -> str:
    """Text for one table cell: numbers to 4 significant digits, missing values empty.

    Example:
        >>> format_value(0.123456), format_value(3.0), format_value(float("nan"))
        ('0.1235', '3', '')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return str(value)
        if math.isnan(number):
            return ""
        return f"{number:.4g}"
    return str(value)


def _check_summary(summary: dict[str, Any]) -> None:
    kind, direction = summary.get("kind", "regression"), summary.get("direction", "minimize")
    if kind not in _KINDS:
        raise ValueError(f"summary 'kind' must be one of {_KINDS}, got {kind!r}")
    if direction not in _DIRECTIONS:
        raise ValueError(f"summary 'direction' must be one of {_DIRECTIONS}, got {direction!r}")


def _figure_specs(
    trials: pd.DataFrame, summary: dict[str, Any]
) -> list[tuple[str, str, str, Callable[[], Figure]]]:
    kind = summary.get("kind", "regression")
    metric = summary.get("metric") or figures.val_column(kind)
    direction = summary.get("direction", "minimize")
    params = list(summary.get("params") or [])
    gap = figures.gap_column(kind)
    specs: list[tuple[str, str, str, Callable[[], Figure]]] = [
        (
            "gap_vs_params",
            "Gap against each parameter",
            (
                f"{gap} of complete members; colour is {figures.val_column(kind)}; "
                "below the dashed line the model does not overfit."
            ),
            lambda: figures.gap_vs_params(trials, params, summary.get("log_params") or [], kind),
        ),
        (
            "val_metric_history",
            f"{metric} per trial",
            "Grey: each seed; blue: mean over seeds; orange: best so far.",
            lambda: figures.val_metric_history(trials, metric, direction),
        ),
    ]
    if "family" in trials.columns and trials["family"].nunique() > 1:
        specs.append(
            (
                "gap_by_family",
                "Gap by regularizer family",
                f"{gap} of each family's members; final-phase rows use fresh seeds.",
                lambda: figures.gap_by_family(trials, kind),
            )
        )
    return specs


def _save_figure(
    fig_dir: Path, name: str, title: str, caption: str, make: Callable[[], Figure]
) -> _FigureView:
    buffer = io.BytesIO()
    make().savefig(buffer, format="png", dpi=_DPI)
    png = buffer.getvalue()
    (fig_dir / f"{name}.png").write_bytes(png)
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return _FigureView(name=name, title=title, caption=caption, data_uri=uri)


def _metric_order(name: str) -> tuple[int, str]:
    prefixes = ("val_", "test_", "gap_", "train_")
    rank = next((i for i, p in enumerate(prefixes) if name.startswith(p)), len(prefixes))
    return rank, name


def _best(summary: dict[str, Any]) -> dict[str, Any] | None:
    best = summary.get("best")
    if not isinstance(best, dict):
        return None
    metrics = best.get("metrics") or {}
    baseline = summary.get("baseline") or {}
    return {
        "trial": best.get("trial"),
        "params": [(k, format_value(v)) for k, v in (best.get("params") or {}).items()],
        "metrics": [
            (k, format_value(metrics[k]), format_value(baseline.get(k)))
            for k in sorted(metrics, key=_metric_order)
        ],
        "has_baseline": bool(baseline),
        "objective": summary.get("metric"),
        "direction": summary.get("direction"),
    }


def _facts(summary: dict[str, Any]) -> list[tuple[str, str]]:
    duration = summary.get("duration_s")
    keys = [
        ("Sweep", summary.get("sweep")),
        ("Task", f"{summary.get('task', '')} ({summary.get('kind', '')})"),
        ("Objective", f"{summary.get('direction', '')} {summary.get('metric', '')}"),
        ("Trials", summary.get("n_trials")),
        ("Complete", summary.get("n_complete")),
        ("Pruned", summary.get("n_pruned")),
        ("Failed", summary.get("n_failed")),
        ("Duration", None if duration is None else f"{format_value(duration)} s"),
        ("Engine", summary.get("engine")),
        ("Optuna study", summary.get("study_name")),
        ("Optuna storage", summary.get("storage")),
    ]
    return [(k, v if isinstance(v, str) else format_value(v)) for k, v in keys if v is not None]


def _mlflow(mlflow: Any) -> dict[str, str] | None:
    if not isinstance(mlflow, dict) or not mlflow.get("uri"):
        return None
    uri = str(mlflow["uri"])
    return {
        "uri": uri,
        "experiment_id": str(mlflow.get("experiment_id") or ""),
        "parent_run_id": str(mlflow.get("parent_run_id") or ""),
        "command": f"mlflow ui --backend-store-uri {shlex.quote(uri)}",
    }


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


def _environment() -> jinja2.Environment:
    # A file-system loader next to this module works the same from a checkout and a wheel.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
