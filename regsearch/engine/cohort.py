"""A cohort: members of one network, stacked and trained as one computation with ``torch.func``.

The members of a cohort share their architecture, their data view and their epoch; each has
its own parameters, buffers (batch-norm statistics, dropout rate), optimizer state,
hyperparameters and dropout stream. Their parameters are stacked ``[K, ...]`` leaves; one
``vmap`` of ``functional_call`` runs every member's forward pass, and one backward pass of the
summed losses gives each member its own gradient (members share no parameter). The optimizer
and decoupled decay are elementwise, written out here with a per-member learning rate.

Arithmetic is the reference engine's, member for member: same initialization (each member's
network is built exactly as the reference builds it), same minibatches, the same dropout
masks (:mod:`regsearch.dropout`), and torch.optim's SGD and Adam update formulas. Results
agree with the reference to float rounding of the batched kernels.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from regsearch.dropout import DROPOUT_STREAM, MemberDropout
from regsearch.engine.batches import epoch_batches
from regsearch.engine.members import Schedule
from regsearch.engine.metrics import loss as task_loss
from regsearch.records import Member
from regsearch.regularizers import weight_kinds
from regsearch.tasks.bundle import TaskData

__all__ = ["Cohort", "Slice"]

Tensors = dict[str, torch.Tensor]
#: Rows per evaluation chunk: bounds the [K, rows, ...] activations of a whole split.
_EVAL_ROWS = 512


@dataclass
class Slice:
    """One member's parameters and buffers, cut out of its cohort (a copy)."""

    params: Tensors
    buffers: Tensors


class Cohort:
    """Members trained side by side, epoch by epoch (see the module docstring).

    Args:
        nets: Each member's initial network, built as the reference engine builds it.
        members: The members, in the order of ``nets``.
        data: The data view every member trains on.
        schedule: Optimizer and batching shared by the members.
        device: Where the stacked tensors live.
    """

    def __init__(
        self,
        nets: list[nn.Module],
        members: list[Member],
        data: TaskData,
        schedule: Schedule,
        device: torch.device,
    ) -> None:
        self.members, self.data, self.schedule, self.device = members, data, schedule, device
        self.epoch = 0
        self._step = 0
        self.base = copy.deepcopy(nets[0]).to("meta")
        self.weight_kinds = weight_kinds(self.base)  # the layer type of each weight matrix
        self.dropouts = _dropout_shapes(nets[0], data.x_train[:2])
        params, buffers = stack_module_state(nets)
        self.params = {k: v.detach().to(device).requires_grad_() for k, v in params.items()}
        self.buffers = {k: v.to(device) for k, v in buffers.items()}
        self.state: dict[str, Tensors] = {k: {} for k in self.params}
        hp = [m.hparams for m in members]
        self._hp = {
            name: torch.tensor([float(getattr(h, name)) for h in hp], device=device)
            for name in ("lr", "momentum", "l1", "l2", "weight_decay")
        }
        self._order = torch.Generator().manual_seed(schedule.order_seed)
        self._noise_gens = [
            torch.Generator(device=device).manual_seed(m.seed + DROPOUT_STREAM) for m in members
        ]
        self._read_flags()

    def __len__(self) -> int:
        return len(self.members)

    # -- training ----------------------------------------------------------------------

    def train_epoch(self) -> None:
        """One epoch of minibatch steps for every member."""
        self.epoch += 1
        self.base.train()
        n = len(self.data.x_train)
        for idx in epoch_batches(n, self.schedule.batch_size, self._order, self.device):
            xb = self.data.x_train if idx is None else self.data.x_train[idx]
            yb = self.data.y_train if idx is None else self.data.y_train[idx]
            self._update(xb, yb)

    def _update(self, xb: torch.Tensor, yb: torch.Tensor) -> None:
        n_classes = self.data.n_classes

        def member_loss(
            params: Tensors, buffers: Tensors, noise: Tensors, x: torch.Tensor, y: torch.Tensor
        ) -> torch.Tensor:
            out = functional_call(self.base, (params, {**buffers, **noise}), (x,))
            return task_loss(out, y, n_classes)

        losses = vmap(member_loss, in_dims=(0, 0, 0, None, None))(
            self.params, self.buffers, self._noise(len(xb)), xb, yb
        )
        total = losses.sum() + self._penalty().sum()
        grads = torch.autograd.grad(total, list(self.params.values()))
        with torch.no_grad():
            self._step += 1
            for (name, p), g in zip(self.params.items(), grads, strict=True):
                self._decay(p)
                self._optimizer_step(name, p, g)

    def _noise(self, rows: int) -> Tensors:
        """Each dropout layer's uniform noise, ``[K, rows, *shape]``, drawn member by member
        in forward order exactly as the member's own MemberDropout draws it; a layer no member
        drops gets ``[K, 1]`` zeros (keep all, no draw)."""
        rates = self._rates
        noise: dict[str, list[torch.Tensor]] = {name: [] for name in self.dropouts}
        for k, gen in enumerate(self._noise_gens):
            for name, shape in self.dropouts.items():
                if rates[name][k] > 0:
                    noise[name].append(
                        torch.rand((rows, *shape), generator=gen, device=self.device)
                    )
                else:
                    noise[name].append(torch.zeros((rows, *shape), device=self.device))
        zeros = torch.zeros(len(self), 1, device=self.device)
        return {
            f"{name}.noise": torch.stack(draws) if any(r > 0 for r in rates[name]) else zeros
            for name, draws in noise.items()
        }

    def _read_flags(self) -> None:
        """Which per-member factors any member uses, and each dropout layer's rate per
        member: read once per cohort, not per step (each read syncs an accelerator)."""
        self._uses = {name: bool(t.any()) for name, t in self._hp.items()}
        self._rates = {name: self.buffers[f"{name}.rate"].tolist() for name in self.dropouts}

    def _penalty(self) -> torch.Tensor:
        """Each member's ``l1·Σ|W| + (l2/2)·ΣW²`` over its weight matrices, ``[K]``."""
        l1, l2 = self._hp["l1"], self._hp["l2"]
        total = torch.zeros(len(self), device=self.device)
        if not (self._uses["l1"] or self._uses["l2"]):
            return total
        for w in self._weights():
            flat = w.flatten(1)
            total = total + l1 * flat.abs().sum(1) + 0.5 * l2 * flat.pow(2).sum(1)
        return total

    def _weights(self) -> Iterator[torch.Tensor]:
        return (p for p in self.params.values() if p.dim() >= 3)  # ≥2-D per member

    def _per_member(self, values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.reshape(-1, *([1] * (like.dim() - 1)))

    def _decay(self, p: torch.Tensor) -> None:
        """Decoupled decay ``θ ← (1 − lr·wd)·θ`` (weights only unless ``decay_all``)."""
        wd = self._hp["weight_decay"]
        if not self._uses["weight_decay"] or (p.dim() < 3 and not self.schedule.decay_all):
            return
        p.mul_(self._per_member(1.0 - self._hp["lr"] * wd, p))

    def _optimizer_step(self, name: str, p: torch.Tensor, g: torch.Tensor) -> None:
        """torch.optim's SGD (with momentum) or Adam update, with each member's lr."""
        lr = self._per_member(self._hp["lr"], p)
        state = self.state[name]
        if self.schedule.optimizer == "sgd":
            if self._uses["momentum"]:
                buf = state.setdefault("momentum", torch.zeros_like(p))
                buf.mul_(self._per_member(self._hp["momentum"], p)).add_(g)
                g = buf
            p.sub_(lr * g)
            return
        beta1, beta2 = self.schedule.betas
        m = state.setdefault("exp_avg", torch.zeros_like(p))
        v = state.setdefault("exp_avg_sq", torch.zeros_like(p))
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        step_size = lr / (1 - beta1**self._step)
        denom = (v.sqrt() / (1 - beta2**self._step) ** 0.5).add_(self.schedule.eps)
        p.sub_(step_size * m / denom)

    # -- evaluation ----------------------------------------------------------------------

    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's outputs on rows ``x`` in evaluation mode, ``[K, n, outputs]``."""
        self.base.eval()

        def member_out(params: Tensors, buffers: Tensors, rows: torch.Tensor) -> torch.Tensor:
            return functional_call(self.base, (params, buffers), (rows,))

        with torch.no_grad():
            chunks = [
                vmap(member_out, in_dims=(0, 0, None))(self.params, self.buffers, rows)
                for rows in x.split(_EVAL_ROWS)
            ]
        return torch.cat(chunks, dim=1)

    def member(self, k: int) -> Slice:
        """A copy of member ``k``'s parameters and buffers."""
        return Slice(
            {n: p[k].detach().clone() for n, p in self.params.items()},
            {n: b[k].clone() for n, b in self.buffers.items()},
        )

    def load(self, k: int, saved: Slice) -> None:
        """Put a saved slice back into member ``k`` (early stopping's restore-best)."""
        with torch.no_grad():
            for n, p in saved.params.items():
                self.params[n][k].copy_(p)
            for n, b in saved.buffers.items():
                self.buffers[n][k].copy_(b)

    def slice_outputs(self, saved: Slice, x: torch.Tensor) -> torch.Tensor:
        """One member's outputs on ``x`` from its slice, in evaluation mode."""
        self.base.eval()
        with torch.no_grad():
            return torch.cat(
                [
                    functional_call(self.base, (saved.params, saved.buffers), (r,))
                    for r in x.split(_EVAL_ROWS)
                ]
            )

    def keep(self, positions: list[int]) -> None:
        """Drop every member not at ``positions`` (the stopped ones give their compute back)."""
        index = torch.tensor(positions, device=self.device)
        self.members = [self.members[k] for k in positions]
        self._noise_gens = [self._noise_gens[k] for k in positions]
        self.params = {
            n: p.detach().index_select(0, index).requires_grad_() for n, p in self.params.items()
        }
        self.buffers = {n: b.index_select(0, index) for n, b in self.buffers.items()}
        self.state = {
            n: {k: t.index_select(0, index) for k, t in s.items()} for n, s in self.state.items()
        }
        self._hp = {n: t.index_select(0, index) for n, t in self._hp.items()}
        self._read_flags()


def _dropout_shapes(net: nn.Module, rows: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Each MemberDropout's input shape per example, in the order the forward pass calls them.

    Raises:
        ValueError: A dropout module called more than once per forward pass (its one noise
            buffer could not give each call its own mask).
    """
    probe = copy.deepcopy(net).train()  # a copy: its batch-norm statistics move
    names: dict[nn.Module, str] = {
        m: n for n, m in probe.named_modules() if isinstance(m, MemberDropout)
    }
    seen: dict[str, tuple[int, ...]] = {}

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        name = names[module]
        if name in seen:
            raise ValueError(f"dropout module {name!r} is called twice in one forward pass")
        seen[name] = tuple(args[0].shape[1:])

    handles = [m.register_forward_pre_hook(hook) for m in names]
    try:
        with torch.no_grad():
            probe(rows)
    finally:
        for h in handles:
            h.remove()
    return seen
