"""regsearch.run: the Python API composes, validates and runs exactly as the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

import regsearch
from tests.conftest import TINY


def test_run_returns_the_run_folder_tables_and_verdict(tmp_path: Path) -> None:
    result = regsearch.run(
        "+sweep=l2",
        *TINY,
        "search.n_trials=2",
        "search.cv=0",
        "sweep.final_seeds=2",
        "tracking=none",
        root=tmp_path,
    )
    assert result.run_dir.parent == tmp_path / "l2-moons"
    assert (result.run_dir / "trials.csv").is_file()
    assert set(result.trials["phase"]) == {"tune", "final"}
    assert {"epoch", "train_loss", "val_loss"} <= set(result.curves.columns)
    assert len(result.curves) > 0
    assert result.comparison is not None and result.comparison.baseline == "baseline"
    assert "baseline" in result.verdict


def test_bad_input_raises_the_cli_message_and_writes_nothing(tmp_path: Path) -> None:
    # The message names the key and the value; its wording belongs to regsearch.config.
    with pytest.raises(regsearch.ConfigError, match=r"^search\.n_trials=0: .*>= 1"):
        regsearch.run("+sweep=l2", "search.n_trials=0", root=tmp_path)
    with pytest.raises(regsearch.ConfigError, match="sweep/nope"):
        regsearch.run("+sweep=nope", root=tmp_path)
    with pytest.raises(
        regsearch.ConfigError, match=r"^\+experiment=suite: .*regsearch\.suite\.run"
    ):
        regsearch.run("+experiment=suite", root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_import_stays_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, regsearch; print('torch' in sys.modules, 'hydra' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
