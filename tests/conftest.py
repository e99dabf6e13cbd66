"""Shared fixtures: the real Hydra config, composed and shrunk to a tiny budget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from regsearch.__main__ import CONF_DIR
from regsearch.config import RegsearchConfig, validate
from regsearch.search.objective import Objective
from regsearch.search.storage import get_storage
from regsearch.search.study import create_or_load
from regsearch.search.working import WorkingStudy
from tests.servers import mlflow_server, postgres_server  # noqa: F401 (fixtures)

#: Overrides that make any preset finish in about a second on the default task.
TINY = ["train.max_epochs=40", "train.eval_every=10", "progress=false", "report=true"]


def compose_config(root: Path, *overrides: str) -> DictConfig:
    """The config `python -m regsearch <overrides> paths.root=<root>` would run with."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose(config_name="config", overrides=[*overrides, f"paths.root={root}"])


@pytest.fixture
def make_config() -> Callable[..., tuple[RegsearchConfig, str]]:
    """Compose + validate; returns (typed config, resolved YAML) as the CLI job gets them."""

    def make(root: Path, *overrides: str) -> tuple[RegsearchConfig, str]:
        cfg = compose_config(root, *overrides)
        return validate(cfg), OmegaConf.to_yaml(cfg, resolve=True)

    return make


def join_study(
    storage: str, name: str, objective: Objective, sampler: optuna.samplers.BaseSampler
) -> WorkingStudy:
    """A worker's working copy of study ``name`` in ``storage`` (created by the first to come)."""
    durable, _ = create_or_load(
        name,
        storage,
        objective,
        sampler,
        optuna.pruners.NopPruner(),
        resume=True,
        must_be_new=False,
    )
    return WorkingStudy(durable, get_storage(storage), sampler, durable.pruner)
