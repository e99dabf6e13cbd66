"""The reference-experiment presets (conf/experiment/): each validates, and each reproduces the
direction its source reports on a reduced budget over several seeds.

The sources' exact numbers cannot come back (their data were unseeded); what must come back is
the direction: the regularized setting trains worse, ends with the smaller train/validation gap
and, for L2 and weight decay, with the smaller weights. The budgets below were checked with
several ``seed=`` values (and data seeds where noted) so the assertions do not hinge on luck.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regsearch.__main__ import CONF_DIR
from regsearch.config import RegsearchConfig, validate
from regsearch.sweep import run_sweep
from tests.conftest import compose_config

#: Benchmark suites also live in conf/experiment/ (tests/test_suite.py covers them).
SUITES = {"suite"}
EXPERIMENTS = sorted(
    p.stem for p in (CONF_DIR / "experiment").glob("*.yaml") if p.stem not in SUITES
)
#: Presets that read IDX files; they validate without the files and run on generated ones.
IDX_EXPERIMENTS = {"d2l_dropout_fashion": "fashion_mnist", "mnist_l1_l2": "mnist"}
#: Keeps runs quiet and off MLflow (a new MLflow store alone costs seconds).
QUIET = ["tracking=none", "report=false", "progress=false"]

MakeConfig = Callable[..., tuple[RegsearchConfig, str]]


def run_means(make_config: MakeConfig, root: Path, name: str, *overrides: str) -> pd.DataFrame:
    """Run ``+experiment=name`` and return the final metrics averaged over seeds per setting."""
    cfg, yaml_text = make_config(root, f"+experiment={name}", *QUIET, *overrides)
    trials = run_sweep(cfg, yaml_text).trials
    assert (trials["state"] == "complete").all()
    assert (trials["phase"] == "final").all()
    numeric = trials.select_dtypes("number").columns.difference(["trial", "seed"])
    return trials.groupby("family")[list(numeric)].mean()


def test_every_setup_of_the_reference_document_has_a_preset() -> None:
    assert set(EXPERIMENTS) == {
        "nndl_moons",
        "d2l_weight_decay",
        "d2l_polynomial_4",
        "d2l_polynomial_2",
        "d2l_polynomial_20",
        "d2l_dropout_fashion",
        "linear12_adam",
        "mnist_l1_l2",
    }


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_validates(name: str, tmp_path: Path) -> None:
    # The IDX files are not here: those presets are checked without looking for them.
    composed = compose_config(tmp_path, f"+experiment={name}")
    cfg = validate(composed, check_files=name not in IDX_EXPERIMENTS)
    assert cfg.sweep is not None
    assert cfg.sweep.name == name
    assert cfg.sweep.description
    assert "none" in cfg.sweep.settings and cfg.sweep.settings["none"] == {}
    assert cfg.sweep.final_seeds >= 3
    assert not cfg.sweep.params and not cfg.sweep.families  # fixed settings, nothing tuned
    assert cfg.task.name == IDX_EXPERIMENTS.get(name, cfg.task.name)


@pytest.mark.slow
def test_nndl_moons_every_regularizer_trains_worse_and_closes_the_gap(
    tmp_path: Path, make_config
) -> None:
    # 1,500 full-batch steps (the preset runs 10,000, the book 50,000): the none model's val
    # loss has already turned up. The accuracy gap is left out: 50 validation points make it
    # move in steps of 0.02, too coarse to order the settings reliably on 3 seeds.
    means = run_means(
        make_config,
        tmp_path,
        "nndl_moons",
        "train.max_epochs=1500",
        "train.eval_every=500",
        "sweep.final_seeds=3",
    )
    none = means.loc["none"]
    for setting in ("l2", "weight_decay", "dropout"):
        row = means.loc[setting]
        assert row["gap_loss"] < none["gap_loss"], setting
        assert row["train_loss"] > none["train_loss"], setting
    for setting in ("l2", "weight_decay"):
        assert means.loc[setting, "weight_norm"] < 0.7 * none["weight_norm"], setting


@pytest.mark.slow
def test_d2l_weight_decay_shrinks_the_weights_and_the_gap(tmp_path: Path, make_config) -> None:
    # The full d2l budget is a few seconds: 100 epochs of 4 steps.
    means = run_means(make_config, tmp_path, "d2l_weight_decay", "sweep.final_seeds=3")
    none, decay = means.loc["none"], means.loc["weight_decay"]
    assert none["weight_norm"] > 10.0  # d2l: 12.8
    assert decay["weight_norm"] < 1.0  # d2l: 0.35
    assert decay["gap_loss"] < 0.1 * none["gap_loss"]
    assert decay["train_loss"] > none["train_loss"]


@pytest.mark.slow
def test_linear12_adam_dropout_closes_the_gap_and_coupled_decay_shrinks_weights(
    tmp_path: Path, make_config
) -> None:
    # The blog's full budget (20 epochs) on 5 seeds (3 let one noisy Adam run flip the order).
    # The blog's weight-decay gap did not reproduce: over ten data seeds the coupled decay
    # closed the gap in six and widened it in four (data seed 0 among them), so only what it
    # does to the weights is asserted. The decoupled "adamw" contrast is left out here.
    means = run_means(
        make_config, tmp_path, "linear12_adam", "sweep.final_seeds=5", "~sweep.settings.adamw"
    )
    none = means.loc["none"]
    assert means.loc["dropout", "gap_loss"] < none["gap_loss"]
    assert means.loc["dropout", "train_loss"] > none["train_loss"]
    assert means.loc["weight_decay", "weight_norm"] < 0.7 * none["weight_norm"]


@pytest.mark.slow
def test_d2l_polynomial_20_features_overfit_and_2_underfit(tmp_path: Path, make_config) -> None:
    # 400 epochs for all three fits (the book gives the 20-feature fit 1,500); checked on data
    # seeds 0-2: the 20-feature gap and validation loss stay above the 4-feature ones.
    fits = {
        n: run_means(
            make_config,
            tmp_path,
            f"d2l_polynomial_{n}",
            "train.max_epochs=400",
            "train.eval_every=100",
            "sweep.final_seeds=3",
        ).loc["none"]
        for n in (4, 2, 20)
    }
    right, under, over = fits[4], fits[2], fits[20]
    assert right["train_loss"] < 0.05  # noise variance is 0.01: the right model fits
    assert over["gap_loss"] > right["gap_loss"]
    assert over["val_loss"] > right["val_loss"]
    assert under["train_loss"] > 10 * right["train_loss"]  # underfit: training loss stays high
    assert under["val_loss"] > 10 * right["val_loss"]


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 ``array`` as a gzipped IDX file (magic 0x0800 + ndim, big-endian sizes)."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_idx_set(folder: Path, n_train: int, n_test: int) -> Path:
    """The four standard IDX files (gz) of random 28x28 images with labels 0-9."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(IDX_EXPERIMENTS))
def test_idx_experiment_runs_on_generated_files(name: str, tmp_path: Path, make_config) -> None:
    data_dir = write_idx_set(tmp_path / "data", n_train=300, n_test=100)
    means = run_means(
        make_config,
        tmp_path / "sweeps",
        name,
        f"task.data_dir={data_dir}",
        "task.n_train=200",
        "train.max_epochs=2",
        "sweep.final_seeds=2",
    )
    cfg, _ = make_config(tmp_path, f"+experiment={name}", f"task.data_dir={data_dir}")
    assert cfg.sweep is not None
    assert set(means.index) == set(cfg.sweep.settings)
    assert means[["train_acc", "val_acc", "test_acc", "test_loss"]].notna().all().all()
