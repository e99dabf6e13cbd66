"""Sweep YAML → Optuna suggestions, and sampled values → a member's hyperparameters.

A parameter with ``flag: true`` is conditional: the sampler first draws ``<name>_on`` and the
magnitude exists only when it is on, so "off" is a real choice rather than a tiny magnitude.

Example:
    >>> import optuna
    >>> space = SearchSpace({"l2": ParamSpec(low=1e-4, high=1.0, log=True, flag=True)})
    >>> trial = optuna.create_study().ask()
    >>> sorted(space.suggest(trial))  # doctest: +SKIP
    ['l2', 'l2_on']
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from regsearch.config import SEARCHABLE, ParamSpec, RegsearchConfig, dropout_layers, searchable
from regsearch.records import Hyperparams

__all__ = ["SearchSpace", "apply_params", "base_hparams"]


@dataclass(frozen=True)
class SearchSpace:
    """The searched parameters of one sweep (or one family of the compare sweep)."""

    params: dict[str, ParamSpec]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw every parameter for ``trial``; flags first, magnitudes only when on."""
        values: dict[str, Any] = {}
        for name, spec in self.params.items():
            if spec.flag and not trial.suggest_categorical(f"{name}_on", [False, True]):
                values[f"{name}_on"] = False
                continue
            if spec.flag:
                values[f"{name}_on"] = True
            values[name] = self._suggest_one(trial, name, spec)
        return values

    @staticmethod
    def _suggest_one(trial: optuna.Trial, name: str, spec: ParamSpec) -> Any:
        if spec.type == "categorical" or spec.choices:
            return trial.suggest_categorical(name, list(spec.choices or []))
        assert spec.low is not None and spec.high is not None  # checked by config.validate
        if spec.type == "int":
            step = int(spec.step or 1)
            return trial.suggest_int(name, int(spec.low), int(spec.high), step=step, log=spec.log)
        return trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)

    def grid(self, points: int) -> dict[str, list[Any]]:
        """Values per parameter for Optuna's GridSampler (``grid`` lists win over ``points``)."""
        grid: dict[str, list[Any]] = {}
        for name, spec in self.params.items():
            if spec.grid:
                grid[name] = list(spec.grid)
            elif spec.type == "categorical" or spec.choices:
                grid[name] = list(spec.choices or [])
            else:
                assert spec.low is not None and spec.high is not None
                space = np.geomspace if spec.log else np.linspace
                values = space(spec.low, spec.high, points)
                grid[name] = (
                    sorted({round(v) for v in values})
                    if spec.type == "int"
                    else [float(v) for v in values]
                )
        return grid

    @property
    def columns(self) -> list[str]:
        """Column names the sampled values produce (flags included), in a stable order."""
        cols: list[str] = []
        for name, spec in self.params.items():
            cols.extend([f"{name}_on", name] if spec.flag else [name])
        return cols

    @property
    def log_params(self) -> list[str]:
        return [name for name, spec in self.params.items() if spec.log]

    def grid_size(self, points: int) -> int:
        """Number of grid points :meth:`grid` spans."""
        return int(np.prod([len(v) for v in self.grid(points).values()]))


def base_hparams(cfg: RegsearchConfig) -> Hyperparams:
    """The fixed (not searched) hyperparameters from the train and model config."""
    n_hidden = dropout_layers(cfg.model)
    rates = list(cfg.model.dropout)
    dropout = tuple(rates * n_hidden if len(rates) == 1 else rates)
    return Hyperparams(
        lr=cfg.train.lr,
        momentum=cfg.train.momentum,
        l1=cfg.train.l1,
        l2=cfg.train.l2,
        weight_decay=cfg.train.weight_decay,
        dropout=dropout if any(dropout) else (),
        batch_norm=cfg.model.batch_norm,
        patience=cfg.train.patience,
        min_delta=cfg.train.min_delta,
    )


def apply_params(base: Hyperparams, values: dict[str, Any], n_hidden: int) -> Hyperparams:
    """Overlay sampled values (as from :meth:`SearchSpace.suggest`) on ``base``.

    Each value is cast to its parameter's type; ``dropout`` sets every hidden layer,
    ``dropout_<i>`` layer i (1-based); a flag that is off sets its parameter to the "off"
    value of :data:`regsearch.config.SEARCHABLE`.

    Raises:
        ValueError: A name that is not searchable, or a layer the model does not have.
    """
    changes: dict[str, Any] = {}
    rates = list(base.dropout) or [0.0] * n_hidden
    for key, value in values.items():
        name = key.removesuffix("_on")
        entry = searchable(name)
        if entry is None:
            raise ValueError(f"{key}: not a searchable parameter; allowed: {', '.join(SEARCHABLE)}")
        if name != key and value:
            continue  # the flag is on: the magnitude sets the value
        setting = entry.off if name != key else entry.cast(value)
        if entry.per_layer:  # dropout, the one per-layer field: a rate per hidden layer
            _set_dropout(rates, name, setting)
        else:
            changes[name] = setting
    changes["dropout"] = tuple(rates) if any(rates) else ()
    return dataclasses.replace(base, **changes)


def _set_dropout(rates: list[float], key: str, value: float) -> None:
    if key == "dropout":
        rates[:] = [value] * len(rates)
        return
    layer = int(key.split("_", 1)[1])
    if not 1 <= layer <= len(rates):
        raise ValueError(f"{key}: the model has {len(rates)} hidden layers (1..{len(rates)})")
    rates[layer - 1] = value
