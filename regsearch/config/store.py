"""Registration of the schemas in Hydra's ConfigStore (``schema/`` group)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

from regsearch.config.schema import TASK_SCHEMAS, RegsearchConfig

__all__ = ["register_configs"]


@dataclass
class _SweepNode:
    """Composition-time shape of ``sweep``: every key exists, the nested maps stay loose.

    OmegaConf refuses to assign a plain mapping into a typed ``dict[str, ParamSpec]``, which
    would forbid ``'+sweep.params.lr={low: 0.01, high: 1}'``; validate() applies the strict
    :class:`SweepConfig` afterwards.
    """

    name: str = "baseline"
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    families: dict[str, Any] = field(default_factory=dict)
    final_seeds: int = 5
    settings: dict[str, Any] = field(default_factory=dict)
    tune_lr: bool = False
    lr_range: list[float] = field(default_factory=lambda: [0.1, 3.0])


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore under ``schema/``.

    Every sweep preset starts from ``/schema/sweep@sweep``, so each key of
    :class:`SweepConfig` (and of every :class:`ParamSpec`) can be overridden on the command
    line without ``+`` and is type-checked while Hydra composes.
    """
    cs = ConfigStore.instance()
    cs.store(group="schema", name="config", node=RegsearchConfig)
    cs.store(group="schema", name="sweep", node=_SweepNode)
    for task_name, schema in TASK_SCHEMAS.items():
        cs.store(group="schema/task", name=task_name, node=schema)
