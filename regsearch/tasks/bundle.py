"""The one bundle every task returns, and the split/standardize steps they share."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["TaskData", "make_bundle", "split_indices"]


@dataclass(frozen=True)
class TaskData:
    """Train/validation/test tensors of one task, ready for the engines.

    Features are float32 ``[n, d]``. Targets are float32 ``[n, 1]`` for regression and binary
    classification (0/1 labels, one logit) and int64 ``[n]`` for multi-class classification.
    Selection uses ``val`` only; ``test`` is touched once for the final numbers.
    """

    name: str
    kind: str  # "classification" or "regression"
    n_classes: int  # 0 for regression, 2 for binary (one logit), >2 for softmax
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    feature_names: list[str] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Width of the model's last layer: one logit/value, or one per class."""
        return self.n_classes if self.n_classes > 2 else 1

    @property
    def is_classification(self) -> bool:
        return self.kind == "classification"

    def to(self, device: torch.device | str) -> TaskData:
        """The same bundle with every tensor on ``device``."""
        moved = {
            k: getattr(self, k).to(device)
            for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
        }
        return TaskData(
            name=self.name,
            kind=self.kind,
            n_classes=self.n_classes,
            feature_names=self.feature_names,
            **moved,
        )


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` and cut off ``fraction`` of it (at least one row).

    Returns:
        (kept, held_out) index arrays, each sorted so row order stays stable.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_out = min(max(1, round(n * fraction)), n - 1)
    return np.sort(order[n_out:]), np.sort(order[:n_out])


def make_bundle(
    name: str,
    kind: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    standardize: bool,
    feature_names: list[str] | None = None,
) -> TaskData:
    """Build a TaskData from numpy splits ``{"train"|"val"|"test": (x, y)}``.

    Standardization statistics come from the training split only, so nothing about validation
    or test rows leaks into the features. Classification labels must be 0..k-1 integers.
    """
    x_tr = np.asarray(splits["train"][0], dtype=np.float64)
    mean = x_tr.mean(axis=0) if standardize else 0.0
    std = x_tr.std(axis=0) if standardize else 1.0
    if standardize:
        # A constant column (e.g. a blank pixel) would divide by zero; leave it centred.
        std = np.where(std > 1e-12, std, 1.0)
    n_classes = 0
    if kind == "classification":
        labels = np.concatenate([np.asarray(splits[s][1]) for s in ("train", "val", "test")])
        n_classes = max(int(labels.max()) + 1, 2)

    def tensors(part: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = splits[part]
        xt = torch.as_tensor((np.asarray(x, dtype=np.float64) - mean) / std, dtype=torch.float32)
        if kind == "classification" and n_classes > 2:
            yt = torch.as_tensor(np.asarray(y), dtype=torch.int64)
        else:
            yt = torch.as_tensor(np.asarray(y, dtype=np.float64), dtype=torch.float32).reshape(
                -1, 1
            )
        return xt, yt

    (xa, ya), (xv, yv), (xs, ys) = (tensors(p) for p in ("train", "val", "test"))
    names = feature_names or [f"x{i}" for i in range(xa.shape[1])]
    return TaskData(name, kind, n_classes, xa, ya, xv, yv, xs, ys, names)
