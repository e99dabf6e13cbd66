"""Up-front validation: a composed config → typed dataclasses, or one clear ConfigError.

Every run is checked here before any store is touched; each message names the key, the bad
value and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from regsearch.config.errors import ConfigError
from regsearch.config.keys import unknown_key_message
from regsearch.config.schema import (
    ACTIVATIONS,
    AUTO_CV_ROWS,
    AUTO_FOLDS,
    DEVICES,
    ENGINES,
    IMPUTE,
    INITS,
    MAX_LR,
    MAX_SEED,
    METRICS,
    OPTIMIZERS,
    PARAM_TYPES,
    PIXEL_SCALES,
    PRUNERS,
    SAMPLERS,
    SEARCHABLE,
    TASK_KINDS,
    TASK_SCHEMAS,
    TRACKERS,
    CsvTask,
    IdxTask,
    ModelConfig,
    MoonsTask,
    ParamSpec,
    PathsConfig,
    RegsearchConfig,
    SearchConfig,
    SweepConfig,
    TaskConfig,
    TrackingConfig,
    TrainConfig,
)

__all__ = ["cv_folds", "validate"]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


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
    "lr": (0.0, MAX_LR, False, f"in (0, {MAX_LR:g}]"),
}
#: Names whose flag can be off (what "off" means is regsearch.search.space.OFF_VALUES).
_FLAGGABLE = ("l1", "l2", "weight_decay", "dropout", "batch_norm", "patience", "min_delta")


def _in_bounds(base: str, value: Any) -> bool:
    if base == "batch_norm":
        return isinstance(value, bool) or value in (0, 1)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    lo, hi, open_high, _ = _PARAM_BOUNDS.get(base, (0.0, math.inf, False, "finite, >= 0"))
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
    text = _PARAM_BOUNDS.get(base, (0, 0, False, "finite, >= 0"))[3]
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


@dataclass(frozen=True)
class _Range:
    """A finite number in [low, high], either end open; ``str`` says so in messages."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    note: str = ""  # appended to the message, e.g. the unit or what null means

    def holds(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        note = f" ({self.note})" if self.note else ""
        if self.high == math.inf:
            if self.low == -math.inf:
                return f"a finite number{note}"
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}{note}"
        ends = ("(" if self.low_open else "[", ")" if self.high_open else "]")
        return f"a finite number in {ends[0]}{self.low:g}, {self.high:g}{ends[1]}{note}"


_FRACTION = _Range(0.0, 1.0, low_open=True, high_open=True)
_RATE = _Range(0.0, 1.0, high_open=True)  # dropout, momentum, Adam's betas
_NON_NEGATIVE = _Range(0.0)
_POSITIVE = _Range(0.0, low_open=True)
_FINITE = _Range()
#: Every float setting and what it may be (lists: every element). Checked by shared code,
#: so inf, nan and out-of-range values are refused the same way everywhere; a key a task
#: does not have is skipped, and None means "off" where the schema allows it.
_NUMBERS: dict[str, _Range] = {
    "task.val_fraction": _FRACTION,
    "task.test_fraction": _FRACTION,
    "task.noise": _NON_NEGATIVE,
    "task.noise_std": _NON_NEGATIVE,
    "task.noise_mean": _FINITE,
    "task.coefficients": _FINITE,
    "task.true_weight": _FINITE,
    "task.true_bias": _FINITE,
    "task.weights": _FINITE,
    "task.bias": _FINITE,
    "task.x_mean": _FINITE,
    "model.init_std": _POSITIVE,
    "model.bn_momentum": _Range(0.0, 1.0, low_open=True),
    "model.bn_eps": _Range(0.0, 1.0, low_open=True),
    "model.dropout": _RATE,
    "train.lr": _Range(0.0, MAX_LR, low_open=True, note="larger steps diverge"),
    "train.momentum": _RATE,
    "train.betas": _RATE,
    "train.eps": _Range(0.0, 1.0, low_open=True),
    "train.l1": _NON_NEGATIVE,
    "train.l2": _NON_NEGATIVE,
    "train.weight_decay": _NON_NEGATIVE,
    "train.min_delta": _NON_NEGATIVE,
    "search.timeout": _Range(0.0, low_open=True, note="seconds; null = no limit"),
}
#: Integer seeds: numpy's RandomState and Optuna's samplers take [0, 2**32).
_SEEDS = ("seed", "task.split_seed", "task.data_seed")
_ABSENT = object()


def _setting(cfg: RegsearchConfig, key: str) -> Any:
    section, _, name = key.rpartition(".")
    node = getattr(cfg, section) if section else cfg
    return getattr(node, name, _ABSENT)


def _check_numbers(cfg: RegsearchConfig) -> None:
    for key, allowed in _NUMBERS.items():
        value = _setting(cfg, key)
        if value is _ABSENT or value is None:
            continue
        values = value if isinstance(value, list) else [value]
        each = "each value must be " if isinstance(value, list) else "must be "
        _check(all(allowed.holds(v) for v in values), key, value, f"{each}{allowed}")
    for key in _SEEDS:
        value = _setting(cfg, key)
        if value is not _ABSENT:
            _check(0 <= value <= MAX_SEED, key, value, "a seed in [0, 2**32)")


def _check_task(task: TaskConfig, check_files: bool) -> None:
    for attr in ("n_samples", "n_pool", "n_train", "n_val", "n_test", "n_features"):
        value = getattr(task, attr, None)
        _check(value is None or value >= 1, f"task.{attr}", value, "must be >= 1")
    if isinstance(task, MoonsTask):
        _check(
            task.n_pool < task.n_samples,
            "task.n_pool",
            task.n_pool,
            f"must be < n_samples ({task.n_samples})",
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
        _check(task.max_levels >= 1, "task.max_levels", task.max_levels, "must be >= 1")
        if check_files:
            _check(Path(task.path).is_file(), "task.path", task.path, "no such file")


def _check_model_train(model: ModelConfig, train: TrainConfig) -> None:
    _check(model.name == "mlp", "model.name", model.name, "allowed: mlp")
    _check(all(h >= 1 for h in model.hidden), "model.hidden", model.hidden, "widths must be >= 1")
    _choice("model.activation", model.activation, ACTIVATIONS)
    _choice("model.init", model.init, INITS)
    n_rates = len(model.dropout)
    _check(
        n_rates in (0, 1, len(model.hidden)),
        "model.dropout",
        model.dropout,
        f"give 0, 1 or {len(model.hidden)} rates (one per hidden layer)",
    )
    _choice("train.optimizer", train.optimizer, OPTIMIZERS)
    _check(len(train.betas) == 2, "train.betas", train.betas, "two values [beta1, beta2]")
    _check(
        train.lr * train.weight_decay < 1,
        "train.weight_decay",
        train.weight_decay,
        f"lr × weight_decay must be < 1 (lr={train.lr:g}): the decay step W ← W − lr·wd·W "
        "would remove all of W or flip its sign",
    )
    _check(
        train.batch_size is None or train.batch_size >= 1,
        "train.batch_size",
        train.batch_size,
        "must be >= 1 or null (full batch)",
    )
    _check(train.max_epochs >= 1, "train.max_epochs", train.max_epochs, "must be >= 1")
    _check(train.eval_every >= 1, "train.eval_every", train.eval_every, "must be >= 1")
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
            text = _PARAM_BOUNDS.get(base, (0, 0, False, "finite, >= 0"))[3]
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
        check_files: Also check the world outside the config: input files and folders
            exist, the output root and sqlite/journal folders can be written, database
            drivers are installed and servers accept connections (see :mod:`regsearch.urls`).

    Raises:
        ConfigError: One line naming the first bad key, its value and what is allowed.
    """
    typed = _typed(cfg)
    _check_numbers(typed)
    _check_task(typed.task, check_files)
    _check_model_train(typed.model, typed.train)
    _check_search(typed.search, typed.sweep)
    _choice("engine", typed.engine, ENGINES)
    _choice("device", typed.device, DEVICES)
    _choice("tracking.backend", typed.tracking.backend, TRACKERS)
    _check(typed.threads >= 0, "threads", typed.threads, "must be >= 0 (0 = torch's default)")
    _check(bool(typed.paths.root), "paths.root", typed.paths.root, "an output folder")
    if check_files:
        _check_stores(typed.paths, typed.search, typed.tracking)
    return typed


def _check_stores(paths: PathsConfig, search: SearchConfig, tracking: TrackingConfig) -> None:
    """Both stores and the run folders can be opened, without opening (or writing) any.

    The output root first: the default stores live in it, and its message is the clearer one.
    """
    from regsearch import urls  # parses with SQLAlchemy; imported only when checking stores

    problem = urls.folder_problem(Path(paths.root))
    _check(
        not problem, "paths.root", paths.root, f"an output folder regsearch can write ({problem})"
    )
    urls.check_storage_url(search.storage, "search.storage", must_exist=search.resume)
    if tracking.backend != "mlflow":
        return
    urls.check_tracking_uri(tracking.uri, "tracking.uri")
    if tracking.artifact_root and "://" not in tracking.artifact_root:
        problem = urls.folder_problem(Path(tracking.artifact_root))
        _check(
            not problem,
            "tracking.artifact_root",
            tracking.artifact_root,
            f"a folder regsearch can write ({problem})",
        )
