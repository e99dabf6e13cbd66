"""A user's own preset, found where README says to put it: ``--config-dir``, Hydra's
``hydra.searchpath`` and ``regsearch.run(config_dir=...)``; README's example test runs as
written from a temporary project folder."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import regsearch
from regsearch.config import ConfigError
from tests.conftest import TINY
from tests.test_cli_errors import run_cli

README = Path(__file__).resolve().parent.parent / "README.md"


def _readme_block(language: str, marker: str) -> str:
    """The README code block in ``language`` that contains ``marker``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"README: one ```{language} block with {marker!r}"
    return found[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project folder with README's preset at the path README names."""
    preset = _readme_block("yaml", "name: my_preset")
    path = preset.splitlines()[1].removeprefix("# ").strip()
    assert path == "conf/sweep/my_preset.yaml", "README names where the file goes"
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_text(preset)
    return tmp_path


def test_readme_example_test_runs_as_written(project: Path) -> None:
    (project / "test_my_preset.py").write_text(_readme_block("python", "def test_my_preset"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_preset.py"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 passed" in proc.stdout


@pytest.mark.parametrize(
    "how",
    [["--config-dir", "conf"], ["-cd", "conf"], ["hydra.searchpath=[file://conf]"]],
    ids=["config-dir", "cd", "searchpath"],
)
def test_the_command_line_finds_the_preset(project: Path, how: list[str]) -> None:
    if how[0].startswith("hydra.searchpath"):
        how = [f"hydra.searchpath=[file://{project / 'conf'}]"]
    args = [*how, "+sweep=my_preset", *TINY, "report=false", "tracking=none", "search.n_trials=1"]
    proc = run_cli(project, *args, "sweep.final_seeds=0", "search.cv=0", "paths.root=out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "my_preset on moons" in proc.stdout
    assert list((project / "out").glob("my_preset-moons/*/summary.json"))


def test_an_unknown_preset_lists_the_users_own_too(project: Path) -> None:
    with pytest.raises(ConfigError, match=r"allowed sweep values: .*my_preset"):
        regsearch.run("+sweep=my_preest", root=project / "out", config_dir=project / "conf")
    assert not (project / "out").exists()


def test_readme_csv_steps_run_as_written(tmp_path: Path) -> None:
    """README's own-table commands, on a Titanic-like file with the columns they name, each
    with a tiny budget appended."""
    from tests.test_csv_columns import titanic

    table = titanic(60)
    table["Ticket"] = [f"T{i % 7}" for i in range(len(table))]
    table["Cabin"] = ["C1" if i % 5 else None for i in range(len(table))]
    table.to_csv(tmp_path / "titanic.csv", index=False)
    lines = _readme_block("bash", "task.path=titanic.csv").strip().splitlines()
    families = ["l1", "l2", "weight_decay", "dropout", "early_stopping", "batchnorm"]
    budget = [*TINY, "report=false", "tracking=none", "search.cv=0", "search.n_trials=2"]
    budget += ["sweep.final_seeds=2", "search.final_cv=0"]
    for line in lines:
        args = shlex.split(line)
        assert args[:3] == ["python", "-m", "regsearch"]
        extra = [f"sweep.families.{f}.n_trials=2" for f in families if "compare" in line]
        proc = run_cli(tmp_path, *args[3:], *budget, *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((tmp_path / "sweeps").glob("dropout-titanic/*/summary.json"))
    assert list((tmp_path / "sweeps").glob("compare-titanic_small/*/summary.json"))


@pytest.mark.slow
def test_readme_own_network_example_runs_as_written(tmp_path: Path) -> None:
    """README's user module, saved where its first comment says, run with the command in that
    comment (a tiny budget appended)."""
    code = _readme_block("python", "def make_net(")
    (tmp_path / "my_pkg").mkdir()
    (tmp_path / "my_pkg" / "__init__.py").write_text("")
    (tmp_path / "my_pkg" / "nets.py").write_text(code)
    comment = [line.lstrip("# ").rstrip(" \\") for line in code.splitlines()[:2]]
    command = shlex.split(" ".join(comment).split(": ", 1)[1])
    assert command[:3] == ["python", "-m", "regsearch"]
    families = ["l1", "l2", "weight_decay", "dropout", "early_stopping", "batchnorm"]
    budget = [*TINY, "report=false", "tracking=none", "search.cv=0", "sweep.final_seeds=2"]
    budget += ["search.final_cv=0", "train.max_epochs=4", "train.eval_every=2"]
    budget += [f"sweep.families.{f}.n_trials=2" for f in families]
    env_path = f"PYTHONPATH={tmp_path}"
    proc = subprocess.run(
        ["env", env_path, sys.executable, "-m", "regsearch", *command[3:], *budget],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = next((tmp_path / "sweeps").glob("compare-digits/*/summary.json"))
    assert '"verdict"' in summary.read_text()
