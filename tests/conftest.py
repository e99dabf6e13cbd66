"""Shared fixtures: the real Hydra config, composed and shrunk to a tiny budget."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from regsearch.__main__ import CONF_DIR
from regsearch.config import RegsearchConfig, validate
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
