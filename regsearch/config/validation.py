"""Up-front validation: a composed config → typed dataclasses, or one clear ConfigError.

Every run is checked here before any store is touched; each message names the key, the bad
value and what is allowed. Most settings are checked from tables (what numbers a key may be,
which names it may take); what relates two settings is checked below them, one rule a line.
"""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from regsearch.config import schema
from regsearch.config.keys import unknown_key_message
from regsearch.config.schema import (
    SEARCHABLE,
    TASK_SCHEMAS,
    ParamSpec,
    Range,
    RegsearchConfig,
    Searchable,
    SweepConfig,
    Switch,
    searchable,
)
from regsearch.errors import ConfigError

__all__ = ["cv_folds", "validate"]


def _count(least: int, note: str = "") -> Range:
    return Range(least, whole=True, note=note)


_FRACTION = Range(0.0, 1.0, low_open=True, high_open=True)
_POSITIVE = Range(0.0, low_open=True)
_FINITE = Range()
_UNIT = Range(0.0, 1.0, low_open=True)
_SEED = Range(0, schema.MAX_SEED, whole=True, note="a seed")
_AT_LEAST_ONE = _count(1)
#: Every number setting and what it may be (lists: every element). Checked by shared code,
#: so inf, nan and out-of-range values are refused the same way everywhere; a key a task
#: (or a run without a sweep) does not have is skipped, and None means "off" where the
#: schema allows it. Searchable names take their range from SEARCHABLE.
_NUMBERS: dict[str, Range | Switch] = {
    "seed": _SEED,
    "task.split_seed": _SEED,
    "task.data_seed": _SEED,
    "task.val_fraction": _FRACTION,
    "task.test_fraction": _FRACTION,
    "task.n_samples": _AT_LEAST_ONE,
    "task.n_pool": _AT_LEAST_ONE,
    "task.n_train": _AT_LEAST_ONE,
    "task.n_val": _AT_LEAST_ONE,
    "task.n_test": _AT_LEAST_ONE,
    "task.n_features": _AT_LEAST_ONE,
    "task.max_levels": _AT_LEAST_ONE,
    "task.max_rows": _count(1, "null = every row"),
    "task.noise": schema.NON_NEGATIVE,
    "task.noise_std": schema.NON_NEGATIVE,
    "task.noise_mean": _FINITE,
    "task.coefficients": _FINITE,
    "task.true_weight": _FINITE,
    "task.true_bias": _FINITE,
    "task.weights": _FINITE,
    "task.bias": _FINITE,
    "task.x_mean": _FINITE,
    "model.hidden": _count(1, "layer widths"),
    "model.channels": _count(1, "channels of each conv block"),
    "model.kernel_size": _count(1, "conv kernel sizes"),
    "model.pool": _count(1, "1 = no pooling"),
    "model.head": _count(1, "layer widths"),
    "model.init_std": _POSITIVE,
    "model.bn_momentum": _UNIT,
    "model.bn_eps": _UNIT,
    "model.dropout": schema.RATE,
    "train.lr": SEARCHABLE["lr"].allowed,
    "train.momentum": SEARCHABLE["momentum"].allowed,
    "train.betas": schema.RATE,
    "train.eps": _UNIT,
    "train.l1": SEARCHABLE["l1"].allowed,
    "train.l2": SEARCHABLE["l2"].allowed,
    "train.weight_decay": SEARCHABLE["weight_decay"].allowed,
    "train.min_delta": SEARCHABLE["min_delta"].allowed,
    "train.patience": SEARCHABLE["patience"].allowed,
    "train.batch_size": _count(1, "null = full batch"),
    "train.max_epochs": _AT_LEAST_ONE,
    "train.eval_every": _AT_LEAST_ONE,
    "search.n_trials": _AT_LEAST_ONE,
    "search.repeats": _AT_LEAST_ONE,
    "search.population": _AT_LEAST_ONE,
    "search.report_every": _AT_LEAST_ONE,
    "search.grid_points": _AT_LEAST_ONE,
    "search.n_startup_trials": _count(0),
    "search.timeout": Range(0.0, low_open=True, note="seconds; null = no limit"),
    "sweep.final_seeds": _count(0),
    "threads": _count(0, "0 = torch's default"),
    "tracking.ui_port": Range(1, 65535, whole=True, note="a TCP port"),
}
#: Settings that name one of a few choices (a key a task does not have is skipped).
_CHOICES: dict[str, tuple[str, ...]] = {
    "task.kind": schema.TASK_KINDS,
    "task.impute": schema.IMPUTE,
    "task.pixel_scale": schema.PIXEL_SCALES,
    "model.name": schema.MODELS,
    "model.activation": schema.ACTIVATIONS,
    "model.init": schema.INITS,
    "model.pool_kind": schema.POOL_KINDS,
    "model.padding": schema.PADDINGS,
    "train.optimizer": schema.OPTIMIZERS,
    "search.sampler": schema.SAMPLERS,
    "search.pruner": schema.PRUNERS,
    "search.metric": schema.METRICS,
    "engine": schema.ENGINES,
    "device": schema.DEVICES,
    "tracking.backend": schema.TRACKERS,
}
_ABSENT = object()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _typed(cfg: DictConfig) -> RegsearchConfig:
    """Merge the composed config onto the schemas; type errors and unknown keys fail here."""
    task_name = _schema_name(cfg)
    shape = OmegaConf.structured(RegsearchConfig)
    shape.task = OmegaConf.structured(TASK_SCHEMAS[task_name])
    if OmegaConf.select(cfg, "sweep") is not None:
        shape.sweep = OmegaConf.structured(SweepConfig)
    try:
        # Plain containers: the composed sweep node is typed _SweepNode, not SweepConfig.
        plain = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
        _gather_custom_keys(plain)
        merged = OmegaConf.merge(shape, plain)
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


def _gather_custom_keys(plain: Any) -> None:
    """A custom model's own keys (``+model.width=32``) move into ``model.kwargs``: the
    schema cannot know them, and they are passed on to the user's callable as they are."""
    model = plain.get("model")
    if not isinstance(model, DictConfig) or model.get("name") != "custom":
        return
    known = {f.name for f in fields(schema.ModelConfig)}
    extra = {key: model[key] for key in list(model.keys()) if key not in known}
    for key in extra:
        del model[key]
    model["kwargs"] = OmegaConf.merge(model.get("kwargs") or {}, extra)


def _schema_name(cfg: DictConfig) -> str:
    """The TASK_SCHEMAS name the task is typed with.

    A csv or arrays task may carry its data set's name (``task=csv task.name=titanic``): its
    ``target`` (csv) or ``npz`` (arrays) key, which only those tasks have, tells it from a
    misspelt task name.
    """
    name = OmegaConf.select(cfg, "task.name", default="moons")
    if OmegaConf.select(cfg, "task.npz", default=None) is not None:
        return _named_data("arrays", name)
    is_table = OmegaConf.select(cfg, "task.target", default=None) is not None
    if is_table:
        return _named_data("csv", name)
    if name not in TASK_SCHEMAS:
        raise ConfigError(f"task.name={name!r}: unknown task; allowed: {', '.join(TASK_SCHEMAS)}")
    return str(name)


def _named_data(loader: str, name: str) -> str:
    """``loader`` for a user's data named ``name``, which must not be a built-in task's."""
    if name != loader and name in TASK_SCHEMAS:
        raise ConfigError(
            f"task.name={name!r}: a built-in task's name; name your table something else "
            f"(e.g. task.name={name}_{loader})"
        )
    return loader


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r}: {allowed}")


def _choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    _check(value in allowed, key, value, f"allowed: {', '.join(allowed)}")


def _setting(cfg: RegsearchConfig, key: str) -> Any:
    section, _, name = key.rpartition(".")
    node = getattr(cfg, section, None) if section else cfg
    return _ABSENT if node is None else getattr(node, name, _ABSENT)


def _check_tables(cfg: RegsearchConfig) -> None:
    """Every key of :data:`_NUMBERS` and :data:`_CHOICES` that this config has."""
    for key, allowed in _NUMBERS.items():
        value = _setting(cfg, key)
        if value is _ABSENT or value is None:
            continue
        values = value if isinstance(value, list) else [value]
        each = "each value must be " if isinstance(value, list) else "must be "
        _check(all(allowed.holds(v) for v in values), key, value, f"{each}{allowed}")
    for key, names in _CHOICES.items():
        value = _setting(cfg, key)
        if value is not _ABSENT:
            _choice(key, value, names)


# --------------------------------------------------------------------------- relations


def _check_task(task: schema.TaskConfig, check_files: bool) -> None:
    """What a task's settings need beyond the tables: sizes that fit, files that exist."""
    if isinstance(task, schema.MoonsTask):
        _check(
            task.n_pool < task.n_samples,
            "task.n_pool",
            task.n_pool,
            f"must be < n_samples ({task.n_samples})",
        )
    if isinstance(task, schema.CsvTask):
        where = "give the CSV/Parquet file: task.path=<file>"
        _check(bool(task.path), "task.path", task.path, where)
        what = "give the column to predict: task.target=<column>"
        _check(bool(task.target), "task.target", task.target, what)
    if isinstance(task, schema.ArraysTask):
        where = "give the arrays' .npz file: task.npz=<file> (regsearch.run(data=...) sets it)"
        _check(bool(task.npz), "task.npz", task.npz, where)
    if not check_files:
        return
    if isinstance(task, schema.ArraysTask):
        _check(Path(task.npz).is_file(), "task.npz", task.npz, "no such file")
    if isinstance(task, schema.IdxTask) and not task.download:
        where = "no such folder (or set task.download=true)"
        _check(Path(task.data_dir).is_dir(), "task.data_dir", task.data_dir, where)
    if isinstance(task, schema.CsvTask):
        _check(Path(task.path).is_file(), "task.path", task.path, "no such file")


def _check_model_train(model: schema.ModelConfig, train: schema.TrainConfig) -> None:
    n_layers = schema.dropout_layers(model)
    layers = {"mlp": "hidden layer", "cnn": "conv block and head layer"}.get(model.name)
    rates = f"give 0, 1 or {n_layers} rates (one per {layers})" if layers else "give 0 or 1 rate"
    _check(len(model.dropout) in (0, 1, n_layers), "model.dropout", model.dropout, rates)
    _check_model_kind(model)
    _check(len(train.betas) == 2, "train.betas", train.betas, "two values [beta1, beta2]")
    _check(
        train.lr * train.weight_decay < 1,
        "train.weight_decay",
        train.weight_decay,
        f"lr × weight_decay must be < 1 (lr={train.lr:g}): the decay step W ← W − lr·wd·W "
        "would remove all of W or flip its sign",
    )


def _check_model_kind(model: schema.ModelConfig) -> None:
    """What cnn and custom models need beyond the tables (the callable itself is checked
    against the data in :mod:`regsearch.usernets`, once the task is loaded)."""
    if model.name == "cnn":
        _check(bool(model.channels), "model.channels", model.channels, "give at least one block")
        n = len(model.channels)
        sizes = (
            f"give 1 size (model.channels={list(model.channels)} has one block)"
            if n == 1
            else f"give 1 or {n} sizes (one per conv block)"
        )
        _check(len(model.kernel_size) in (1, n), "model.kernel_size", model.kernel_size, sizes)
    if model.name == "custom":
        target = model._target_ or ""
        _check(
            "." in target.strip(".") and " " not in target,
            "model._target_",
            model._target_,
            "give the callable that builds your network: model._target_=my_pkg.nets.make_net",
        )
    elif model.kwargs:
        _check(False, "model.kwargs", model.kwargs, "only model=custom passes keys on")


def _check_search(search: schema.SearchConfig) -> None:
    if search.sampler == "nsga2" and search.pruner != "none":
        raise ConfigError(
            f"search.pruner={search.pruner!r}: pruning needs a single objective and "
            "search.sampler=nsga2 optimizes two (val metric and gap); use search.pruner=none"
        )
    _check(bool(search.storage), "search.storage", search.storage, "an Optuna storage URL")
    cv_folds(search.cv, pool_rows=0)  # the form only; the pool size is known once data loads
    cv_folds(search.final_cv, pool_rows=0, key="search.final_cv")


# --------------------------------------------------------------------------- searched values


def _searched(key: str, flag: bool = False) -> Searchable:
    """The SEARCHABLE row of the name ``key`` ends with, which must exist (and have an off
    value when ``flag``)."""
    name = key.rsplit(".", 1)[-1]
    entry = searchable(name)
    per_layer = [f"{n}_<layer>" for n, e in SEARCHABLE.items() if e.per_layer]
    known = ", ".join([*SEARCHABLE, *per_layer])
    _check(entry is not None, key, name, f"unknown parameter; allowed: {known}")
    assert entry is not None
    flaggable = ", ".join(n for n, e in SEARCHABLE.items() if e.flaggable)
    where = f"{name} has no off value; flags work for {flaggable}"
    _check(not flag or entry.flaggable, f"{key}.flag", flag, where)
    return entry


def _check_param(key: str, spec: ParamSpec) -> None:
    """One searched parameter: a known name, a well-formed distribution, allowed values."""
    name = key.rsplit(".", 1)[-1]
    entry = _searched(key, spec.flag)
    _choice(f"{key}.type", spec.type, schema.PARAM_TYPES)
    must = f"{name} must be {entry.allowed}"
    chosen = spec.type == "categorical" or entry.cast is bool  # a switch has choices only
    _check(
        not chosen or bool(spec.choices),
        f"{key}.choices",
        spec.choices,
        "a categorical needs choices",
    )
    for attr in ("choices", "grid"):
        values = getattr(spec, attr) or []
        bad = [v for v in values if not entry.allowed.holds(v)]
        _check(not bad, f"{key}.{attr}", values, f"{must} (bad: {bad})")
    if chosen:
        return
    low, high = spec.low, spec.high
    _check(low is not None and high is not None, key, "low/high", "low and high are required")
    assert low is not None and high is not None
    _check(low < high, f"{key}.low", low, f"must be < high ({high})")
    _check(not spec.log or low > 0, f"{key}.low", low, "a log range needs low > 0")
    _check(spec.step is None or spec.step > 0, f"{key}.step", spec.step, "must be > 0")
    _check(not (spec.log and spec.step), f"{key}.step", spec.step, "step cannot be used with log")
    if spec.type == "int" or entry.cast is int:
        _check(spec.type == "int", f"{key}.type", spec.type, f"{name} is a count: use type: int")
        for attr in ("low", "high", "step"):
            value = getattr(spec, attr)
            whole = value is None or float(value).is_integer()
            _check(whole, f"{key}.{attr}", value, "an int parameter needs whole numbers")
    _check(entry.allowed.holds(low), f"{key}.low", low, must)
    _check(entry.allowed.holds(high), f"{key}.high", high, must)


def _check_sweep(sweep: SweepConfig, sampler: str) -> None:
    lo_hi = list(sweep.lr_range)
    _check(
        len(lo_hi) == 2 and 0 < lo_hi[0] < lo_hi[1] and all(map(math.isfinite, lo_hi)),
        "sweep.lr_range",
        lo_hi,
        "two factors of train.lr, 0 < low < high",
    )
    specs = {f"sweep.params.{name}": spec for name, spec in sweep.params.items()}
    for family, fam in sweep.families.items():
        key = f"sweep.families.{family}"
        _check(fam.n_trials >= 1, f"{key}.n_trials", fam.n_trials, "must be >= 1")
        specs.update({f"{key}.params.{name}": spec for name, spec in fam.params.items()})
    for key, spec in specs.items():
        _check_param(key, spec)
        grid_flag = "sampler=grid cannot search on/off flags; use tpe or random"
        _check(sampler != "grid" or not spec.flag, key, "flag", grid_flag)
    if sweep.settings:
        seeds = "must be >= 1: the settings are trained on these seeds"
        _check(sweep.final_seeds >= 1, "sweep.final_seeds", sweep.final_seeds, seeds)
    for setting, values in sweep.settings.items():
        for name, value in values.items():
            key = f"sweep.settings.{setting}.{name}"
            allowed = _searched(key).allowed
            _check(allowed.holds(value), key, value, f"{name} must be {allowed}")


def cv_folds(value: str, pool_rows: int, key: str = "search.cv") -> int:
    """Folds for ``search.cv`` (0 = the holdout split) given the train+validation pool size.

    Raises:
        ConfigError: ``value`` is not auto, 0 or an integer K >= 2.

    Example:
        >>> cv_folds("auto", 200), cv_folds("auto", 5000), cv_folds("3", 200), cv_folds("0", 9)
        (5, 0, 3, 0)
    """
    text = str(value).strip().lower()
    if text == "auto":
        return schema.AUTO_FOLDS if pool_rows < schema.AUTO_CV_ROWS else 0
    allowed = "allowed: auto, 0 (holdout split) or a number of folds >= 2"
    _check(text.isdigit() and int(text) != 1, key, value, allowed)
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
    _check_tables(typed)
    _check_task(typed.task, check_files)
    _check_model_train(typed.model, typed.train)
    _check_search(typed.search)
    if typed.sweep is not None:
        _check_sweep(typed.sweep, typed.search.sampler)
    _check(bool(typed.paths.root), "paths.root", typed.paths.root, "an output folder")
    if check_files:
        _check_stores(typed.paths, typed.search, typed.tracking)
    return typed


def _check_stores(
    paths: schema.PathsConfig, search: schema.SearchConfig, tracking: schema.TrackingConfig
) -> None:
    """Both stores and the run folders can be opened, without opening (or writing) any.

    The output root first: the default stores live in it, and its message is the clearer one.
    """
    from regsearch import urls  # parses with SQLAlchemy; imported only when checking stores

    problem = urls.folder_problem(Path(paths.root))
    _check(
        not problem, "paths.root", paths.root, f"an output folder regsearch can write ({problem})"
    )
    # Resuming "the newest study" needs a database to find it in; a named study is created
    # when it is not there yet (the first of several workers all started with resume=true).
    must_exist = search.resume and not search.study_name
    urls.check_storage_url(search.storage, "search.storage", must_exist=must_exist)
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
