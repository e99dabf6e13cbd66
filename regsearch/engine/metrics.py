"""Loss and accuracy for the three task kinds, over any leading batch dimensions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from regsearch.tasks.bundle import TaskData

__all__ = ["accuracy", "loss", "split_metrics"]


def loss(out: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean training loss: BCE on one logit (binary), cross-entropy (multi-class), or MSE."""
    if n_classes == 2:
        return F.binary_cross_entropy_with_logits(out, y)
    if n_classes > 2:
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    return F.mse_loss(out, y)


def accuracy(out: torch.Tensor, y: torch.Tensor, n_classes: int) -> float:
    """Share of correct predictions (classification only)."""
    pred = (out > 0).to(y.dtype) if n_classes == 2 else out.argmax(dim=-1)
    return float((pred == y).float().mean())


def split_metrics(
    forward: torch.nn.Module, task: TaskData, split: str
) -> tuple[float, float | None]:
    """(loss, accuracy or None) of ``forward`` on one split; the caller sets eval mode."""
    x, y = getattr(task, f"x_{split}"), getattr(task, f"y_{split}")
    with torch.no_grad():
        out = forward(x)
        value = float(loss(out, y, task.n_classes))
        acc = accuracy(out, y, task.n_classes) if task.is_classification else None
    return value, acc
