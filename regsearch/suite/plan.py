"""A suite's plan: its resolved config, folder, data sets and state, checked before any write."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from regsearch.config import RegsearchConfig
from regsearch.search.working import new_worker_id
from regsearch.suite.datasets import DatasetInfo
from regsearch.suite.state import SuiteState

__all__ = ["SuitePlan"]


@dataclass
class SuitePlan:
    """Everything checked before the suite writes anything."""

    cfg: RegsearchConfig
    base: DictConfig  # the resolved suite config; each data set's config starts from it
    folder: Path
    datasets: list[str]
    infos: dict[str, DatasetInfo]
    state: SuiteState
    fingerprint: str
    experiment: str  # MLflow experiment of the suite run and every data set's sweep
    yaml_text: str = ""  # the resolved suite config, shown in the report
    worker: str = field(default_factory=new_worker_id)  # names this process in shared marks

    @property
    def name(self) -> str:
        """``suite.name``."""
        assert self.cfg.suite is not None
        return self.cfg.suite.name

    @property
    def shared_name(self) -> str:
        """The suite's own study: its state across workers (:mod:`regsearch.suite.shared`)."""
        return f"suite-{self.name}-{self.fingerprint}"

    def study(self, dataset: str) -> str:
        """The base name of the data set's Optuna studies (``<base>.<family>``, ``.final``)."""
        return f"{self.shared_name}-{dataset}"
