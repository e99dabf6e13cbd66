"""model=cnn: conv blocks with every regularizer, trained on either engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from regsearch.config import SklearnTask
from regsearch.convnets import CnnSpec, build_cnn
from regsearch.dropout import MemberDropout
from regsearch.engine.members import Schedule
from regsearch.engine.reference import fit
from regsearch.records import Hyperparams, Member
from regsearch.regularizers import split_decay_params, weight_matrices
from regsearch.tasks import load_task
from tests.test_cli_errors import assert_refused, run_cli

TINY_COMPARE = [
    "train.max_epochs=2",
    "train.eval_every=1",
    *(
        f"sweep.families.{family}.n_trials=2"
        for family in ("l1", "l2", "weight_decay", "dropout", "early_stopping", "batchnorm")
    ),
    "sweep.final_seeds=2",
    "search.cv=0",
    "tracking=none",
    "report=false",
    "progress=false",
]


#: A two-trial tuning sweep of two epochs, no final phase, no tracking (regsearch.run).
TINY_RUN = [
    "train.max_epochs=2",
    "train.eval_every=1",
    "search.n_trials=2",
    "search.cv=0",
    "sweep.final_seeds=0",
    "tracking=none",
]


def test_blocks_in_1d_and_2d_with_a_dropout_rate_per_block() -> None:
    net = build_cnn(CnnSpec((40,), 10, channels=(4, 6), head=(8,)), dropout=[0.1, 0.2, 0.3])
    assert net(torch.zeros(3, 40)).shape == (3, 10)
    rates = [float(m.rate) for m in net.modules() if isinstance(m, MemberDropout)]
    assert rates == pytest.approx([0.1, 0.2, 0.3])
    assert any(isinstance(m, nn.Conv1d) for m in net.modules())
    net2d = build_cnn(CnnSpec((1, 8, 8), 3, channels=(4,)), batch_norm=True)
    assert net2d(torch.zeros(2, 64)).shape == (2, 3)
    assert any(isinstance(m, nn.BatchNorm2d) for m in net2d.modules())


def test_penalties_and_decay_cover_conv_weights_not_biases_or_norms() -> None:
    net = build_cnn(CnnSpec((1, 8, 8), 3, channels=(4,)), batch_norm=True)
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    penalized = {id(p) for p in weight_matrices(net)}
    decayed = {id(p) for p in split_decay_params(net, decay_all=False)[0]}
    assert id(conv.weight) in penalized and id(conv.weight) in decayed
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d | nn.Conv2d | nn.Linear):
            assert module.bias is not None and id(module.bias) not in penalized | decayed


def test_same_seed_same_numbers() -> None:
    task = load_task(SklearnTask(name="digits"))
    assert task.shape == (1, 8, 8)
    spec = CnnSpec(task.shape, task.n_outputs, channels=(4, 4), head=(16,))
    hp = Hyperparams(lr=0.05, l2=1e-3, weight_decay=1e-3, dropout=(0.1, 0.1, 0.2), batch_norm=True)
    schedule = Schedule(batch_size=64, max_epochs=3, eval_every=1)
    _, first = fit(task, spec, Member(0, 3, hp), schedule)
    _, again = fit(task, spec, Member(0, 3, hp), schedule)
    _, other = fit(task, spec, Member(0, 4, hp), schedule)
    assert first.final == again.final and first.final != other.final
    assert first.final["val_acc"] > 0.5  # it learns digits in three epochs


@pytest.mark.slow
def test_compare_on_mnist1d_runs_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("mnist1d")
    args = ["+sweep=compare", "task=mnist1d", "model=cnn", "task.n_train=300", *TINY_COMPARE]
    proc = run_cli(tmp_path, *args, f"paths.root={tmp_path / 'sweeps'}")
    assert proc.returncode == 0, proc.stderr
    assert "cannot be stacked" not in proc.stdout + proc.stderr
    (summary,) = (tmp_path / "sweeps").glob("compare-mnist1d/*/summary.json")
    assert json.loads(summary.read_text())["partial"] is False


def test_a_cnn_needs_data_with_a_shape_it_can_convolve(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "+sweep=l2", "model=cnn", "model.kernel_size=[3,3]")
    assert_refused(proc, "model.kernel_size")


def test_lenet_is_d2l_lenet_with_batch_norm() -> None:
    """model=lenet: valid 5x5 convs, sigmoid, average pooling, a 120-84 head (d2l §8.5)."""
    from regsearch.compose import compose_checked
    from regsearch.networks import build_net, net_spec

    typed, _ = compose_checked(["+sweep=batchnorm", "model=lenet", "task=digits"], False)
    spec = net_spec(typed.model, (1, 28, 28), 10)
    net = build_net(spec, batch_norm=True)
    assert net(torch.zeros(2, 784)).shape == (2, 10)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (6, (5, 5), (0, 0)),
        (16, (5, 5), (0, 0)),
    ]
    assert sum(isinstance(m, nn.AvgPool2d) for m in net.modules()) == 2
    assert sum(isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d) for m in net.modules()) == 4
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(256, 120), (120, 84), (84, 10)]
    # d2l's BNLeNet on 28x28 inputs (no padding): 44,426 weights and biases, plus a scale
    # and a shift per batch-norm channel.
    assert sum(p.numel() for p in net.parameters()) == 44_426 + 2 * (6 + 16 + 120 + 84)


def test_lenet_on_8x8_images_is_refused_with_the_fix(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "+sweep=l2", "model=lenet", "task=digits")
    assert_refused(proc, "model.padding=same")


def test_the_report_shows_the_architecture_and_weights_per_layer_type(tmp_path: Path) -> None:
    """model=cnn on the population engine: the setup's layer list, weights per layer type."""
    from regsearch.api import run

    result = run(
        "+sweep=l1",
        "task=digits",
        "model=cnn",
        "model.channels=[4]",
        "model.kernel_size=[3]",
        *TINY_RUN,
        root=tmp_path,
    )
    assert result.summary["engine"] == "population"
    arch = result.summary["architecture"]
    assert list(arch["layers"][:3]) == ["Conv2d(1→4, k3)", "ReLU", "MaxPool2d(2)"]
    assert arch["n_parameters"] == 4 * 9 + 4 + 4 * 16 * 10 + 10
    page = (result.run_dir / "report.html").read_text()
    assert "Conv2d(1→4, k3) → ReLU → MaxPool2d(2)" in page
    assert "Not drawn: decision boundaries (they need a binary task with two input features" in page
    conv = result.trials["weight_norm_conv"]
    linear = result.trials["weight_norm_linear"]
    assert (conv > 0).all() and (linear > 0).all()
    # The overall norm is the two layer types' together.
    both = (conv**2 + linear**2) ** 0.5
    assert both.tolist() == pytest.approx(result.trials["weight_norm"].tolist(), rel=1e-5)


def test_lenet_with_batch_norm_on_fashion_mnist_files(tmp_path: Path) -> None:
    """d2l's setup end to end: LeNet-5, batch norm on and off, 28x28 IDX images."""
    from regsearch.api import run
    from tests.test_experiments import write_idx_set

    data = write_idx_set(tmp_path / "fashion", n_train=200, n_test=50)
    result = run(
        "+sweep=batchnorm",
        "task=fashion_mnist",
        f"task.data_dir={data}",
        "model=lenet",
        *TINY_RUN,
        "report=false",
        root=tmp_path / "sweeps",
    )
    assert result.summary["input_shape"] == [1, 28, 28]
    assert result.summary["engine"] == "population"
    assert set(result.trials["batch_norm"]) == {True, False}
    assert (result.trials["state"] == "complete").all()
