"""The population engine: K members of one architecture trained together, vectorised.

Same contract and result semantics as :mod:`regsearch.engine.reference` (the oracle it is tested
against), but one training step serves every member of a stack at once:

- Each parameter is stacked over members and all of them live in one flat buffer (one
  ``[K, *shape]`` block per parameter), so the optimizer step is a handful of elementwise ops
  over the whole population, whatever the depth of the network.
- Activations are kept feature-major, ``[K, features, batch]``: the batched matmuls then have
  the batch as their long inner dimension, which CPU BLAS handles far better than outputs only
  1–3 wide (the moons net's last layers).
- Forward and backward are written out by hand (the backward kernels are torch's own:
  ``threshold_backward``, ``native_batch_norm_backward``, ...), so there is no autograd graph to
  build per step; per-member hyperparameters are tensors that broadcast over the stack.
- Dropout draws one uniform tensor per distinct seed and compares it with each member's rate
  using float ops only; the 1/(1 - rate) scale is folded into the next layer's weights.
- Members stop (early stopping, pruning, failure) through an active mask that zeroes their
  update and freezes their batch-norm statistics; no Python loop over members runs per step.
  Evaluation (every ``eval_every`` epochs) is the only host sync and the only per-member loop.
- Cross-validation folds are members too: each member trains on its own view of the task
  (``task.member_data(fold, seed)``). When the members of a stack share one view, its splits
  are broadcast over the stack as ``[1, features, n]``; when they differ, each split is a real
  per-member ``[K, features, n]`` tensor (K copies of the rows) and minibatch positions,
  shared by the stack, index each member's own rows.

Differences from the reference, all by design:

- Dropout masks come from one generator per (seed, hidden layer), not torch's global RNG: a
  member's masks depend on its own seed and rate only (members sharing a seed get nested masks:
  common random numbers), so they differ from the reference's masks but have the same law.
- Members are split into stacks by structure (batch norm on/off), by their number of training
  rows and, on CPU, by size (see :func:`_stacks`). ``on_epoch`` is called epoch by epoch
  across a stack's members, not member after member.
- ``duration_s`` is the stack's wall time divided evenly among its members.
- A training error that is not specific to one member (e.g. features that do not fit the
  model) fails the whole stack with the error text; the reference fails each member alike.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from regsearch.engine.batches import epoch_batches
from regsearch.engine.members import OnEpoch, Schedule, last_epoch
from regsearch.models import ModelSpec, build_mlp
from regsearch.records import (
    EpochReport,
    Hyperparams,
    Member,
    MemberResult,
    NonFiniteLoss,
    with_gaps,
)
from regsearch.regularizers import EarlyStopping
from regsearch.tasks.bundle import TaskData

__all__ = ["train"]

log = logging.getLogger(__name__)

aten = torch.ops.aten

#: Activations whose backward can be computed from the dropout-masked output itself.
_SIGN_ACTIVATIONS = ("relu", "leaky_relu", "identity")
_ACTIVATIONS = (*_SIGN_ACTIVATIONS, "tanh", "sigmoid", "elu", "gelu")
_LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default, which models.build_mlp uses
_EVAL_ELEMENTS = 1 << 24  # activation elements per evaluation chunk (64 MiB in float32)
_CPU_STACK_ELEMENTS = 1 << 20  # a CPU stack's [K, width, batch] activation (4 MiB)
_MIN_CPU_STACK = 4  # below this, per-op dispatch costs more than cache misses
_DEVICE_STACK_ELEMENTS = 1 << 28  # an accelerator stack's activation: 1 GiB in float32


def train(
    task: TaskData,
    model: ModelSpec,
    members: list[Member],
    *,
    schedule: Schedule,
    on_epoch: OnEpoch | None = None,
    device: str | torch.device = "cpu",
    exact: bool = False,
) -> list[MemberResult]:
    """Train all members together and return one result per member, in input order.

    Members with batch norm on and off are trained as separate stacks. A member whose loss
    turns NaN/inf, or whose hyperparameters are invalid, comes back ``failed`` with the error
    text; the others are unaffected.

    A member's result does not depend on the other members of the call: same initialization,
    data order and dropout masks, per-member arithmetic, up to float rounding that MKL's
    batched products vary with a member's position in the stack (about 1e-7 relative per
    step; chaotic runs such as Adam with a bias before batch norm can amplify it).
    ``exact=True`` (CPU only) makes results identical bit for bit wherever a member sits, at
    1.6-4× the step time on the moons net (products then run member by member; see
    :func:`_pitch`).

    Example:
        >>> from regsearch.engine.members import Hyperparams
        >>> members = [Member(t, 0, Hyperparams(lr=0.2, l2=l2)) for t, l2 in enumerate([0, 1e-3])]
        >>> results = train(task, ModelSpec(2, 1), members,
        ...                 schedule=Schedule(max_epochs=50))  # doctest: +SKIP
    """
    if model.activation not in _ACTIVATIONS:
        raise ValueError(f"{model.activation=} is not supported; allowed: {_ACTIVATIONS}")
    if exact and torch.device(device).type != "cpu":
        raise ValueError(f"exact=True is possible on CPU only, not on {device=}")
    task = task.to(device)
    results: list[MemberResult | None] = [None] * len(members)
    nets: dict[int, nn.Sequential] = {}
    views: dict[int, TaskData] = {}
    by_key: dict[tuple[int | None, int], TaskData] = {}
    for index, member in enumerate(members):
        try:
            nets[index] = _initial_net(model, member, schedule)
            # Members sharing a (fold, seed) get the very same tensors, so a stack of them
            # keeps the broadcast path (even if the task's bounded cache dropped the view).
            key = (member.fold, member.seed)
            if key not in by_key:
                by_key[key] = task.member_data(*key)
            views[index] = by_key[key]
        except ValueError as err:
            nets.pop(index, None)
            results[index] = _failed(member, err)
    for indices in _stacks(task, model, schedule, members, sorted(nets), device, exact, views):
        start = time.perf_counter()
        try:
            data = [views[i] for i in indices]
            group = _Group(task, model, members, indices, nets, schedule, device, exact, data)
            group_results = group.run(on_epoch)
        except (RuntimeError, ValueError) as err:
            group_results = [_failed(members[i], err) for i in indices]
        share = (time.perf_counter() - start) / len(indices)
        for index, result in zip(indices, group_results, strict=True):
            result.duration_s = share
            results[index] = result
    return [r for r in results if r is not None]


def _stacks(
    task: TaskData,
    spec: ModelSpec,
    schedule: Schedule,
    members: list[Member],
    indices: list[int],
    device: str | torch.device,
    exact: bool = False,
    views: dict[int, TaskData] | None = None,
) -> list[list[int]]:
    """Member indices per stack: one structure (batch norm on/off) and one number of training
    rows each (``views``: each member's data, default ``task``), seeds contiguous.

    Members of a stack step through the same minibatch positions, so they need the same
    number of training rows; K-fold training sizes differ by at most one row, so folds fill
    at most two stacks per structure. The number of validation rows then follows (pool minus
    training rows; a refit's is the pool), and is part of the key only as a safeguard.
    Within a stack members sort by (seed, fold): members of one view sit side by side.

    On CPU a stack is capped so one [K, width, batch] activation stays near cache size:
    measured on digits (64-100-10, full batch, 2 cores) a step cost 0.72 ms per member in
    stacks of 16 and 1.5 ms in stacks of 128; exact stacks (per-member products) hit that
    cliff at half the size. On an accelerator, stacks are capped only to bound memory.
    """
    on_cpu = torch.device(device).type == "cpu"
    budget = (_CPU_STACK_ELEMENTS >> exact) if on_cpu else _DEVICE_STACK_ELEMENTS
    groups: dict[tuple[bool, int, int], list[int]] = {}
    for i in indices:
        data = task if views is None else views[i]
        key = (members[i].hparams.batch_norm, len(data.x_train), len(data.x_val))
        groups.setdefault(key, []).append(i)
    stacks = []
    for (_, n, _), group in sorted(groups.items()):
        batch = n if schedule.batch_size is None else min(schedule.batch_size, n)
        size = max(_MIN_CPU_STACK if on_cpu else 1, budget // (max(spec.widths[1:]) * batch))
        group.sort(key=lambda i: (members[i].seed, _fold_order(members[i].fold)))
        stacks += [group[start : start + size] for start in range(0, len(group), size)]
    return stacks


def _fold_order(fold: int | None) -> int:
    return -2 if fold is None else fold  # None before REFIT (-1) before folds 0..K-1


def _initial_net(spec: ModelSpec, member: Member, schedule: Schedule) -> nn.Sequential:
    """The member's initial network, validated exactly as the reference engine validates it."""
    hp = member.hparams
    net = build_mlp(
        spec,
        dropout=hp.dropout,
        batch_norm=hp.batch_norm,
        generator=torch.Generator().manual_seed(member.seed),
    )
    _check_optimizer_args(hp, schedule)
    last_epoch(hp, schedule)
    if hp.patience:
        EarlyStopping(hp.patience, hp.min_delta, schedule.restore_best)
    return net


def _check_optimizer_args(hp: Hyperparams, schedule: Schedule) -> None:
    """torch.optim's argument checks, with its messages, so both engines fail a member alike.

    Constructing a torch optimizer just for its checks would import torch._dynamo (~2 s).
    """
    if hp.lr < 0.0:
        raise ValueError(f"Invalid learning rate: {hp.lr}")
    if schedule.optimizer == "sgd":
        if hp.momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {hp.momentum}")
        return
    if schedule.eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {schedule.eps}")
    for index, beta in enumerate(schedule.betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta}")


def _failed(member: Member, err: Exception) -> MemberResult:
    log.warning("trial %d seed %d failed: %s", member.trial, member.seed, err)
    return MemberResult(member=member, state="failed", error=f"{type(err).__name__}: {err}")


def _seed_stream(seed: int, layer: int) -> int:
    """A 64-bit seed for the dropout generator of (member seed, hidden layer) (splitmix64)."""
    z = (seed * 0x9E3779B97F4A7C15 + (layer + 1) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return (z ^ (z >> 31)) & (2**63 - 1)


# --------------------------------------------------------------------------- the stacked network


@dataclass
class _Layer:
    """One Linear (+ BatchNorm1d + activation + dropout for hidden layers) of the stack."""

    fan_in: int
    fan_out: int
    weight: int  # block index of the [K, fan_out, fan_in] weight
    bias: int | None  # block index of the [K, fan_out, 1] bias
    bn: tuple[int, int, int, int] | None = None  # blocks: gamma, beta, running mean, running var
    rate: Tensor | None = None  # [K, 1, 1] dropout rate; None when no member drops here
    scale: Tensor | None = None  # [K, 1, 1] 1/(1 - rate)
    generators: list[torch.Generator] = field(default_factory=list)  # one per distinct seed


class _Blocks:
    """Stacked tensors living in one flat buffer, one ``[K, *shape]`` block each.

    Padded blocks give each member's slice a pitch that is a multiple of 32 elements (see
    :func:`_pitch`) and come first, so every member's slice starts on a 128-byte boundary; the
    buffer's length is a multiple of 64 elements.
    """

    def __init__(self, k: int, shapes: list[tuple[int, ...]], padded: list[bool]) -> None:
        self.k, self.shapes = k, shapes
        self.sizes = [math.prod(s) for s in shapes]
        self.pitches = [_pitch(n) if pad else n for n, pad in zip(self.sizes, padded, strict=True)]
        order = sorted(range(len(shapes)), key=lambda j: not padded[j])
        self.offsets = [0] * len(shapes)
        end = 0
        for j in order:
            self.offsets[j], end = end, end + k * self.pitches[j]
        self.numel = -(-end // 64) * 64

    def views(self, flat: Tensor) -> list[Tensor]:
        return [
            flat[o : o + self.k * p].view(self.k, p)[:, :n].view(self.k, *s)
            for o, p, n, s in zip(self.offsets, self.pitches, self.sizes, self.shapes, strict=True)
        ]

    def per_element(self, values: Tensor, mask: list[bool] | None = None) -> Tensor:
        """Expand per-member ``values`` [K] to the flat layout, zero in blocks not in mask."""
        out = values.new_zeros(self.numel)
        for j, (o, p) in enumerate(zip(self.offsets, self.pitches, strict=True)):
            if mask is None or mask[j]:
                out[o : o + self.k * p] = values.repeat_interleave(p)
        return out


def _pitch(n: int) -> int:
    """Member pitch of a stacked block of ``n`` elements in exact mode: ``n`` rounded up to 32.

    Why: a member's numbers must not depend on where it sits in the stack, and without care
    they do, by a rounding: MKL's batched product rounds a member's result differently when
    its output slice is not 64-byte aligned, and torch's vectorized elementwise kernels compute
    a tail shorter than 32 floats with scalar code that rounds transcendental functions (exp,
    gelu) differently. With this pitch every member slice is aligned; where it pads, outputs
    are no longer contiguous, so torch multiplies member by member (as for a lone member) and
    iterates each member's elements as their own row. Sigmoid and softmax at the output (and
    gelu in exact mode) are computed in float64, whose rounding to float32 hides the rest.
    """
    return -(-n // 32) * 32


class _Group:
    """One stack of members that share their structure (architecture and batch norm) and
    their number of training rows; ``views`` holds each member's data (default: ``task``)."""

    def __init__(
        self,
        task: TaskData,
        spec: ModelSpec,
        members: list[Member],
        indices: list[int],
        nets: dict[int, nn.Sequential],
        schedule: Schedule,
        device: str | torch.device,
        exact: bool = False,
        views: list[TaskData] | None = None,
    ) -> None:
        self.task, self.spec, self.schedule = task, spec, schedule
        self.members = [members[i] for i in indices]
        self.indices = indices
        self.k = k = len(indices)
        self.device = device
        self.dtype = task.x_train.dtype
        self.exact = exact
        self.batch_norm = self.members[0].hparams.batch_norm
        self._build_layout([nets[i] for i in indices])
        hps = [m.hparams for m in self.members]
        self._build_optimizer(hps)
        self._build_dropout(hps)
        self.best: tuple[Tensor, Tensor] | None = None  # restore-best snapshot
        if any(hp.patience and schedule.restore_best for hp in hps):
            self.best = (self.params.clone(), self.stats.clone())
        self.active = torch.ones(k, dtype=torch.bool, device=device)
        self._set_factors()
        self.splits = _split_rows(views or [task] * k)
        x, y = self.splits["train"]
        self.n_train = x.shape[1]
        self.x_t = self._per_member(x.transpose(1, 2).contiguous())
        self.target_t = self._targets(y)

    # ------------------------------------------------------------------ construction

    def _build_layout(self, nets: list[nn.Sequential]) -> None:
        """Stack the members' initial parameters and BN statistics into flat buffers."""
        shapes: list[tuple[int, ...]] = []
        stat_shapes: list[tuple[int, ...]] = []
        self.layers: list[_Layer] = []
        self.weight_blocks: set[int] = set()
        for module in nets[0]:  # blocks in net.parameters() order
            if isinstance(module, nn.Linear):
                w = len(shapes)
                shapes.append((module.out_features, module.in_features))
                self.weight_blocks.add(w)
                b = None
                if module.bias is not None:
                    b = len(shapes)
                    shapes.append((module.out_features, 1))
                self.layers.append(_Layer(module.in_features, module.out_features, w, b))
            elif isinstance(module, nn.BatchNorm1d):
                f, g, s = module.num_features, len(shapes), len(stat_shapes)
                shapes += [(f,), (f,)]
                stat_shapes += [(f,), (f,)]
                self.layers[-1].bn = (g, g + 1, s, s + 1)
        self.shapes = shapes
        bn_blocks = {j for layer in self.layers if layer.bn for j in layer.bn[:2]}
        padded = [self.exact and j not in bn_blocks for j in range(len(shapes))]
        self.blocks = _Blocks(self.k, shapes, padded)
        self.stat_blocks = _Blocks(self.k, stat_shapes, [False] * len(stat_shapes))
        params = [list(net.parameters()) for net in nets]
        stats = [[b for name, b in net.named_buffers() if "running_" in name] for net in nets]
        self.params = self._stack(self.blocks, list(zip(*params, strict=True)))
        self.stats = self._stack(self.stat_blocks, list(zip(*stats, strict=True)))
        self.views = self.blocks.views(self.params)
        self.stat_views = self.stat_blocks.views(self.stats)

    def _build_optimizer(self, hps: list[Hyperparams]) -> None:
        """Per-member hyperparameters in the flat layout, gradient and optimizer state."""
        is_weight = [j in self.weight_blocks for j in range(len(self.shapes))]
        self.decayed = [True] * len(self.shapes) if self.schedule.decay_all else is_weight
        self.lr = torch.tensor([hp.lr for hp in hps], dtype=torch.float64, device=self.device)
        self.weight_decay = torch.tensor(
            [hp.weight_decay for hp in hps], dtype=torch.float64, device=self.device
        )
        self.l1 = self._factor([hp.l1 for hp in hps], is_weight)
        self.l2 = self._factor([hp.l2 for hp in hps], is_weight)
        sgd = self.schedule.optimizer == "sgd"
        self.momentum = self._factor([hp.momentum for hp in hps], None) if sgd else None
        zeros = torch.zeros(self.blocks.numel, dtype=self.dtype, device=self.device)
        self.grad = zeros
        self.grads = self.blocks.views(self.grad)
        self.buf = zeros.clone() if self.momentum is not None else None
        if not sgd:
            self.exp_avg, self.exp_avg_sq = zeros.clone(), zeros.clone()
        self.steps = 0

    def _stack(self, blocks: _Blocks, sources: list[tuple[Tensor, ...]]) -> Tensor:
        flat = torch.empty(blocks.numel, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            for view, tensors in zip(blocks.views(flat), sources, strict=True):
                view.copy_(torch.stack([t.detach().reshape(view.shape[1:]) for t in tensors]))
        return flat

    def _factor(self, values: list[float], mask: list[bool] | None) -> Tensor | None:
        """Per-element factor in the flat layout, or None when every member's value is 0."""
        if not any(values):
            return None
        column = torch.tensor(values, dtype=torch.float64, device=self.device)
        return self.blocks.per_element(column, mask).to(self.dtype)

    def _build_dropout(self, hps: list[Hyperparams]) -> None:
        """Per-layer rates and one generator per (distinct seed, hidden layer)."""
        seeds = [m.seed for m in self.members]
        distinct = sorted(set(seeds))
        assert seeds == sorted(seeds), "_stacks keeps each seed's members contiguous"
        self.seed_blocks = [(seeds.index(s), len(seeds) - seeds[::-1].index(s)) for s in distinct]
        for h, layer in enumerate(self.layers[:-1]):
            rates = [hp.dropout[h] if hp.dropout else 0.0 for hp in hps]
            if not any(rates):
                continue
            rate = torch.tensor(rates, dtype=self.dtype, device=self.device).view(-1, 1, 1)
            layer.rate = rate
            layer.scale = torch.where(rate < 1, 1 / (1 - rate), torch.zeros_like(rate))
            layer.generators = [
                torch.Generator(device=self.device).manual_seed(_seed_stream(s, h))
                for s in distinct
            ]

    def _targets(self, y: Tensor) -> Tensor:
        """Training targets, feature-major: [1 or K, outputs, n] (one-hot for multi-class)."""
        if self.task.n_classes > 2:
            y = F.one_hot(y, self.task.n_classes).to(self.dtype)
        return y.transpose(1, 2).contiguous()

    def _per_member(self, t: Tensor) -> Tensor:
        """A [K, ...] input with aligned member slices when ``exact``; a broadcast [1, ...]
        one as it is (every member reads the same memory)."""
        return t if t.shape[0] == 1 else self._aligned(t)

    def _set_factors(self) -> None:
        """Per-element step factors from lr, decay and the active mask (on every change)."""
        lr = torch.where(self.active, self.lr, 0.0)  # not lr * active: inf * 0 is NaN
        self.neg_lr = self.blocks.per_element(-lr).to(self.dtype)
        self.decay: Tensor | None = None
        if bool(self.weight_decay.any()):
            shrink = self.blocks.per_element(lr * self.weight_decay, self.decayed)
            self.decay = (1 - shrink).to(self.dtype)
        self.active_elements = self.blocks.per_element(self.active.to(self.dtype)) > 0
        self.active_stats = self.stat_blocks.per_element(self.active.to(self.dtype)) > 0
        self.frozen_stats = self.stats.clone()
        self.all_active = bool(self.active.all())

    # ------------------------------------------------------------------ one training step

    def step(self, idx: Tensor | None) -> None:
        """One minibatch (idx: row positions, each member's own rows) or full-batch (None)
        step for every member."""
        x_t, target = self.x_t, self.target_t
        if idx is not None:
            x_t = self._per_member(x_t.index_select(2, idx))
            target = target.index_select(2, idx)
        out, saved = self._forward_train(x_t)
        self._backward(out, target, saved)
        self._update()

    def _forward_train(self, x_t: Tensor) -> tuple[Tensor, list[_Saved]]:
        """Training-mode forward pass; returns the output and what the backward pass needs.

        Dropout keeps units with ``d = a + a·dropped`` (dropped ∈ {-1, 0}) and folds the
        1/(1 - rate) scale into the next layer's weights, a [K, out, in] tensor instead of a
        [K, features, batch] one.
        """
        act = self.spec.activation
        a = x_t.expand(self.k, -1, -1)  # a broadcast view, or x_t itself when per member
        saved: list[_Saved] = []
        scale: Tensor | None = None  # dropout scale of the layer input
        for layer in self.layers:
            w = self.views[layer.weight]
            if scale is not None:
                w = torch.mul(w, scale, out=self._empty(layer.fan_out, layer.fan_in))
            z = self._linear(layer, a, self.views, w)
            record = _Saved(a, w, scale)
            saved.append(record)
            if layer is self.layers[-1]:
                return z, saved
            y = z
            if layer.bn is not None:
                y, record.bn = self._batch_norm_train(layer, z)
                record.z = z
            dropped = self._dropped(layer, z.shape[2])
            out = self._activate(y)
            if act in _SIGN_ACTIVATIONS:  # backward from the masked output itself
                if dropped is not None:
                    out.addcmul_(out, dropped)
                record.keep = out
            else:
                record.keep = y if act == "gelu" else out
                if dropped is not None:
                    out = torch.addcmul(out, out, dropped, out=self._empty(*out.shape[1:]))
            if act != "relu":
                record.dropped = dropped
            a, scale = out, layer.scale
        raise AssertionError("unreachable: the last layer returns")

    def _linear(self, layer: _Layer, a: Tensor, views: list[Tensor], w: Tensor) -> Tensor:
        """``w @ a + bias``, one [K, fan_out, n] output buffer for all members."""
        out = self._empty(layer.fan_out, a.shape[2])
        if layer.bias is None:
            return torch.bmm(w, a, out=out)
        return torch.baddbmm(views[layer.bias], w, a, out=out)

    def _empty(self, rows: int, cols: int) -> Tensor:
        """An uninitialized [K, rows, cols] tensor: contiguous, or with aligned member slices
        when ``exact`` (see :func:`_pitch`)."""
        pitch = _pitch(rows * cols) if self.exact else rows * cols
        flat = torch.empty(self.k * pitch, dtype=self.dtype, device=self.device)
        return flat.view(self.k, pitch)[:, : rows * cols].view(self.k, rows, cols)

    def _aligned(self, t: Tensor) -> Tensor:
        """``t`` itself, or when ``exact`` a copy with aligned member slices."""
        return self._empty(*t.shape[1:]).copy_(t) if self.exact else t

    def _activate(self, y: Tensor) -> Tensor:
        """nn's activation; in place for relu, leaky_relu and identity (y is not needed again),
        else into a new aligned buffer."""
        name = self.spec.activation
        if name == "relu":
            return y.relu_()
        if name == "leaky_relu":
            return F.leaky_relu_(y, _LEAKY_SLOPE)
        if name == "identity":
            return y
        out = self._empty(*y.shape[1:])
        if name == "tanh":
            return torch.tanh(y, out=out)
        if name == "sigmoid":
            return torch.sigmoid(y, out=out)
        if name == "elu":
            return aten.elu.out(y, 1.0, 1, 1, out=out)
        if self.exact:  # torch's gelu rounds by position in the tensor; float64 hides that
            return out.copy_(F.gelu(y.double()))
        return aten.gelu.out(y, out=out)

    def _batch_norm_train(self, layer: _Layer, z: Tensor) -> tuple[Tensor, tuple]:
        assert layer.bn is not None
        g, b, rm, rv = layer.bn
        k, f, n = z.shape
        gamma, beta = self.views[g].view(-1), self.views[b].view(-1)
        mean, var = self.stat_views[rm].view(-1), self.stat_views[rv].view(-1)
        channels = z.reshape(1, k * f, n)  # each (member, feature) is one BN channel
        y, save_mean, save_invstd = torch.native_batch_norm(
            channels, gamma, beta, mean, var, True, self.spec.bn_momentum, self.spec.bn_eps
        )
        return self._aligned(y.view(k, f, n)), (channels, gamma, mean, var, save_mean, save_invstd)

    def _dropped(self, layer: _Layer, n: int) -> Tensor | None:
        """[K, F, n] dropout indicator, -1 dropped / 0 kept, from each member's seed stream.

        One uniform draw per distinct seed serves every member with that seed, each compared
        with its own rate (common random numbers). floor(u - rate) is -1 exactly when
        u < rate (float subtraction keeps the sign): float ops only, as bool tensors are
        several times slower on CPU.
        """
        if layer.rate is None:
            return None
        blocks = self.seed_blocks
        u = torch.empty(len(blocks), layer.fan_out, n, dtype=self.dtype, device=self.device)
        for row, gen in zip(u, layer.generators, strict=True):
            row.uniform_(generator=gen)
        if len(blocks) == 1 or len(blocks) == self.k:
            dropped = torch.sub(u, layer.rate)
        else:
            dropped = torch.empty(self.k, layer.fan_out, n, dtype=self.dtype, device=self.device)
            for row, (start, end) in zip(u, blocks, strict=True):
                torch.sub(row, layer.rate[start:end], out=dropped[start:end])
        return dropped.floor_()

    def _backward(self, out: Tensor, target: Tensor, saved: list[_Saved]) -> None:
        """Gradients of each member's mean loss into self.grads (penalties come in _update)."""
        n = out.shape[2]
        kind = self.task.n_classes
        # sigmoid and softmax in float64: rounded back to float32 they no longer depend on
        # which of torch's code paths (vector or scalar) computed them.
        if kind == 2:
            g = out.copy_(torch.sigmoid(out.double()).sub_(target).mul_(1.0 / (n * out.shape[1])))
        elif kind > 2:
            g = out.copy_(torch.softmax(out.double(), dim=1).sub_(target).mul_(1.0 / n))
        else:
            g = out.sub_(target).mul_(2.0 / (n * out.shape[1]))
        act = self.spec.activation
        for i in range(len(self.layers) - 1, -1, -1):
            layer, record = self.layers[i], saved[i]
            grad_w = self.grads[layer.weight]
            torch.bmm(g, record.inputs.transpose(1, 2), out=grad_w)
            if record.scale is not None:
                grad_w.mul_(record.scale)
            if layer.bias is not None:
                torch.sum(g, dim=2, keepdim=True, out=self.grads[layer.bias])
            if i == 0:
                return
            g = torch.bmm(record.weight.transpose(1, 2), g, out=self._empty(layer.fan_in, n))
            prev = saved[i - 1]
            if prev.dropped is not None:
                g.addcmul_(g, prev.dropped)
            assert prev.keep is not None
            g = _activation_grad(act, g, prev.keep, self.exact)
            if prev.bn is not None and prev.z is not None:
                g = self._batch_norm_backward(self.layers[i - 1], g, prev.z, prev.bn)

    def _batch_norm_backward(self, layer: _Layer, g: Tensor, z: Tensor, saved: tuple) -> Tensor:
        assert layer.bn is not None
        k, f, n = z.shape
        channels, gamma, mean, var, save_mean, save_invstd = saved
        gz, ggamma, gbeta = aten.native_batch_norm_backward(
            g.reshape(1, k * f, n), channels, gamma, mean, var, save_mean, save_invstd,
            True, self.spec.bn_eps, [True, True, True],
        )  # fmt: skip
        self.grads[layer.bn[0]].copy_(ggamma.view(k, f))
        self.grads[layer.bn[1]].copy_(gbeta.view(k, f))
        return self._aligned(gz.view(k, f, n))

    @torch.no_grad()
    def _update(self) -> None:
        """Penalty gradients, decoupled decay, then torch.optim's SGD/Adam formulas."""
        p, g = self.params, self.grad
        if self.l2 is not None:
            g.addcmul_(self.l2, p)
        if self.l1 is not None:
            g.addcmul_(self.l1, p.sign())
        if self.decay is not None:
            p.mul_(self.decay)
        if self.schedule.optimizer == "sgd":
            update = g
            if self.buf is not None and self.momentum is not None:
                update = self.buf.mul_(self.momentum).add_(g)
            if not self.all_active:
                update = torch.where(self.active_elements, update, 0.0)
            p.addcmul_(self.neg_lr, update)
        else:
            self._adam(p, g)
        if not self.all_active and self.batch_norm:
            torch.where(self.active_stats, self.stats, self.frozen_stats, out=self.stats)

    def _adam(self, p: Tensor, g: Tensor) -> None:
        beta1, beta2 = self.schedule.betas
        self.steps += 1
        bias1 = 1 - beta1**self.steps
        bias2_sqrt = math.sqrt(1 - beta2**self.steps)
        self.exp_avg.lerp_(g, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = self.exp_avg_sq.sqrt().div_(bias2_sqrt).add_(self.schedule.eps)
        update = torch.div(self.exp_avg, denom, out=denom)
        if not self.all_active:
            update = torch.where(self.active_elements, update, 0.0)
        p.addcmul_(self.neg_lr, update, value=1 / bias1)

    # ------------------------------------------------------------------ evaluation

    def _forward_eval(self, x_t: Tensor, views: list[Tensor], stat_views: list[Tensor]) -> Tensor:
        """Evaluation mode: no dropout, batch norm from running statistics."""
        k, n = self.k, x_t.shape[2]
        a = x_t.expand(k, -1, -1)
        for layer in self.layers[:-1]:
            z = self._linear(layer, a, views, views[layer.weight])
            if layer.bn is not None:
                g, b, rm, rv = layer.bn
                f = layer.fan_out
                z = F.batch_norm(
                    z.reshape(1, k * f, n), stat_views[rm].view(-1), stat_views[rv].view(-1),
                    views[g].view(-1), views[b].view(-1), training=False, eps=self.spec.bn_eps,
                ).view(k, f, n)  # fmt: skip
                z = self._aligned(z)
            a = self._activate(z)
        last = self.layers[-1]
        return self._linear(last, a, views, views[last.weight])

    def _split_metrics(
        self, split: str, views: list[Tensor], stat_views: list[Tensor]
    ) -> tuple[Tensor, Tensor | None]:
        """Per-member (mean loss, accuracy or None) on a whole split, in row chunks.

        Losses are computed and summed in float64, then rounded to float32 like the
        reference's: the result does not depend on torch's reduction order or code path.
        """
        x, y = self.splits[split]  # [1 or K, n, ...]: shared or per-member rows
        n_classes = self.task.n_classes
        n = x.shape[1]
        rows = max(1, _EVAL_ELEMENTS // (self.k * max(self.spec.widths)))
        loss = torch.zeros(self.k, dtype=torch.float64, device=self.device)
        correct = torch.zeros_like(loss)
        for start in range(0, n, rows):
            xc, yc = x[:, start : start + rows], y[:, start : start + rows]
            x_t = self._per_member(xc.transpose(1, 2).contiguous())
            out = self._forward_eval(x_t, views, stat_views).double()
            if n_classes > 2:
                target = yc.expand(self.k, -1)
                loss += F.cross_entropy(out, target, reduction="none").sum(1)
                correct += (out.argmax(dim=1) == target).sum(1)
                continue
            target = yc.transpose(1, 2).double().expand_as(out)
            if n_classes == 2:
                bce = F.binary_cross_entropy_with_logits(out, target, reduction="none")
                loss += bce.sum((1, 2))
                correct += ((out > 0).double() == target).sum((1, 2))
            else:
                loss += (out - target).square_().sum((1, 2))
        per_row = n if n_classes > 2 else n * self.layers[-1].fan_out
        acc = (correct / per_row).to(self.dtype) if self.task.is_classification else None
        return (loss / per_row).to(self.dtype), acc

    def _metrics(
        self, splits: tuple[str, ...], params: Tensor, stats: Tensor
    ) -> dict[str, list[float]]:
        """``{split_loss, split_acc}`` per member, fetched with one host sync."""
        views, stat_views = self.blocks.views(params), self.stat_blocks.views(stats)
        names, rows = [], []
        for split in splits:
            loss, acc = self._split_metrics(split, views, stat_views)
            names.append(f"{split}_loss")
            rows.append(loss)
            if acc is not None:
                names.append(f"{split}_acc")
                rows.append(acc)
        return dict(zip(names, torch.stack(rows).tolist(), strict=True))

    def _weight_stats(self, params: Tensor) -> tuple[list[float], list[float]]:
        """Per-member L2 norm and share of |w| < 1e-3 over all weight matrices."""
        views = self.blocks.views(params)
        weights = [views[j].reshape(self.k, -1) for j in sorted(self.weight_blocks)]
        flat = torch.cat(weights, dim=1)
        norm = flat.square().sum(1).sqrt()
        sparsity = (flat.abs() < 1e-3).to(self.dtype).mean(1)
        both = torch.stack([norm, sparsity]).tolist()
        return both[0], both[1]

    # ------------------------------------------------------------------ the training loop

    def run(self, on_epoch: OnEpoch | None) -> list[MemberResult]:
        """Train the stack for schedule.max_epochs (or until no member is active)."""
        schedule = self.schedule
        tracks = [
            _Track(
                i,
                MemberResult(member=m, state="complete"),
                _stopper(m, schedule),
                last=last_epoch(m.hparams, schedule),
            )
            for i, m in zip(self.indices, self.members, strict=True)
        ]
        order_gen = torch.Generator().manual_seed(schedule.order_seed)
        epoch = 0
        with torch.no_grad():
            for epoch in range(1, schedule.max_epochs + 1):
                for idx in epoch_batches(self.n_train, schedule.batch_size, order_gen, self.device):
                    self.step(idx)
                due = [
                    t.active and (epoch % schedule.eval_every == 0 or epoch == t.last)
                    for t in tracks
                ]
                if not any(due):
                    continue
                self._evaluate(epoch, tracks, due, on_epoch)
                if not any(t.active for t in tracks):
                    break
            for t in tracks:
                if t.active:
                    t.result.stopped_epoch = epoch
            self._finish(tracks)
        return [t.result for t in tracks]

    def _evaluate(
        self, epoch: int, tracks: list[_Track], due: list[bool], on_epoch: OnEpoch | None
    ) -> None:
        """Record one evaluation per ``due`` member (active, at an evaluation epoch of its
        own); stop, prune or fail members, and stop those at their last epoch."""
        values = self._metrics(("train", "val"), self.params, self.stats)
        improved = [False] * self.k
        for k, t in enumerate(tracks):
            if not due[k]:
                continue
            train_loss, val_loss = values["train_loss"][k], values["val_loss"][k]
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                msg = f"loss is not finite at epoch {epoch} (train {train_loss}, val {val_loss})"
                t.fail(NonFiniteLoss(msg))
                continue
            report = EpochReport(
                epoch,
                train_loss,
                val_loss,
                values["train_acc"][k] if "train_acc" in values else None,
                values["val_acc"][k] if "val_acc" in values else None,
            )
            t.result.record(report)
            if val_loss < t.best_val:
                t.best_val, t.result.best_epoch = val_loss, epoch
            if t.stopper is not None:
                stop = t.stopper.update(val_loss, epoch)
                improved[k] = t.stopper.best_epoch == epoch
                if stop:
                    t.stop(epoch)
                    continue
            if on_epoch is not None and t.prune(on_epoch, report):
                t.stop(epoch, "pruned")
            elif t.active and epoch == t.last:  # its own max_epochs (the reference's loop end)
                t.stop(epoch)
        if self.best is not None and any(improved):
            self._snapshot(improved)
        active = [t.active for t in tracks]
        if active != self.active.tolist():
            self.active = torch.tensor(active, device=self.device)
            self._set_factors()

    def _snapshot(self, improved: list[bool]) -> None:
        """Keep the current weights and BN statistics of the members that improved."""
        assert self.best is not None
        flags = torch.tensor(improved, dtype=self.dtype, device=self.device)
        for current, best, blocks in zip(
            (self.params, self.stats), self.best, (self.blocks, self.stat_blocks), strict=True
        ):
            torch.where(blocks.per_element(flags) > 0, current, best, out=best)

    def _finish(self, tracks: list[_Track]) -> None:
        """Final metrics of the final weights (restored best where early stopping restores)."""
        params, stats = self.params, self.stats
        restore = [t.restores for t in tracks]
        if self.best is not None and any(restore):
            flags = torch.tensor(restore, dtype=self.dtype, device=self.device)
            params = torch.where(self.blocks.per_element(flags) > 0, self.best[0], params)
            stats = torch.where(self.stat_blocks.per_element(flags) > 0, self.best[1], stats)
        values = self._metrics(("train", "val", "test"), params, stats)
        norms, sparsity = self._weight_stats(params)
        for k, t in enumerate(tracks):
            if t.result.state == "failed":
                continue
            if t.stopper is not None:
                t.result.best_epoch = t.stopper.best_epoch
            final = {key: column[k] for key, column in values.items()}
            if not all(math.isfinite(v) for v in final.values()):
                t.fail(NonFiniteLoss(f"final metrics are not finite: {final}"))
                continue
            t.result.final = with_gaps(final)
            t.result.weight_norm, t.result.sparsity = norms[k], sparsity[k]


@dataclass
class _Saved:
    """What the backward pass needs from one layer's forward pass."""

    inputs: Tensor  # the layer's input (dropout-masked, unscaled)
    weight: Tensor  # the weight it was multiplied with (input dropout scale folded in)
    scale: Tensor | None  # [K, 1, 1] dropout scale of the input, None without dropout
    z: Tensor | None = None  # Linear output before batch norm
    bn: tuple | None = None  # batch-norm tensors for native_batch_norm_backward
    keep: Tensor | None = None  # activation output (input for gelu) for its backward
    dropped: Tensor | None = None  # -1/0 dropout indicator, when the backward needs it


@dataclass
class _Track:
    """Per-member bookkeeping between evaluations (host side)."""

    index: int  # position in the caller's member list (what on_epoch receives)
    result: MemberResult
    stopper: EarlyStopping | None
    last: int  # last epoch to train (schedule.max_epochs, or the member's own cap)
    best_val: float = math.inf
    active: bool = True

    @property
    def restores(self) -> bool:
        s = self.stopper
        return s is not None and s.restore_best and s.best_epoch >= 0

    def stop(self, epoch: int, state: str = "complete") -> None:
        self.active = False
        self.result.state = state
        self.result.stopped_epoch = epoch

    def fail(self, err: Exception) -> None:
        self.result = _failed(self.result.member, err)
        self.active = False

    def prune(self, on_epoch: OnEpoch, report: EpochReport) -> bool:
        """Ask the caller; an error it raises fails this member alone, as in the reference."""
        try:
            return bool(on_epoch(self.index, report))
        except (RuntimeError, ValueError) as err:
            self.fail(err)
            return False


def _split_rows(views: list[TaskData]) -> dict[str, tuple[Tensor, Tensor]]:
    """Each split's (x, y) with a leading member axis: ``[1, n, ...]`` (a view, no copy) when
    every member has the same tensor, else the members' rows stacked, ``[K, n, ...]``."""
    out = {}
    for split in ("train", "val", "test"):
        pair = []
        for name in (f"x_{split}", f"y_{split}"):
            tensors = [getattr(v, name) for v in views]
            same = all(t is tensors[0] for t in tensors)
            pair.append(tensors[0].unsqueeze(0) if same else torch.stack(tensors))
        out[split] = (pair[0], pair[1])
    return out


def _stopper(member: Member, schedule: Schedule) -> EarlyStopping | None:
    hp = member.hparams
    return EarlyStopping(hp.patience, hp.min_delta, schedule.restore_best) if hp.patience else None


# --------------------------------------------------------------------------- activations


def _activation_grad(name: str, g: Tensor, keep: Tensor, exact: bool) -> Tensor:
    """Gradient through the activation, in place in ``g``; ``keep`` is the activation's output
    (its input for gelu).

    For relu the dropout-masked output has the sign of the unmasked one wherever the mask is
    non-zero, and is zero where the gradient must be zero; for the others ``g`` is masked
    first.
    """
    if name == "relu":
        return aten.threshold_backward.grad_input(g, keep, 0.0, grad_input=g)
    if name == "leaky_relu":
        return aten.leaky_relu_backward.grad_input(g, keep, _LEAKY_SLOPE, True, grad_input=g)
    if name == "identity":
        return g
    if name == "tanh":
        return aten.tanh_backward.grad_input(g, keep, grad_input=g)
    if name == "sigmoid":
        return aten.sigmoid_backward.grad_input(g, keep, grad_input=g)
    if name == "elu":
        return aten.elu_backward.grad_input(g, 1.0, 1, 1, True, keep, grad_input=g)
    if exact:  # float64: see _Group._activate
        return g.copy_(aten.gelu_backward(g.double(), keep.double()))
    return aten.gelu_backward.grad_input(g, keep, grad_input=g)
