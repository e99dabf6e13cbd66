"""Decision boundaries of a few trained candidates on a 2-D task (as the NNDL book draws them).

Trains the candidates once more, together on the population engine, and reads each one's class-1
probability on a grid over the data at its final weights (the engine's probe: no network is
kept around). Only the numbers are produced here; the report draws them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from regsearch.engine import resolve_engine
from regsearch.engine.members import Probe, Schedule
from regsearch.networks import NetSpec, mlp_stack
from regsearch.records import Member
from regsearch.tasks.bundle import TaskData

__all__ = ["boundaries_reason", "boundary_grids", "save_boundaries"]


def boundaries_reason(task: TaskData) -> str:
    """Why the task has no decision-boundary figure ("" when it has one: binary, 2 inputs).

    Example:
        >>> boundaries_reason(task)  # doctest: +SKIP
        'they need a binary task with two input features; digits has 64 and 10 classes'
    """
    if task.n_features == 2 and task.n_classes == 2:
        return ""
    classes = "a regression target" if not task.is_classification else f"{task.n_classes} classes"
    return (
        f"they need a binary task with two input features; {task.name} has "
        f"{task.n_features} and {classes}"
    )


def boundary_grids(
    task: TaskData,
    spec: NetSpec,
    schedule: Schedule,
    candidates: dict[str, Member],
    resolution: int = 120,
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """``xx``, ``yy``, training points ``x``/``y`` and ``prob__<name>`` per candidate.

    Each candidate trains on the task's own train split (its ``fold`` is ignored) with its
    seed; candidates that fail to train are left out. Only binary tasks with two features
    qualify.

    Example:
        >>> grids = boundary_grids(task, spec, schedule, {"baseline": member})  # doctest: +SKIP
        >>> grids["prob__baseline"].shape  # doctest: +SKIP
        (120, 120)
    """
    reason = boundaries_reason(task)
    if reason:
        raise ValueError(f"no decision boundaries: {reason}")
    x = task.x_train.cpu().numpy()
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = 0.15 * (hi - lo)
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    grid = torch.as_tensor(np.stack([xx.ravel(), yy.ravel()], axis=1), dtype=torch.float32)
    out = {"xx": xx, "yy": yy, "x": x, "y": task.y_train.cpu().numpy().ravel()}
    # The plot is over the task's own points, so every candidate trains on its own split.
    members = [dataclasses.replace(m, fold=None) for m in candidates.values()]
    probe = Probe(grid)
    _, train = resolve_engine("auto", mlp_stack(spec))
    train(task, spec, members, schedule=schedule, probe=probe, device=device)
    for index, name in enumerate(candidates):
        if index in probe.outputs:  # failed candidates have no outputs
            logits = probe.outputs[index].reshape(xx.shape)
            out[f"prob__{name}"] = torch.sigmoid(logits).numpy()
    return out


def save_boundaries(path: Path, grids: dict[str, np.ndarray]) -> Path:
    """Write the grids as one compressed ``.npz`` (what the report reads)."""
    np.savez_compressed(path, **grids)  # type: ignore[arg-type]
    return path
