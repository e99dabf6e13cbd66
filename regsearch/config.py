"""Config schemas (dataclasses in Hydra's ConfigStore) and the up-front validation.

Every run is checked here before any store is touched: ``validate`` turns a composed Hydra
config into typed dataclasses and raises :class:`ConfigError` with one line naming the key,
the bad value and what is allowed.

Example:
    >>> from omegaconf import OmegaConf
    >>> cfg = validate(OmegaConf.create({"task": {"name": "moons"}}))
    >>> cfg.task.noise
    0.5
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

__all__ = [
    "AUTO_CV_ROWS",
    "AUTO_FOLDS",
    "TASK_SCHEMAS",
    "ConfigError",
    "ModelConfig",
    "ParamSpec",
    "RegsearchConfig",
    "SearchConfig",
    "SweepConfig",
    "TrainConfig",
    "cv_folds",
    "schema_keys",
    "unknown_key_message",
    "validate",
]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu", "identity")
INITS = ("default", "normal", "xavier", "kaiming")
OPTIMIZERS = ("sgd", "adam", "adamw")
SAMPLERS = ("tpe", "random", "grid", "cmaes", "qmc", "nsga2")
PRUNERS = ("none", "median", "hyperband")
METRICS = ("val_loss", "val_acc", "gap_loss", "gap_acc")
ENGINES = ("auto", "reference", "population")
DEVICES = ("auto", "cpu", "cuda")
TRACKERS = ("mlflow", "none")
PARAM_TYPES = ("float", "int", "categorical")
TASK_KINDS = ("auto", "classification", "regression")
IMPUTE = ("none", "mean", "median")
PIXEL_SCALES = ("unit", "symmetric", "standardize")
#: search.cv=auto cross-validates pools smaller than this many rows, with AUTO_FOLDS folds.
AUTO_CV_ROWS = 2000
AUTO_FOLDS = 5
#: Names a sweep may search; each maps onto one field of a member's hyperparameters.
SEARCHABLE = (
    "l1",
    "l2",
    "weight_decay",
    "dropout",
    "batch_norm",
    "patience",
    "min_delta",
    "lr",
    "momentum",
)


class ConfigError(ValueError):
    """Bad config or input; the message is one line: the key, the value, what is allowed."""


# --------------------------------------------------------------------------- tasks


@dataclass
class TaskConfig:
    name: str = "moons"  # which loader in regsearch.tasks builds the data
    val_fraction: float = 0.25  # share of the training pool held out for validation/selection
    split_seed: int = 0  # seed of the train/validation(/test) split; fixed across members
    standardize: bool = True  # z-score features with statistics of the training split only


@dataclass
class MoonsTask(TaskConfig):
    n_samples: int = 300  # points drawn by sklearn's make_moons
    noise: float = 0.5  # std of the Gaussian noise added to the moons
    n_pool: int = 200  # the first n_pool points are train+val, the rest is the test set
    data_seed: int = 0  # seed of the generator (the book's was unseeded)
    standardize: bool = False  # the book trains on the raw coordinates


@dataclass
class PolynomialTask(TaskConfig):
    n_features: int = 20  # features x^i/i! for i < n_features (4 = right, 2 = under, 20 = over)
    coefficients: list[float] = field(default_factory=lambda: [5.0, 1.2, -3.4, 5.6])  # true w
    noise: float = 0.1  # std of the Gaussian label noise
    n_train: int = 100  # training points
    n_val: int = 100  # validation points (selection)
    n_test: int = 100  # test points (final numbers)
    data_seed: int = 0
    standardize: bool = False  # the x^i/i! scaling is part of the setup


@dataclass
class HighdimLinearTask(TaskConfig):
    n_features: int = 200  # input dimension d
    true_weight: float = 0.01  # every w_i
    true_bias: float = 0.05
    noise: float = 0.01  # label noise std
    n_train: int = 20
    n_val: int = 100
    n_test: int = 100
    data_seed: int = 0
    standardize: bool = False


@dataclass
class Linear12Task(TaskConfig):
    weights: list[float] = field(
        default_factory=lambda: [-0.1, -0.2, -0.3, -0.4, -0.5, -1.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1]
    )  # true w; its length is the number of features
    bias: float = 0.6
    x_mean: float = -1.0  # X ~ N(x_mean, 1)
    noise_mean: float = -0.01
    noise_std: float = 0.01
    n_train: int = 500
    n_val: int = 100
    n_test: int = 100
    data_seed: int = 0
    standardize: bool = False


@dataclass
class SklearnTask(TaskConfig):
    test_fraction: float = 0.2  # share of all rows kept aside as the test set
    # Regression: z-score the target with training statistics (losses are then in units of
    # the target's variance; the original units are reported beside them).
    standardize_target: bool = True


@dataclass
class IdxTask(TaskConfig):
    data_dir: str = "data/mnist"  # folder holding the four standard IDX files (.gz or not)
    download: bool = False  # fetch missing files (checksums verified) when the network allows
    n_train: int | None = None  # use a random subset of the training images (None = all)
    n_test: int | None = None  # use a random subset of the test images (None = all)
    pixel_scale: str = "unit"  # unit: [0, 1]; symmetric: [-1, 1]; standardize: z-score on train
    standardize: bool = False  # pixel_scale already handles scaling


@dataclass
class CsvTask(TaskConfig):
    path: str = ""  # CSV or Parquet file with one row per example
    target: str = ""  # column to predict
    kind: str = "auto"  # auto | classification | regression
    impute: str = "none"  # none: missing values are an error; mean | median (mode for text)
    test_fraction: float = 0.2
    standardize_target: bool = True  # regression: z-score the target with training statistics


#: Schema per task name; tasks with the same loader share one schema.
TASK_SCHEMAS: dict[str, type[TaskConfig]] = {
    "moons": MoonsTask,
    "polynomial": PolynomialTask,
    "highdim_linear": HighdimLinearTask,
    "linear12": Linear12Task,
    "digits": SklearnTask,
    "breast_cancer": SklearnTask,
    "wine": SklearnTask,
    "diabetes": SklearnTask,
    "mnist": IdxTask,
    "fashion_mnist": IdxTask,
    "csv": CsvTask,
}


# --------------------------------------------------------------------------- model/train


@dataclass
class ModelConfig:
    name: str = "mlp"  # only the MLP exists today
    hidden: list[int] = field(default_factory=lambda: [20, 3])  # hidden layer widths
    activation: str = "relu"
    bias: bool = True  # False gives the d2l polynomial/linear setups (no intercept)
    batch_norm: bool = False  # Linear -> BatchNorm1d -> activation on every hidden layer
    bn_momentum: float = 0.1  # running-statistics momentum (torch convention)
    bn_eps: float = 1e-5
    # Inverted dropout after each hidden activation: [] = none, one value = every layer,
    # or one value per hidden layer.
    dropout: list[float] = field(default_factory=list)
    init: str = "default"  # default (torch's), normal N(0, init_std), xavier, kaiming
    init_std: float = 1.0  # std of init=normal (the NNDL book uses 1, d2l 0.01)


@dataclass
class TrainConfig:
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.2  # learning rate
    momentum: float = 0.0  # sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam/adamw only
    eps: float = 1e-8  # adam/adamw only
    batch_size: int | None = None  # None = full batch (then one epoch is one step)
    max_epochs: int = 1000
    eval_every: int = 10  # epochs between evaluations (curves, early stopping, pruning)
    l1: float = 0.0  # penalty l1 * sum|W| on weight matrices
    l2: float = 0.0  # penalty (l2 / 2) * sum W^2 on weight matrices
    weight_decay: float = 0.0  # decoupled: W <- W - lr * wd * W in the optimizer step
    decay_all: bool = False  # also decay biases and BN parameters (the NNDL book does)
    patience: int | None = None  # early stopping after this many non-improving evaluations
    min_delta: float = 0.0  # an improvement must lower val loss by more than this
    restore_best: bool = True  # early stopping restores the weights of the best evaluation


# --------------------------------------------------------------------------- search/sweep


@dataclass
class ParamSpec:
    type: str = "float"  # float | int | categorical
    low: float | None = None  # lower bound (float/int)
    high: float | None = None  # upper bound (float/int)
    log: bool = False  # sample on a log scale (low must be > 0)
    step: float | None = None  # discretization step (not with log)
    choices: list[Any] | None = None  # categorical values
    flag: bool = False  # sample <name>_on first; the magnitude exists only when it is on
    grid: list[Any] | None = None  # values tried by sampler=grid (default: grid_points)


@dataclass
class FamilyConfig:
    params: dict[str, ParamSpec] = field(default_factory=dict)  # this family's search space
    n_trials: int = 8  # tuning budget of this family


@dataclass
class SweepConfig:
    name: str = "baseline"  # preset name; part of the run folder and the study name
    description: str = ""  # one sentence shown in the report
    params: dict[str, ParamSpec] = field(default_factory=dict)  # searched values
    families: dict[str, FamilyConfig] = field(default_factory=dict)  # compare: tuned one by one
    # Fresh seeds on which the best(s) and the baseline are retrained; 0 skips that phase
    # (quicker, but the verdict then rests on the tuning seeds the winner was selected on).
    final_seeds: int = 5
    # Fixed named settings trained side by side on final_seeds seeds, nothing tuned (the
    # reference experiments), e.g. {none: {}, l2: {l2: 0.7}, dropout: {dropout: 0.3}}.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Fair comparison: search the learning rate in every family and tune the baseline (lr
    # only) on the same budget, so no arm is compared at a setting tuned for none.
    tune_lr: bool = False
    # Range of the tuned lr, as factors of train.lr (log scale).
    lr_range: list[float] = field(default_factory=lambda: [0.1, 3.0])


@dataclass
class SearchConfig:
    sampler: str = "tpe"  # tpe | random | grid | cmaes | qmc | nsga2 (val metric + gap)
    pruner: str = "none"  # none | median | hyperband (single objective only)
    n_trials: int = 20  # finished trials the study should hold
    repeats: int = 1  # seeds per trial; the objective is their mean
    population: int = 8  # trials asked and trained together
    timeout: float | None = None  # seconds; stop asking for new trials after this
    storage: str = "sqlite:///sweeps/optuna.db"  # any Optuna storage URL
    study_name: str | None = None  # default <sweep>-<task>-<timestamp>
    resume: bool = False  # continue study_name (or the newest <sweep>-<task> study)
    metric: str = "val_loss"  # objective: val_loss | gap_loss (min) | val_acc (max) | gap_acc
    n_startup_trials: int = 5  # random trials before TPE/median pruning start
    grid_points: int = 4  # values per float/int param for sampler=grid without a grid list
    report_every: int = 1  # evaluations between reports to the pruner
    # Cross-validation of every tuning trial and final candidate: auto (= AUTO_FOLDS folds when
    # the train+validation pool has fewer than AUTO_CV_ROWS rows, else the holdout split),
    # 0 (holdout: train/validation split) or K >= 2 folds (stratified for classification).
    cv: str = "auto"


@dataclass
class TrackingConfig:
    backend: str = "mlflow"  # mlflow | none
    uri: str = "sqlite:///sweeps/mlflow.db"  # MLflow tracking URI
    artifact_root: str = "sweeps/mlartifacts"  # where new experiments keep their artifacts
    experiment: str | None = None  # default: the task name


@dataclass
class PathsConfig:
    root: str = "sweeps"  # output root, relative to the working directory


@dataclass
class RegsearchConfig:
    task: TaskConfig = field(default_factory=MoonsTask)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    sweep: SweepConfig | None = None  # chosen with +sweep=<preset>
    seed: int = 0  # base seed: sampler, data order, member seeds
    engine: str = "auto"  # auto | reference | population
    device: str = "auto"  # auto | cpu | cuda
    report: bool = True  # write report.html at the end
    progress: bool = True  # show a progress bar over trials
    threads: int = 1  # torch CPU threads (0 = torch's default); small models run fastest on one


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


# --------------------------------------------------------------------------- validation


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _field_type(cls: type, name: str, task_name: str) -> Any:
    """The declared type of ``cls.name`` with ``X | None`` unwrapped (None: no such field)."""
    if cls is RegsearchConfig and name == "task":
        return TASK_SCHEMAS.get(task_name, TaskConfig)
    if name not in {f.name for f in fields(cls)}:
        return None
    hint = get_type_hints(cls)[name]
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else Any
    return hint


def schema_keys(path: str, task_name: str = "moons") -> list[str] | None:
    """Keys the schema allows directly under the dotted ``path`` ("" is the top level).

    None when ``path`` is not a section of the schema (a leaf, a free-form mapping such as
    ``sweep.params``, or a path the schema does not have).

    Example:
        >>> schema_keys("sweep.params.l2")[:3]
        ['type', 'low', 'high']
    """
    node: Any = RegsearchConfig
    parts = [p for p in path.split(".") if p]
    while parts:
        if not (isinstance(node, type) and is_dataclass(node)):
            return None
        node = _field_type(node, parts.pop(0), task_name)
        if get_origin(node) is dict:
            if not parts:
                return None  # free-form names (searched params, families)
            parts.pop(0)
            node = get_args(node)[1]
    return [f.name for f in fields(node)] if is_dataclass(node) else None


def unknown_key_message(key: str, task_name: str = "moons") -> str | None:
    """One line for a dotted ``key`` the schema does not have; None when the schema has it."""
    parent, _, name = key.rpartition(".")
    allowed = schema_keys(parent, task_name)
    if allowed is None or name in allowed:
        return None
    where = f"in {parent}" if parent else "at the top level"
    return f"{key}: unknown key; allowed {where}: {', '.join(allowed)}"


def _typed(cfg: DictConfig) -> RegsearchConfig:
    """Merge the composed config onto the schemas; type errors and unknown keys fail here."""
    task_name = OmegaConf.select(cfg, "task.name", default="moons")
    if task_name not in TASK_SCHEMAS:
        raise ConfigError(
            f"task.name={task_name!r}: unknown task; allowed: {', '.join(TASK_SCHEMAS)}"
        )
    schema = OmegaConf.structured(RegsearchConfig)
    schema.task = OmegaConf.structured(TASK_SCHEMAS[task_name])
    if OmegaConf.select(cfg, "sweep") is not None:
        schema.sweep = OmegaConf.structured(SweepConfig)
    try:
        # Plain containers: the composed sweep node is typed _SweepNode, not SweepConfig.
        plain = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
        merged = OmegaConf.merge(schema, plain)
        OmegaConf.resolve(merged)
        typed = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        unknown = unknown_key_message(key, task_name) if isinstance(err, ConfigKeyError) else None
        # OmegaConf appends "full_key: ... object_type=..." lines; the first line is the gist.
        msg = (getattr(err, "msg", None) or str(err)).strip().splitlines()[0]
        raise ConfigError(unknown or f"{key}: {_one_line(msg)}") from None
    assert isinstance(typed, RegsearchConfig)
    return typed


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r}: {allowed}")


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    _check(value in allowed, key, value, f"allowed: {', '.join(allowed)}")


#: Searched values must lie in [low, high) (open) or [low, high] (closed) for each name.
_PARAM_BOUNDS: dict[str, tuple[float, float, bool, str]] = {
    "dropout": (0.0, 1.0, True, "within [0, 1)"),
    "momentum": (0.0, 1.0, True, "within [0, 1)"),
    "patience": (1, math.inf, False, ">= 1"),
    "lr": (0.0, math.inf, False, "> 0"),
}
#: Names whose flag can be off (what "off" means is regsearch.search.space.OFF_VALUES).
_FLAGGABLE = ("l1", "l2", "weight_decay", "dropout", "batch_norm", "patience", "min_delta")


def _in_bounds(base: str, value: Any) -> bool:
    if base == "batch_norm":
        return isinstance(value, bool) or value in (0, 1)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return False
    lo, hi, open_high, _ = _PARAM_BOUNDS.get(base, (0.0, math.inf, False, ">= 0"))
    if value < lo or (base == "lr" and value <= 0):
        return False
    return value < hi if open_high else value <= hi


def _check_param_name(key: str, spec: ParamSpec) -> str:
    """The family of a searched name (``dropout`` for ``dropout_<layer>``), checked."""
    name = key.rsplit(".", 1)[-1]
    base, _, layer = name.partition("_") if name.startswith("dropout_") else (name, "", "")
    known = base in SEARCHABLE and (not layer or (layer.isdigit() and int(layer) >= 1))
    _check(
        known, key, name, f"unknown parameter; allowed: {', '.join(SEARCHABLE)}, dropout_<layer>"
    )
    _check(
        not spec.flag or base in _FLAGGABLE,
        f"{key}.flag",
        spec.flag,
        f"{name} has no off value; flags work for {', '.join(_FLAGGABLE)}",
    )
    return base


def _check_param(key: str, spec: ParamSpec) -> None:
    name = key.rsplit(".", 1)[-1]
    base = _check_param_name(key, spec)
    _choice(f"{key}.type", spec.type, PARAM_TYPES)
    text = _PARAM_BOUNDS.get(base, (0, 0, False, ">= 0"))[3]
    if spec.type == "categorical" or name == "batch_norm":
        _check(bool(spec.choices), f"{key}.choices", spec.choices, "a categorical needs choices")
    for attr in ("choices", "grid"):
        values = getattr(spec, attr) or []
        bad = [v for v in values if not _in_bounds(base, v)]
        _check(not bad, f"{key}.{attr}", values, f"{name} must be {text} (bad: {bad})")
    if spec.type == "categorical" or name == "batch_norm":
        return
    _check(
        spec.low is not None and spec.high is not None, key, "low/high", "low and high are required"
    )
    assert spec.low is not None and spec.high is not None
    _check(spec.low < spec.high, f"{key}.low", spec.low, f"must be < high ({spec.high})")
    _check(not spec.log or spec.low > 0, f"{key}.low", spec.low, "a log range needs low > 0")
    _check(spec.step is None or spec.step > 0, f"{key}.step", spec.step, "must be > 0")
    _check(not (spec.log and spec.step), f"{key}.step", spec.step, "step cannot be used with log")
    if spec.type == "int" or base == "patience":
        _check(spec.type == "int", f"{key}.type", spec.type, f"{name} is a count: use type: int")
        for attr in ("low", "high", "step"):
            value = getattr(spec, attr)
            _check(
                value is None or float(value).is_integer(),
                f"{key}.{attr}",
                value,
                "an int parameter needs whole numbers",
            )
    _check(_in_bounds(base, spec.low), f"{key}.low", spec.low, f"{name} must be {text}")
    _check(_in_bounds(base, spec.high), f"{key}.high", spec.high, f"{name} must be {text}")


def _check_task(task: TaskConfig, check_files: bool) -> None:
    _check(
        0.0 < task.val_fraction < 1.0, "task.val_fraction", task.val_fraction, "must be in (0, 1)"
    )
    for attr in ("n_samples", "n_pool", "n_train", "n_val", "n_test", "n_features"):
        value = getattr(task, attr, None)
        _check(value is None or value >= 1, f"task.{attr}", value, "must be >= 1")
    for attr in ("noise", "noise_std"):
        value = getattr(task, attr, None)
        _check(value is None or value >= 0, f"task.{attr}", value, "must be >= 0")
    if isinstance(task, MoonsTask):
        _check(
            task.n_pool < task.n_samples,
            "task.n_pool",
            task.n_pool,
            f"must be < n_samples ({task.n_samples})",
        )
    if isinstance(task, (SklearnTask, CsvTask)):
        _check(
            0.0 < task.test_fraction < 1.0,
            "task.test_fraction",
            task.test_fraction,
            "must be in (0, 1)",
        )
    if isinstance(task, IdxTask):
        _choice("task.pixel_scale", task.pixel_scale, PIXEL_SCALES)
        if check_files and not task.download:
            _check(
                Path(task.data_dir).is_dir(),
                "task.data_dir",
                task.data_dir,
                "no such folder (or set task.download=true)",
            )
    if isinstance(task, CsvTask):
        _choice("task.kind", task.kind, TASK_KINDS)
        _choice("task.impute", task.impute, IMPUTE)
        _check(
            bool(task.path), "task.path", task.path, "give the CSV/Parquet file: task.path=<file>"
        )
        _check(
            bool(task.target),
            "task.target",
            task.target,
            "give the column to predict: task.target=<column>",
        )
        if check_files:
            _check(Path(task.path).is_file(), "task.path", task.path, "no such file")


def _check_model_train(model: ModelConfig, train: TrainConfig) -> None:
    _check(model.name == "mlp", "model.name", model.name, "allowed: mlp")
    _check(all(h >= 1 for h in model.hidden), "model.hidden", model.hidden, "widths must be >= 1")
    _choice("model.activation", model.activation, ACTIVATIONS)
    _choice("model.init", model.init, INITS)
    _check(model.init_std > 0, "model.init_std", model.init_std, "must be > 0")
    _check(
        all(0.0 <= p < 1.0 for p in model.dropout),
        "model.dropout",
        model.dropout,
        "rates must be in [0, 1)",
    )
    n_rates = len(model.dropout)
    _check(
        n_rates in (0, 1, len(model.hidden)),
        "model.dropout",
        model.dropout,
        f"give 0, 1 or {len(model.hidden)} rates (one per hidden layer)",
    )
    _check(
        0.0 < model.bn_momentum <= 1.0, "model.bn_momentum", model.bn_momentum, "must be in (0, 1]"
    )
    _choice("train.optimizer", train.optimizer, OPTIMIZERS)
    _check(train.lr > 0, "train.lr", train.lr, "must be > 0")
    _check(0.0 <= train.momentum < 1.0, "train.momentum", train.momentum, "must be in [0, 1)")
    _check(
        train.batch_size is None or train.batch_size >= 1,
        "train.batch_size",
        train.batch_size,
        "must be >= 1 or null (full batch)",
    )
    _check(train.max_epochs >= 1, "train.max_epochs", train.max_epochs, "must be >= 1")
    _check(train.eval_every >= 1, "train.eval_every", train.eval_every, "must be >= 1")
    for key in ("l1", "l2", "weight_decay", "min_delta"):
        value = getattr(train, key)
        _check(value >= 0 and math.isfinite(value), f"train.{key}", value, "must be >= 0")
    _check(
        train.patience is None or train.patience >= 1,
        "train.patience",
        train.patience,
        "must be >= 1 or null (off)",
    )


def _check_search(search: SearchConfig, sweep: SweepConfig | None) -> None:
    _choice("search.sampler", search.sampler, SAMPLERS)
    _choice("search.pruner", search.pruner, PRUNERS)
    _choice("search.metric", search.metric, METRICS)
    for key in ("n_trials", "repeats", "population", "report_every", "grid_points"):
        _check(getattr(search, key) >= 1, f"search.{key}", getattr(search, key), "must be >= 1")
    _check(
        search.n_startup_trials >= 0,
        "search.n_startup_trials",
        search.n_startup_trials,
        "must be >= 0",
    )
    _check(
        search.timeout is None or search.timeout > 0,
        "search.timeout",
        search.timeout,
        "seconds, > 0 or null",
    )
    if search.sampler == "nsga2" and search.pruner != "none":
        raise ConfigError(
            f"search.pruner={search.pruner!r}: pruning needs a single objective and "
            "search.sampler=nsga2 optimizes two (val metric and gap); use search.pruner=none"
        )
    _check(bool(search.storage), "search.storage", search.storage, "an Optuna storage URL")
    cv_folds(search.cv, pool_rows=0)  # the form only; the pool size is known once data loads
    if sweep is None:
        return
    lo_hi = list(sweep.lr_range)
    _check(
        len(lo_hi) == 2 and 0 < lo_hi[0] < lo_hi[1] and all(map(math.isfinite, lo_hi)),
        "sweep.lr_range",
        lo_hi,
        "two factors of train.lr, 0 < low < high",
    )
    specs = dict(sweep.params)
    for family, fam in sweep.families.items():
        _check(fam.n_trials >= 1, f"sweep.families.{family}.n_trials", fam.n_trials, "must be >= 1")
        specs.update({f"families.{family}.params.{k}": v for k, v in fam.params.items()})
    for name, spec in specs.items():
        key = f"sweep.{name}" if name.startswith("families.") else f"sweep.params.{name}"
        _check_param(key, spec)
        if search.sampler == "grid":
            _check(
                not spec.flag,
                key,
                "flag",
                "sampler=grid cannot search on/off flags; use tpe or random",
            )
    if sweep.settings:
        _check(
            sweep.final_seeds >= 1,
            "sweep.final_seeds",
            sweep.final_seeds,
            "must be >= 1: the settings are trained on these seeds",
        )
    _check(sweep.final_seeds >= 0, "sweep.final_seeds", sweep.final_seeds, "must be >= 0")
    for setting, values in sweep.settings.items():
        for name, value in values.items():
            key = f"sweep.settings.{setting}.{name}"
            base = _check_param_name(key, ParamSpec())
            text = _PARAM_BOUNDS.get(base, (0, 0, False, ">= 0"))[3]
            _check(_in_bounds(base, value), key, value, f"{name} must be {text}")


def cv_folds(value: str, pool_rows: int) -> int:
    """Folds for ``search.cv`` (0 = the holdout split) given the train+validation pool size.

    Raises:
        ConfigError: ``value`` is not auto, 0 or an integer K >= 2.

    Example:
        >>> cv_folds("auto", 200), cv_folds("auto", 5000), cv_folds("3", 200), cv_folds("0", 9)
        (5, 0, 3, 0)
    """
    text = str(value).strip().lower()
    if text == "auto":
        return AUTO_FOLDS if pool_rows < AUTO_CV_ROWS else 0
    allowed = "allowed: auto, 0 (holdout split) or a number of folds >= 2"
    _check(text.isdigit() and int(text) != 1, "search.cv", value, allowed)
    return int(text)


def validate(cfg: DictConfig, *, check_files: bool = True) -> RegsearchConfig:
    """Check a composed config and return it as typed dataclasses.

    Args:
        cfg: The config Hydra composed (interpolations are resolved here).
        check_files: Also check that input files and folders exist.

    Raises:
        ConfigError: One line naming the first bad key, its value and what is allowed.
    """
    typed = _typed(cfg)
    _check_task(typed.task, check_files)
    _check_model_train(typed.model, typed.train)
    _check_search(typed.search, typed.sweep)
    _choice("engine", typed.engine, ENGINES)
    _choice("device", typed.device, DEVICES)
    _choice("tracking.backend", typed.tracking.backend, TRACKERS)
    _check(typed.threads >= 0, "threads", typed.threads, "must be >= 0 (0 = torch's default)")
    _check(bool(typed.paths.root), "paths.root", typed.paths.root, "an output folder")
    return typed


register_configs()  # composing any regsearch config needs the schemas in the store
