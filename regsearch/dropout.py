"""Dropout whose rate and masks belong to one member, in any network (``cnn``, ``custom``).

``nn.Dropout`` keeps its rate in a Python attribute and draws its masks from torch's global
generator, so members stacked into one computation could neither differ in rate nor keep
their own masks. :class:`MemberDropout` holds its rate in a buffer (stacked per member like
any buffer) and makes its mask from uniform noise: drawn from the member's own generator when
the network trains alone (the reference engine), handed in as the ``noise`` buffer when the
population engine runs many members through ``torch.func``. Both draw the same numbers in the
same order, so a member's masks, and its whole run, do not depend on the engine.

Example:
    >>> drop = MemberDropout(0.5, torch.Generator().manual_seed(0))
    >>> drop(torch.ones(2, 4)).unique().tolist()
    [0.0, 2.0]
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DROPOUT_STREAM", "MemberDropout", "own_dropout_", "seed_dropout_"]

#: Offset of a member's dropout seed from its initialization seed, so the two streams differ.
DROPOUT_STREAM = 1 << 32


class MemberDropout(nn.Module):
    """Inverted dropout at rate ``p``: keeps a unit where its noise is ≥ p, scaled by 1/(1−p)."""

    rate: torch.Tensor
    noise: torch.Tensor | None

    def __init__(self, p: float = 0.0, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout rate {p} must be in [0, 1)")
        self.register_buffer("rate", torch.tensor(float(p)), persistent=False)
        # Set by the population engine for one step (one member's slice under vmap).
        self.register_buffer("noise", None, persistent=False)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        noise = self.noise
        if noise is None:
            if float(self.rate) == 0.0:
                return x  # no draw: a rate of 0 consumes no numbers (as the population skips it)
            noise = torch.rand(x.shape, generator=self.generator, device=x.device)
        return x * (noise >= self.rate).to(x.dtype) / (1.0 - self.rate)

    def extra_repr(self) -> str:
        return f"p={float(self.rate):g}"


def own_dropout_(net: nn.Module, rate: float) -> int:
    """Replace every ``nn.Dropout`` of ``net`` by a :class:`MemberDropout` at ``rate``; returns
    how many were replaced."""
    found = [(name, m) for name, m in net.named_modules() if type(m) is nn.Dropout]
    for name, _ in found:
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, child, MemberDropout(rate))
    return len(found)


def seed_dropout_(net: nn.Module, seed: int, device: torch.device) -> None:
    """Give every :class:`MemberDropout` of ``net`` one generator seeded from the member's seed."""
    gen = torch.Generator(device=device).manual_seed(seed + DROPOUT_STREAM)
    for m in net.modules():
        if isinstance(m, MemberDropout):
            m.generator = gen
