"""task=mnist1d: MNIST-1D generated offline by the mnist1d package, cached, with its shape."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regsearch.config import Mnist1dTask
from regsearch.tasks import load_task

pytest.importorskip("mnist1d")


def test_mnist1d_has_the_papers_sizes_and_a_shape() -> None:
    data = load_task(Mnist1dTask(name="mnist1d"))
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (3200, 800, 1000)
    assert data.shape == (40,) and data.n_features == 40 and data.n_classes == 10
    assert set(data.y_train.unique().tolist()) == set(range(10))


def test_n_train_keeps_a_subset_of_the_training_sequences() -> None:
    data = load_task(Mnist1dTask(name="mnist1d", n_train=500))
    assert len(data.x_train) + len(data.x_val) == 500
    assert len(data.x_test) == 1000  # the test set is never subsampled


def test_generation_is_cached_and_leaves_global_random_state_alone(tmp_path: Path) -> None:
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    cfg = Mnist1dTask(name="mnist1d", cache_dir=str(tmp_path), data_seed=7)
    first = load_task(cfg)
    assert np.random.random() == expected  # make_dataset's np.random.seed was undone
    assert (tmp_path / "mnist1d-seed7.npz").is_file()
    again = load_task(cfg)  # from the cache
    assert (first.x_test == again.x_test).all() and (first.y_train == again.y_train).all()
