"""The constant predictor: what a model must beat before any regularizer verdict means much.

It predicts the training targets' mean (regression) or class frequencies (classification,
whose accuracy is then the majority class's share), fitted on each validated split's training
rows and scored on its validation rows with the engines' losses, averaged over the folds of one
seed (or the holdout split).

Example:
    >>> constant_scores(task, seed=0)  # doctest: +SKIP
    {'val_loss': 0.693, 'val_acc': 0.5}
"""

from __future__ import annotations

import math

import torch

from regsearch.tasks.bundle import TaskData

__all__ = ["constant_scores"]


def constant_scores(task: TaskData, seed: int) -> dict[str, float]:
    """Validation ``val_loss`` (and ``val_acc``) of the constant predictor, averaged over folds.

    Args:
        task: The sweep's task; with ``task.folds`` its folds for ``seed`` are scored.
        seed: The seed whose fold partition is used (any seed: the constant does not train).
    """
    views = [task.member_data(f, seed) for f in range(task.folds)] if task.folds else [task]
    scores = [_score(view) for view in views]
    return {key: sum(s[key] for s in scores) / len(scores) for key in scores[0]}


def _score(data: TaskData) -> dict[str, float]:
    y_train, y_val = data.y_train.cpu(), data.y_val.cpu()
    if not data.is_classification:
        mean = y_train.double().mean(dim=0)
        return {"val_loss": float((y_val.double() - mean).square().mean())}
    if data.n_classes > 2:
        counts = torch.bincount(y_train, minlength=data.n_classes).double()
        # A class absent from the training rows would have log(0): give it one pseudo-count.
        freq = (counts + (counts == 0)) / (counts + (counts == 0)).sum()
        loss = -freq.log()[y_val].mean()
        acc = (y_val == counts.argmax()).double().mean()
        return {"val_loss": float(loss), "val_acc": float(acc)}
    p = float(y_train.double().mean())
    p = min(max(p, 1e-7), 1 - 1e-7)
    yv = y_val.double()
    loss = -(yv * math.log(p) + (1 - yv) * math.log(1 - p)).mean()
    acc = (yv == float(p >= 0.5)).double().mean()
    return {"val_loss": float(loss), "val_acc": float(acc)}
