"""Regularizers with the textbook semantics shared by every engine.

- L2 penalty ``(λ/2)·Σ‖W‖²`` and L1 penalty ``λ·Σ|W|`` over weight matrices only: biases and
  batch-norm parameters are never penalized.
- Decoupled weight decay ``θ ← θ − lr·wd·θ``, applied next to the optimizer step, never through
  the loss (AdamW-style for Adam, the plain multiplicative shrink for SGD).
- Early stopping on validation loss with patience, min_delta and restore-best.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = [
    "SPARSE_BELOW",
    "EarlyStopping",
    "WeightStats",
    "decay_",
    "penalty",
    "split_decay_params",
    "weight_kinds",
    "weight_matrices",
    "weight_stats",
]

#: A weight counts as zero (sparsity) below this magnitude.
SPARSE_BELOW = 1e-3


def weight_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The parameters penalties act on: every ≥2-D weight (Linear weights, not biases or BN)."""
    return [p for p in model.parameters() if p.dim() >= 2]


def weight_kinds(model: nn.Module) -> dict[str, str]:
    """Each weight matrix's name → its layer type: ``conv``, ``linear`` or ``other``."""
    kinds: dict[str, str] = {}
    for prefix, module in model.named_modules():
        kind = (
            "conv"
            if isinstance(module, nn.modules.conv._ConvNd)
            else "linear"
            if isinstance(module, nn.Linear)
            else "other"
        )
        for name, p in module.named_parameters(prefix=prefix, recurse=False):
            if p.dim() >= 2:
                kinds[name] = kind
    return kinds


@dataclass(frozen=True)
class WeightStats:
    """The final weights' L2 norm and sparsity, overall and per layer type."""

    norm: float
    sparsity: float  # share of weight entries with |w| < SPARSE_BELOW
    # weight_norm_<kind> / sparsity_<kind> per layer type, when a net has several types.
    by_layer: dict[str, float] = field(default_factory=dict)


@torch.no_grad()
def weight_stats(weights: dict[str, torch.Tensor], kinds: dict[str, str]) -> WeightStats:
    """:class:`WeightStats` of named weight matrices (``kinds``: :func:`weight_kinds`).

    Example:
        >>> w = {"0.weight": torch.zeros(2, 2), "1.weight": torch.full((1, 4), 2.0)}
        >>> stats = weight_stats(w, {"0.weight": "conv", "1.weight": "linear"})
        >>> stats.norm, stats.by_layer["sparsity_conv"], stats.by_layer["weight_norm_linear"]
        (4.0, 1.0, 4.0)
    """
    groups: dict[str, list[torch.Tensor]] = {}
    for name, w in weights.items():
        groups.setdefault(kinds.get(name, "other"), []).append(w.detach().reshape(-1))

    def norm_and_sparsity(parts: list[torch.Tensor]) -> tuple[float, float]:
        flat = torch.cat(parts)
        return float(flat.norm()), float((flat.abs() < SPARSE_BELOW).float().mean())

    norm, sparsity = norm_and_sparsity([w for ws in groups.values() for w in ws])
    by_layer: dict[str, float] = {}
    if len(groups) > 1:
        for kind, parts in groups.items():
            by_layer[f"weight_norm_{kind}"], by_layer[f"sparsity_{kind}"] = norm_and_sparsity(parts)
    return WeightStats(norm, sparsity, by_layer)


def split_decay_params(
    model: nn.Module, decay_all: bool
) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, not decayed) parameters: weight matrices only unless ``decay_all``."""
    params = list(model.parameters())
    if decay_all:
        return params, []
    return [p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]


def penalty(weights: Iterable[torch.Tensor], l1: float, l2: float) -> torch.Tensor | float:
    """``l1·Σ|W| + (l2/2)·ΣW²``; returns the float 0.0 when both are off so no graph is built.

    Example:
        >>> w = torch.tensor([[1.0, -2.0]])
        >>> float(penalty([w], l1=0.5, l2=2.0))
        6.5
    """
    if l1 == 0 and l2 == 0:
        return 0.0
    total: torch.Tensor | float = 0.0
    for w in weights:
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + 0.5 * l2 * w.pow(2).sum()
    return total


@torch.no_grad()
def decay_(params: Iterable[torch.Tensor], lr: float, weight_decay: float) -> None:
    """Decoupled decay ``θ ← (1 − lr·wd)·θ``; call it right before the optimizer step."""
    if weight_decay == 0:
        return
    factor = 1.0 - lr * weight_decay
    for p in params:
        p.mul_(factor)


class EarlyStopping:
    """Stop after ``patience`` evaluations without a val-loss improvement larger than min_delta.

    Example:
        >>> stopper = EarlyStopping(patience=2)
        >>> [stopper.update(v, epoch=i) for i, v in enumerate([1.0, 0.9, 0.95, 0.91])]
        [False, False, False, True]
        >>> stopper.best_epoch
        1
    """

    def __init__(self, patience: int, min_delta: float = 0.0, restore_best: bool = True) -> None:
        if patience < 1:
            raise ValueError(f"{patience=} must be >= 1")
        if min_delta < 0:
            raise ValueError(f"{min_delta=} must be >= 0")
        self.patience = patience
        self.min_delta = min_delta
        self.restore_best = restore_best
        self.best = math.inf
        self.best_epoch = -1
        self.bad_evals = 0
        self._best_state: dict[str, torch.Tensor] | None = None

    def update(self, val_loss: float, epoch: int, model: nn.Module | None = None) -> bool:
        """Record one evaluation; True means stop now."""
        if val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_evals = val_loss, epoch, 0
            if model is not None and self.restore_best:
                self._best_state = copy.deepcopy(model.state_dict())
            return False
        self.bad_evals += 1
        return self.bad_evals >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best weights seen (no-op without restore_best or before any improvement)."""
        if self.restore_best and self._best_state is not None:
            model.load_state_dict(self._best_state)
