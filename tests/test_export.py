"""The comparison as a table for a paper: ``regsearch.results.comparison_frame`` and
``python -m regsearch.export`` (CSV, LaTeX, two sweeps side by side) on real tiny sweeps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from regsearch.export import main
from regsearch.results import COMPARISON_COLUMNS, comparison_frame, load_sweep
from regsearch.sweep import SweepResult, run_sweep
from tests.conftest import TINY

SMALL = [*TINY, "report=false", "tracking=none", "search.cv=0", "search.n_trials=2"]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> list[SweepResult]:
    """Two finished sweeps on wine (l2 and dropout) and one without a final phase."""
    from omegaconf import OmegaConf

    from regsearch.config import validate
    from tests.conftest import compose_config

    root = tmp_path_factory.mktemp("sweeps")
    done = []
    for extra in (["+sweep=l2"], ["+sweep=dropout"], ["+sweep=l2", "sweep.final_seeds=0"]):
        cfg = compose_config(root, *extra, "task=wine", *SMALL)
        done.append(run_sweep(validate(cfg), OmegaConf.to_yaml(cfg, resolve=True)))
    return done


def test_the_frame_holds_the_verdicts_numbers(sweeps: list[SweepResult]) -> None:
    result = sweeps[0]
    found = result.comparison
    assert found is not None
    frame = comparison_frame(result.summary)
    assert list(frame.columns) == COMPARISON_COLUMNS
    assert list(frame["candidate"]) == [c.name for c in found.candidates]
    row = frame.set_index("candidate").loc["l2"]
    diff = found.candidate("l2").vs_baseline[found.metric]
    assert row["effect"] == pytest.approx(diff.mean)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((diff.low, diff.high))
    assert row["tier"] == found.tier and row["standing"] == found.candidate("l2").standing
    # load_sweep returns the same table, read back from the folder.
    pd.testing.assert_frame_equal(load_sweep(result.run_dir).comparison, frame)


def test_csv_and_latex_of_two_sweeps_side_by_side(
    sweeps: list[SweepResult], tmp_path: Path
) -> None:
    folders = [str(s.run_dir) for s in sweeps[:2]]
    assert main([*folders, "--out", str(tmp_path / "t.csv")]) == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table["folder"].unique()) == folders
    origin = sweeps[0].summary["provenance"]
    assert set(table["regsearch_version"]) == {origin["regsearch"]}
    assert set(table["torch_version"]) == {origin["packages"]["torch"]}
    assert sorted(table["candidate"]) == ["baseline", "baseline", "dropout", "l2"]
    proc = subprocess.run(
        [sys.executable, "-m", "regsearch.export", *folders, "--format", "latex"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    latex = proc.stdout
    assert latex.startswith(r"\begin{table}") and r"\toprule" in latex and r"\bottomrule" in latex
    assert "l2 / wine" in latex and "dropout / wine" in latex
    assert latex.count(r"\\") == 1 + 4  # the header and one row per candidate


@pytest.mark.parametrize("which", ["missing", "no final phase"])
def test_bad_folders_exit_2_with_one_line(
    sweeps: list[SweepResult], tmp_path: Path, which: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "nope" if which == "missing" else sweeps[2].run_dir
    assert main([str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("regsearch.export: error: ")
