"""regsearch.run(..., data=...) with arrays, tensors or a torch Dataset (task=arrays)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

from regsearch.api import run
from regsearch.arrays import as_arrays
from regsearch.config import ArraysTask, ConfigError
from regsearch.tasks import load_task

FAST = [
    "+sweep=l2",
    "train.max_epochs=2",
    "train.eval_every=1",
    "search.n_trials=2",
    "search.cv=0",
    "sweep.final_seeds=2",
    "tracking=none",
    "report=false",
]


@pytest.fixture(scope="module")
def images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as 8x8 images (a user's [n, H, W] array) with int labels."""
    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target


def test_images_keep_their_shape_and_a_cnn_convolves_them(
    tmp_path: Path, images: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = images
    result = run(
        *FAST,
        "model=cnn",
        "model.channels=[4]",
        "model.kernel_size=[3]",
        root=tmp_path,
        data=(x, y),
    )
    assert result.summary["task"] == "arrays"
    (stored,) = (tmp_path / "data").glob("arrays-*.npz")
    task = load_task(ArraysTask(name="arrays", npz=str(stored)))
    assert task.shape == (1, 8, 8) and task.n_classes == 10
    assert len(task.x_train) + len(task.x_val) + len(task.x_test) == len(x)
    assert result.summary["n_complete"] == result.summary["n_trials"]


def test_tensors_with_predefined_splits_are_used_as_given(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, 5, generator=gen)
    y = x.sum(dim=(1, 2)) + 0.1 * torch.randn(200, generator=gen)  # float y: regression
    data = {
        "x": x[:120],
        "y": y[:120],
        "x_val": x[120:160],
        "y_val": y[120:160],
        "x_test": x[160:],
        "y_test": y[160:],
    }
    result = run(*FAST, "task.name=sums", root=tmp_path, data=data)
    assert result.summary["kind"] == "regression"
    (stored,) = (tmp_path / "data").glob("sums-*.npz")
    task = load_task(ArraysTask(name="sums", npz=str(stored)))
    assert (len(task.x_train), len(task.x_val), len(task.x_test)) == (120, 40, 40)
    assert task.shape == (1, 3, 5)  # an [n, H, W] example is an image of one channel
    # The same data again: the same file.
    run(*FAST, "task.name=sums", root=tmp_path, data=data)
    assert len(list((tmp_path / "data").glob("sums-*.npz"))) == 1


def test_a_dataset_is_read_item_by_item(images: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = images
    dataset = TensorDataset(torch.as_tensor(x[:50]), torch.as_tensor(y[:50]))
    arrays = as_arrays(dataset)
    assert arrays["x"].shape == (50, 8, 8) and arrays["y"].tolist() == y[:50].tolist()


def test_labels_become_classes_in_sorted_order(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(90, 4))
    y = np.repeat([3, 7, 11], 30)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y)
    task = load_task(ArraysTask(name="d", npz=str(path)))
    assert task.n_classes == 3 and task.shape == (4,)
    assert sorted(set(task.y_train.tolist())) == [0, 1, 2]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([1, 2, 3], "is not data regsearch reads"),
        ((np.zeros((5, 2)), np.zeros(4)), "with the same n"),
        ({"x": np.zeros((5, 2)), "y": np.zeros(5), "x_val": np.zeros((2, 2))}, "x_val without"),
        ({"x": np.zeros((5, 2)), "y": np.zeros(5), "w": np.zeros(5)}, "unknown keys ['w']"),
    ],
)
def test_bad_data_is_refused_with_one_line_and_nothing_written(
    tmp_path: Path, data: object, says: str
) -> None:
    with pytest.raises(ConfigError, match=None) as refused:
        run(*FAST, root=tmp_path, data=data)
    assert says in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "data").exists()


def test_arrays_and_another_task_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="task=wine: data= is the data of this run"):
        run(*FAST, "task=wine", root=tmp_path, data=(np.zeros((9, 2)), np.zeros(9)))
    assert not tmp_path.joinpath("data").exists()
