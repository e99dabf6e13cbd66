"""Decision-boundary grids: the arrays the report draws, from the engine's probe."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from regsearch.boundaries import boundary_grids, save_boundaries
from regsearch.config import MoonsTask, SklearnTask
from regsearch.engine import reference
from regsearch.engine.members import Schedule
from regsearch.models import ModelSpec
from regsearch.records import REFIT, Hyperparams, Member
from regsearch.tasks import TaskData, load_task

SPEC = ModelSpec(2, 1, hidden=(20, 3), init="normal")
SCHEDULE = Schedule(max_epochs=60, eval_every=20)


@pytest.fixture(scope="module")
def moons() -> TaskData:
    return load_task(MoonsTask(name="moons"))


def test_grids_hold_each_candidates_probability_over_the_data(moons: TaskData) -> None:
    candidates = {
        "baseline": Member(0, 7, Hyperparams(lr=0.2)),
        "l2": Member(0, 7, Hyperparams(lr=0.2, l2=0.01), fold=REFIT),  # the fold is ignored
        "broken": Member(0, 7, Hyperparams(lr=math.inf)),  # fails: left out
    }
    grids = boundary_grids(moons, SPEC, SCHEDULE, candidates, resolution=30)
    assert set(grids) == {"xx", "yy", "x", "y", "prob__baseline", "prob__l2"}
    assert grids["xx"].shape == grids["yy"].shape == (30, 30)
    x = moons.x_train.numpy()
    assert np.array_equal(grids["x"], x) and grids["y"].shape == (len(x),)
    # the grid covers the training points with a margin
    assert grids["xx"].min() < x[:, 0].min() and grids["xx"].max() > x[:, 0].max()
    assert grids["yy"].min() < x[:, 1].min() and grids["yy"].max() > x[:, 1].max()
    for name in ("baseline", "l2"):
        prob = grids[f"prob__{name}"]
        assert prob.shape == (30, 30) and prob.dtype == np.float32
        assert ((prob >= 0) & (prob <= 1)).all()
    # ... and they are the candidate's own network, trained on the task's train split: the
    # reference engine's weights (no dropout: the same arithmetic) give the same grid
    net, _ = reference.fit(moons, SPEC, candidates["baseline"], SCHEDULE)
    rows = np.stack([grids["xx"].ravel(), grids["yy"].ravel()], axis=1)
    with torch.no_grad():
        expected = torch.sigmoid(net(torch.as_tensor(rows, dtype=torch.float32)))
    assert np.allclose(grids["prob__baseline"].ravel(), expected.numpy().ravel(), atol=1e-5)
    assert not np.allclose(grids["prob__baseline"], grids["prob__l2"], atol=1e-3)


def test_only_binary_two_feature_tasks_have_boundaries() -> None:
    wine = load_task(SklearnTask(name="wine"))
    with pytest.raises(ValueError, match="binary task with two input features; wine has 13"):
        boundary_grids(wine, ModelSpec(13, 3), SCHEDULE, {})


def test_saved_grids_read_back(moons: TaskData, tmp_path: Path) -> None:
    grids = boundary_grids(moons, SPEC, SCHEDULE, {"a": Member(0, 1, Hyperparams(lr=0.1))}, 8)
    path = save_boundaries(tmp_path / "boundaries.npz", grids)
    with np.load(path) as npz:
        assert {k: npz[k].shape for k in npz.files} == {k: v.shape for k, v in grids.items()}
