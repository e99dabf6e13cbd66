"""Config: schemas (Hydra ConfigStore dataclasses), their registration, and validation.

Every run is checked before any store is touched: :func:`validate` turns a composed Hydra
config into typed dataclasses and raises :class:`ConfigError` with one line naming the key,
the bad value and what is allowed. The modules, along the data flow: ``schema`` (dataclasses
and allowed values), ``store`` (ConfigStore registration), ``keys`` (schema introspection for
messages), ``validation`` (the checks), ``errors``.

Example:
    >>> from omegaconf import OmegaConf
    >>> cfg = validate(OmegaConf.create({"task": {"name": "moons"}}))
    >>> cfg.task.noise
    0.5
"""

from __future__ import annotations

from regsearch.config.errors import ConfigError
from regsearch.config.keys import schema_keys, unknown_key_message
from regsearch.config.schema import (
    AUTO_CV_ROWS,
    AUTO_FOLDS,
    SEARCHABLE,
    TASK_SCHEMAS,
    CsvTask,
    FamilyConfig,
    HighdimLinearTask,
    IdxTask,
    Linear12Task,
    ModelConfig,
    MoonsTask,
    ParamSpec,
    PathsConfig,
    PolynomialTask,
    RegsearchConfig,
    SearchConfig,
    SklearnTask,
    SweepConfig,
    TaskConfig,
    TrackingConfig,
    TrainConfig,
)
from regsearch.config.store import register_configs
from regsearch.config.validation import cv_folds, validate

__all__ = [
    "AUTO_CV_ROWS",
    "AUTO_FOLDS",
    "SEARCHABLE",
    "TASK_SCHEMAS",
    "ConfigError",
    "CsvTask",
    "FamilyConfig",
    "HighdimLinearTask",
    "IdxTask",
    "Linear12Task",
    "ModelConfig",
    "MoonsTask",
    "ParamSpec",
    "PathsConfig",
    "PolynomialTask",
    "RegsearchConfig",
    "SearchConfig",
    "SklearnTask",
    "SweepConfig",
    "TaskConfig",
    "TrackingConfig",
    "TrainConfig",
    "cv_folds",
    "register_configs",
    "schema_keys",
    "unknown_key_message",
    "validate",
]

register_configs()  # composing any regsearch config needs the schemas in the store
