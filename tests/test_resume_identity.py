"""A resumed study must be the same experiment: another preset, task or setting is refused
with one line naming each differing key and its stored value, before anything is written."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from regsearch.config import ConfigError
from regsearch.search.identity import DIGEST_ATTR, SETTINGS_ATTR
from regsearch.sweep import run_sweep
from tests.conftest import TINY
from tests.test_cli_errors import assert_refused, run_cli

STUDY = "ident"
#: A small l2 sweep on wine, named so that it can be resumed.
BASE = [*TINY, "report=false", "tracking=none", "search.cv=0", "sweep.final_seeds=2"]


def _trials(root: Path, name: str = STUDY) -> int:
    return len(optuna.load_study(study_name=name, storage=f"sqlite:///{root}/optuna.db").trials)


def _run_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*-*/*") if p.is_dir())


@pytest.fixture
def made(tmp_path: Path, make_config) -> Path:
    """``tmp_path`` holding study ``ident``: +sweep=l2 task=wine, 2 trials."""
    cfg, text = make_config(tmp_path, "+sweep=l2", "task=wine", *BASE, "search.n_trials=2",
                            f"search.study_name={STUDY}")  # fmt: skip
    run_sweep(cfg, text)
    return tmp_path


def test_the_study_stores_what_defines_it(made: Path) -> None:
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{made}/optuna.db")
    assert study.metric_names == ["val_loss"]  # the dashboard's name for the objective
    attrs = study.user_attrs
    settings = attrs[SETTINGS_ATTR]
    assert len(attrs[DIGEST_ATTR]) == 8
    assert settings["sweep.name"] == '"l2"' and settings["task.name"] == '"wine"'
    assert "search.n_trials" not in settings and "paths.root" not in settings  # budget, place
    final = optuna.load_study(study_name=f"{STUDY}.final", storage=f"sqlite:///{made}/optuna.db")
    assert final.user_attrs[DIGEST_ATTR] == attrs[DIGEST_ATTR]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        # The two slips: another preset on the study, and the task forgotten.
        (["+sweep=dropout", "task=wine"], 'sweep.name="dropout" (stored: "l2")'),
        (["+sweep=l2"], 'task.name="moons" (stored: "wine")'),
        (["+sweep=l2", "task=wine", "model.hidden=[8]"], "model.hidden=[8] (stored: [64, 64])"),
        (["+sweep=l2", "task=wine", "seed=3"], "seed=3 (stored: 0)"),
    ],
    ids=["preset", "task", "model", "seed"],
)
def test_resuming_with_another_experiment_is_refused_and_writes_nothing(
    made: Path, make_config, overrides: list[str], named: str
) -> None:
    before, folders = _trials(made), _run_folders(made)
    resume = ["search.resume=true", f"search.study_name={STUDY}", "search.n_trials=4"]
    cfg, text = make_config(made, *overrides, *BASE, *resume)
    with pytest.raises(ConfigError, match="created by another experiment") as caught:
        run_sweep(cfg, text)
    message = str(caught.value)
    assert "\n" not in message and named in message, message
    assert _trials(made) == before and _trials(made, f"{STUDY}.final") == 2
    assert _run_folders(made) == folders


def test_resuming_with_the_same_experiment_and_a_larger_budget_goes_on(
    made: Path, make_config
) -> None:
    resume = ["search.resume=true", f"search.study_name={STUDY}", "search.n_trials=3"]
    cfg, text = make_config(made, "+sweep=l2", "task=wine", *BASE, *resume, "threads=0")
    run_sweep(cfg, text)
    assert _trials(made) == 3


def test_the_command_line_refuses_with_one_line_and_exit_2(made: Path) -> None:
    resume = ["search.resume=true", f"search.study_name={STUDY}", f"paths.root={made}"]
    proc = run_cli(made, "+sweep=dropout", "task=wine", *BASE, *resume)
    assert_refused(proc, 'sweep.name="dropout" (stored: "l2")')
    assert _trials(made) == 2


def test_a_multirun_whose_jobs_join_the_study_is_refused_before_the_first_job(made: Path) -> None:
    """Workers launched by Hydra onto one study: the job that differs (seed=1) is refused, and
    so is the whole multirun, before the matching job (seed=0) trains anything."""
    resume = ["search.resume=true", f"search.study_name={STUDY}", f"paths.root={made}"]
    proc = run_cli(made, "-m", "+sweep=l2", "task=wine", "seed=0,1", *BASE, *resume)
    assert_refused(proc, "seed=1 (stored: 0)")
    assert _trials(made) == 2
    assert not (made / "multirun").exists()


@pytest.mark.slow
def test_compare_refuses_a_changed_family_space(tmp_path: Path, make_config) -> None:
    """Each family's study and the final one carry the fingerprint; a narrowed space is
    refused, naming the key, before any of them is touched."""
    families = ["~sweep.families.l1", "~sweep.families.weight_decay", "~sweep.families.batchnorm"]
    families += ["~sweep.families.dropout", "sweep.tune_lr=false"]
    small = [*families, "sweep.families.l2.n_trials=2", "sweep.families.early_stopping.n_trials=2"]
    named = [f"search.study_name={STUDY}"]
    cfg, text = make_config(tmp_path, "+sweep=compare", *BASE, *small, *named)
    run_sweep(cfg, text)
    counts = {f: _trials(tmp_path, f"{STUDY}.{f}") for f in ("l2", "early_stopping", "final")}
    changed = ["sweep.families.l2.params.l2.high=0.5", "search.resume=true"]
    cfg, text = make_config(tmp_path, "+sweep=compare", *BASE, *small, *named, *changed)
    with pytest.raises(ConfigError, match=r"sweep\.families\.l2\.params\.l2\.high=0\.5 \(stored"):
        run_sweep(cfg, text)
    assert counts == {f: _trials(tmp_path, f"{STUDY}.{f}") for f in counts}
