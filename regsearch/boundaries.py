"""Decision boundaries of a few trained candidates on a 2-D task (as the NNDL book draws them).

Retrains each candidate once with the reference engine (same seed → same weights on CPU) and
evaluates its class-1 probability on a grid over the data. Only the numbers are produced here;
the report draws them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from regsearch.engine.members import Schedule
from regsearch.engine.reference import fit
from regsearch.models import ModelSpec
from regsearch.records import Member, NonFiniteLoss
from regsearch.tasks.bundle import TaskData

__all__ = ["boundary_grids", "save_boundaries"]


def boundary_grids(
    task: TaskData,
    spec: ModelSpec,
    schedule: Schedule,
    candidates: dict[str, Member],
    resolution: int = 120,
) -> dict[str, np.ndarray]:
    """``xx``, ``yy``, training points ``x``/``y`` and ``prob__<name>`` per candidate.

    Candidates that fail to train are left out. Only binary tasks with two features qualify.

    Example:
        >>> grids = boundary_grids(task, spec, schedule, {"baseline": member})  # doctest: +SKIP
        >>> grids["prob__baseline"].shape  # doctest: +SKIP
        (120, 120)
    """
    if task.n_features != 2 or task.n_classes != 2:
        raise ValueError(f"decision boundaries need a binary 2-D task, not {task.name}")
    x = task.x_train.cpu().numpy()
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = 0.15 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    grid = torch.as_tensor(np.stack([xx.ravel(), yy.ravel()], axis=1), dtype=torch.float32)
    out = {"xx": xx, "yy": yy, "x": x, "y": task.y_train.cpu().numpy().ravel()}
    for name, member in candidates.items():
        try:
            net, _ = fit(task.to("cpu"), spec, member, schedule)
        except (NonFiniteLoss, RuntimeError, ValueError):
            continue
        with torch.no_grad():
            prob = torch.sigmoid(net(grid)).reshape(xx.shape)
        out[f"prob__{name}"] = prob.numpy()
    return out


def save_boundaries(path: Path, grids: dict[str, np.ndarray]) -> Path:
    """Write the grids as one compressed ``.npz`` (what the report reads)."""
    np.savez_compressed(path, **grids)  # type: ignore[arg-type]
    return path
