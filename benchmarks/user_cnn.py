"""The user module of ``bench_convnet.py``'s ``custom/digits`` row: a small CNN with batch
norm and two dropouts, written as a user would (plain torch.nn, the README's contract)."""

from __future__ import annotations

from torch import nn


def make_net(input_shape: tuple[int, ...], n_outputs: int, batch_norm: bool = False) -> nn.Module:
    """Conv(16) → [BN] → ReLU → pool → dropout → Linear(64) → ReLU → dropout → Linear."""
    channels, height, width = input_shape
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1),
        nn.BatchNorm2d(16) if batch_norm else nn.Identity(),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.25),
        nn.Flatten(),
        nn.Linear(16 * (height // 2) * (width // 2), 64),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(64, n_outputs),
    )
