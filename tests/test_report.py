"""Tests for regsearch.report: the HTML page and the rebuild command (figures: test_figures.py)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from html import escape, unescape
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from markupsafe import escape as markup_escape
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from regsearch.comparison import compare_sweep, format_effect, format_p
from regsearch.config import validate
from regsearch.report import build_report, views, write_report
from regsearch.report.html import format_value
from regsearch.sweep import SweepResult, run_sweep
from tests.conftest import TINY, compose_config

REPO = Path(__file__).resolve().parents[1]
MALICIOUS = "<script>alert(1)</script>"
SECTIONS = ("Verdict", "Setup", "Comparison", "Figures", "Trials", "MLflow runs")
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


def made_study(name: str, n_trials: int, weights: dict[str, float]) -> optuna.Study:
    """A study of ``n_trials`` random trials of l2 and lr whose value is their weighted sum."""
    study = optuna.create_study(study_name=name)
    space = {
        "l2": optuna.distributions.FloatDistribution(0.0, 1.0),
        "lr": optuna.distributions.FloatDistribution(0.0, 1.0),
    }
    rng = np.random.default_rng(len(name))
    for _ in range(n_trials):
        params = {p: float(rng.uniform()) for p in space}
        value = sum(weights[p] * v for p, v in params.items())
        study.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=value))
    return study


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
    assert pngs == ["gap_vs_params.png", "penalty_effects.png", "val_metric_history.png"]


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
    table = table[: table.index("</table>")]
    assert table.count("<tr") == 1 + 12  # header + one row per member
    assert 'class="state-failed"' in table and 'class="state-pruned"' in table
    numbers = re.findall(r"<td data-v=[^>]*>([^<]*)</td>", table)
    assert numbers and all(n == f"{float(n):.4g}" for n in numbers)


def many_trials(blocks: int = 5) -> pd.DataFrame:
    """``blocks`` copies of :func:`make_trials` with their own trial numbers (12 rows each)."""
    copies = [make_trials().assign(trial=lambda f, k=k: f["trial"] + 6 * k) for k in range(blocks)]
    return pd.concat(copies, ignore_index=True)


def test_a_long_trial_table_shows_its_first_page(tmp_path: Path) -> None:
    trials = many_trials()
    html = write_report(tmp_path, trials, make_summary(), CONFIG).read_text(encoding="utf-8")
    section = html[html.index('<section id="trials">') :]
    section = section[: section.index("</section>")]
    table = section[section.index("<tbody>") : section.index("</tbody>")]
    rows = re.findall(r"<tr[^>]*>", table)
    assert len(rows) == len(trials) == 60  # every row is in the page, for sorting and search
    assert [" hidden" in r for r in rows] == [False] * 50 + [True] * 10
    assert "Showing the first 50 of 60 rows" in section
    assert re.search(
        r'<button type="button" class="show-all"[^>]*>Show all 60 rows</button>', section
    )


def test_a_short_trial_table_is_not_paged(report: tuple[Path, str]) -> None:
    _, html = report
    section = html[html.index('<section id="trials">') :]
    section = section[: section.index("</section>")]
    assert " hidden" not in section and "show-all" not in section


def test_importance_of_all_families_is_one_figure(tmp_path: Path) -> None:
    studies = {
        "l2": made_study("l2", 8, {"l2": 5.0, "lr": 1.0}),
        "dropout": made_study("dropout", 8, {"l2": 1.0, "lr": 5.0}),
        "early_stopping": made_study("early_stopping", 3, {"l2": 1.0, "lr": 1.0}),
        "final": made_study("final", 8, {"l2": 1.0, "lr": 1.0}),
    }
    path = write_report(tmp_path, make_trials(), make_summary(), CONFIG, studies=studies)
    html = path.read_text(encoding="utf-8")
    pngs = sorted(p.stem for p in (tmp_path / "figures").glob("importance*.png"))
    assert pngs == ["importance"]
    assert html.count('<figure id="fig-importance') == 1
    figure = html[html.index('<figure id="fig-importance"') :]
    caption = figure[figure.index("<figcaption>") : figure.index("</figcaption>")]
    assert "one panel per family (l2, dropout)" in caption
    assert "Not ranked: early_stopping (importance needs 5+ complete trials)" in caption
    assert "final" not in caption  # the final phase re-evaluates; it searches nothing


def test_final_rows_add_comparison(tmp_path: Path) -> None:
    trials = make_trials()
    trials.loc[8:, "phase"] = "final"
    trials.loc[8:9, "family"] = "baseline"
    trials.loc[10:, "family"] = "dropout"
    trials.loc[[8, 9], "state"] = "complete"
    path = write_report(tmp_path, trials, make_summary(best=None, mlflow=None), CONFIG)
    html = path.read_text(encoding="utf-8")
    assert (tmp_path / "figures" / "comparison.png").is_file()
    assert not (tmp_path / "figures" / "gap_by_family.png").exists()
    assert '<table class="compare">' in html and '<tr class="baseline">' in html
    assert "Tracking was off" in html


BASE_VAL = [0.50, 0.52, 0.54, 0.51, 0.53]


def make_final(folds: int = 0) -> pd.DataFrame:
    """Final rows of a classification sweep on 5 seeds (× ``folds`` folds, plus refit rows).

    dropout validates better on every pair (test agrees); l1 closes the gap by fitting worse.
    """
    shifts = {"baseline": (0.0, 0.0), "dropout": (-0.05, 0.0), "l1": (0.02, 0.25)}
    rows: list[dict[str, Any]] = []
    for trial, (name, (dval, dtrain)) in enumerate(shifts.items()):
        params = {"dropout": 0.3 if name == "dropout" else math.nan}
        params["l1"] = 0.01 if name == "l1" else math.nan
        for i, base in enumerate(BASE_VAL):
            for fold in range(folds) if folds else [-1]:
                val = base + dval + 0.004 * fold * (i % 2)
                train = 0.2 + dtrain
                row = {"trial": trial, "seed": 1000 + i, "fold": fold, "state": "complete"}
                row |= {"family": name, "phase": "final", **params, "train_loss": train}
                row |= {"val_loss": val, "gap_loss": val - train, "val_acc": 1 - val}
                row |= {"train_acc": 1 - train, "gap_acc": val - train}
                row |= {"test_loss": val + 0.01, "test_acc": 0.99 - val} if not folds else {}
                rows.append(row)
            if folds:
                refit = {"trial": trial, "seed": 1000 + i, "fold": -1, "state": "complete"}
                refit |= {"family": name, "phase": "final", **params, "train_loss": 0.2}
                rows.append(refit | {"test_loss": base + dval, "test_acc": 1 - base - dval})
    return pd.DataFrame(rows)


def final_summary(**changes: Any) -> dict[str, Any]:
    summary = make_summary(best=None, mlflow=None, partial=False, params=["dropout", "l1"])
    return summary | {"final_seeds": [1000, 1001, 1002, 1003, 1004]} | changes


def test_report_shows_the_decision_and_the_gap_diagnosis(tmp_path: Path) -> None:
    trials, summary = make_final(), final_summary()
    found = compare_sweep(trials, summary)
    assert found is not None and found.winner == "dropout"
    html = write_report(tmp_path, trials, summary, CONFIG).read_text(encoding="utf-8")
    verdict = html[
        html.index('<p class="verdict') : html.index("</p>", html.index('class="verdict'))
    ]
    assert str(markup_escape(found.verdict)) in verdict and "clear winner</span>" in verdict
    aside = html[html.index('<aside class="test-check agrees"') : html.index("</aside>")]
    assert "Test agrees" in aside and "dropout: agrees (test_loss -0.05)" in aside
    assert "<dt>tier</dt><dd>clear</dd>" in html and "<dt>rule</dt><dd>graded, P≥0.8</dd>" in html
    assert "How this was decided</h3>" in html and str(markup_escape(found.rule)) in html
    for fact in ("<dt>decision metric</dt><dd>val_loss</dd>", "<dt>test</dt><dd>paired t</dd>"):
        assert fact in html
    assert "<dt>seeds</dt><dd>1000, 1001, 1002, 1003, 1004</dd>" in html
    assert "<dt>folds</dt><dd>none (holdout)</dd>" in html
    table = html[html.index('<table class="diagnosis">') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr") == 1 + 2  # header + the two non-baseline candidates
    dropout = found.candidate("dropout")
    row = table[table.index('<tr class="winner">') :]
    cells = [unescape(c) for c in re.findall(r"<td[^>]*>([^<]*)", row)]
    assert cells[:6] == [
        "dropout ★",
        "5",
        format_effect(dropout.vs_baseline["val_loss"]),
        format_p(dropout.vs_baseline["val_loss"].p_value),
        format_p(dropout.p_adjusted),
        "1.00",  # posterior P(better by more than the margin)
    ]
    assert cells[7] == "clear" and cells[8] == "1"  # standing; better on every pair
    assert '<td class="label">closes the gap by fitting worse</td>' in table
    assert '<td class="label">generalizes better</td>' in table


def test_report_of_a_cross_validated_comparison(tmp_path: Path) -> None:
    cv = {"folds": 3, "pool_rows": 150, "n_train": 100, "n_val": 50}
    summary = final_summary(
        cv=cv,
        constant_predictor={"val_loss": 0.3},
        random_search=["baseline", "dropout"],
        left_out={"batchnorm": "the model has no hidden layer to normalize (model.hidden=[])"},
    )
    html = write_report(tmp_path, make_final(folds=3), summary, CONFIG).read_text("utf-8")
    assert "<dt>folds</dt><dd>3 (0, 1, 2)</dd>" in html
    assert "<dt>test</dt><dd>corrected resampled t</dd>" in html
    assert "<dt>n_val/n_train</dt><dd>0.5</dd>" in html
    assert "<dt>searched at random</dt><dd>baseline, dropout</dd>" in html
    assert "<dt>left out</dt><dd>batchnorm (the model has no hidden layer to normalize" in html
    assert "15 seed×fold pairs" in html and "(seed, fold) pairs" in html
    # No candidate (best val_loss ≈ 0.47) beats the constant predictor (0.3): said first.
    verdict = html[html.index('<p class="verdict') :]
    assert verdict.index("No candidate beats a constant predictor") < verdict.index("Clear win")
    assert '<p class="verdict weak">' in html  # not conclusive without a learnable model


def test_tuning_sweep_verdict_says_untested(report: tuple[Path, str]) -> None:
    _, html = report
    assert "untested" in html and "+sweep=compare" in html
    assert "did not retrain candidates" in html


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


# --- a real tiny compare sweep (three families, tracked in MLflow) --------------------------

TINY_COMPARE = [
    "+sweep=compare",
    *TINY,
    "sweep.final_seeds=3",
    "~sweep.families.l1",
    "~sweep.families.weight_decay",
    "~sweep.families.batchnorm",
    *(f"sweep.families.{f}.n_trials=3" for f in ("l2", "dropout", "early_stopping")),
]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    cfg = compose_config(tmp_path_factory.mktemp("sweeps"), *TINY_COMPARE)
    return run_sweep(validate(cfg), OmegaConf.to_yaml(cfg, resolve=True))


def copy_run(result: SweepResult, dest: Path, **summary_changes: Any) -> Path:
    """A copy of the run folder (same stores) with summary.json changed."""
    run_dir = dest / "run"
    shutil.copytree(result.run_dir, run_dir)
    summary = json.loads((run_dir / "summary.json").read_text()) | summary_changes
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def test_sweep_report_leads_with_the_verdict(swept: SweepResult) -> None:
    html = (swept.run_dir / "report.html").read_text(encoding="utf-8")
    positions = [html.index(f">{heading}</h2>") for heading in SECTIONS]
    assert positions == sorted(positions)
    found = compare_sweep(swept.trials, swept.summary)
    assert found is not None and found.baseline == "baseline"
    assert html.index("Verdict</h2>") < html.index('class="verdict') < html.index("Setup</h2>")
    assert str(markup_escape(found.verdict)) in html  # Jinja escapes with markupsafe
    for cand in found.candidates:
        assert f"{cand.name}" in html[html.index('<table class="compare">') :]
    pngs = {p.stem for p in (swept.run_dir / "figures").glob("*.png")}
    assert {"comparison", "learning_curves", "decision_boundaries"} <= pngs
    # Trial numbers count per family: the history's caption says how it tells them apart.
    assert "one colour per family" in html


def test_build_report_from_stores_lists_mlflow_runs(swept: SweepResult, tmp_path: Path) -> None:
    run_dir = copy_run(swept, tmp_path)
    (run_dir / "trials.csv").unlink()  # the stores alone must do
    html = build_report(run_dir).read_text(encoding="utf-8")
    mlflow = swept.summary["mlflow"]
    assert mlflow["parent_run_id"] in html
    client = MlflowClient(tracking_uri=mlflow["uri"])
    parent = f"tags.mlflow.parentRunId = '{mlflow['parent_run_id']}'"
    finals = client.search_runs(
        [mlflow["experiment_id"]], f"{parent} AND tags.`regsearch.phase` = 'final'"
    )
    found = swept.comparison
    assert found is not None
    # baseline + three families (+ the baseline at a family's learning rate, if it differs)
    assert len(finals) == len(found.candidates) >= 4
    for run in finals:
        assert run.info.run_id in html
    assert "Partial results" not in html and "rebuilt from CSV" not in html


def test_the_summary_holds_the_linked_runs_the_recorder_logged(
    swept: SweepResult, tmp_path: Path
) -> None:
    """The report links the final and best runs from what the recorder logged (no MLflow
    import); without that list it searches the store and finds the same runs."""
    mlflow = swept.summary["mlflow"]
    client = MlflowClient(tracking_uri=mlflow["uri"])
    parent = f"tags.mlflow.parentRunId = '{mlflow['parent_run_id']}'"
    finals = client.search_runs(
        [mlflow["experiment_id"]], f"{parent} AND tags.`regsearch.phase` = 'final'"
    )
    linked = {r["tags"]["regsearch.phase"]: [] for r in mlflow["runs"]}
    for r in mlflow["runs"]:
        linked[r["tags"]["regsearch.phase"]].append(r)
    assert {r["run_id"] for r in linked["final"]} == {run.info.run_id for run in finals}
    (best,) = linked["tune"]
    assert best["tags"]["optuna.trial_number"] == str(swept.summary["best"]["trial"])
    stored = client.get_run(best["run_id"])
    assert stored.info.run_name == best["run_name"] and stored.info.status == best["status"]
    assert stored.data.tags["regsearch.family"] == swept.summary["best"]["family"]
    run_dir = copy_run(swept, tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    del summary["mlflow"]["runs"]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    html = build_report(run_dir).read_text(encoding="utf-8")
    assert all(run.info.run_id in html for run in finals)
    assert best["run_id"] in html


def test_build_report_of_a_running_sweep(swept: SweepResult, tmp_path: Path) -> None:
    # What a sweep leaves at its start: summary.json with partial=true, no CSV files yet.
    static = {k: v for k, v in swept.summary.items() if not k.startswith("n_") and k != "best"}
    run_dir = copy_run(swept, tmp_path)
    (run_dir / "summary.json").write_text(json.dumps({**static, "partial": True}))
    for name in ("trials.csv", "curves.csv", "report.html"):
        (run_dir / name).unlink()
    html = build_report(run_dir).read_text(encoding="utf-8")
    assert "Partial results" in html
    table = html[html.index('<table class="sortable">') :]
    assert table[: table.index("</table>")].count("<tr") == 1 + len(swept.trials)


def test_build_report_falls_back_to_csv(swept: SweepResult, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    run_dir = copy_run(
        swept,
        tmp_path,
        storage=f"sqlite:///{gone}/optuna.db",
        storage_resolved=f"sqlite:///{gone}/optuna.db",
        mlflow={"uri": f"sqlite:///{gone}/mlflow.db", "experiment_id": "1", "parent_run_id": "p"},
    )
    html = build_report(run_dir).read_text(encoding="utf-8")
    assert "rebuilt from CSV" in html and "run ids of the trials not looked up" in html
    assert not gone.exists()  # neither store was created by looking
    assert escape(swept.summary["title"]) in html and '<table class="compare">' in html
    (run_dir / "trials.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"trials\.csv"):
        build_report(run_dir)


def test_unreachable_mlflow_server_only_adds_a_note(tmp_path: Path) -> None:
    summary = make_summary(
        mlflow={"uri": "http://127.0.0.1:9", "experiment_id": "1", "parent_run_id": "abc"}
    )
    html = write_report(tmp_path, make_trials(), summary, CONFIG).read_text(encoding="utf-8")
    assert "MLflow store not readable" in html and "abc" in html


def test_the_report_names_its_provenance_and_cites_its_methods(swept: SweepResult) -> None:
    html = (swept.run_dir / "report.html").read_text(encoding="utf-8")
    setup = html[html.index("Setup</h2>") :]
    origin = swept.summary["provenance"]
    assert "Provenance" in setup and f"torch {origin['packages']['torch']}" in setup
    assert origin["python"] in setup and str(markup_escape(origin["device"])) in setup
    # Each method the decision used, with its full reference.
    assert "Nadeau, C., &amp; Bengio, Y. (2003)" in html
    assert "Westfall, P. H., &amp; Young, S. S. (1993)" in html
    assert "Corani, G., &amp; Benavoli, A. (2015)" in html


def test_a_worker_that_did_not_run_the_final_phase_names_where_the_verdict_is(
    swept: SweepResult,
) -> None:
    final_by = {"worker": "w2", "host": "b", "where": "/runs/x on b", "since": "t"}
    summary = {**swept.summary, "final_by": final_by}
    tuning = swept.trials[swept.trials["phase"] == "tune"]
    untested = views.verdict(None, summary, tuning)
    assert "worker w2, whose outputs are in /runs/x on b" in untested.sentence
    assert "python -m regsearch.report" in untested.sentence and not untested.conclusive
    found = compare_sweep(swept.trials, summary)
    assert found is not None
    facts = dict(views.decision_facts(found, summary))
    assert facts["final phase run by"] == "worker w2, whose outputs are in /runs/x on b"


def test_the_report_command_on_a_suite_folder_rebuilds_each_data_sets_report(
    swept: SweepResult, tmp_path: Path
) -> None:
    suite_dir = tmp_path / "suite-x"
    run_dir = suite_dir / "compare-keel-iris" / swept.run_dir.name
    shutil.copytree(swept.run_dir, run_dir)
    (run_dir / "report.html").unlink()
    (suite_dir / "suite.json").write_text("{}")
    proc = subprocess.run(
        [sys.executable, "-m", "regsearch.report", str(suite_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / "report.html").is_file()
    assert "is a suite folder: 1 data set reports rebuilt" in proc.stderr
