"""regsearch.search.space against real (in-memory) Optuna studies."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from regsearch.config import SEARCHABLE, ModelConfig, ParamSpec, RegsearchConfig, TrainConfig
from regsearch.records import Hyperparams
from regsearch.search.space import SearchSpace, apply_params, base_hparams

optuna.logging.set_verbosity(optuna.logging.WARNING)


def random_trials(space: SearchSpace, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Suggest ``n`` trials with a seeded random sampler; returns what suggest() gave."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = []
    for _ in range(n):
        trial = study.ask()
        values = space.suggest(trial)
        assert values == trial.params  # everything suggested is recorded on the trial
        drawn.append(values)
        study.tell(trial, 0.0)
    return drawn


def test_flag_gives_on_switch_and_magnitude_only_when_on() -> None:
    space = SearchSpace({"l2": ParamSpec(low=1e-4, high=1.0, log=True, flag=True)})
    drawn = random_trials(space, 30)
    on = [v for v in drawn if v["l2_on"]]
    off = [v for v in drawn if not v["l2_on"]]
    assert on and off  # both branches occur
    assert all(set(v) == {"l2_on", "l2"} and 1e-4 <= v["l2"] <= 1.0 for v in on)
    assert all(v == {"l2_on": False} for v in off)


def test_flags_are_independent_per_param() -> None:
    space = SearchSpace(
        {
            "l1": ParamSpec(low=1e-5, high=1e-1, log=True, flag=True),
            "patience": ParamSpec(type="int", low=2, high=30, flag=True),
        }
    )
    drawn = random_trials(space, 40, seed=1)
    combos = {(v["l1_on"], v["patience_on"]) for v in drawn}
    assert combos == set(itertools.product([False, True], repeat=2))


@pytest.mark.parametrize(
    ("spec", "distribution", "check"),
    [
        (
            ParamSpec(type="int", low=2, high=30),
            IntDistribution(2, 30),
            lambda v: isinstance(v, int) and 2 <= v <= 30,
        ),
        (
            ParamSpec(type="int", low=2, high=30, step=4),
            IntDistribution(2, 30, step=4),
            lambda v: isinstance(v, int) and (v - 2) % 4 == 0,
        ),
        (
            ParamSpec(type="int", low=1, high=64, log=True),
            IntDistribution(1, 64, log=True),
            lambda v: isinstance(v, int) and 1 <= v <= 64,
        ),
        (
            ParamSpec(low=1e-4, high=1.0, log=True),
            FloatDistribution(1e-4, 1.0, log=True),
            lambda v: 1e-4 <= v <= 1.0,
        ),
        (
            ParamSpec(low=0.0, high=0.6, step=0.1),
            FloatDistribution(0.0, 0.6, step=0.1),
            lambda v: math.isclose(v * 10, round(v * 10), abs_tol=1e-9),
        ),
        (
            ParamSpec(type="categorical", choices=[False, True]),
            CategoricalDistribution([False, True]),
            lambda v: v in (False, True),
        ),
        (
            ParamSpec(choices=[0.1, 0.3]),  # choices without type=categorical still categorical
            CategoricalDistribution([0.1, 0.3]),
            lambda v: v in (0.1, 0.3),
        ),
    ],
    ids=["int", "int-step", "int-log", "float-log", "float-step", "categorical", "choices"],
)
def test_suggest_types(spec: ParamSpec, distribution: Any, check: Any) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        value = SearchSpace({"x": spec}).suggest(trial)["x"]
        assert trial.distributions["x"] == distribution
        assert check(value), value
        study.tell(trial, 0.0)


@pytest.mark.parametrize(
    ("spec", "points", "expected"),
    [
        (ParamSpec(low=0.0, high=0.6), 4, [0.0, 0.2, 0.4, 0.6]),
        (ParamSpec(low=1e-4, high=1.0, log=True), 5, [1e-4, 1e-3, 1e-2, 1e-1, 1.0]),
        (ParamSpec(type="int", low=1, high=30), 4, [1, 11, 20, 30]),
        (ParamSpec(type="int", low=1, high=3), 6, [1, 2, 3]),  # duplicates collapse
        (ParamSpec(low=0.05, high=0.5, log=True, grid=[0.05, 0.2, 0.5]), 4, [0.05, 0.2, 0.5]),
        (ParamSpec(type="categorical", choices=[False, True]), 4, [False, True]),
    ],
    ids=["linear", "log", "int", "int-dedup", "explicit", "categorical"],
)
def test_grid_values(spec: ParamSpec, points: int, expected: list[Any]) -> None:
    values = SearchSpace({"x": spec}).grid(points)["x"]
    assert values == pytest.approx(expected) if spec.type == "float" else values == expected
    assert len(values) == len(expected)
    if spec.type == "int":
        assert all(type(v) is int for v in values)  # suggest_int needs plain ints


def test_grid_sampler_visits_every_point() -> None:
    space = SearchSpace(
        {
            "batch_norm": ParamSpec(type="categorical", choices=[False, True]),
            "lr": ParamSpec(low=0.05, high=0.5, log=True, grid=[0.05, 0.2, 0.5]),
        }
    )
    grid = space.grid(4)
    assert space.grid_size(4) == 6
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=0))
    seen = set()

    def objective(trial: optuna.Trial) -> float:
        values = space.suggest(trial)
        seen.add((values["batch_norm"], values["lr"]))
        return 0.0

    study.optimize(objective, n_trials=20)  # GridSampler stops the study after the grid
    assert len(study.trials) == 6
    assert seen == set(itertools.product([False, True], [0.05, 0.2, 0.5]))


def test_columns_and_log_params() -> None:
    space = SearchSpace(
        {
            "l2": ParamSpec(low=1e-4, high=1.0, log=True, flag=True),
            "dropout": ParamSpec(low=0.0, high=0.5),
        }
    )
    assert space.columns == ["l2_on", "l2", "dropout"]
    assert space.log_params == ["l2"]


BASE = Hyperparams(lr=0.1, l2=0.5, weight_decay=0.01, dropout=(0.2, 0.2, 0.2), patience=5)
PLAIN = Hyperparams(lr=0.1)


@pytest.mark.parametrize(
    ("base", "values", "expected"),
    [
        (PLAIN, {"dropout": 0.3}, {"dropout": (0.3, 0.3, 0.3)}),
        (PLAIN, {"dropout_2": 0.4}, {"dropout": (0.0, 0.4, 0.0)}),
        (BASE, {"dropout_3": 0.5}, {"dropout": (0.2, 0.2, 0.5)}),
        (BASE, {"dropout": 0.0}, {"dropout": ()}),
        (BASE, {"dropout_on": False}, {"dropout": ()}),
        (BASE, {"dropout_2_on": False}, {"dropout": (0.2, 0.0, 0.2)}),
        (BASE, {"dropout_on": True, "dropout": 0.1}, {"dropout": (0.1, 0.1, 0.1)}),
        (BASE, {"l2_on": False}, {"l2": 0.0, "weight_decay": 0.01}),
        (BASE, {"weight_decay_on": False}, {"weight_decay": 0.0, "l2": 0.5}),
        (BASE, {"patience_on": False}, {"patience": None}),
        (PLAIN, {"l1_on": True, "l1": 1e-3}, {"l1": 1e-3}),
        (PLAIN, {"patience": 7.0}, {"patience": 7}),
        (PLAIN, {"patience": np.int64(9)}, {"patience": 9}),
        (PLAIN, {"batch_norm": 1}, {"batch_norm": True}),
        (PLAIN, {"batch_norm": np.bool_(True)}, {"batch_norm": True}),
        (BASE, {"batch_norm_on": False}, {"batch_norm": False}),
        (PLAIN, {"lr": np.float64(0.05), "momentum": 0.9}, {"lr": 0.05, "momentum": 0.9}),
        (PLAIN, {"min_delta_on": False}, {"min_delta": 0.0}),
    ],
)
def test_apply_params(base: Hyperparams, values: dict[str, Any], expected: dict[str, Any]) -> None:
    hp = apply_params(base, values, n_hidden=3)
    for name, value in expected.items():
        got = getattr(hp, name)
        assert got == value, name
        assert type(got) is type(value), name  # plain Python types, not numpy scalars
    assert all(type(r) is float for r in hp.dropout)
    untouched = {"lr", "momentum", "l1", "min_delta"} - set(expected) - set(values)
    assert all(getattr(hp, n) == getattr(base, n) for n in untouched)


def test_apply_params_off_values_cover_every_flaggable_name() -> None:
    flaggable = {name: entry for name, entry in SEARCHABLE.items() if entry.flaggable}
    assert set(flaggable) == {
        "l1",
        "l2",
        "weight_decay",
        "dropout",
        "batch_norm",
        "patience",
        "min_delta",
    }
    for name, entry in flaggable.items():
        if entry.per_layer:
            continue  # dropout: a tuple of rates, checked below
        assert getattr(apply_params(BASE, {f"{name}_on": False}, 3), name) == entry.off


def test_every_searchable_name_is_a_hyperparameter() -> None:
    """SEARCHABLE's names are Hyperparams fields, and each row casts to the field's type."""
    for name, entry in SEARCHABLE.items():
        value = getattr(apply_params(PLAIN, {name: 1}, 3), name)
        assert value == ((1.0,) * 3 if entry.per_layer else entry.cast(1)), name


def test_apply_params_rejects_an_unknown_name() -> None:
    with pytest.raises(ValueError, match="l3: not a searchable parameter"):
        apply_params(PLAIN, {"l3": 0.1}, n_hidden=3)


def test_apply_params_rejects_a_layer_the_model_lacks() -> None:
    with pytest.raises(ValueError, match="dropout_4"):
        apply_params(PLAIN, {"dropout_4": 0.1}, n_hidden=3)


@pytest.mark.parametrize(
    ("hidden", "rates", "expected"),
    [
        ([20, 3], [], ()),
        ([20, 3], [0.3], (0.3, 0.3)),
        ([8, 8, 8], [0.5], (0.5, 0.5, 0.5)),
        ([20, 3], [0.1, 0.2], (0.1, 0.2)),
        ([20, 3], [0.0], ()),
        ([], [], ()),
    ],
)
def test_base_hparams_dropout(
    hidden: list[int], rates: list[float], expected: tuple[float, ...]
) -> None:
    cfg = RegsearchConfig(model=ModelConfig(hidden=hidden, dropout=rates))
    assert base_hparams(cfg).dropout == expected


def test_base_hparams_copies_train_and_model() -> None:
    train = TrainConfig(lr=0.05, momentum=0.9, l1=1e-4, l2=1e-3, weight_decay=0.01, patience=4)
    cfg = RegsearchConfig(model=ModelConfig(batch_norm=True), train=train)
    hp = base_hparams(cfg)
    assert hp == Hyperparams(
        lr=0.05,
        momentum=0.9,
        l1=1e-4,
        l2=1e-3,
        weight_decay=0.01,
        batch_norm=True,
        patience=4,
        min_delta=0.0,
    )


def test_base_hparams_broadcast_then_flag_off() -> None:
    """model.dropout=[p] reaches every layer, and a searched flag turning it off clears all."""
    cfg = RegsearchConfig(model=ModelConfig(hidden=[16, 16, 16], dropout=[0.25]))
    base = base_hparams(cfg)
    assert base.dropout == (0.25, 0.25, 0.25)
    assert apply_params(base, {"dropout_1": 0.5}, 3).dropout == (0.5, 0.25, 0.25)
    assert apply_params(base, {"dropout_on": False}, 3).dropout == ()
