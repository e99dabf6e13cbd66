"""`pip install .` (a real wheel, not the editable checkout) runs from any directory."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_the_configs_and_runs_outside_the_checkout(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("regsearch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "regsearch/conf/config.yaml",
        "regsearch/conf/sweep/dropout.yaml",
        "regsearch/report/template.html.j2",
    } <= names

    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed copy must win over the editable checkout on sys.path.
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = "import regsearch.__main__ as m; print(m.__file__); print(m.CONF_DIR)"
    where = subprocess.run(
        [sys.executable, "-c", code],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    module_file, conf_dir = where.stdout.split()
    assert module_file.startswith(str(site)) and conf_dir == str(site / "regsearch" / "conf")

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "regsearch",
            "+sweep=baseline",
            "train.max_epochs=20",
            "search.repeats=1",
            "progress=false",
            "tracking=none",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert (elsewhere / "sweeps" / "optuna.db").is_file()
    assert list((elsewhere / "sweeps" / "baseline-moons").glob("*/report.html"))


def test_the_citation_file_is_valid_and_names_this_version() -> None:
    import yaml

    import regsearch

    root = Path(__file__).resolve().parent.parent
    cff = yaml.safe_load((root / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["version"] == regsearch.__version__
    assert cff["title"].startswith("regsearch") and cff["authors"]
    assert {r["title"] for r in cff["references"]} >= {"Inference for the generalization error"}
