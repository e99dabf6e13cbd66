"""regsearch.config: every shipped preset validates; every bad input is one clear ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from regsearch.__main__ import CONF_DIR, precheck
from regsearch.config import (
    AUTO_CV_ROWS,
    AUTO_FOLDS,
    SEARCHABLE,
    ConfigError,
    RegsearchConfig,
    cv_folds,
    schema_keys,
    unknown_key_message,
    validate,
)

SWEEPS = sorted(p.stem for p in (CONF_DIR / "sweep").glob("*.yaml"))
TASKS = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))
#: Tasks that read files; their presets are checked without looking for the files.
FILE_TASKS = {
    "csv": ["task.path=table.csv", "task.target=y"],
    "arrays": ["task.npz=data.npz"],
    "mnist": [],
    "fashion_mnist": [],
}


def compose_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        return compose(config_name="config", overrides=list(overrides))


def test_presets_found() -> None:
    assert {"baseline", "compare", "cocktail", "dropout"} <= set(SWEEPS)
    assert {"moons", "csv", "mnist", "digits"} <= set(TASKS)


#: Every preset on the default task, and every task under the two widest presets (a sweep
#: file sets search/sweep keys, a task file model/train keys, so they meet only in validate).
PAIRS = [(s, "moons") for s in SWEEPS] + [
    (s, t) for t in TASKS if t != "moons" for s in ("cocktail", "compare")
]


@pytest.mark.parametrize(("sweep", "task"), PAIRS)
def test_every_preset_and_task_validates(sweep: str, task: str) -> None:
    cfg = compose_cfg(f"+sweep={sweep}", f"task={task}", *FILE_TASKS.get(task, []))
    typed = validate(cfg, check_files=task not in FILE_TASKS)
    assert isinstance(typed, RegsearchConfig)
    assert typed.sweep is not None and typed.sweep.name == sweep
    assert typed.task.name == task
    assert typed.search.storage == "sqlite:///sweeps/optuna.db"


def test_paths_root_moves_both_stores(tmp_path: Path) -> None:
    typed = validate(compose_cfg("+sweep=l2", f"paths.root={tmp_path}"))
    assert typed.search.storage == f"sqlite:///{tmp_path}/optuna.db"
    assert typed.tracking.uri == f"sqlite:///{tmp_path}/mlflow.db"


@pytest.mark.parametrize(
    "overrides",
    [
        ["+sweep=dropout", "sweep.params.dropout.low=0.0", "sweep.params.dropout.high=0.99"],
        ["+sweep=l2", "model.dropout=[0.0]"],
        ["+sweep=l2", "model.dropout=[0.1,0.2]"],
        ["+sweep=l2", "+sweep.params.dropout_2={low:0.0,high:0.5}"],
        ["+sweep=l2", "+sweep.params.momentum={low:0.0,high:0.9}"],
        ["+sweep=early_stopping", "sweep.params.patience.low=1"],
        ["+sweep=l2", "train.patience=null"],
        ["+sweep=l2", "train.l2=0.0"],
        ["+sweep=cocktail", "search.sampler=random", "search.pruner=median"],
        ["+sweep=batchnorm", "search.sampler=grid"],
        ["+sweep=l2", "seed=4294967295", "task.split_seed=0", "task.data_seed=4294967295"],
        ["+sweep=l2", "train.lr=10"],
        ["+sweep=l2", "train=adam", "train.betas=[0.0,0.9999]", "train.eps=1.0"],
        ["+sweep=l2", "train.weight_decay=4.99"],  # lr 0.2: lr × wd just below 1
        ["+sweep=l2", "search.timeout=null"],
        ["+sweep=l2", "search.storage=sweeps/s.journal"],
        ["+sweep=l2", "tracking.backend=none", "tracking.uri=''"],
        ["+sweep=l2", "task=polynomial", "task.coefficients=[-1e3,0.0,1e3]"],
    ],
)
def test_edge_values_accepted(overrides: list[str]) -> None:
    validate(compose_cfg(*overrides))


# (overrides, text the one-line message must contain: the key that is wrong)
BAD = [
    (["model.dropout=[1.0]"], "model.dropout"),
    (["model.dropout=[-0.1]"], "model.dropout"),
    (["model.dropout=[0.1,0.2,0.3]"], "model.dropout"),
    (["+sweep=dropout", "sweep.params.dropout.high=1.0"], "sweep.params.dropout.high"),
    (["+sweep=dropout", "sweep.params.dropout.low=-0.1"], "sweep.params.dropout.low"),
    (["train.l1=-1"], "train.l1"),
    (["train.l2=-0.1"], "train.l2"),
    (["train.weight_decay=-0.1"], "train.weight_decay"),
    (["train=adamw", "train.weight_decay=-0.01"], "train.weight_decay"),
    (["train.l2=inf"], "train.l2"),
    (["train.patience=0"], "train.patience"),
    (["train.lr=0"], "train.lr"),
    (["train.lr=nan"], "train.lr"),
    (["train.max_epochs=0"], "train.max_epochs"),
    (["search.n_trials=0"], "search.n_trials"),
    (["search.repeats=0"], "search.repeats"),
    (["search.population=0"], "search.population"),
    (["search.timeout=0"], "search.timeout"),
    (["search.sampler=bayes"], "search.sampler"),
    (["search.pruner=asha"], "search.pruner"),
    (["train.optimizer=lbfgs"], "train.optimizer"),
    (["model.activation=swish"], "model.activation"),
    (["search.metric=accuracy"], "search.metric"),
    (["model.hidden=[0]"], "model.hidden"),
    (["engine=jax"], "engine"),
    (["device=tpu"], "device"),
    (["sweep.params.l2.low=2.0"], "sweep.params.l2.low"),
    (["sweep.params.l2.low=1.0"], "sweep.params.l2.low"),
    (["sweep.params.l2.low=0"], "sweep.params.l2.low"),
    (["sweep.params.l2.low=-1e-3"], "sweep.params.l2.low"),
    (["+sweep.params.lr={low:0.0,high:0.5}"], "sweep.params.lr.low"),
    (["+sweep.params.momentum={low:0.0,high:1.5}"], "sweep.params.momentum.high"),
    (["+sweep.params.min_delta={low:0.0,high:0.1,log:true}"], "sweep.params.min_delta.low"),
    (["+sweep.params.min_delta={low:0.1,high:0.5,step:-0.1}"], "sweep.params.min_delta.step"),
    (["+sweep.params.lr={low:0.01,high:0.5,log:true,step:0.1}"], "sweep.params.lr.step"),
    (["+sweep.params.patience={type:int,low:0,high:10}"], "sweep.params.patience.low"),
    (["+sweep.params.patience={type:int,low:1,high:10,step:0.5}"], "sweep.params.patience.step"),
    (["+sweep.params.patience={type:float,low:1,high:10}"], "sweep.params.patience.type"),
    (["+sweep.params.batch_norm={low:0,high:1}"], "sweep.params.batch_norm.choices"),
    (["+sweep.params.lr={type:categorical,choices:[]}"], "sweep.params.lr.choices"),
    (["+sweep.params.dropout={type:categorical,choices:[0.1,1.5]}"], "sweep.params.dropout"),
    (["+sweep.params.l1={low:0.0,high:0.1,grid:[-1.0,0.1]}"], "sweep.params.l1.grid"),
    (["+sweep.params.lr={low:0.01,high:0.1,flag:true}"], "sweep.params.lr.flag"),
    (["+sweep.params.l3={low:0.0,high:1.0}"], "sweep.params.l3"),
    (["+sweep.params.dropout_0={low:0.0,high:0.5}"], "sweep.params.dropout_0"),
    (["+sweep.params.dropout_x={low:0.0,high:0.5}"], "sweep.params.dropout_x"),
    (["+sweep.params.l2_on={low:0.0,high:0.5}"], "sweep.params.l2_on"),
    (["search.sampler=nsga2", "search.pruner=median"], "search.pruner"),
    (["+sweep=cocktail", "search.sampler=grid"], "sweep.params.l1"),
    (["+sweep=compare", "sweep.families.l1.params.l1.low=0"], "sweep.families.l1.params.l1.low"),
    (["+sweep=compare", "sweep.families.l1.n_trials=0"], "sweep.families.l1.n_trials"),
    (["+sweep=compare", "sweep.final_seeds=-1"], "sweep.final_seeds"),
    (["+experiment=nndl_moons", "sweep.final_seeds=0"], "sweep.final_seeds"),
    (["task=csv", "task.target=y"], "task.path"),
    (["task=csv", "task.path=MISSING/table.csv", "task.target=y"], "task.path"),
    (["task=csv", "task.path=table.csv", "task.kind=ordinal"], "task.kind"),
    (["task=mnist", "task.data_dir=MISSING/mnist"], "task.data_dir"),
    (["task=mnist", "task.pixel_scale=bytes"], "task.pixel_scale"),
    (["task.val_fraction=1.0"], "task.val_fraction"),
    (["task.n_pool=300"], "task.n_pool"),
    (["search.n_trials=abc"], "search.n_trials"),
    (["sweep.params.l2.low=abc"], "sweep.params.l2.low"),
    (["sweep.params.l2.log=maybe"], "sweep.params.l2.log"),
    (["model.dropout=0.5"], "model.dropout"),
    (["sweep.params.l2=3"], "sweep.params.l2"),
    (["seed=abc"], "seed"),
    (["+search.n_trails=3"], "search.n_trails"),
    (["+model.widths=[3]"], "model.widths"),
    (["+sweep.params.l2.lo=0.1"], "sweep.params.l2.lo"),
    (["task=digits", "+task.n_samples=10"], "task.n_samples"),
    (["paths.root="], "paths.root"),
    (["search.cv=1"], "search.cv"),
    (["search.cv=-3"], "search.cv"),
    (["search.cv=folds"], "search.cv"),
    (["+sweep=compare", "sweep.lr_range=[0.0,3.0]"], "sweep.lr_range"),
    (["+sweep=compare", "sweep.lr_range=[1.0]"], "sweep.lr_range"),
    # Seeds live in [0, 2**32).
    (["seed=-1"], "seed=-1"),
    (["seed=4294967296"], "seed=4294967296"),
    (["task.split_seed=-1"], "task.split_seed"),
    (["task.data_seed=4294967296"], "task.data_seed"),
    # Every float setting: finite and in range.
    (["train.lr=inf"], "train.lr"),
    (["train.lr=1e6"], "train.lr"),
    (["train.momentum=nan"], "train.momentum"),
    (["train=adam", "train.betas=[0.9,1.0]"], "train.betas"),
    (["train=adam", "train.betas=[0.9,nan]"], "train.betas"),
    (["train=adam", "train.betas=[0.9]"], "train.betas"),
    (["train=adam", "train.eps=0"], "train.eps"),
    (["train=adam", "train.eps=inf"], "train.eps"),
    (["train.weight_decay=5.0"], "train.weight_decay"),  # lr 0.2 × 5 = 1 wipes W out
    (["train.min_delta=inf"], "train.min_delta"),
    (["train.l1=nan"], "train.l1"),
    (["model.init_std=inf"], "model.init_std"),
    (["model.bn_eps=0"], "model.bn_eps"),
    (["model.bn_eps=nan"], "model.bn_eps"),
    (["model.bn_momentum=inf"], "model.bn_momentum"),
    (["task.noise=inf"], "task.noise"),
    (["task.val_fraction=nan"], "task.val_fraction"),
    (["task=polynomial", "task.coefficients=[1.0,inf]"], "task.coefficients"),
    (["task=linear12", "task.noise_std=inf"], "task.noise_std"),
    (["task=digits", "task.test_fraction=inf"], "task.test_fraction"),
    (["search.timeout=inf"], "search.timeout"),
    (["sweep.params.l2.high=inf"], "sweep.params.l2.high"),
    (["+sweep.params.lr={low:0.01,high:100.0}"], "sweep.params.lr.high"),
    (["+sweep.params.min_delta={low:0.0,high:0.1,grid:[0.0,inf]}"], "sweep.params.min_delta.grid"),
    (["+experiment=nndl_moons", "sweep.settings.l2.l2=inf"], "sweep.settings.l2.l2"),
    (["task=csv", "task.path=table.csv", "task.target=y", "task.max_levels=0"], "task.max_levels"),
    # Where the stores and run folders go (FILE is a regular file).
    (["paths.root=FILE"], "paths.root"),
    (["paths.root=FILE/sub"], "paths.root"),
    (["search.storage=not-a-url"], "search.storage"),
    (["search.storage=sqlite:///FILE/optuna.db"], "search.storage"),
    (["search.storage=postgresql+psycopg://u@127.0.0.1:1/db"], "search.storage"),
    (["search.resume=true", "search.storage=sqlite:///MISSING/optuna.db"], "search.storage"),
    (["tracking.uri=sqlite:///FILE/mlflow.db"], "tracking.uri"),
    (["tracking.uri=mlruns"], "tracking.uri"),
    (["tracking.uri=''"], "tracking.uri"),
    (["tracking.artifact_root=FILE/art"], "tracking.artifact_root"),
]


@pytest.mark.parametrize(("overrides", "key"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_config_names_the_key(overrides: list[str], key: str, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    overrides = [o.replace("MISSING", str(tmp_path / "missing")) for o in overrides]
    overrides = [o.replace("FILE", str(tmp_path / "afile")) for o in overrides]
    if not any(o.startswith("+sweep=") for o in overrides):
        overrides.insert(0, "+sweep=l2")
    cfg = compose_cfg(*overrides)
    with pytest.raises(ConfigError) as info:
        validate(cfg, check_files=True)
    message = str(info.value)
    assert key in message
    assert "\n" not in message and message.strip() == message
    assert "full_key" not in message and "object_type" not in message


def test_unknown_key_lists_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match=r"search\.n_trails: unknown key.*\bn_trials\b"):
        validate(compose_cfg("+sweep=l2", "+search.n_trails=3"))


@pytest.mark.parametrize(
    ("path", "task", "expected"),
    [
        ("", "moons", ["task", "model", "train", "search", "sweep", "seed"]),
        ("search", "moons", ["sampler", "pruner", "n_trials", "repeats"]),
        ("task", "moons", ["n_samples", "noise", "n_pool"]),
        ("task", "csv", ["path", "target", "impute"]),
        ("sweep.params.l2", "moons", ["low", "high", "log", "flag", "grid"]),
        ("sweep.families.l1", "moons", ["params", "n_trials"]),
        ("sweep.families.l1.params.l1", "moons", ["low", "high"]),
    ],
)
def test_schema_keys(path: str, task: str, expected: list[str]) -> None:
    keys = schema_keys(path, task)
    assert keys is not None
    assert set(expected) <= set(keys)


@pytest.mark.parametrize("path", ["sweep.params", "search.n_trials", "nope", "search.nope"])
def test_schema_keys_of_non_sections(path: str) -> None:
    assert schema_keys(path) is None


@pytest.mark.parametrize(
    ("key", "task", "unknown"),
    [
        ("search.n_trails", "moons", "search.n_trials"),
        ("search.n_trials", "moons", None),
        ("train.l1", "moons", None),
        ("task.path", "moons", ""),
        ("task.path", "csv", None),
        ("sweep.params.l2.lo", "moons", "sweep.params.l2.low"),
        ("sweep.params.l2.step", "moons", None),
        ("n_trials", "moons", ""),
        # The misspelled part need not be the last: the whole key is suggested.
        ("serch.n_trials", "moons", "search.n_trials"),
        ("trian.lr", "moons", "train.lr"),
    ],
)
def test_unknown_key_message(key: str, task: str, unknown: str | None) -> None:
    """None: a known key; "": unknown with no close spelling; else the key suggested."""
    message = unknown_key_message(key, task)
    assert (message is not None) == (unknown is not None), message
    if message is None:
        return
    assert message.startswith(f"{key}: unknown key; ")
    if unknown:
        assert f"did you mean {unknown}? allowed" in message
    else:
        assert "did you mean" not in message


# Command lines precheck rejects with exit 2 (while composing or validating).
COMPOSITION = [
    (["+sweep=l2", "search.n_trails=3"], "search.n_trails"),
    (["+sweep=l2", "train.l1=-1"], "train.l1=-1"),
    (["+sweep=l2", "train.patience=0"], "train.patience=0"),
    (["+sweep=l2", "task=nope"], "task"),
    (["+sweep=nope"], "sweep"),
    (["sweep=l2"], "+sweep=l2"),
    (["+sweep=l2", "train=lbfgs"], "train"),
    (["+sweep=l2", "model.hidden.x=1"], "model.hidden.x"),
    (["+sweep=l2", "model.dropout=[0.5"], "model.dropout"),
    (["+sweep=l2", "task.path"], "task.path"),
    ([], "+sweep="),
]


@pytest.mark.parametrize(
    ("argv", "key"), COMPOSITION, ids=[" ".join(a) or "no-sweep" for a, _ in COMPOSITION]
)
def test_precheck_composition_errors(
    argv: list[str], key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        precheck(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("regsearch: error: ")
    assert key in lines[0]


def test_precheck_passes_a_good_command_line(tmp_path: Path) -> None:
    precheck(["+sweep=l2", "search.n_trials=2", f"paths.root={tmp_path}"])
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("value", "pool", "folds"),
    [
        ("auto", 200, AUTO_FOLDS),
        ("auto", AUTO_CV_ROWS - 1, AUTO_FOLDS),
        ("auto", AUTO_CV_ROWS, 0),  # large pools keep the holdout split
        ("0", 200, 0),
        ("3", 200, 3),
        ("10", 5000, 10),  # an explicit K wins over the pool size
        (" Auto ", 10, AUTO_FOLDS),
    ],
)
def test_cv_folds(value: str, pool: int, folds: int) -> None:
    assert cv_folds(value, pool) == folds


def test_compare_tunes_the_learning_rate_in_every_arm_by_default() -> None:
    typed = validate(compose_cfg("+sweep=compare"))
    assert typed.sweep is not None and typed.sweep.tune_lr
    assert typed.search.cv == "auto"
    assert not validate(compose_cfg("+sweep=dropout")).sweep.tune_lr  # type: ignore[union-attr]


def _flagged_spec(name: str) -> dict[str, object]:
    """A valid search space of ``name`` with flag: true, whatever its row allows."""
    entry = SEARCHABLE[name]
    if entry.cast is bool:
        return {"type": "categorical", "choices": [False, True], "flag": True}
    if entry.cast is int:
        return {"type": "int", "low": 1, "high": 5, "flag": True}
    return {"low": 0.01, "high": 0.5, "flag": True}


@pytest.mark.parametrize("name", list(SEARCHABLE))
def test_flags_follow_the_searchable_table(name: str) -> None:
    """Validation reads SEARCHABLE: a flag is accepted exactly where the row has an off value."""
    cfg = OmegaConf.create({"sweep": {"params": {name: _flagged_spec(name)}}})
    if SEARCHABLE[name].flaggable:
        validate(cfg, check_files=False)
    else:
        with pytest.raises(ConfigError, match=rf"sweep\.params\.{name}\.flag.*no off value"):
            validate(cfg, check_files=False)
