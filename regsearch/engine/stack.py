"""One stack of the population engine: K members of one structure trained as one computation.

Used by :mod:`regsearch.engine.population`, which decides which members share a stack, when
they are evaluated and when a stack is rebuilt; this module holds the stacked tensors and the
arithmetic (see the population module's docstring for the design and its measurements).

- Parameters, gradients and optimizer state are flat buffers of one ``[K, *shape]`` block
  per parameter (:mod:`regsearch.engine.layout`).
- Activations are kept feature-major, ``[K, features, batch]``: the batched matmuls then have
  the batch as their long inner dimension, which CPU BLAS handles far better than outputs only
  1–3 wide (the moons net's last layers).
- Forward and backward are written out by hand (the backward kernels are torch's own:
  ``threshold_backward``, ``native_batch_norm_backward``, ...), so there is no autograd graph to
  build per step; per-member hyperparameters are tensors that broadcast over the stack.
- Dropout draws one uniform tensor per random stream (a seed, and the epoch its members
  joined) and compares it with each member's rate using float ops only; the 1/(1 - rate)
  scale is folded into the next layer's weights.

Activation kernels: :mod:`~regsearch.engine.kernels`; optimizer step:
:mod:`~regsearch.engine.update`; random streams: :mod:`~regsearch.engine.streams`.

A stack is rebuilt (:meth:`Stack.rebuilt`) to drop members that stopped and to take in new
ones: every member's state (parameters, optimizer state, batch-norm statistics, saved-best
weights, random streams, its own epoch and step count) moves with it, so a member's numbers
do not depend on rebuilds, nor on which members share its stack (bit for bit in exact mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from regsearch.engine.batches import epoch_batches
from regsearch.engine.kernels import GRAD, IMPLEMENTED, IN_PLACE, INTO
from regsearch.engine.layout import (
    Blocks,
    Layer,
    Saved,
    columns,
    pitch,
    split_rows,
    structure,
)
from regsearch.engine.members import Schedule
from regsearch.engine.streams import dropout_streams, order_streams
from regsearch.engine.update import adam_step, sgd_step
from regsearch.models import ModelSpec
from regsearch.records import Hyperparams, Member
from regsearch.regularizers import SPARSE_BELOW
from regsearch.tasks.bundle import TaskData

__all__ = ["IMPLEMENTED", "Entry", "Shared", "Stack"]

aten = torch.ops.aten

_EVAL_ELEMENTS = 1 << 24  # activation elements per evaluation chunk (64 MiB in float32)


@dataclass(frozen=True)
class Shared:
    """What every stack of one engine call shares."""

    task: TaskData  # already on ``device``
    spec: ModelSpec
    schedule: Schedule
    device: str | torch.device
    exact: bool = False  # per-member products and aligned slices (see pitch)


@dataclass(frozen=True)
class Entry:
    """A member's place in a stack: who it is, its data, and when it joined."""

    member: Member
    view: TaskData  # the member's own data (task.member_data(fold, seed))
    born: int = 0  # the stack's epoch count when the member joined (its own epoch 0)
    start_step: int = 0  # the stack's optimizer step count then (Adam's bias correction)

    @property
    def stream(self) -> tuple[int, int]:
        """Its dropout stream: members that joined together with one seed share masks."""
        return self.born, self.member.seed


# --------------------------------------------------------------------------- the stack


class Stack:
    """Members of one structure (batch norm on/off) and one number of training rows.

    Build a fresh stack with ``Stack(shared, entries, nets)`` (all members new, ``nets`` their
    initial networks in entry order) and a changed one with :meth:`rebuilt`. The members of
    each dropout stream (:attr:`Entry.stream`) must sit side by side.
    """

    def __init__(
        self,
        shared: Shared,
        entries: list[Entry],
        nets: list[nn.Sequential],
        old: Stack | None = None,
        keep: Sequence[int] = (),
    ) -> None:
        self.shared = shared
        self.task, self.spec, self.schedule = shared.task, shared.spec, shared.schedule
        self.device, self.exact = shared.device, shared.exact
        self.dtype = shared.task.x_train.dtype
        self.entries = entries
        self.members = [e.member for e in entries]
        self.k = k = len(entries)
        assert k == len(keep) + len(nets), "one initial network per new member"
        self.batch_norm = self.members[0].hparams.batch_norm
        self.epoch: int = old.epoch if old is not None else 0  # epochs this stack has trained
        self.steps: int = old.steps if old is not None else 0  # optimizer steps it has taken
        self.layers, self.shapes, stat_shapes = structure(self.spec, self.batch_norm)
        self.weight_blocks = {layer.weight for layer in self.layers}
        bn_blocks = {j for layer in self.layers if layer.bn for j in layer.bn[:2]}
        padded = [self.exact and j not in bn_blocks for j in range(len(self.shapes))]
        self.blocks = Blocks(k, self.shapes, padded)
        self.stat_blocks = Blocks(k, stat_shapes, [False] * len(stat_shapes))
        hps = [m.hparams for m in self.members]
        self._build_factors(hps)
        self._build_state(nets, old, keep)
        blocks, of_member, generators = dropout_streams(
            entries, self.layers, hps, old.generators if old else {}, self.dtype, self.device
        )
        self.stream_blocks, self.stream_of_member = blocks, of_member
        self.generators: dict[tuple[int, int, int], torch.Generator] = generators
        orders, self.generation = order_streams(
            entries, old.orders if old else {}, self.schedule.order_seed, self.device
        )
        self.orders: dict[int, torch.Generator] = orders
        self.active = torch.ones(k, dtype=torch.bool, device=self.device)
        self._set_factors()
        self.splits = split_rows([e.view for e in entries])
        x, y = self.splits["train"]
        self.n_train = x.shape[1]
        self.x_t = self._per_member(x.transpose(1, 2).contiguous())
        self.target_t = self._targets(y)

    def rebuilt(self, keep: Sequence[int], new: list[Entry], nets: list[nn.Sequential]) -> Stack:
        """The members at positions ``keep`` (in that order) with all their state, then
        ``new`` members (initial networks ``nets``) joining at this stack's epoch."""
        joined = [Entry(e.member, e.view, self.epoch, self.steps) for e in new]
        entries = [self.entries[i] for i in keep] + joined
        return Stack(self.shared, entries, nets, self, keep)

    # ------------------------------------------------------------------ construction

    def _build_factors(self, hps: list[Hyperparams]) -> None:
        """Per-member hyperparameters in the flat layout."""
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
        self.start_steps = [e.start_step for e in self.entries]
        self.member_of_element: Tensor | None = None  # for per-member Adam step counts
        if len(set(self.start_steps)) > 1:
            index = torch.arange(self.k, dtype=torch.float64, device=self.device)
            self.member_of_element = self.blocks.per_element(index).long()

    def _build_state(
        self, nets: list[nn.Sequential], old: Stack | None, keep: Sequence[int]
    ) -> None:
        """Parameters, BN statistics, optimizer state and saved-best weights: rows of kept
        members from ``old``, then rows of new members from their networks (zero optimizer
        state, best = initial)."""
        fresh = Blocks(len(nets), self.blocks.shapes, self.blocks.padded)
        fresh_stats = Blocks(len(nets), self.stat_blocks.shapes, self.stat_blocks.padded)
        params = [list(net.parameters()) for net in nets]
        stats = [[b for name, b in net.named_buffers() if "running_" in name] for net in nets]
        init = fresh.pack(params, self.dtype, self.device)
        init_stats = fresh_stats.pack(stats, self.dtype, self.device)
        zeros = torch.zeros(fresh.numel, dtype=self.dtype, device=self.device)
        at = torch.tensor(list(keep), dtype=torch.long, device=self.device)
        carried = old.state() if old is not None else {}

        def rows(name: str, new: Tensor, fallback: str | None = None) -> Tensor:
            stat = "stats" in name
            parts: list[tuple[Blocks, Tensor, Tensor | None]] = []
            if len(keep):
                assert old is not None
                # Members without a use for this buffer (e.g. no momentum) get a stand-in.
                source = carried.get(name)
                if source is None:
                    source = carried[fallback] if fallback else torch.zeros_like(old.params)
                parts.append((old.stat_blocks if stat else old.blocks, source, at))
            if nets:
                parts.append((fresh_stats if stat else fresh, new, None))
            return (self.stat_blocks if stat else self.blocks).gather(parts)

        self.params: Tensor = rows("params", init)
        self.stats: Tensor = rows("stats", init_stats)
        self.buf = rows("buf", zeros) if self.momentum is not None else None
        if self.schedule.optimizer != "sgd":
            self.exp_avg, self.exp_avg_sq = rows("exp_avg", zeros), rows("exp_avg_sq", zeros)
        self.best: tuple[Tensor, Tensor] | None = None  # restore-best snapshot
        if any(m.hparams.patience and self.schedule.restore_best for m in self.members):
            self.best = (
                rows("best_params", init, "params"),
                rows("best_stats", init_stats, "stats"),
            )
        self.grad = torch.zeros(self.blocks.numel, dtype=self.dtype, device=self.device)
        self.grads = self.blocks.views(self.grad)
        self.views = self.blocks.views(self.params)
        self.stat_views = self.stat_blocks.views(self.stats)

    def state(self) -> dict[str, Tensor]:
        """Every per-member buffer by name (what a rebuild carries over)."""
        out = {"params": self.params, "stats": self.stats}
        if self.buf is not None:
            out["buf"] = self.buf
        if self.schedule.optimizer != "sgd":
            out.update(exp_avg=self.exp_avg, exp_avg_sq=self.exp_avg_sq)
        if self.best is not None:
            out.update(best_params=self.best[0], best_stats=self.best[1])
        return out

    def _factor(self, values: list[float], mask: list[bool] | None) -> Tensor | None:
        """Per-element factor in the flat layout, or None when every member's value is 0."""
        if not any(values):
            return None
        column = torch.tensor(values, dtype=torch.float64, device=self.device)
        return self.blocks.per_element(column, mask).to(self.dtype)

    def _targets(self, y: Tensor) -> Tensor:
        """Training targets, feature-major: [1 or K, outputs, n] (one-hot for multi-class)."""
        if self.task.n_classes > 2:
            y = F.one_hot(y, self.task.n_classes).to(self.dtype)
        return y.transpose(1, 2).contiguous()

    def _per_member(self, t: Tensor) -> Tensor:
        """A [K, ...] input with aligned member slices when ``exact``; a broadcast [1, ...]
        one as it is (every member reads the same memory)."""
        return t if t.shape[0] == 1 else self._aligned(t)

    def set_active(self, active: list[bool]) -> None:
        """Which members train on (the others' parameters and statistics stay frozen)."""
        if active != self.active.tolist():
            self.active = torch.tensor(active, device=self.device)
            self._set_factors()

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

    # ------------------------------------------------------------------ one training epoch

    def train_epoch(self) -> None:
        """One epoch of minibatch (or full-batch) steps for every member of the stack."""
        self.epoch += 1
        size = self.schedule.batch_size
        orders = [
            list(epoch_batches(self.n_train, size, gen, self.device))
            for gen in self.orders.values()
        ]
        for j, idx in enumerate(orders[0]):
            if idx is not None and self.generation is not None:
                # Generations are at different epochs of their own: each its own order.
                own = [order[j] for order in orders]
                idx = torch.stack([i for i in own if i is not None]).index_select(
                    0, self.generation
                )
            self.step(idx)

    def step(self, idx: Tensor | None) -> None:
        """One step for every member: full batch (None), the row positions ``idx`` [b] of
        each member's own rows, or per member [K, b]."""
        x_t, target = self.x_t, self.target_t
        if idx is not None and idx.dim() == 1:
            x_t = self._per_member(x_t.index_select(2, idx))
            target = target.index_select(2, idx)
        elif idx is not None:
            x_t = self._per_member(columns(x_t, idx))
            target = columns(target, idx)
        out, saved = self._forward_train(x_t)
        self._backward(out, target, saved)
        self._update()

    def _forward_train(self, x_t: Tensor) -> tuple[Tensor, list[Saved]]:
        """Training-mode forward pass; returns the output and what the backward pass needs.

        Dropout keeps units with ``d = a + a·dropped`` (dropped ∈ {-1, 0}) and folds the
        1/(1 - rate) scale into the next layer's weights, a [K, out, in] tensor instead of a
        [K, features, batch] one.
        """
        act = self.spec.activation
        a = x_t.expand(self.k, -1, -1)  # a broadcast view, or x_t itself when per member
        saved: list[Saved] = []
        scale: Tensor | None = None  # dropout scale of the layer input
        for layer in self.layers:
            w = self.views[layer.weight]
            if scale is not None:
                w = torch.mul(w, scale, out=self._empty(layer.fan_out, layer.fan_in))
            z = self._linear(layer, a, self.views, w)
            record = Saved(a, w, scale)
            saved.append(record)
            if layer is self.layers[-1]:
                return z, saved
            y = z
            if layer.bn is not None:
                y, record.bn = self._batch_norm_train(layer, z)
                record.z = z
            dropped = self._dropped(layer, z.shape[2])
            out = self._activate(y)
            if act in IN_PLACE:  # backward from the masked output itself
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

    def _linear(self, layer: Layer, a: Tensor, views: list[Tensor], w: Tensor) -> Tensor:
        """``w @ a + bias``, one [K, fan_out, n] output buffer for all members."""
        out = self._empty(layer.fan_out, a.shape[2])
        if layer.bias is None:
            return torch.bmm(w, a, out=out)
        return torch.baddbmm(views[layer.bias], w, a, out=out)

    def _empty(self, rows: int, cols: int) -> Tensor:
        """An uninitialized [K, rows, cols] tensor: contiguous, or with aligned member slices
        when ``exact`` (see :func:`pitch`)."""
        width = pitch(rows * cols) if self.exact else rows * cols
        flat = torch.empty(self.k * width, dtype=self.dtype, device=self.device)
        return flat.view(self.k, width)[:, : rows * cols].view(self.k, rows, cols)

    def _aligned(self, t: Tensor) -> Tensor:
        """``t`` itself, or when ``exact`` a copy with aligned member slices."""
        return self._empty(*t.shape[1:]).copy_(t) if self.exact else t

    def _activate(self, y: Tensor) -> Tensor:
        """nn's activation; in place where the backward needs only the output (y is not
        needed again), else into a new aligned buffer."""
        name = self.spec.activation
        in_place = IN_PLACE.get(name)
        if in_place is not None:
            return in_place(y)
        return INTO[name](y, self._empty(*y.shape[1:]), self.exact)

    def _batch_norm_train(self, layer: Layer, z: Tensor) -> tuple[Tensor, tuple]:
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

    def _dropped(self, layer: Layer, n: int) -> Tensor | None:
        """[K, F, n] dropout indicator, -1 dropped / 0 kept, from each member's seed stream.

        One uniform draw per distinct seed serves every member with that seed, each compared
        with its own rate (common random numbers). floor(u - rate) is -1 exactly when
        u < rate (float subtraction keeps the sign): float ops only, as bool tensors are
        several times slower on CPU.
        """
        if layer.rate is None:
            return None
        blocks = self.stream_blocks
        u = torch.empty(len(blocks), layer.fan_out, n, dtype=self.dtype, device=self.device)
        for row, gen in zip(u, layer.generators, strict=True):
            row.uniform_(generator=gen)
        if len(blocks) == 1 or len(blocks) == self.k:
            dropped = torch.sub(u, layer.rate)
        else:  # each member's stream's draw: one gather, not one subtraction per stream
            dropped = u.index_select(0, self.stream_of_member).sub_(layer.rate)
        return dropped.floor_()

    def _backward(self, out: Tensor, target: Tensor, saved: list[Saved]) -> None:
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
            g = GRAD[act](g, prev.keep, self.exact)
            if prev.bn is not None and prev.z is not None:
                g = self._batch_norm_backward(self.layers[i - 1], g, prev.z, prev.bn)

    def _batch_norm_backward(self, layer: Layer, g: Tensor, z: Tensor, saved: tuple) -> Tensor:
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
        """Penalty gradients, decoupled decay, then the optimizer (:mod:`.update`)."""
        p, g = self.params, self.grad
        if self.l2 is not None:
            g.addcmul_(self.l2, p)
        if self.l1 is not None:
            g.addcmul_(self.l1, p.sign())
        if self.decay is not None:
            p.mul_(self.decay)
        active = None if self.all_active else self.active_elements
        if self.schedule.optimizer == "sgd":
            sgd_step(p, g, self.buf, self.momentum, self.neg_lr, active)
        else:
            self.steps += 1
            hyper = (*self.schedule.betas, self.schedule.eps)
            counts = [self.steps - start for start in self.start_steps]
            moments = (self.exp_avg, self.exp_avg_sq)
            adam_step(p, g, moments, hyper, counts, self.member_of_element, self.neg_lr, active)
        if not self.all_active and self.batch_norm:
            torch.where(self.active_stats, self.stats, self.frozen_stats, out=self.stats)

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
        """Per-member L2 norm and share of |w| < SPARSE_BELOW over all weight matrices."""
        views = self.blocks.views(params)
        weights = [views[j].reshape(self.k, -1) for j in sorted(self.weight_blocks)]
        flat = torch.cat(weights, dim=1)
        norm = flat.square().sum(1).sqrt()
        sparsity = (flat.abs() < SPARSE_BELOW).to(self.dtype).mean(1)
        both = torch.stack([norm, sparsity]).tolist()
        return both[0], both[1]

    # ------------------------------------------------------------------ what the engine reads

    def evaluate(self) -> dict[str, list[float]]:
        """``{train,val}_{loss,acc}`` of every member's current weights, in evaluation mode."""
        return self._metrics(("train", "val"), self.params, self.stats)

    @torch.no_grad()
    def snapshot(self, improved: list[bool]) -> None:
        """Keep the current weights and BN statistics of the members that improved."""
        assert self.best is not None
        flags = torch.tensor(improved, dtype=self.dtype, device=self.device)
        for current, best, blocks in zip(
            (self.params, self.stats), self.best, (self.blocks, self.stat_blocks), strict=True
        ):
            torch.where(blocks.per_element(flags) > 0, current, best, out=best)

    def final_weights(self, restore: list[bool]) -> tuple[Tensor, Tensor]:
        """Parameters and BN statistics: the saved best of members where ``restore``."""
        params, stats = self.params, self.stats
        if self.best is not None and any(restore):
            flags = torch.tensor(restore, dtype=self.dtype, device=self.device)
            params = torch.where(self.blocks.per_element(flags) > 0, self.best[0], params)
            stats = torch.where(self.stat_blocks.per_element(flags) > 0, self.best[1], stats)
        return params, stats

    @torch.no_grad()
    def outputs(self, x: Tensor, restore: list[bool]) -> Tensor:
        """Raw outputs ``[K, n, out]`` of every member on rows ``x`` ``[n, features]`` at its
        final weights (see :meth:`final_weights`), in evaluation mode, in row chunks."""
        views, stat_views = (
            blocks.views(flat)
            for blocks, flat in zip(
                (self.blocks, self.stat_blocks), self.final_weights(restore), strict=True
            )
        )
        x = x.to(device=self.device, dtype=self.dtype)
        rows = max(1, _EVAL_ELEMENTS // (self.k * max(self.spec.widths)))
        chunks = [
            self._forward_eval(x[start : start + rows].T.unsqueeze(0), views, stat_views)
            for start in range(0, len(x), rows)
        ]
        return torch.cat(chunks, dim=2).transpose(1, 2)

    @torch.no_grad()
    def final(self, restore: list[bool]) -> tuple[dict[str, list[float]], list[float], list[float]]:
        """Per member: ``{train,val,test}_{loss,acc}``, weight norm and sparsity of the final
        weights (see :meth:`final_weights`)."""
        params, stats = self.final_weights(restore)
        values = self._metrics(("train", "val", "test"), params, stats)
        norms, sparsity = self._weight_stats(params)
        return values, norms, sparsity
