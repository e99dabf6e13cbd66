"""The batching rule both engines share (and the equivalence tests rely on)."""

from __future__ import annotations

from collections.abc import Iterator

import torch

__all__ = ["epoch_batches"]


def epoch_batches(
    n: int, batch_size: int | None, gen: torch.Generator, device: str | torch.device
) -> Iterator[torch.Tensor | None]:
    """Index batches of one epoch over ``n`` rows; None means "the whole split" (full batch,
    no copy). The order comes from ``gen``, so members sharing it see the same batches."""
    if batch_size is None or batch_size >= n:
        yield None
        return
    order = torch.randperm(n, generator=gen).to(device)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        # A lone last row would make batch norm fail (one value per channel) and adds noise.
        if len(idx) > 1 or start == 0:
            yield idx
