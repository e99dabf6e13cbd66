"""Regularizers: penalty gradients, weights-only scope, decoupled decay, dropout, early stopping
and batch norm, each checked against its textbook formula with real torch."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regsearch.models import ModelSpec, build_mlp
from regsearch.regularizers import (
    EarlyStopping,
    decay_,
    penalty,
    split_decay_params,
    weight_matrices,
)

SPEC = ModelSpec(4, 3, hidden=(8, 5))


def make_net(
    *, batch_norm: bool = False, dropout: tuple[float, ...] = (), seed: int = 0
) -> nn.Sequential:
    return build_mlp(
        SPEC, dropout=dropout, batch_norm=batch_norm, generator=torch.Generator().manual_seed(seed)
    )


def batch(n: int = 16, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, SPEC.in_features, generator=gen), torch.randn(
        n, SPEC.out_features, generator=gen
    )


def linear_weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, nn.Linear)]


def other_params(net: nn.Module) -> dict[str, nn.Parameter]:
    """Biases and batch-norm parameters: everything a penalty must leave alone."""
    weight_ids = {id(w) for w in linear_weights(net)}
    return {name: p for name, p in net.named_parameters() if id(p) not in weight_ids}


def grads(net: nn.Module, l1: float, l2: float) -> dict[str, torch.Tensor]:
    """Gradients of MSE + penalty on a fixed batch, with the net in train mode."""
    x, y = batch()
    net.train()
    net.zero_grad(set_to_none=True)
    total = F.mse_loss(net(x), y) + penalty(weight_matrices(net), l1, l2)
    assert isinstance(total, torch.Tensor)
    total.backward()
    return {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}


# --------------------------------------------------------------------------- penalties

PENALTIES = [(0.3, 0.0), (0.0, 0.7), (0.3, 0.7), (2.5, 1e-3)]


@pytest.mark.parametrize(("l1", "l2"), PENALTIES)
def test_penalty_value_and_gradient_match_formula(l1: float, l2: float) -> None:
    gen = torch.Generator().manual_seed(0)
    ws = [torch.randn(5, 4, generator=gen, requires_grad=True) for _ in range(2)]
    total = penalty(ws, l1, l2)
    assert isinstance(total, torch.Tensor)
    expected = sum(l1 * w.abs().sum() + 0.5 * l2 * w.pow(2).sum() for w in ws)
    torch.testing.assert_close(total, expected)
    total.backward()
    for w in ws:
        assert w.grad is not None
        torch.testing.assert_close(w.grad, l1 * torch.sign(w.detach()) + l2 * w.detach())


def test_penalty_off_is_plain_zero_without_graph() -> None:
    w = torch.ones(2, 2, requires_grad=True)
    assert penalty([w], 0.0, 0.0) == 0.0
    assert not isinstance(penalty([w], 0.0, 0.0), torch.Tensor)


def test_l1_gradient_at_zero_is_zero() -> None:
    w = torch.zeros(3, 3, requires_grad=True)
    total = penalty([w], 1.0, 0.0)
    assert isinstance(total, torch.Tensor)
    total.backward()
    assert w.grad is not None
    assert torch.equal(w.grad, torch.zeros(3, 3))


def test_weight_matrices_are_linear_weights_only() -> None:
    net = make_net(batch_norm=True)
    chosen = {id(p) for p in weight_matrices(net)}
    assert chosen == {id(w) for w in linear_weights(net)}
    excluded = other_params(net)
    # two hidden Linear+BN blocks and the output Linear: 3 biases and 2 × (BN weight, BN bias)
    assert len(excluded) == 3 + 2 * 2
    assert any(isinstance(m, nn.BatchNorm1d) for m in net.modules())
    for name, p in excluded.items():
        assert id(p) not in chosen, name


@pytest.mark.parametrize("decay_all", [False, True])
def test_split_decay_params(decay_all: bool) -> None:
    net = make_net(batch_norm=True)
    decayed, kept = split_decay_params(net, decay_all)
    if decay_all:
        assert {id(p) for p in decayed} == {id(p) for p in net.parameters()}
        assert kept == []
    else:
        assert {id(p) for p in decayed} == {id(w) for w in linear_weights(net)}
        assert {id(p) for p in kept} == {id(p) for p in other_params(net).values()}


@pytest.mark.parametrize(("l1", "l2"), [(50.0, 0.0), (0.0, 100.0), (50.0, 100.0)])
def test_penalty_gradient_reaches_weights_only(l1: float, l2: float) -> None:
    plain = grads(make_net(batch_norm=True), 0.0, 0.0)
    net = make_net(batch_norm=True)
    penalized = grads(net, l1, l2)
    params = dict(net.named_parameters())
    for name in other_params(net):
        assert torch.equal(penalized[name], plain[name]), name
    for w in linear_weights(net):
        name = next(n for n, p in params.items() if p is w)
        extra = l1 * torch.sign(w.detach()) + l2 * w.detach()
        torch.testing.assert_close(penalized[name] - plain[name], extra, rtol=1e-5, atol=1e-4)


def test_sgd_step_with_huge_l2_moves_weights_but_not_biases_or_bn() -> None:
    lr = 10.0
    stepped = {}
    for l2 in (0.0, 1e3):
        net = make_net(batch_norm=True)
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        grads(net, 0.0, l2)
        opt.step()
        stepped[l2] = dict(net.named_parameters())
    for name in other_params(make_net(batch_norm=True)):
        assert torch.equal(stepped[0.0][name], stepped[1e3][name]), name
    for name, p in stepped[0.0].items():
        if p.dim() >= 2:
            assert not torch.allclose(p, stepped[1e3][name]), name


# --------------------------------------------------------------------------- decoupled decay


@pytest.mark.parametrize("decay_all", [False, True])
@pytest.mark.parametrize(("lr", "wd"), [(0.1, 0.5), (0.01, 3.0)])
def test_sgd_step_with_decay_is_decoupled_shrink(decay_all: bool, lr: float, wd: float) -> None:
    net = make_net(batch_norm=True)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    g = grads(net, 0.0, 0.0)
    decayed, _ = split_decay_params(net, decay_all)
    decayed_ids = {id(p) for p in decayed}
    decay_(decayed, lr, wd)
    torch.optim.SGD(net.parameters(), lr=lr).step()
    for name, p in net.named_parameters():
        shrink = wd * before[name] if id(p) in decayed_ids else 0.0
        torch.testing.assert_close(
            p.detach(), before[name] - lr * (g[name] + shrink), atol=1e-6, rtol=0
        )
    assert decay_all or any(id(p) not in decayed_ids for p in net.parameters())


def test_decay_off_leaves_parameters_untouched() -> None:
    net = make_net()
    before = [p.detach().clone() for p in net.parameters()]
    decay_(net.parameters(), lr=0.5, weight_decay=0.0)
    for p, b in zip(net.parameters(), before, strict=True):
        assert torch.equal(p, b)


@pytest.mark.parametrize("decay_all", [False, True])
@pytest.mark.parametrize(
    ("lr", "wd", "betas"), [(1e-2, 0.1, (0.9, 0.999)), (3e-3, 2.0, (0.5, 0.9))]
)
def test_adam_with_decay_equals_adamw(
    decay_all: bool, lr: float, wd: float, betas: tuple[float, float]
) -> None:
    ours = make_net(batch_norm=True)
    ref = copy.deepcopy(ours)
    decayed, _ = split_decay_params(ours, decay_all)
    adam = torch.optim.Adam(ours.parameters(), lr=lr, betas=betas)
    ref_decayed, ref_kept = split_decay_params(ref, decay_all)
    adamw = torch.optim.AdamW(
        [{"params": ref_decayed, "weight_decay": wd}, {"params": ref_kept, "weight_decay": 0.0}],
        lr=lr,
        betas=betas,
    )
    for _ in range(3):
        grads(ours, 0.0, 0.0)
        decay_(decayed, lr, wd)
        adam.step()
        grads(ref, 0.0, 0.0)
        adamw.step()
        for (name, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p, q, atol=1e-6, rtol=0, msg=name)


# --------------------------------------------------------------------------- dropout


def test_layer_order_linear_bn_activation_dropout() -> None:
    net = make_net(batch_norm=True, dropout=(0.2, 0.3))
    kinds = [type(m) for m in net]
    block = [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout]
    assert kinds == [*block, *block, nn.Linear]
    rates = [m.p for m in net if isinstance(m, nn.Dropout)]
    assert rates == [0.2, 0.3]


def test_zero_rate_adds_no_dropout_layer() -> None:
    net = make_net(dropout=(0.0, 0.4))
    assert [m.p for m in net if isinstance(m, nn.Dropout)] == [0.4]


def test_dropout_rate_count_must_match_hidden_layers() -> None:
    with pytest.raises(ValueError, match="hidden layers"):
        make_net(dropout=(0.5,))


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_is_inverted_and_keeps_the_mean_in_train_mode(rate: float) -> None:
    net = make_net(dropout=(rate, rate))
    drop = next(m for m in net if isinstance(m, nn.Dropout))
    net.train()
    torch.manual_seed(0)
    n = 200_000
    out = drop(torch.ones(n))
    # inverted dropout: survivors are scaled by 1/(1-p) so E[x] is unchanged
    survivors = out[out != 0]
    torch.testing.assert_close(survivors, torch.full_like(survivors, 1 / (1 - rate)))
    std_of_mean = math.sqrt(rate / (1 - rate) / n)
    assert abs(float(out.mean()) - 1.0) < 5 * std_of_mean
    assert abs(float((out == 0).float().mean()) - rate) < 0.01


def test_dropout_is_identity_in_eval_mode() -> None:
    with_drop = make_net(dropout=(0.5, 0.5)).eval()
    without = make_net().eval()  # same seed: dropout owns no parameters, so same weights
    x, _ = batch(64)
    drop = next(m for m in with_drop if isinstance(m, nn.Dropout))
    assert torch.equal(drop(x), x)
    assert torch.equal(with_drop(x), without(x))
    with_drop.train()
    assert not torch.equal(with_drop(x), without(x))


# --------------------------------------------------------------------------- early stopping

# (val losses, patience, min_delta, index of the evaluation that says stop or None, best index)
STOPPING = [
    ([1.0, 0.9, 0.95, 0.91], 2, 0.0, 3, 1),
    ([1.0, 0.9, 0.8, 0.7], 1, 0.0, None, 3),
    ([2.0, 3.0], 1, 0.0, 1, 0),
    ([1.0, 1.0, 1.0], 2, 0.0, 2, 0),  # equal is not an improvement
    ([1.0, 0.95, 0.92, 0.5], 2, 0.1, 2, 0),  # improvements below min_delta do not count
    ([1.0, 0.85, 0.80, 0.79, 0.7], 3, 0.1, None, 4),  # 0.7 beats 0.85 by more than 0.1
    ([1.0, 0.95, 0.5, 0.49, 0.48, 0.47], 3, 0.05, 5, 2),  # exactly min_delta is not enough
    ([1.0, math.nan, math.nan], 2, 0.0, 2, 0),  # NaN never improves
    ([5.0, 4.0, 3.0, 3.5, 2.9, 2.95, 2.99, 3.1], 3, 0.0, 7, 4),  # the count resets on a new best
]


@pytest.mark.parametrize(("losses", "patience", "min_delta", "stop_at", "best_at"), STOPPING)
def test_early_stopping_counts_non_improving_evaluations(
    losses: list[float], patience: int, min_delta: float, stop_at: int | None, best_at: int
) -> None:
    stopper = EarlyStopping(patience, min_delta)
    decisions = []
    for epoch, value in enumerate(losses):
        decisions.append(stopper.update(value, epoch))
        if decisions[-1]:
            break
    expected = [False] * len(losses) if stop_at is None else [False] * stop_at + [True]
    assert decisions == expected
    assert stopper.best_epoch == best_at
    assert stopper.best == losses[best_at]
    if stop_at is not None:
        assert stop_at - stopper.best_epoch == patience


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"patience": 0}, "patience"),
        ({"patience": -3}, "patience"),
        ({"patience": 2, "min_delta": -0.1}, "min_delta"),
    ],
)
def test_early_stopping_rejects_bad_arguments(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        EarlyStopping(**kwargs)


def _evolve(net: nn.Module, epoch: int) -> None:
    """Change every parameter and the BN running statistics, as an epoch of training would."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * (epoch + 1))
    net.train()
    net(batch(16, seed=epoch)[0])


def test_early_stopping_restores_the_best_state() -> None:
    net = make_net(batch_norm=True)
    stopper = EarlyStopping(patience=2)
    snapshot: dict[str, torch.Tensor] = {}
    for epoch, val_loss in enumerate([1.0, 0.7, 0.8, 0.9]):
        _evolve(net, epoch)
        if epoch == 1:
            snapshot = copy.deepcopy(net.state_dict())
        stop = stopper.update(val_loss, epoch, net)
    assert stop
    assert stopper.best_epoch == 1
    assert not torch.equal(net.state_dict()["0.weight"], snapshot["0.weight"])
    stopper.restore(net)
    state = net.state_dict()
    assert state.keys() == snapshot.keys()
    assert any("running_mean" in key for key in state)  # buffers are restored too
    for key, value in snapshot.items():
        assert torch.equal(state[key], value), key


def test_restore_is_a_noop_without_restore_best_or_improvement() -> None:
    net = make_net()
    stopper = EarlyStopping(patience=1, restore_best=False)
    stopper.update(1.0, 0, net)
    _evolve(net, 1)
    after = copy.deepcopy(net.state_dict())
    stopper.restore(net)
    for key, value in after.items():
        assert torch.equal(net.state_dict()[key], value), key
    fresh = EarlyStopping(patience=1)
    fresh.restore(net)  # nothing recorded yet
    for key, value in after.items():
        assert torch.equal(net.state_dict()[key], value), key


# --------------------------------------------------------------------------- batch norm


def _bn_parts(net: nn.Sequential) -> tuple[nn.Linear, nn.BatchNorm1d, nn.Linear]:
    lin, bn, _, out = net
    assert isinstance(lin, nn.Linear) and isinstance(bn, nn.BatchNorm1d)
    assert isinstance(out, nn.Linear)
    return lin, bn, out


def _running(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    assert bn.running_mean is not None and bn.running_var is not None
    return bn.running_mean, bn.running_var


def _bn_reference(
    net: nn.Sequential, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor
) -> torch.Tensor:
    """One hidden layer: Linear → BN with the given statistics → ReLU → Linear."""
    lin, bn, out = _bn_parts(net)
    h = (lin(x) - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    return out(torch.relu(h))


def _bn_net() -> nn.Sequential:
    spec = ModelSpec(3, 2, hidden=(6,), bn_momentum=0.3, bn_eps=1e-3)
    net = build_mlp(spec, batch_norm=True, generator=torch.Generator().manual_seed(0))
    _, bn, _ = _bn_parts(net)
    with torch.no_grad():  # non-trivial affine parameters
        bn.weight.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(1))
        bn.bias.normal_(generator=torch.Generator().manual_seed(2))
    return net


def test_batch_norm_takes_spec_settings() -> None:
    _, bn, _ = _bn_parts(_bn_net())
    assert (bn.momentum, bn.eps) == (0.3, 1e-3)


def test_batch_norm_eval_uses_running_statistics() -> None:
    net = _bn_net()
    net.train()
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        net(2.0 + 3.0 * torch.randn(32, 3, generator=gen))
    mean, var = _running(_bn_parts(net)[1])
    assert not torch.allclose(mean, torch.zeros(6))
    x = torch.randn(20, 3, generator=gen)
    net.eval()
    with torch.no_grad():
        out = net(x)
        torch.testing.assert_close(out, _bn_reference(net, x, mean, var))
        # no dependence on the rest of the batch: one row alone gives the same output
        torch.testing.assert_close(net(x[:1]), out[:1])


def test_batch_norm_train_uses_batch_statistics_and_updates_running_ones() -> None:
    net = _bn_net()
    lin, bn, _ = _bn_parts(net)
    x = 1.0 + 2.0 * torch.randn(32, 3, generator=torch.Generator().manual_seed(4))
    old_mean, old_var = (t.clone() for t in _running(bn))
    net.train()
    with torch.no_grad():
        h = lin(x)
        out = net(x)
        expected = _bn_reference(net, x, h.mean(0), h.var(0, unbiased=False))
    torch.testing.assert_close(out, expected)
    m = bn.momentum
    assert m is not None
    mean, var = _running(bn)
    torch.testing.assert_close(mean, (1 - m) * old_mean + m * h.mean(0))
    torch.testing.assert_close(var, (1 - m) * old_var + m * h.var(0, unbiased=True))
