"""model=custom: the user's own torch module, its contract and its refusals (exit 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from regsearch.config import ConfigError
from regsearch.dropout import MemberDropout
from regsearch.usernets import CustomSpec, build_custom, inspect_custom
from tests.test_cli_errors import assert_refused, run_cli

NETS = '''
from torch import nn


def make_net(input_shape, n_outputs, width=16, batch_norm=False):
    """A small CNN on 8x8 images, the README's contract."""
    channels = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1),
        nn.BatchNorm2d(4) if batch_norm else nn.Identity(),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(4 * input_shape[1] * input_shape[2], width),
        nn.ReLU(),
        nn.Linear(width, n_outputs),
    )


def no_dropout(input_shape, n_outputs):
    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0] * 64, n_outputs))


def small_mlp(input_shape, n_outputs):
    return nn.Sequential(nn.Linear(input_shape[0], 8), nn.ReLU(), nn.Linear(8, n_outputs))


def wrong_width(input_shape, n_outputs, batch_norm=False):
    return nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(64, n_outputs + 1))
'''

TINY = [
    "task=digits",
    "train.max_epochs=2",
    "train.eval_every=1",
    "search.n_trials=2",
    "search.repeats=1",
    "search.cv=0",
    "sweep.final_seeds=2",
    "tracking=none",
    "report=false",
    "progress=false",
]


@pytest.fixture
def nets(tmp_path: Path) -> str:
    """A module of user networks in tmp_path, importable as ``user_nets``."""
    (tmp_path / "user_nets.py").write_text(NETS)
    sys.path.insert(0, str(tmp_path))
    yield "user_nets"
    sys.path.remove(str(tmp_path))
    sys.modules.pop("user_nets", None)


def test_dropout_rates_and_batch_norm_reach_the_module(nets: str) -> None:
    spec = CustomSpec(f"{nets}.make_net", (1, 8, 8), 10, {"width": 8})
    net = build_custom(spec, dropout=[0.2], batch_norm=True)
    # Its nn.Dropout became the member's own dropout, at the member's rate.
    assert [float(m.rate) for m in net.modules() if isinstance(m, MemberDropout)] == [
        pytest.approx(0.2)
    ]
    assert not any(type(m) is nn.Dropout for m in net.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert net(torch.zeros(3, 64)).shape == (3, 10)  # flat rows are reshaped to input_shape
    same = build_custom(spec, generator=torch.Generator().manual_seed(1))
    again = build_custom(spec, generator=torch.Generator().manual_seed(1))
    pairs = zip(same.parameters(), again.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    facts = inspect_custom(spec)
    assert facts.has_dropout and facts.takes_batch_norm


def test_a_wrong_output_shape_is_refused(nets: str) -> None:
    with pytest.raises(ConfigError, match=r"must return \[batch, n_outputs\]"):
        inspect_custom(CustomSpec(f"{nets}.wrong_width", (1, 8, 8), 10))


@pytest.mark.slow
def test_dropout_sweep_on_a_user_module(tmp_path: Path, nets: str) -> None:
    args = ["+sweep=dropout", "model=custom", f"model._target_={nets}.make_net", "+model.width=8"]
    proc = run_cli(tmp_path, *args, *TINY, f"paths.root={tmp_path / 'sweeps'}")
    assert proc.returncode == 0, proc.stderr
    (trials,) = (tmp_path / "sweeps").glob("dropout-digits/*/trials.csv")
    frame = pd.read_csv(trials)
    assert (frame["state"] == "complete").all() and frame["dropout"].gt(0).any()
    summary = json.loads(next(trials.parent.glob("summary.json")).read_text())
    assert summary["partial"] is False


CONTRACT_CASES = [
    (["+sweep=dropout", "model._target_=no_such_pkg.nets.make_net"], "cannot import"),
    (["+sweep=dropout", "model._target_=user_nets.wrong_width"], "must return"),
    (["+sweep=dropout", "model._target_=user_nets.no_dropout"], "no nn.Dropout"),
    (["+sweep=batchnorm", "model._target_=user_nets.no_dropout"], "no batch_norm argument"),
    (["+sweep=l2"], "model._target_"),
]


@pytest.mark.parametrize(("args", "message"), CONTRACT_CASES, ids=[m for _, m in CONTRACT_CASES])
def test_a_callable_that_does_not_fit_is_refused(
    args: list[str], message: str, tmp_path: Path, nets: str
) -> None:
    root = tmp_path / "sweeps"
    proc = run_cli(tmp_path, "model=custom", *args, *TINY, f"paths.root={root}")
    assert_refused(proc, message)
    assert not root.exists()  # refused before anything is written


def test_a_user_network_on_a_2d_task_gets_decision_boundaries(tmp_path: Path, nets: str) -> None:
    from regsearch.api import run

    result = run(
        "+sweep=l2",
        "model=custom",
        f"model._target_={nets}.small_mlp",
        "train.max_epochs=20",
        "search.n_trials=2",
        "search.cv=0",
        "sweep.final_seeds=0",
        "tracking=none",
        root=tmp_path,
    )
    with np.load(result.run_dir / "boundaries.npz") as grids:
        assert grids["prob__baseline"].shape == grids["xx"].shape
    assert "decision_boundaries" in (result.run_dir / "report.html").read_text()
    assert result.summary["not_drawn"] == {}
