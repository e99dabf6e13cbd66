"""Tests for regsearch.report: figures, the HTML page and the rebuild command."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from regsearch.report import build_report, write_report
from regsearch.report.figures import (
    gap_by_family,
    gap_vs_params,
    param_kind,
    val_metric_history,
)
from regsearch.report.html import format_value

REPO = Path(__file__).resolve().parents[1]
MALICIOUS = "<script>alert(1)</script>"
SECTIONS = ("Best parameters", "Run facts", "Figures", "Trials", "Configuration")
CONFIG = "task:\n  name: moons\nsearch:\n  n_trials: 6  # <tiny>\n"


def make_trials(kind: str = "classification") -> pd.DataFrame:
    """Six trials x two seeds with one pruned and one failed member, like a real sweep writes."""
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    for trial in range(6):
        l2_on = trial % 2 == 0
        for seed in range(2):
            train_loss = 0.2 + 0.05 * rng.random()
            val_loss = train_loss + 0.3 * rng.random()
            row: dict[str, Any] = {
                "trial": trial,
                "seed": seed,
                "state": "complete",
                "family": "cocktail",
                "phase": "tune",
                "dropout": 0.1 * trial,
                "l2_on": l2_on,
                "l2": 10.0 ** -(trial + 1) if l2_on else math.nan,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "test_loss": val_loss + 0.01,
                "gap_loss": val_loss - train_loss,
                "best_epoch": 10 + trial,
                "stopped_epoch": 20,
                "weight_norm": 3.0 + trial,
                "sparsity": 0.0,
                "duration_s": 1.5,
            }
            if kind == "classification":
                train_acc, val_acc = 0.95, 0.95 - 0.1 * rng.random()
                row |= {"train_acc": train_acc, "val_acc": val_acc, "test_acc": val_acc}
                row["gap_acc"] = train_acc - val_acc
            rows.append(row)
    frame = pd.DataFrame(rows)
    metrics = [c for c in frame.columns if c.endswith(("_loss", "_acc"))]
    frame.loc[3, "state"] = "pruned"
    frame.loc[5, "state"] = "failed"
    frame.loc[5, [*metrics, "best_epoch", "stopped_epoch", "weight_norm"]] = math.nan
    return frame


def make_summary(**changes: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "title": "cocktail on moons",
        "sweep": "cocktail",
        "task": "moons",
        "description": MALICIOUS,
        "kind": "classification",
        "metric": "val_loss",
        "direction": "minimize",
        "params": ["dropout", "l2_on", "l2"],
        "log_params": ["l2"],
        "best": {
            "trial": 4,
            "params": {"dropout": 0.4, "l2_on": True, "l2": 1e-5},
            "metrics": {"val_loss": 0.31234567, "test_acc": 0.9, "gap_acc": 0.02},
        },
        "n_trials": 6,
        "n_complete": 10,
        "n_pruned": 1,
        "n_failed": 1,
        "study_name": "cocktail-moons",
        "storage": "sqlite:///sweeps/optuna.db",
        "mlflow": {
            "uri": "sqlite:///sweeps/mlflow.db",
            "experiment_id": "1",
            "parent_run_id": "a1",
        },
        "engine": "reference",
        "duration_s": 83.2,
        "partial": True,
        "baseline": {"val_loss": 0.5, "test_acc": 0.85, "gap_acc": 0.1},
    }
    return summary | changes


def write_inputs(run_dir: Path, trials: pd.DataFrame, summary: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    trials.to_csv(run_dir / "trials.csv", index=False)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "config.yaml").write_text(CONFIG)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # The package may not be installed in the test environment; the checkout is enough.
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    }
    cmd = [sys.executable, "-m", "regsearch.report", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    run_dir = tmp_path_factory.mktemp("run")
    path = write_report(run_dir, make_trials(), make_summary(), CONFIG)
    return path, path.read_text(encoding="utf-8")


def test_report_is_written_with_sections(report: tuple[Path, str]) -> None:
    path, html = report
    assert path == path.parent / "report.html" and path.is_file()
    for heading in SECTIONS:
        assert f">{heading}</h2>" in html
    assert "Partial results" in html
    assert "mlflow ui --backend-store-uri sqlite:///sweeps/mlflow.db" in html
    assert "0.3123" in html  # best val_loss at 4 significant digits
    assert "<details>" in html and "n_trials: 6  # &lt;tiny&gt;" in html


def test_report_embeds_figures_and_saves_pngs(report: tuple[Path, str]) -> None:
    path, html = report
    assert 'src="data:image/png;base64,' in html
    pngs = sorted(p.name for p in (path.parent / "figures").glob("*.png"))
    assert pngs == ["gap_vs_params.png", "val_metric_history.png"]


def test_report_is_self_contained(report: tuple[Path, str]) -> None:
    _, html = report
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "@import" not in html and "url(" not in html


def test_report_escapes_user_text(report: tuple[Path, str]) -> None:
    _, html = report
    assert MALICIOUS not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_trials_table_rounds_and_marks_sortable(report: tuple[Path, str]) -> None:
    _, html = report
    table = html[html.index('<table class="sortable">') :]
    assert table.count("<tr") == 1 + 12  # header + one row per member
    assert 'class="state-failed"' in table and 'class="state-pruned"' in table
    numbers = re.findall(r"<td data-v=[^>]*>([^<]*)</td>", table)
    assert numbers and all(n == f"{float(n):.4g}" for n in numbers)


def test_compare_sweep_adds_family_figure(tmp_path: Path) -> None:
    trials = make_trials()
    trials.loc[6:, "family"] = "dropout"
    trials.loc[8:, "phase"] = "final"
    path = write_report(tmp_path, trials, make_summary(best=None, mlflow=None), CONFIG)
    html = path.read_text(encoding="utf-8")
    assert (tmp_path / "figures" / "gap_by_family.png").is_file()
    assert "no best result" in html and "Tracking was off" in html


def test_bad_summary_kind_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind"):
        write_report(tmp_path, make_trials(), make_summary(kind="ranking"), CONFIG)


def test_build_report_names_missing_file(tmp_path: Path) -> None:
    write_inputs(tmp_path, make_trials(), make_summary())
    (tmp_path / "config.yaml").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.yaml"):
        build_report(tmp_path)


def test_cli_rebuilds_report(tmp_path: Path) -> None:
    write_inputs(tmp_path, make_trials("regression"), make_summary(kind="regression"))
    done = run_cli(str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == tmp_path / "report.html"
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_cli_missing_dir_exits_2_with_one_line(tmp_path: Path) -> None:
    done = run_cli(str(tmp_path / "nope"))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr and "nope" in done.stderr


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_figures_return_figures(kind: str) -> None:
    trials = make_trials(kind)
    params = ["dropout", "l2_on", "l2"]
    assert isinstance(gap_vs_params(trials, params, {"l2"}, kind), Figure)
    assert isinstance(val_metric_history(trials, "val_loss", "minimize"), Figure)
    assert isinstance(gap_by_family(trials, kind), Figure)


def test_figures_after_csv_round_trip(tmp_path: Path) -> None:
    # Reading back turns the on/off flag with gaps into an object column of bools.
    make_trials().to_csv(tmp_path / "t.csv", index=False)
    trials = pd.read_csv(tmp_path / "t.csv")
    fig = gap_vs_params(trials, ["dropout", "l2_on", "l2", "absent"], ["l2"], "classification")
    assert isinstance(fig, Figure)


@pytest.mark.parametrize("trials", [make_trials().assign(state="failed"), pd.DataFrame()])
def test_figures_without_complete_trials_say_so(trials: pd.DataFrame) -> None:
    for fig in (
        gap_vs_params(trials, ["dropout"], [], "classification"),
        val_metric_history(trials, "val_loss", "maximize"),
        gap_by_family(trials, "regression"),
    ):
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert "no complete trials" in texts


def test_history_rejects_bad_direction() -> None:
    with pytest.raises(ValueError, match="direction"):
        val_metric_history(make_trials(), "val_loss", "up")


@pytest.mark.parametrize(
    ("values", "is_log", "expected"),
    [
        (pd.Series([True, False]), False, "categorical"),
        (pd.Series([True, None, False], dtype=object), False, "categorical"),
        (pd.Series(["relu", "tanh"]), False, "categorical"),
        (pd.Series([0.1, None, 0.3]), False, "numeric"),
        (pd.Series([1e-5, 1e-2]), True, "log"),
        (pd.Series([3, 5, 10]), False, "numeric"),
    ],
)
def test_param_kind(values: pd.Series, is_log: bool, expected: str) -> None:
    assert param_kind(values, is_log) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.123456, "0.1235"),
        (12345.678, "1.235e+04"),
        (3.0, "3"),
        (7, "7"),
        (np.int64(42), "42"),
        (np.float32(0.5), "0.5"),
        (float("nan"), ""),
        (None, ""),
        (True, "true"),
        (np.bool_(False), "false"),
        ("complete", "complete"),
    ],
)
def test_format_value(value: object, expected: str) -> None:
    assert format_value(value) == expected
